"""The training pipeline with the real Ultralytics on tiny synthetic data, offline."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from siteml.data.dvc_hash import dir_hash, write_dvc_file
from siteml.data.synth import synthesize
from tests.conftest import NetworkBlocked, needs

needs("ultralytics", "train")

SITE = "acme-steel/ulsan-plant1/welding"
MODEL = "acme-steel.ulsan-plant1.welding.ppe"


@dataclass
class Trained:
    root: Path
    scenario: Path
    uri: str
    outcome: dict
    attempts: list[str]

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


def scenario_text(dataset: Path, version: str = "v1") -> str:
    found = dir_hash(dataset)
    return yaml.safe_dump({
        "name": "tiny-ppe", "version": version, "experiment_type": "train",
        "site": {"customer": "acme-steel", "region": "ulsan", "plant": "plant1", "zone": "welding"},
        "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
        "model": {"architecture": "yolov11n", "input_size": 64, "num_classes": 3},
        "environment": {"device": "cpu", "seed": 0},
        "dataset": {"version": "tiny", "dvc_hash": found.md5, "path": str(dataset),
                    "image_count": 32},
        "training": {"epochs": 2, "batch": 8, "workers": 0, "mosaic": 0.0},
    }, sort_keys=False)


def invoke(*args: str) -> tuple[int, str, str]:
    from siteml.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    """One real training run (2 epochs, 64 px), with every network access refused."""
    root = tmp_path_factory.mktemp("train")
    dataset = root / "data"
    synthesize(dataset, ["helmet", "vest", "person"], {"train": 24, "val": 8}, imgsz=64, seed=0)
    scenario = root / "scenario.yaml"
    scenario.write_text(scenario_text(dataset))
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        blocked = NetworkBlocked(mp)
        code, out, err = invoke("run", str(scenario), "--json")
    assert code == 0, err
    return Trained(root, scenario, uri, json.loads(out), blocked.attempts)


def test_no_network_access_is_attempted(trained):
    assert trained.attempts == []


def test_run_is_named_and_logs_every_epoch(trained):
    client = trained.client()
    experiment = client.get_experiment_by_name(SITE)
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "ppe-yolov11n-train-v1"
    assert run.info.status == "FINISHED"
    def steps(name):
        return sorted(m.step for m in client.get_metric_history(run.info.run_id, name))

    for name in ("train/box_loss", "lr/pg0", "time/epoch_s"):
        assert steps(name) == [1, 2], name
    for name in ("val/map50", "val/map50_95", "val/precision", "val/recall"):
        assert steps(name) == [1, 2, 3], name  # step 3: the best weights' final validation
    assert 0 <= run.data.metrics["val/map50_95"] <= run.data.metrics["val/map50"] <= 1
    assert run.data.params["training.epochs"] == "2"
    assert run.data.tags["data.images_train"] == "24"
    assert not [k for k in run.data.params if "(" in k or k.startswith("metrics/")]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "ultralytics")}
    assert {"ultralytics/results.csv", "ultralytics/ultralytics.log"} <= artifacts
    assert any(path.endswith(".png") for path in artifacts)
    assert len(client.search_runs([experiment.experiment_id])) == 1, "a second run was opened"


def test_registered_version_lineage(trained):
    version = trained.client().get_model_version_by_alias(MODEL, "candidate")
    assert int(version.version) == trained.outcome["model_version"] == 1
    tags = version.tags
    assert tags["model.format"] == "ultralytics"
    assert tags["model.architecture"] == "yolov11n"
    assert tags["model.input_size"] == "64"
    assert tags["data.dvc_hash"] == dir_hash(trained.root / "data").md5
    assert tags["ultralytics.version"]
    assert "metrics.val/map50_95" in tags


def test_pyfunc_predicts_like_ultralytics(trained):
    import mlflow.pyfunc
    from ultralytics import YOLO

    images = sorted(str(p) for p in (trained.root / "data" / "images" / "val").glob("*.jpg"))[:3]
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@candidate", model_config={"conf": 0.001})
    detections = model.predict(images)
    assert list(detections.columns) == ["image", "class_id", "class_name", "score",
                                        "x1", "y1", "x2", "y2"]
    weights = next(Path(model._model_impl.context.artifacts["model"]).parent.glob("*.pt"))
    direct = [r.boxes for r in YOLO(str(weights)).predict(images, imgsz=64, conf=0.001,
                                                            verbose=False)]
    assert len(detections) == sum(len(b) for b in direct) > 0
    assert set(detections["class_name"]) <= {"helmet", "vest", "person"}
    assert detections["score"].between(0.001, 1).all()


def test_training_failure_is_recorded(trained, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    broken = trained.root / "broken"
    synthesize(broken, ["helmet", "vest", "person"], {"train": 6, "val": 2}, imgsz=64, seed=5)
    label = next((broken / "labels" / "train").glob("*.txt"))
    label.write_text("7 0.5 0.5 2.0\n")
    write_dvc_file(broken, dir_hash(broken))  # as `dvc add` after the edit would
    path = trained.root / "broken.yaml"
    path.write_text(scenario_text(broken, "v2").replace("image_count: 32", "image_count: 8"))
    code, _, err = cli("run", str(path))
    assert code == 1, err
    assert "invalid YOLO labels" in err
    client = trained.client()
    runs = client.search_runs([client.get_experiment_by_name(SITE).experiment_id],
                              "attributes.status = 'FAILED'")
    [failed] = runs
    with open(client.download_artifacts(failed.info.run_id, "error.txt")) as f:
        assert f"{label}:1: expected 5 values" in f.read()
    assert [int(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")] == [1]


def test_missing_split_fails_the_run(trained, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    data = trained.root / "noval"
    synthesize(data, ["helmet", "vest", "person"], {"train": 4, "test": 2}, imgsz=64, seed=6)
    path = trained.root / "noval.yaml"
    path.write_text(scenario_text(data, "v9").replace("image_count: 32", "image_count: 6"))
    code, _, err = cli("run", str(path))
    assert code == 1
    assert "missing split images/val/" in err


def test_dataset_changed_since_dvc_add_is_refused(trained, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    data = trained.root / "drift"
    synthesize(data, ["helmet", "vest", "person"], {"train": 4, "val": 2}, imgsz=64, seed=7)
    path = trained.root / "drift.yaml"
    path.write_text(scenario_text(data, "v5").replace("image_count: 32", "image_count: 6"))
    next((data / "labels" / "val").glob("*.txt")).write_text("0 0.5 0.5 0.1 0.1\n")
    before = len(trained.client().search_runs(
        [trained.client().get_experiment_by_name(SITE).experiment_id]))
    code, _, err = cli("run", str(path))
    assert code == 2
    assert "dataset.dvc_hash" in err and "hashes to" in err
    after = trained.client().search_runs(
        [trained.client().get_experiment_by_name(SITE).experiment_id])
    assert len(after) == before
    code, _, err = cli("run", str(path), "--skip-data-check", "--set", "training.epochs=1")
    assert code == 0, err
    newest = trained.client().search_runs(
        [trained.client().get_experiment_by_name(SITE).experiment_id],
        order_by=["attributes.start_time DESC"])[0]
    assert newest.data.tags["siteml.data_check"] == "skipped"


def test_device_this_machine_lacks_is_refused_before_anything_is_written(trained, cli,
                                                                         tmp_path, monkeypatch):
    import torch

    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last device, on any machine
    monkeypatch.chdir(tmp_path)  # a fresh embedded store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = trained.root / "cuda.yaml"
    path.write_text(scenario_text(trained.root / "data", "v7"))
    code, _, err = cli("run", str(path), "--set", f"environment.device={missing}")
    assert code == 2
    assert f"(--set environment.device={missing}): environment.device: PyTorch finds" in err
    assert list(tmp_path.iterdir()) == []
