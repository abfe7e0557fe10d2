"""Smoke tests of the scripts in benchmarks/: each runs as a user runs it (a fresh process), at
its smallest size and one repeat, in a temporary folder, and prints its figure lines.

The figures themselves are not checked (a smoke-sized run on a shared machine measures noise);
what is checked is that a script still runs against the current package and reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, demo_options, needs

BENCHMARKS = REPO / "benchmarks"
HELPERS = {"timing.py"}
"""Modules the scripts import; they run nothing themselves."""
TESTED = {"validate_speed.py", "tracking_overhead.py", "registry_queries.py",
          "train_overhead.py", "demo_store.py", "quant_figures.py", "benchmark_fidelity.py",
          "speed_check_spread.py", "data_import.py", "training_gates.py",
          "team_server_overhead.py", "batch_figures.py", "export_figures.py",
          "cameras_figures.py", "int8_figures.py", "quick_tier.py", "fleet_figures.py",
          "loop_figures.py"}


def run_script(name: str, *args: str, cwd: Path, timeout: float = 300) -> str:
    """Run ``benchmarks/<name>`` with ``args`` in ``cwd``; assert it exits 0; its stdout.

    No ``MLFLOW_TRACKING_URI`` (the scripts name their own stores) and no bytecode written
    into the repository."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(PYTHONDONTWRITEBYTECODE="1", MLFLOW_DISABLE_TELEMETRY="true")
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (f"{name} exited {result.returncode}\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result.stdout


def lines_starting(out: str, prefix: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(prefix)]


@pytest.mark.slow
def test_every_script_has_a_smoke_test():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")} - HELPERS
    assert scripts == TESTED


@pytest.mark.slow
def test_validate_speed(tmp_path):
    out = run_script("validate_speed.py", "--files", "5", "--repeats", "1", cwd=tmp_path)
    assert lines_starting(out, "siteml validate (5 files): median ")
    assert lines_starting(out, "ratio validate / floor: ")


@pytest.mark.slow
def test_tracking_overhead(tmp_path):
    out = run_script("tracking_overhead.py", "--repeats", "1", cwd=tmp_path)
    assert lines_starting(out, "ratio siteml run / plain MLflow: ")
    assert any("siteml: median" in line and "n=1)" in line for line in out.splitlines())


@pytest.mark.slow
def test_registry_queries(tmp_path):
    out = run_script("registry_queries.py", "--runs", "50", "--sites", "2", "--repeats", "1",
                     "--store-dir", str(tmp_path / "store"), cwd=tmp_path)
    assert lines_starting(out, "store: 50 runs over 2 site experiments, 12 registered models")
    assert lines_starting(out, "best_run query (in-process, n=20): median ")
    assert lines_starting(out, "compare_rows, one site and task (in-process, n=20): median ")
    assert len([line for line in out.splitlines() if "cold process: median" in line]) == 4


@pytest.mark.slow
def test_train_overhead(tmp_path):
    needs("ultralytics", "train")
    out = run_script("train_overhead.py", "--epochs", "1", "--repeats", "1", "--train-images",
                     "16", "--val-images", "8", "--imgsz", "64", cwd=tmp_path)
    assert lines_starting(out, "ratio siteml / bare Ultralytics defaults: ")
    assert lines_starting(out, "wrapper overhead, siteml / bare all cores "
                               "(1 epochs, 24 images, 64 px): ")


@pytest.mark.slow
def test_demo_store_reads_an_existing_demo_without_building(demo_copy):
    database = demo_copy / "mlflow.db"
    before = database.stat().st_mtime_ns
    out = run_script("demo_store.py", "--demo-dir", str(demo_copy), cwd=demo_copy.parent,
                     timeout=60)
    assert lines_starting(out, f"demo store ready: {demo_copy} (64 px)")
    assert database.stat().st_mtime_ns == before


@pytest.mark.slow
def test_quant_figures(demo_copy):
    folder = demo_copy
    out = run_script("quant_figures.py", "--demo-dir", str(folder),
                     "--rounds", "1", "--iterations", "10", cwd=folder.parent)
    assert lines_starting(out, "yolov11n demo model, 64 px, batch 1, p50 of 1 x 10 iterations")
    for label in ("pytorch_fp32 (source)", "openvino_fp32 (bf16 exec)", "openvino_fp16",
                  "openvino_int8", "onnxruntime_fp32", "onnxruntime_int8"):
        assert lines_starting(out, label), label
    for goal in ("OpenVINO INT8 speedup vs PyTorch FP32: ",
                 "OpenVINO INT8 speedup vs OpenVINO f32: ",
                 "OpenVINO INT8 mAP50-95 drop (pt), at most: ",
                 "ONNX Runtime INT8 speedup vs ORT FP32: ",
                 "ONNX Runtime INT8 mAP50-95 drop (pt), at most: "):
        assert lines_starting(out, goal), goal


@pytest.mark.slow
def test_benchmark_fidelity(demo_copy):
    folder = demo_copy
    out = run_script("benchmark_fidelity.py", "--demo-dir", str(folder),
                     "--repeats", "1", "--iterations", "50", cwd=folder.parent)
    assert lines_starting(out, "repeat 1: siteml p50 ")
    assert lines_starting(out, "fidelity: siteml p50 / benchmark_app median = ")
    assert lines_starting(out, "fixed cost per call, in this process, in turns: ")
    assert lines_starting(out, "stability: max/min of 1 siteml p50s = ")
    assert lines_starting(out, "benchmark_app spread for reference: ")


@pytest.mark.slow
def test_speed_check_spread_without_a_baseline(demo_copy):
    folder = demo_copy
    out = run_script("speed_check_spread.py", "--demo-dir", str(folder),
                     "--repeats", "1", cwd=folder.parent)
    assert lines_starting(out, "repeat 1, this tree: speedup ")
    assert lines_starting(out, "this tree: speedup spread over 1 identical quant runs (max/min): ")
    assert "baseline" not in out


@pytest.mark.slow  # three fresh processes, one of them Ultralytics
def test_data_import(tmp_path):
    needs("globox", "data")
    out = run_script("data_import.py", "--images", "40", "--rounds", "1", "--root",
                     str(tmp_path / "bench"), cwd=tmp_path)
    for tool in ("siteml", "globox", "ultralytics"):
        assert lines_starting(out, f"{tool:12s} 40 images: median "), tool
    assert lines_starting(out, "ratio siteml / globox conversion: ")
    assert lines_starting(out, "siteml peak RSS: ")


@pytest.mark.slow
def test_training_gates(tmp_path):
    needs("ultralytics", "train")
    out = run_script("training_gates.py", "--epochs", "1", "--finetune-epochs", "1",
                     "--train-images", "16", "--val-images", "8", "--imgsz", "64", cwd=tmp_path,
                     timeout=480)
    assert lines_starting(out, "challenger rule: scoring both models on val ")
    assert lines_starting(out, "site b from scratch: val mAP50 >= 0.5 at epoch ")
    assert lines_starting(out, "site b fine-tuned from site a @champion: val mAP50 >= 0.5 ")


@pytest.mark.slow  # two servers
def test_team_server_overhead(tmp_path):
    out = run_script("team_server_overhead.py", "--rounds", "1", "--stand-in", "--images", "8",
                     "--imgsz", "32", cwd=tmp_path, timeout=480)
    for label in ("run", "runs"):
        assert lines_starting(out, f"{label}: team server / plain server: ")


@pytest.mark.slow  # trainings, quantizations, benchmarks, a server and a Ray cluster
def test_batch_figures(tmp_path):
    needs("ray", "cluster")
    cluster = os.environ.get("SITEML_TEST_RAY_ADDRESS")
    out = run_script("batch_figures.py", "--rounds", "1", "--scenarios", "2", "--iterations",
                     "30", "--kill-epochs", "2", "--batch-steps", "1", *demo_options("demo-"),
                     "--demo-train-images", "8", "--demo-val-images", "4",
                     *(("--ray-address", cluster) if cluster else ()), cwd=tmp_path,
                     timeout=1200)
    assert lines_starting(out, "batch overhead: one batch / one by one: ")
    assert lines_starting(out, "Ray overhead per scenario (one node - local) / 2: ")
    assert lines_starting(out, "parallel speedup: one node / two nodes: ")
    assert lines_starting(out, "local speedup: one at a time / --jobs 2: ")
    assert lines_starting(out, "kill -9 of a training's worker: its retry's run started after ")


@pytest.mark.slow  # a training, a quantization and a server
def test_export_figures(tmp_path):
    needs("openvino", "quantize")
    out = run_script("export_figures.py", "--rounds", "1", *demo_options("demo-"),
                     "--demo-train-images", "8", "--demo-val-images", "4", cwd=tmp_path,
                     timeout=900)
    assert len(lines_starting(out, "  ovms: command ")) == 1
    assert lines_starting(out, "export time beyond the download (worst layout): ")


@pytest.mark.slow
def test_cameras_figures(demo_copy):
    folder = demo_copy
    out = run_script("cameras_figures.py", "--demo-dir", str(folder), "--rounds",
                     "1", "--seconds", "0.3", "--max-cameras", "2", cwd=folder.parent)
    assert lines_starting(out, "cameras per box at 10 FPS each, demo model at 64 px")
    assert lines_starting(out, "PyTorch FP32: ")
    for label in ("OpenVINO FP32: ", "OpenVINO INT8: "):
        [line] = lines_starting(out, label)
        assert "siteml flat out / benchmark_app = " in line


@pytest.mark.slow  # a team server, PostgreSQL where CI gives it
def test_fleet_figures(tmp_path):
    # the rollout part (box agents on the demo's store) is what tests/pipelines/test_fleet.py
    # proves with real agent processes; here the load and the query figures
    out = run_script("fleet_figures.py", "--parts", "load,query", "--load-boxes", "20",
                     "--load-interval", "2", "--load-seconds", "3", "--sites", "4", "--runs",
                     "2000", "--rounds", "1", cwd=tmp_path)
    assert lines_starting(out, "heartbeat load: 20 boxes every 2 s against ")
    assert "reports of 3 calls: p50 " in out and "reports of 2 calls, 3 every 10th: " in out
    if os.environ.get("SITEML_TEST_POSTGRES"):
        assert lines_starting(out, "siteml fleet beyond the import floor (MLflow's client): ")
        assert lines_starting(out, "best-version query: median ")
    else:
        assert lines_starting(out, "fleet query: skipped")


@pytest.mark.slow
def test_int8_figures(demo_copy):
    folder = demo_copy
    out = run_script("int8_figures.py", "--demo-dir", str(folder), "--rounds", "1",
                     "--seconds", "1", "--held-out", "12", cwd=folder.parent)
    assert lines_starting(out, "demo model at 64 px, calibrated on the train split")
    for label in ("FP32 IR: ", "siteml INT8: ", "Ultralytics INT8: "):
        assert lines_starting(out, label), label
    for split in ("val (8 images)", "held-out (12 images)"):
        [line] = lines_starting(out, f"mAP50-95 on {split}: FP32 IR ")
        assert "; siteml INT8 " in line and "; Ultralytics INT8 " in line
        assert line.count(" pt)") == 2, line


@pytest.mark.slow  # pytest twice in fresh processes
def test_quick_tier(tmp_path):
    out = run_script("quick_tier.py", "--rounds", "1", "tests/core/test_keys.py", cwd=tmp_path)
    assert lines_starting(out, "quick tier (tests/core/test_keys.py), 1 rounds in turns")
    assert lines_starting(out, "ratio -n 2 / one process: ")
    assert lines_starting(out, "quick tier, the faster way: ")


@pytest.mark.slow
def test_loop_figures(demo_copy, studio, tmp_path, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", studio[0])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", studio[1])
    out = run_script("loop_figures.py", "--demo-dir", str(demo_copy), "--frames", "20",
                     "--grow-images", "200", "--grow-frames", "20", "--grow-dir",
                     str(tmp_path / "grow"), "--roundtrip-frames", "8", cwd=demo_copy.parent)
    [line] = lines_starting(out, "mining speed: ")
    assert "frames/s over 20 frames at " in line and "n/a below 320 px" in line
    [line] = lines_starting(out, "grow: 20 frames into 200 images in ")
    assert "401 hashes reused, 20 files hashed" in line and "n/a below 100,000" in line
    [line] = lines_starting(out, "round trip: 8 frames, ")
    assert ": 0 lost, 0 moved" in line and line.endswith("-> met")
