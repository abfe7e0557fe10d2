"""Imported datasets against the real tools: the hash the real `dvc add` writes (for every
format's import, a version grown from one and an odd folder, in one `dvc add`), a run on each
format's import that logs the dataset's profile and one on a grown version that records its
lineage (stand-in trainings: both are the lifecycle's), and one real training
(1 epoch, 64 px, offline) on an import whose val holds a near-duplicate of a train image."""

import json
import os
import shutil
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
from tests.data.grown import fresh_frames, increment
from tests.data.label_files import WRITERS
from tests.data.test_dvc_hash import odd_dataset
from tests.scenario.test_runner import fake_train

pytestmark = pytest.mark.slow  # runs DVC and trains
needs("dvc", "dev")
needs("globox", "data")
ODD, GROWN = "odd", "grown"
"""A folder of odd names and contents, and a version grown from the yolo import, hashed beside
the imports."""

CLASSES = ["helmet", "vest", "person"]


def import_format(cli, fmt: str, root: Path) -> Path:
    src = WRITERS[fmt](root / f"{fmt}-export")
    dest = root / fmt
    code, _, err = cli("data", "import", str(src), str(dest), "--format", fmt,
                       "--classes", ",".join(CLASSES), "--map", "hardhat=helmet",
                       "--val", "0.4", "--seed", "1")
    assert code == 0, err
    return dest


def grow_import(cli, root: Path) -> Path:
    """A version grown from the yolo import by two labelled frames."""
    frames = fresh_frames(root / "pool", 2)
    new = increment(root / "increment", {f"camC__{i}.jpg": (frame, "1 0.5 0.5 0.2 0.2\n")
                                         for i, frame in enumerate(frames)}, {})
    code, _, err = cli("data", "grow", str(root / "yolo"), str(new), "--out", str(root / GROWN))
    assert code == 0, err
    return root / GROWN


def test_hash_equals_what_dvc_add_writes(cli, tmp_path):
    ours = {fmt: read_dvc_file(import_format(cli, fmt, tmp_path).with_name(f"{fmt}.dvc"))
            for fmt in WRITERS}
    ours[GROWN] = read_dvc_file(grow_import(cli, tmp_path).with_name(f"{GROWN}.dvc"))
    ours[ODD] = dir_hash(odd_dataset(tmp_path / ODD)).md5
    shutil.rmtree(tmp_path / "pool")
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


def test_a_run_on_a_grown_version_records_its_lineage(cli, tmp_path, sqlite_uri, monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    import_format(cli, "yolo", tmp_path)
    grown = grow_import(cli, tmp_path)
    scenario = tmp_path / "train.yaml"
    scenario.write_text(train_scenario(grown, GROWN).replace("image_count: 5", "image_count: 7"))
    code, out, err = cli("run", str(scenario), "--json")
    assert code == 0, err
    run = MlflowClient(sqlite_uri).get_run(json.loads(out)["run_id"])
    lineage = {keys.DATA_PARENT_VERSION: "yolo",
               keys.DATA_PARENT_HASH: read_dvc_file(tmp_path / "yolo.dvc"),
               keys.DATA_MINE_RUN: "grow-test/busan/plant1/yard/ppe-yolov11n-mine-v1",
               keys.DATA_LABEL_PROJECT: "labelstudio 7 at http://127.0.0.1:8089"}
    assert {k: run.data.tags.get(k) for k in lineage} == lineage
    (dataset_input,) = run.inputs.dataset_inputs
    assert {t.key: t.value for t in dataset_input.tags if t.key in lineage} == lineage
    assert dataset_input.dataset.digest == read_dvc_file(tmp_path / f"{GROWN}.dvc")


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
