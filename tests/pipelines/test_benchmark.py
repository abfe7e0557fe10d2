"""The inference benchmark pipeline on each runtime, and `siteml compare`, on a tiny model."""

import csv
import json
import platform
import sys

import mlflow.artifacts
import pytest

from siteml.backends.openvino import cpu_capabilities
from siteml.core.tables import cell
from siteml.pipelines.timing import DRIFT_WARNING
from tests.conftest import needs
from tests.pipelines.conftest import MODEL, SITE_PATH, candidate, openvino_executes

pytestmark = pytest.mark.slow  # trains, quantizes, benchmarks or starts a server
needs("ultralytics", "train")
needs("openvino", "quantize")
needs("onnxruntime", "quantize")

STATS = ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
         "latency_mean_ms", "latency_std_ms", "latency_min_ms", "latency_max_ms", "fps",
         "first_inference_ms", "load_ms", "iterations", "latency_drift")


@pytest.fixture(scope="module")
def variants(tiny_store):
    """FP32 OpenVINO and ONNX Runtime variants of the tiny model (the quant tests' own, made
    once per session)."""
    for backend in ("openvino", "onnxruntime"):
        candidate(tiny_store, backend, "fp32")
    return tiny_store


def benchmark(store, version: str, **section):
    outcome = store.run_ok("infer", version, **section)
    run = store.client().get_run(outcome["run_id"])
    assert run.info.status == "FINISHED"
    return run


@pytest.mark.parametrize(("source", "backend", "version"), [
    (f"{SITE_PATH}/ppe@candidate", "pytorch", "v31"),
    (f"{SITE_PATH}/ppe__openvino_fp32@candidate", "openvino", "v32"),
    (f"{SITE_PATH}/ppe__onnxruntime_fp32@candidate", "onnxruntime", "v33"),
])
def test_benchmark_logs_sane_statistics_per_runtime(variants, source, backend, version):
    run = benchmark(variants, version, source=source, warmup=3, iterations=40)
    metrics, tags = run.data.metrics, run.data.tags
    assert {f"b1/{name}" for name in STATS} <= set(metrics)
    m = {name: metrics[f"b1/{name}"] for name in STATS}
    assert m["iterations"] == 40
    assert 0 < m["latency_min_ms"] <= m["latency_p50_ms"] <= m["latency_p90_ms"] \
        <= m["latency_p95_ms"] <= m["latency_p99_ms"] <= m["latency_max_ms"]
    assert m["latency_min_ms"] <= m["latency_mean_ms"] <= m["latency_max_ms"]
    assert 1.0 <= m["latency_drift"] <= m["latency_max_ms"] / m["latency_min_ms"]
    assert tags["benchmark.steady"] == str(m["latency_drift"] <= DRIFT_WARNING).lower()
    # sync mode: the throughput is the batch over the mean latency
    assert m["fps"] == pytest.approx(1000 / m["latency_mean_ms"], rel=0.1)
    assert tags["benchmark.backend"] == backend
    assert tags["env.runtime"] == backend
    history = variants.client().get_metric_history(run.info.run_id, "b1/latency_p50_ms")
    assert len(history) == 1, "final figures are logged once"
    assert tags["env.executed_precision"] == "f32"
    assert tags["env.cpu_flags"]
    assert tags["env.threads"]
    name = source.split("/")[-1].split("@")[0]
    version_of = variants.client().get_model_version_by_alias(
        f"{MODEL.rsplit('.', 1)[0]}.{name}", "candidate")
    assert tags["source.model_name"].endswith(name)
    assert tags["source.model_version"] == str(version_of.version)
    code, out, _ = variants.invoke("runs", "--site", SITE_PATH, "--json")
    assert code == 0
    listed = next(row for row in json.loads(out) if row["run_id"] == run.info.run_id)
    assert listed["source_model"] == f"{version_of.name}/{version_of.version}"
    assert listed["model_version"] is None  # a benchmark registers nothing
    folder = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="latency",
                                                 tracking_uri=variants.uri)
    with open(f"{folder}/latencies_b1.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40
    assert sorted(float(r["latency_ms"]) for r in rows)[0] == pytest.approx(m["latency_min_ms"])
    with open(f"{folder}/latency_hist_b1.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_openvino_batches_throughput_hint_and_precision(variants):
    run = benchmark(variants, "v34", source=f"{SITE_PATH}/ppe__openvino_fp32@candidate",
                    batch_sizes=[1, 2], warmup=2, iterations=30, hint="throughput",
                    inference_precision="bf16")
    metrics, tags = run.data.metrics, run.data.tags
    for batch in (1, 2):
        assert metrics[f"b{batch}/iterations"] == 30
        assert metrics[f"b{batch}/latency_p50_ms"] > 0 and metrics[f"b{batch}/fps"] > 0
    assert tags["env.ov.performance_hint"] == "THROUGHPUT"
    # the run records this CPU's capabilities and what OpenVINO executes for a bf16 hint here
    # (bf16 on an AVX-512 or bf16 CPU, f32 on an AVX2-only one)
    assert tags["env.ov.cpu_capabilities"] == ",".join(cpu_capabilities())
    assert tags["env.executed_precision"] == openvino_executes("bf16")
    assert int(tags["env.ov.infer_requests"]) >= 1


def test_accuracy_with_the_benchmarked_runtime_matches_the_quant_gate(variants):
    run = benchmark(variants, "v35", source=f"{SITE_PATH}/ppe__onnxruntime_fp32@candidate",
                    iterations=5, end_to_end=True, measure_accuracy=True)
    quant = variants.client().get_model_version_by_alias(f"{MODEL}__onnxruntime_fp32",
                                                         "candidate")
    gate = variants.client().get_run(quant.run_id).data.metrics
    assert run.data.metrics["accuracy/map50_95"] == pytest.approx(gate["variant/map50_95"])
    assert run.data.metrics["accuracy/class/helmet/recall"] == pytest.approx(
        gate["variant/class/helmet/recall"])
    assert run.data.metrics["b1/iterations"] == 5


def test_backend_that_cannot_run_the_source_is_refused_before_any_run(variants):
    code, _, err = variants.run("infer", "v36", source=f"{SITE_PATH}/ppe@candidate",
                                backend="onnxruntime", iterations=2)
    assert code == 2
    assert "infer-v36.yaml:" in err
    assert "benchmark.backend: backend onnxruntime cannot run models saved for pytorch" in err
    assert not variants.runs_named("ppe-yolov11n-infer-v36")


def test_device_that_the_source_runtime_lacks_is_refused_before_any_run(variants):
    path = variants.scenario("infer", "v38", {
        "source": f"{SITE_PATH}/ppe__onnxruntime_fp32@candidate", "iterations": 2})
    code, _, err = variants.invoke("run", str(path), "--set", "environment.device=NPU")
    assert code == 2
    assert "(--set environment.device=NPU): environment.device: onnxruntime does not run on" in err
    assert not variants.runs_named("ppe-yolov11n-infer-v38")


def test_compare_lists_each_variant_with_its_latest_benchmark(variants, tmp_path, monkeypatch):
    for number, name in ((41, "ppe"), (42, "ppe__openvino_fp32"), (43, "ppe__onnxruntime_fp32")):
        benchmark(variants, f"v{number}", source=f"{SITE_PATH}/{name}@candidate", iterations=20)
    plot = tmp_path / "pareto.png"
    code, out, err = variants.invoke("compare", SITE_PATH, "--task", "ppe", "--json",
                                      "--plot", str(plot))
    assert code == 0, err
    listed = json.loads(out)  # other tests may have benchmarked on other (fake) hosts
    rows = {row["variant"]: row for row in listed if row["host"] == platform.node()}
    assert {"base", "openvino_fp32", "onnxruntime_fp32"} <= set(rows)
    base = rows["base"]
    assert base["speedup"] == pytest.approx(1.0)
    from siteml.core.provenance import cpu_flags, instruction_set

    for row in rows.values():
        assert row["device"] == "cpu"
        assert row["isa"] == instruction_set(cpu_flags()["env.cpu_flags"])  # this machine's
        assert 0 < row["p50_ms"] <= row["p95_ms"]
        assert row["fps"] > 0 and row["size_mb"] > 0
        assert row["speedup_paired"] is False  # these benchmarks timed no baseline
        assert row["speedup"] == pytest.approx(base["p50_ms"] / row["p50_ms"])
        assert row["benchmark_run_id"]
        drift = variants.client().get_run(row["benchmark_run_id"]).data.metrics[
            f"b{row['batch']}/latency_drift"]
        assert row["steady"] is (drift <= DRIFT_WARNING)
    assert rows["openvino_fp32"]["delta_map50_95"] is not None
    for row in rows.values():  # the worst class, from each version's own evaluation
        name, value = row["worst_class"].split()
        assert name in {"helmet", "vest", "person"} and 0 <= float(value) <= 1
        assert row["warning"] is None
    for row in rows.values():  # on the front exactly when no other row dominates it
        dominated = any(other["p50_ms"] <= row["p50_ms"] and other["map50_95"] >= row["map50_95"]
                        and (other["p50_ms"], other["map50_95"]) != (row["p50_ms"],
                                                                     row["map50_95"])
                        for other in rows.values())
        assert row["pareto"] is not dominated
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    client = variants.client()
    experiment = client.get_experiment_by_name(SITE_PATH)
    [logged] = client.search_runs([experiment.experiment_id],
                                  "tags.`siteml.experiment_type` = 'compare'")
    assert logged.info.run_name.startswith("ppe-compare-")
    assert {a.path for a in client.list_artifacts(logged.info.run_id, "compare")} == {
        "compare/pareto.png", "compare/variants.csv"}
    code, out, _ = variants.invoke("compare", SITE_PATH, "--task", "ppe", "--md")
    assert code == 0 and out.splitlines()[0].startswith("| variant")
    assert sum(line.startswith("| ") for line in out.splitlines()) == len(listed) + 1
    code, out, _ = variants.invoke("compare", SITE_PATH, "--task", "ppe", "--csv")
    assert code == 0 and len(list(csv.reader(out.splitlines()))) == len(listed) + 1
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = variants.invoke("compare", SITE_PATH, "--task", "ppe")
    # piped output keeps whole cells, whatever a terminal's width would be
    assert code == 0 and "…" not in out and f" {cell(base['p50_ms'])} " in out


def test_baseline_is_timed_in_turns_and_gives_compare_a_paired_speedup(variants):
    run = benchmark(variants, "v45", source=f"{SITE_PATH}/ppe__openvino_fp32@candidate",
                    baseline=f"{SITE_PATH}/ppe@candidate", warmup=3, iterations=20)
    metrics, tags = run.data.metrics, run.data.tags
    assert tags["baseline.model_name"] == MODEL
    assert tags["baseline.model_version"] == str(
        variants.client().get_model_version_by_alias(MODEL, "candidate").version)
    assert metrics["b1/iterations"] == 20
    assert metrics["b1/speedup_vs_baseline"] == pytest.approx(
        metrics["b1/baseline_latency_p50_ms"] / metrics["b1/latency_p50_ms"])
    code, out, err = variants.invoke("compare", SITE_PATH, "--task", "ppe", "--json")
    assert code == 0, err
    [row] = [r for r in json.loads(out) if r["benchmark_run_id"] == run.info.run_id]
    assert row["speedup_paired"] is True
    assert row["speedup"] == pytest.approx(metrics["b1/speedup_vs_baseline"])


def test_missing_baseline_model_is_refused_before_any_run(variants):
    code, _, err = variants.run("infer", "v46", source=f"{SITE_PATH}/ppe__openvino_fp32@candidate",
                                baseline=f"{SITE_PATH}/ppe/99", iterations=2)
    assert code == 2
    assert "benchmark.baseline: model" in err and "has no version 99" in err
    assert not variants.runs_named("ppe-yolov11n-infer-v46")


def test_compare_keeps_each_host_apart(variants, monkeypatch):
    here = platform.node()
    benchmark(variants, "v47", source=f"{SITE_PATH}/ppe__openvino_fp32@candidate", iterations=10)
    with monkeypatch.context() as box:  # the same benchmark, as recorded on a site's edge box
        box.setattr(platform, "node", lambda: "edge-box-2")
        benchmark(variants, "v44", source=f"{SITE_PATH}/ppe__openvino_fp32@candidate",
                  iterations=10)
    code, out, err = variants.invoke("compare", SITE_PATH, "--task", "ppe", "--json")
    assert code == 0, err
    rows = json.loads(out)
    [edge] = [row for row in rows if row["host"] == "edge-box-2"]
    assert edge["variant"] == "openvino_fp32"
    assert edge["speedup"] is None  # no PyTorch baseline was measured on that box
    assert edge["pareto"] is True  # alone on its box
    local = {row["variant"]: row for row in rows if row["host"] == here}
    assert local["openvino_fp32"]["benchmark_run_id"] != edge["benchmark_run_id"]


@pytest.mark.parametrize("backend", ["openvino", "auto"])
def test_openvino_device_this_machine_lacks_is_refused_before_any_run(variants, backend):
    path = variants.scenario("infer", "v39", {
        "source": f"{SITE_PATH}/ppe__openvino_fp32@candidate", "backend": backend})
    code, _, err = variants.invoke("run", str(path), "--set", "environment.device=GPU.9")
    assert code == 2
    assert "environment.device: OpenVINO finds no GPU.9 on this machine (it has: " in err
    assert not variants.runs_named("ppe-yolov11n-infer-v39")


@pytest.mark.parametrize("backend", ["openvino", "auto"])
def test_missing_runtime_package_names_the_extra_and_creates_no_run(variants, monkeypatch,
                                                                    backend):
    monkeypatch.setitem(sys.modules, "openvino", None)
    code, _, err = variants.run("infer", "v37", backend=backend, iterations=2,
                                source=f"{SITE_PATH}/ppe__openvino_fp32@candidate")
    assert code == 1
    assert "openvino is not installed" in err and "siteml[quantize]" in err
    assert not variants.runs_named("ppe-yolov11n-infer-v37")
