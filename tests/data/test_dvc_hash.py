"""DVC folder hashes: siteml's agree with the real `dvc add`."""

import json
import shutil
import subprocess
import sys

import pytest

from siteml.data.dvc_hash import dir_hash, read_dvc_file
from siteml.data.synth import synthesize
from tests.conftest import needs

needs("dvc", "dev")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvc") / "data"
    synthesize(root, ["helmet", "vest", "person"], {"train": 6, "val": 3}, imgsz=64, seed=3)
    (root / "notes with space.txt").write_text("unicode: é, and a newline\r\n")
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "empty.bin").write_bytes(b"")
    return root


def test_matches_real_dvc_add(dataset, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(dataset, repo / "data")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=repo, check=True)
    subprocess.run([*dvc, "add", "data", "-q"], cwd=repo, check=True,
                   env={**__import__("os").environ, "DVC_NO_ANALYTICS": "1"})
    assert read_dvc_file(repo / "data.dvc") == dir_hash(repo / "data").md5


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
