"""`siteml demo` end to end, at the session's tiny size (``TINY_DEMO``: 1 epoch on 16 + 8
images of 64 px, 20 timed iterations, up to 6 cameras; the README's demo trains 15 epochs on
200 + 50 images of 320 px)."""

import json

import pytest
from mlflow import MlflowClient

from siteml.scenario.factory import find_yaml_files, load_any
from tests.conftest import TINY_DEMO

pytestmark = pytest.mark.slow  # trains, quantizes, benchmarks or starts a server


def test_demo_runs_the_lifecycle_in_its_own_folder(cli, demo_store, monkeypatch):
    folder = demo_store.folder
    step, quant, *benchmarks = demo_store.steps
    assert {s["status"] for s in (step, quant, *benchmarks)} == {"FINISHED"}
    assert [b["run_name"] for b in benchmarks] == ["ppe-yolov11n-infer-v1",
                                                   "ppe-yolov11n-infer-v2"]
    assert step["registered_model"] == "acme-steel.ulsan-plant1.welding.ppe"
    assert quant["registered_model"] == "acme-steel.ulsan-plant1.welding.ppe__openvino_int8"
    assert (folder / "mlflow.db").is_file() and (folder / "mlartifacts").is_dir()
    assert not demo_store.elsewhere.exists(), "the demo uses its own embedded store"
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    assert client.get_model_version_by_alias(step["registered_model"], "candidate")
    files = find_yaml_files([folder / "configs", folder / "experiments"])
    assert len(files) == 5 and all(load_any(f) for f in files)
    train, infer = (load_any(next(f for f in files if f.name.endswith(f"-{name}.yaml")))
                    for name in ("train-v1", "infer-v2"))
    assert (train.model.input_size, train.dataset.image_count) == (
        TINY_DEMO["imgsz"], TINY_DEMO["train_images"] + TINY_DEMO["val_images"])
    assert (infer.benchmark.iterations, infer.benchmark.streams,
            infer.benchmark.stream_seconds) == (TINY_DEMO["iterations"], TINY_DEMO["cameras"],
                                                TINY_DEMO["stream_seconds"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    code, out, err = cli("compare", "acme-steel/ulsan-plant1/welding", "--task", "ppe", "--json")
    assert code == 0, err
    rows = {row["variant"]: row for row in json.loads(out)}
    assert set(rows) == {"base", "openvino_int8"}
    assert rows["openvino_int8"]["speedup_paired"] is True
    assert rows["openvino_int8"]["speedup"] == pytest.approx(
        benchmarks[1]["metrics"]["b1/speedup_vs_baseline"])
    assert rows["openvino_int8"]["camera_fps"] == 10  # the INT8 benchmark counts cameras
    assert rows["openvino_int8"]["cameras"] == benchmarks[1]["metrics"]["streams/max_cameras"]
    assert 0 <= rows["openvino_int8"]["cameras"] <= TINY_DEMO["cameras"]
    assert rows["base"]["cameras"] is None
