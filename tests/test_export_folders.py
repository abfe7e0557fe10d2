"""Which exported version an export folder names, and the folders refused (files only: the
registry side is in tests/pipelines/test_export.py)."""

import json

import pytest

from siteml.lifecycle.repository import (
    MANIFEST,
    ExportFolderError,
    exported_version,
    file_hashes,
)


def version_folder(root, model, number, content=b"weights"):
    folder = root / model / str(number)
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(content)
    manifest = {"registered_model": model.replace("_", "."), "version": number,
                "lineage": {"run_id": f"run{number}"}, "files": file_hashes(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_a_version_a_model_or_a_one_model_repository_names_a_version(tmp_path):
    older = version_folder(tmp_path, "a_b_c_ppe", 2)
    newer = version_folder(tmp_path, "a_b_c_ppe", 10)
    assert exported_version(older)[0] == older
    assert exported_version(older.parent)[0] == newer  # the newest, as the servers pick
    folder, manifest = exported_version(tmp_path)
    assert (folder, manifest["version"], manifest["registered_model"]) == (
        newer, 10, "a.b.c.ppe")


def test_folders_that_name_no_single_intact_version_are_refused(tmp_path):
    with pytest.raises(ExportFolderError, match="no version written by siteml export"):
        exported_version(tmp_path)
    version_folder(tmp_path, "a_b_c_ppe", 1)
    version_folder(tmp_path, "a_b_c_fire", 1)
    with pytest.raises(ExportFolderError, match="holds 2 exported models"):
        exported_version(tmp_path)
    changed = version_folder(tmp_path / "x", "a_b_c_ppe", 3)
    (changed / "model.bin").write_bytes(b"other weights")
    with pytest.raises(ExportFolderError, match=f"changed: {changed / 'model.bin'}"):
        exported_version(changed)
    (changed / MANIFEST).write_text("{not json")
    with pytest.raises(ExportFolderError, match="cannot be read"):
        exported_version(changed)
    (changed / MANIFEST).write_text(json.dumps({"version": 3}))
    with pytest.raises(ExportFolderError, match="lacks registered_model, lineage, files"):
        exported_version(changed)
