"""The training pipeline with the real Ultralytics on tiny synthetic data, offline."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

import siteml.pipelines.train
from siteml.data.dvc_hash import dir_hash, write_dvc_file
from siteml.data.synth import synthesize
from tests.conftest import NetworkBlocked, needs
from tests.scenario.test_runner import fake_train

pytestmark = pytest.mark.slow  # trains, quantizes, benchmarks or starts a server
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
def trained_model(tmp_path_factory) -> Trained:
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


def test_no_network_access_is_attempted(trained_model):
    assert trained_model.attempts == []


def test_run_is_named_and_logs_every_epoch(trained_model):
    client = trained_model.client()
    experiment = client.get_experiment_by_name(SITE)
    [run] = client.search_runs([experiment.experiment_id],
                               "attributes.run_name = 'ppe-yolov11n-train-v1'")
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
    # Ultralytics' own MLflow callback is off: every run here is one siteml opened
    runs = client.search_runs([experiment.experiment_id])
    assert all(r.data.tags.get("siteml.experiment_type") == "train" for r in runs), \
        "a second run was opened"


def test_per_class_figures_and_table(trained_model):
    client = trained_model.client()
    run = client.get_run(trained_model.outcome["run_id"])
    table = client.download_artifacts(run.info.run_id, "per_class.csv", str(trained_model.root))
    rows = Path(table).read_text().splitlines()[1:]
    assert {row.split(",")[0] for row in rows} <= {"helmet", "vest", "person"}
    for row in rows:
        name = row.split(",")[0]
        for figure in ("precision", "recall", "map50", "map50_95"):
            assert 0 <= run.data.metrics[f"val/class/{name}/{figure}"] <= 1
    assert rows


def test_registered_version_lineage(trained_model):
    version = trained_model.client().get_model_version_by_alias(MODEL, "candidate")
    assert int(version.version) == trained_model.outcome["model_version"] == 1
    tags = version.tags
    assert tags["model.format"] == "ultralytics"
    assert tags["model.architecture"] == "yolov11n"
    assert tags["model.input_size"] == "64"
    assert tags["data.dvc_hash"] == dir_hash(trained_model.root / "data").md5
    assert tags["ultralytics.version"]
    assert "metrics.val/map50_95" in tags


def test_pyfunc_predicts_like_ultralytics(trained_model, monkeypatch):
    import mlflow.pyfunc
    from ultralytics import YOLO

    val = trained_model.root / "data" / "images" / "val"
    images = sorted(str(p) for p in val.glob("*.jpg"))[:3]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_model.uri)  # where models:/ URIs resolve
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


def test_training_failure_is_recorded(trained_model, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_model.uri)
    broken = trained_model.root / "broken"
    synthesize(broken, ["helmet", "vest", "person"], {"train": 6, "val": 2}, imgsz=64, seed=5)
    label = next((broken / "labels" / "train").glob("*.txt"))
    label.write_text("7 0.5 0.5 2.0\n")
    write_dvc_file(broken, dir_hash(broken))  # as `dvc add` after the edit would
    path = trained_model.root / "broken.yaml"
    path.write_text(scenario_text(broken, "v2").replace("image_count: 32", "image_count: 8"))
    code, _, err = cli("run", str(path))
    assert code == 1, err
    assert "invalid YOLO labels" in err
    client = trained_model.client()
    [failed] = client.search_runs([client.get_experiment_by_name(SITE).experiment_id],
                                  "attributes.run_name = 'ppe-yolov11n-train-v2'")
    assert failed.info.status == "FAILED"
    with open(client.download_artifacts(failed.info.run_id, "error.txt")) as f:
        assert f"{label}:1: expected 5 values" in f.read()
    # nothing registered from it, whatever other tests of this module registered before
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert failed.info.run_id not in {v.run_id for v in versions}


def test_missing_split_fails_the_run(trained_model, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_model.uri)
    data = trained_model.root / "noval"
    synthesize(data, ["helmet", "vest", "person"], {"train": 4, "test": 2}, imgsz=64, seed=6)
    path = trained_model.root / "noval.yaml"
    path.write_text(scenario_text(data, "v9").replace("image_count: 32", "image_count: 6"))
    code, _, err = cli("run", str(path))
    assert code == 1
    assert "missing split images/val/" in err


def test_dataset_changed_since_dvc_add_is_refused(trained_model, cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_model.uri)
    data = trained_model.root / "drift"
    synthesize(data, ["helmet", "vest", "person"], {"train": 4, "val": 2}, imgsz=64, seed=7)
    path = trained_model.root / "drift.yaml"
    path.write_text(scenario_text(data, "v5").replace("image_count: 32", "image_count: 6"))
    next((data / "labels" / "val").glob("*.txt")).write_text("0 0.5 0.5 0.1 0.1\n")
    before = len(trained_model.client().search_runs(
        [trained_model.client().get_experiment_by_name(SITE).experiment_id]))
    code, _, err = cli("run", str(path))
    assert code == 2
    assert "dataset.dvc_hash" in err and "hashes to" in err
    after = trained_model.client().search_runs(
        [trained_model.client().get_experiment_by_name(SITE).experiment_id])
    assert len(after) == before
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)  # the tag is the lifecycle's
    code, _, err = cli("run", str(path), "--skip-data-check")
    assert code == 0, err
    newest = trained_model.client().search_runs(
        [trained_model.client().get_experiment_by_name(SITE).experiment_id],
        order_by=["attributes.start_time DESC"])[0]
    assert newest.data.tags["siteml.data_check"] == "skipped"


def test_device_this_machine_lacks_is_refused_before_anything_is_written(trained_model, cli,
                                                                         tmp_path, monkeypatch):
    import torch

    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last device, on any machine
    monkeypatch.chdir(tmp_path)  # a fresh embedded store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = trained_model.root / "cuda.yaml"
    path.write_text(scenario_text(trained_model.root / "data", "v7"))
    code, _, err = cli("run", str(path), "--set", f"environment.device={missing}")
    assert code == 2
    assert f"(--set environment.device={missing}): environment.device: PyTorch finds" in err
    assert list(tmp_path.iterdir()) == []
