"""A box's model repository: which version its server serves, pinned by a config replaced
whole, leftovers of a killed write that do not make the repository foreign, old versions pruned
and a replaced model unserved."""

import json
from pathlib import Path

import pytest

from siteml.core.digests import file_hashes
from siteml.lifecycle.repository import (
    MANIFEST,
    OVMS_CONFIG,
    TRITON_CONFIG,
    foreign_files,
    pin_version,
    prune_versions,
    remove_folder,
    served_version,
    unserve,
    verify,
)

SIGNATURE = {"inputs": [{"name": "images", "dtype": "float32", "shape": [1, 3, 64, 64]}],
             "outputs": [{"name": "output0", "dtype": "float32", "shape": [1, 7, 84]}]}


def _version(root: Path, version: int, layout: str, name: str = "m") -> tuple[Path, dict]:
    folder = root / name / str(version)
    folder.mkdir(parents=True)
    (folder / "model.xml").write_text(f"<net version='{version}'/>")
    manifest = {"registered_model": "a.b.c.ppe", "version": version, "lineage": {},
                "layout": layout, "backend": "openvino", **SIGNATURE,
                "files": file_hashes(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder, manifest


@pytest.mark.parametrize("layout", ["ovms", "triton"])
def test_a_pinned_version_is_served_and_a_rollback_names_its_own(tmp_path, layout):
    assert served_version(tmp_path, "m", layout) is None
    old = _version(tmp_path, 1, layout)
    new = _version(tmp_path, 2, layout)
    pin_version(*new)
    assert served_version(tmp_path, "m", layout) == 2
    pin_version(*old)  # a rollback: the highest folder is no longer what serves
    assert served_version(tmp_path, "m", layout) == 1
    config = tmp_path / (OVMS_CONFIG if layout == "ovms" else f"m/{TRITON_CONFIG}")
    text = config.read_text()
    if layout == "ovms":
        [entry] = json.loads(text)["model_config_list"]
        assert entry["config"] == {"name": "m", "base_path": "m", "model_version_policy": {
            "specific": {"versions": [1]}}}
    else:
        assert "version_policy: { specific: { versions: [ 1 ] } }" in text
        assert 'name: "images"' in text
    assert foreign_files(tmp_path) == []


def test_a_pin_to_a_missing_folder_is_not_served(tmp_path):
    folder, manifest = _version(tmp_path, 3, "ovms")
    pin_version(folder, manifest)
    (folder / MANIFEST).unlink()
    assert served_version(tmp_path, "m", "ovms") is None


def test_leftovers_of_a_killed_write_are_not_foreign(tmp_path):
    _version(tmp_path, 1, "ovms")
    partial = tmp_path / ".m-2.partial"
    partial.mkdir()
    (partial / "model.bin").write_bytes(b"half")
    (tmp_path / f".{OVMS_CONFIG}.partial").write_text("{")
    assert foreign_files(tmp_path) == []
    (tmp_path / "notes.txt").write_text("mine")
    assert foreign_files(tmp_path) == [tmp_path / "notes.txt"]


@pytest.mark.parametrize("layout", ["ovms", "triton"])
def test_a_replaced_model_is_unserved_and_its_files_go(tmp_path, layout):
    pin_version(*_version(tmp_path, 1, layout))
    pin_version(*_version(tmp_path, 4, layout, name="other"))
    unserve(tmp_path, "m")
    assert served_version(tmp_path, "m", layout) is None
    assert served_version(tmp_path, "other", layout) == 4
    assert not (tmp_path / "m").exists()
    assert verify(tmp_path) == (1, [])
    if layout == "ovms":
        entries = json.loads((tmp_path / OVMS_CONFIG).read_text())["model_config_list"]
        assert [entry["config"]["name"] for entry in entries] == ["other"]
    assert foreign_files(tmp_path) == []


def test_old_versions_are_pruned_whole(tmp_path):
    for version in (1, 2, 3, 5):
        _version(tmp_path, version, "ovms")
    pin_version(*_version(tmp_path, 6, "ovms"))
    assert prune_versions(tmp_path, "m", {6, 3}) == [1, 2, 5]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["3", "6"]
    assert served_version(tmp_path, "m", "ovms") == 6
    assert verify(tmp_path) == (2, [])
    assert not list(tmp_path.glob(".*.partial"))
    remove_folder(tmp_path / "m" / "3")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["6"]
