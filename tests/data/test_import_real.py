"""Imported datasets against the real tools: the hash the real `dvc add` writes (for every
format's import and an odd folder, in one `dvc add`), a run on each format's import that logs the
dataset's profile (a stand-in training: the profile is the lifecycle's), and one real training
(1 epoch, 64 px, offline) on an import whose val holds a near-duplicate of a train image."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from PIL import Image

import siteml.pipelines.train
from siteml.core import keys
from siteml.data.dvc_hash import dir_hash, read_dvc_file
from tests.conftest import needs
from tests.data.label_files import WRITERS
from tests.data.test_dvc_hash import odd_dataset
from tests.scenario.test_runner import fake_train

pytestmark = pytest.mark.slow  # runs DVC and trains
needs("dvc", "dev")
needs("globox", "data")
ODD = "odd"
"""A folder of odd names and contents, hashed beside the imports."""

CLASSES = ["helmet", "vest", "person"]


def import_format(cli, fmt: str, root: Path) -> Path:
    src = WRITERS[fmt](root / f"{fmt}-export")
    dest = root / fmt
    code, _, err = cli("data", "import", str(src), str(dest), "--format", fmt,
                       "--classes", ",".join(CLASSES), "--map", "hardhat=helmet",
                       "--val", "0.4", "--seed", "1")
    assert code == 0, err
    return dest


def test_hash_equals_what_dvc_add_writes(cli, tmp_path):
    ours = {fmt: read_dvc_file(import_format(cli, fmt, tmp_path).with_name(f"{fmt}.dvc"))
            for fmt in WRITERS}
    ours[ODD] = dir_hash(odd_dataset(tmp_path / ODD)).md5
    for folder in ours:
        tmp_path.joinpath(f"{folder}.dvc").unlink(missing_ok=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path,
                   check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", *ours], cwd=tmp_path,
                   check=True, env=env)
    assert {folder: read_dvc_file(tmp_path / f"{folder}.dvc") for folder in ours} == ours


def train_scenario(dataset: Path, fmt: str) -> str:
    block = yaml.safe_load(dataset.with_name(f"{fmt}.dvc").read_text())["outs"][0]
    return yaml.safe_dump({
        "name": f"import-{fmt}", "version": "v1", "experiment_type": "train",
        "site": {"customer": "import-test", "region": "busan", "plant": "plant1", "zone": fmt},
        "task": {"type": "ppe", "classes": CLASSES},
        "model": {"architecture": "yolov11n", "input_size": 64, "num_classes": 3},
        "environment": {"device": "cpu", "seed": 0},
        "dataset": {"version": fmt, "dvc_hash": block["md5"], "path": str(dataset),
                    "image_count": 5},
        "training": {"epochs": 1, "batch": 4, "workers": 0, "mosaic": 0.0},
    }, sort_keys=False)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_run_on_each_import_logs_the_profile(cli, tmp_path, sqlite_uri, monkeypatch, fmt):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    dataset = import_format(cli, fmt, tmp_path)
    scenario = tmp_path / "train.yaml"
    scenario.write_text(train_scenario(dataset, fmt))
    code, out, err = cli("run", str(scenario), "--json")
    assert code == 0, err
    client = MlflowClient(sqlite_uri)
    run = client.get_run(json.loads(out)["run_id"])
    assert run.info.status == "FINISHED"
    (dataset_input,) = run.inputs.dataset_inputs
    profile = json.loads(dataset_input.dataset.profile)
    assert sum(s["images"] for s in profile["splits"].values()) == 5
    assert profile["classes"] == CLASSES
    artifact = client.download_artifacts(run.info.run_id, keys.DATASET_PROFILE_ARTIFACT,
                                         str(tmp_path))
    assert json.loads(Path(artifact).read_text()) == profile
    assert run.data.tags[keys.DATA_VAL_NEAR_DUPLICATES] == "0"


def test_a_real_training_on_an_import_warns_of_near_duplicates_in_val(cli, tmp_path, sqlite_uri,
                                                                     monkeypatch, no_network):
    needs("ultralytics", "train")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    dataset = import_format(cli, "yolo", tmp_path)
    train = sorted((dataset / "images" / "train").iterdir())[0]
    pixels = np.asarray(Image.open(train), dtype=np.int16)
    Image.fromarray(np.clip(pixels + 5, 0, 255).astype(np.uint8)).save(
        dataset / "images" / "val" / "again.png")
    code, _, err = cli("data", "hash", str(dataset), "--write")
    assert code == 0, err
    scenario = tmp_path / "train.yaml"
    scenario.write_text(train_scenario(dataset, "yolo").replace("image_count: 5",
                                                                "image_count: 6"))
    code, out, err = cli("run", str(scenario), "--json")
    assert code == 0, err
    assert "1 val images are near-duplicates of train images" in err
    run = MlflowClient(sqlite_uri).get_run(json.loads(out)["run_id"])
    assert run.data.tags[keys.DATA_VAL_NEAR_DUPLICATES] == "1"
    assert run.data.metrics[keys.EPOCHS_RUN] == 1  # Ultralytics trained on the imported files
    assert no_network.attempts == []  # import, profile and training stay offline
