"""The quantization pipeline with the real Ultralytics, OpenVINO, NNCF and ONNX Runtime on a
tiny trained model."""

import json
import sys
from pathlib import Path

import pytest

from siteml.backends.openvino import ir_file
from siteml.data.dvc_hash import dir_hash
from tests.conftest import needs
from tests.pipelines.conftest import (
    MODEL,
    SITE_PATH,
    TARGETS,
    candidate,
    openvino_executes,
    source_version,
)

pytestmark = pytest.mark.slow  # trains, quantizes, benchmarks or starts a server
needs("ultralytics", "train")
needs("openvino", "quantize")
needs("nncf", "quantize")
needs("onnxruntime", "quantize")

def test_the_tiny_source_model_finds_objects(tiny_store):
    run = tiny_store.client().get_run(source_version(tiny_store).run_id)
    assert run.data.metrics["val/map50_95"] > 0.2


@pytest.mark.parametrize(("backend", "precision"), TARGETS)
def test_variant_is_registered_with_lineage_and_loads_in_mlflow(tiny_store, backend, precision,
                                                                monkeypatch):
    name = f"{MODEL}__{backend}_{precision}"
    version = candidate(tiny_store, backend, precision)  # made once, whichever test comes first
    assert version.name == name
    c = tiny_store.client()
    source = source_version(tiny_store)
    assert version.tags["source.model_name"] == MODEL
    assert version.tags["source.model_version"] == str(source.version)
    assert version.tags["source.run_id"] == source.run_id
    assert version.tags["model.precision"] == precision
    assert version.tags["model.backend"] == backend
    assert version.tags[f"toolkit.{backend}"]
    # what the runtime executes for the variant's precision, as this CPU allows it
    assert version.tags["quant.executed_precision"] == {
        "fp32": "f32", "fp16": openvino_executes("f16"), "int8": "int8+f32"}[precision]
    run = c.get_run(version.run_id)
    metrics = run.data.metrics
    assert len(c.get_metric_history(run.info.run_id, "delta/map50_95")) == 1, "logged once"
    assert metrics["source/map50_95"] == pytest.approx(
        c.get_run(source.run_id).data.metrics["val/map50_95"], abs=0.02)
    assert metrics["delta/map50_95"] == pytest.approx(
        metrics["variant/map50_95"] - metrics["source/map50_95"])
    assert -metrics["delta/map50_95"] <= 0.05
    assert 0 <= metrics["delta/map50_95_se"] < 0.05
    assert metrics["speedup"] == pytest.approx(
        metrics["latency/source_p50_ms"] / metrics["latency/variant_p50_ms"])
    assert run.data.tags["siteml.gate"] == "passed"
    assert version.tags["siteml.gate"] == "passed"
    for label in ("helmet", "vest", "person"):  # per class: source, variant and their delta
        assert metrics[f"delta/class/{label}/map50_95"] == pytest.approx(
            metrics[f"variant/class/{label}/map50_95"] - metrics[f"source/class/{label}/map50_95"])
        assert 0 <= metrics[f"variant/class/{label}/recall"] <= 1
    worst, value = version.tags["siteml.worst_class"].split()
    assert float(value) == pytest.approx(metrics[f"variant/class/{worst}/map50"], abs=1e-3)
    assert float(version.tags["metrics.speedup"]) == pytest.approx(metrics["speedup"], rel=1e-3)
    if precision == "int8":
        assert version.tags["quant.calibration_size"] == "32"
        assert version.tags["quant.calibration_dvc_hash"] == dir_hash(tiny_store.dataset).md5
        assert version.tags["quant.method"] == version.tags["quant.recipes_tried"] == "ptq"
    assert metrics["variant/size_mb"] > 0 and metrics["source/size_mb"] > 0

    import mlflow.pyfunc

    images = sorted(str(p) for p in (tiny_store.dataset / "images" / "val").glob("*.jpg"))[:4]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_store.uri)  # where models:/ URIs resolve
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}",
                                     model_config={"conf": 0.001})
    files = Path(model._model_impl.context.artifacts["model"])
    assert_quantized(files, backend, precision)
    detections = model.predict(images)
    assert list(detections.columns) == ["image", "class_id", "class_name", "score",
                                        "x1", "y1", "x2", "y2"]
    assert set(detections["class_name"]) <= {"helmet", "vest", "person"}
    assert set(detections["image"]) == set(range(len(images)))


def assert_quantized(files: Path, backend: str, precision: str) -> None:
    if backend == "openvino":
        ir = ir_file(files).read_text()
        assert ("FakeQuantize" in ir) == (precision == "int8")
        assert ('element_type="f16"' in ir) == (precision == "fp16")
        return
    import onnx

    graph = onnx.load(str(files)).graph
    ops = {node.op_type for node in graph.node}
    assert ("QuantizeLinear" in ops) == (precision == "int8")
    metadata = {p.key for p in onnx.load(str(files)).metadata_props}
    assert {"names", "imgsz"} <= metadata


def test_auto_tries_accuracy_control_when_ptq_misses_the_budget(tiny_store):
    """The one accuracy-aware run of the suite (NNCF ranks every quantizer group: a compile
    each): auto falls back to it, and it meets a budget PTQ missed."""
    rough = {"backend": "openvino", "precision": "int8", "calibration_size": 4,
             "preset": "performance", "ignore_head_postprocessing": False,
             "bias_correction": "fast", "latency_iterations": 5}
    c = tiny_store.client()
    code, outcome, err = tiny_store.run("quant", "v71", method="ptq", max_accuracy_drop=1.0,
                                        **rough)
    assert code == 0, err
    drop = -c.get_run(outcome["run_id"]).data.metrics["delta/map50_95"]
    assert drop > 0.002, "this rough recipe should lose accuracy, or the test shows nothing"
    budget = drop / 2
    code, outcome, err = tiny_store.run("quant", "v72", max_accuracy_drop=budget, **rough)
    assert code == 0, err
    assert "trying accuracy_control" in err
    run = c.get_run(outcome["run_id"])
    metrics, tags = run.data.metrics, run.data.tags
    assert tags["quant.method"] == "accuracy_control"
    assert tags["quant.recipes_tried"] == "ptq,accuracy_control"
    assert -metrics["ptq/delta/map50_95"] > budget
    assert -metrics["delta/map50_95"] <= budget
    assert metrics["recipe/speed_cost"] == pytest.approx(metrics["ptq/speedup"]
                                                         / metrics["speedup"])
    version = c.get_model_version(outcome["registered_model"], str(outcome["model_version"]))
    assert version.tags["quant.method"] == "accuracy_control"


def test_gate_refuses_a_variant_that_loses_accuracy_and_registers_nothing(tiny_store):
    c = tiny_store.client()
    before = c.search_model_versions(f"name = '{MODEL}__openvino_int8'")
    code, _, err = tiny_store.run("quant", "v9", backend="openvino", precision="int8",
                         method="ptq", calibration_size=4, ignore_head_postprocessing=False,
                         bias_correction="fast",
                         preset="performance", max_accuracy_drop=0.0, max_class_drop=0.0,
                         latency_iterations=2)
    assert code == 1, err
    assert "not registered" in err and "more than max_accuracy_drop 0" in err
    assert "AP50-95 loses" in err and "more than max_class_drop 0" in err
    # the loss is stated with its noise on this val split, and a budget inside it is named
    assert "standard error of the loss on this val split" in err
    assert "max_accuracy_drop 0 is within its noise" in err
    [run] = tiny_store.runs_named("ppe-yolov11n-quant-v9")
    assert run.info.status == "FAILED"
    assert run.data.tags["siteml.gate"] == "refused"
    assert run.data.metrics["delta/map50_95"] < 0
    assert run.data.metrics["delta/map50_95_se"] > 0
    assert "max_accuracy_drop" in run.data.tags["siteml.error"]
    after = c.search_model_versions(f"name = '{MODEL}__openvino_int8'")
    assert len(after) == len(before)


def test_missing_backend_package_names_the_extra_and_creates_no_run(tiny_store, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, _, err = tiny_store.run("quant", "v10", backend="onnxruntime", precision="int8")
    assert code == 1
    assert "onnxruntime is not installed" in err and "siteml[quantize]" in err
    assert not tiny_store.runs_named("ppe-yolov11n-quant-v10")


def test_a_variant_as_source_is_refused_before_any_run(tiny_store):
    candidate(tiny_store, "openvino", "fp32")
    code, _, err = tiny_store.run("quant", "v12", backend="openvino", precision="int8",
                                  source=f"{SITE_PATH}/ppe__openvino_fp32@candidate")
    assert code == 2
    assert "quantization.source: the source is saved for openvino" in err
    assert not tiny_store.runs_named("ppe-yolov11n-quant-v12")


def test_models_shows_variants_with_their_accuracy_delta_and_speedup(tiny_store):
    for backend in ("openvino", "onnxruntime"):
        candidate(tiny_store, backend, "int8")
    code, out, _ = tiny_store.invoke("models", "--site", SITE_PATH, "--json")
    assert code == 0
    variants = {entry["variant"]: entry for entry in json.loads(out) if entry["task"] == "ppe"}
    assert {None, "openvino_int8", "onnxruntime_int8"} <= set(variants)
    assert float(variants["openvino_int8"]["versions"][0]["metrics"]["speedup"]) > 0
    code, out, _ = tiny_store.invoke("models", "--site", SITE_PATH)
    assert code == 0
    line = next(line for line in out.splitlines() if "@candidate" in line and "pt)" in line)
    assert "mAP50-95 0." in line and "vs source 0." in line and "x vs PyTorch" in line
    assert "openvino_int8" in out and "onnxruntime_int8" in out
