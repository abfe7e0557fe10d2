"""The quantization pipeline with the real Ultralytics, OpenVINO and NNCF on a tiny model."""

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from siteml.data.dvc_hash import dir_hash
from siteml.data.synth import synthesize
from tests.conftest import NetworkBlocked, needs

needs("ultralytics", "train")
needs("openvino", "quantize")
needs("nncf", "quantize")

SITE = {"customer": "acme-steel", "region": "ulsan", "plant": "plant2", "zone": "quant"}
MODEL = "acme-steel.ulsan-plant2.quant.ppe"


def scenario(dataset: Path, experiment_type: str, version: str, section: dict) -> str:
    key = {"train": "training", "quant": "quantization"}[experiment_type]
    return yaml.safe_dump({
        "name": "tiny-quant", "version": version, "experiment_type": experiment_type,
        "site": SITE, "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
        "model": {"architecture": "yolov11n", "input_size": 96, "num_classes": 3},
        "environment": {"device": "cpu", "seed": 0},
        "dataset": {"version": "tiny", "dvc_hash": dir_hash(dataset).md5, "path": str(dataset),
                    "image_count": 144},
        key: section,
    }, sort_keys=False)


def invoke(*args: str) -> tuple[int, str, str]:
    from siteml.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding one trained tiny model (ppe@candidate) that finds some objects."""
    root = tmp_path_factory.mktemp("quant")
    dataset = root / "data"
    synthesize(dataset, ["helmet", "vest", "person"], {"train": 128, "val": 16}, imgsz=96, seed=1)
    train = root / "train.yaml"
    train.write_text(scenario(dataset, "train", "v1", {"epochs": 10, "batch": 8, "workers": 0,
                                                       "warmup_epochs": 1, "close_mosaic": 3}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        code, _, err = invoke("run", str(train), "--json")
    assert code == 0, err
    return root, dataset


def quant(store, version: str, **section) -> tuple[int, dict | None, str, list[str]]:
    root, dataset = store
    path = root / f"quant-{version}.yaml"
    path.write_text(scenario(dataset, "quant", version, section))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        blocked = NetworkBlocked(mp)
        code, out, err = invoke("run", str(path), "--json")
    return code, json.loads(out) if code == 0 else None, err, blocked.attempts


def client(store) -> MlflowClient:
    uri = f"sqlite:///{store[0]}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_openvino_variant_is_registered_with_lineage(store, precision):
    version = f"v{['fp32', 'fp16', 'int8'].index(precision) + 1}"
    code, outcome, err, attempts = quant(store, version, backend="openvino", precision=precision,
                                         calibration_size=16, latency_iterations=5)
    assert code == 0, err
    assert attempts == []
    name = f"{MODEL}__openvino_{precision}"
    assert outcome["registered_model"] == name
    c = client(store)
    version = c.get_model_version_by_alias(name, "candidate")
    source = c.get_model_version_by_alias(MODEL, "candidate")
    assert version.tags["source.model_name"] == MODEL
    assert version.tags["source.model_version"] == str(source.version)
    assert version.tags["source.run_id"] == source.run_id
    assert version.tags["model.precision"] == precision
    assert version.tags["model.backend"] == "openvino"
    assert version.tags["toolkit.openvino"]
    run = c.get_run(version.run_id)
    metrics = run.data.metrics
    assert metrics["delta/map50_95"] == pytest.approx(
        metrics["variant/map50_95"] - metrics["source/map50_95"])
    assert metrics["speedup"] == pytest.approx(
        metrics["latency/source_p50_ms"] / metrics["latency/variant_p50_ms"])
    assert run.data.tags["siteml.gate"] == "passed"
    if precision == "int8":
        assert version.tags["quant.calibration_size"] == "16"
        assert version.tags["quant.calibration_dvc_hash"] == dir_hash(store[1]).md5
        assert version.tags["toolkit.nncf"]

    import mlflow.pyfunc

    images = sorted(str(p) for p in (store[1] / "images" / "val").glob("*.jpg"))[:2]
    model = mlflow.pyfunc.load_model(f"models:/{name}@candidate", model_config={"conf": 0.001})
    ir = next(Path(model._model_impl.context.artifacts["model"]).glob("*.xml")).read_text()
    assert ("FakeQuantize" in ir) == (precision == "int8")
    assert ('element_type="f16"' in ir) == (precision == "fp16")
    detections = model.predict(images)
    assert list(detections.columns) == ["image", "class_id", "class_name", "score",
                                        "x1", "y1", "x2", "y2"]
    assert len(detections) > 0


def test_gate_refuses_a_variant_that_loses_accuracy(store):
    c = client(store)
    source_run = c.get_run(c.get_model_version_by_alias(MODEL, "candidate").run_id)
    assert source_run.data.metrics["val/map50_95"] > 0, "the tiny model must find something"
    code, _, err, _ = quant(store, "v9", backend="openvino", precision="int8",
                            calibration_size=4, ignore_head_postprocessing=False,
                            preset="performance", max_accuracy_drop=0.0, latency_iterations=2)
    assert code == 1, err
    assert "not registered" in err
    experiment = c.get_experiment_by_name("acme-steel/ulsan-plant2/quant")
    [run] = c.search_runs([experiment.experiment_id],
                          "attributes.run_name = 'ppe-yolov11n-quant-v9'")
    assert run.info.status == "FAILED"
    assert run.data.tags["siteml.gate"] == "refused"
    assert "max_accuracy_drop" in run.data.tags["siteml.error"]
    versions = c.search_model_versions(f"name = '{MODEL}__openvino_int8'")
    assert all(v.run_id != run.info.run_id for v in versions)
