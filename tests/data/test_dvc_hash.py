"""DVC folder hashes of odd folders (a space, non-ASCII text, an empty file, nesting); the real
`dvc add` is run on such a folder by tests/data/test_import_real.py."""

import json
from pathlib import Path

import pytest

from siteml.data.dvc_hash import dir_hash, read_dvc_file
from siteml.data.synth import synthesize


def odd_dataset(root: Path) -> Path:
    """A synthetic dataset under ``root`` with files whose names and contents are odd."""
    synthesize(root, ["helmet", "vest", "person"], {"train": 6, "val": 3}, imgsz=64, seed=3)
    (root / "notes with space.txt").write_text("unicode: é, and a newline\r\n")
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "empty.bin").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return odd_dataset(tmp_path_factory.mktemp("dvc") / "data")


def test_synth_writes_the_dvc_file_that_dvc_would(dataset):
    # the extra files were added after synthesize wrote data.dvc
    fresh = dir_hash(dataset)
    assert fresh.md5 != read_dvc_file(dataset.with_name("data.dvc"))
    assert fresh.nfiles == 6 + 3 + 6 + 3 + 2


def test_cli_hash_and_recorded_mismatch(cli, dataset):
    code, out, err = cli("data", "hash", str(dataset), "--json")
    assert code == 2
    report = json.loads(out)
    assert report["md5"] == dir_hash(dataset).md5
    assert report["recorded"] != report["md5"]
    assert "changed since it was written" in err
    code, out, _ = cli("data", "hash", str(dataset), "--write")
    assert (code, out.strip()) == (0, dir_hash(dataset).md5)
    assert read_dvc_file(dataset.with_name("data.dvc")) == dir_hash(dataset).md5
