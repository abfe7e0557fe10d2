"""`siteml demo` end to end, at a quick size (1 epoch on 32 + 16 images of 96 px; the README's
demo trains 15 epochs on 200 + 50 images of 320 px)."""

import json

import pytest
from mlflow import MlflowClient

from siteml.scenario.factory import find_yaml_files, load_any
from tests.conftest import needs

pytestmark = pytest.mark.slow  # trains, quantizes, benchmarks or starts a server
needs("ultralytics", "train")
needs("nncf", "quantize")
QUICK = ("--epochs", "1", "--train-images", "32", "--val-images", "16", "--imgsz", "96")


def test_demo_runs_the_lifecycle_in_its_own_folder(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    folder = tmp_path / "demo"
    code, out, err = cli("demo", str(folder), *QUICK, "--json")
    assert code == 0, err
    step, quant, *benchmarks = json.loads(out)
    assert {s["status"] for s in (step, quant, *benchmarks)} == {"FINISHED"}
    assert [b["run_name"] for b in benchmarks] == ["ppe-yolov11n-infer-v1",
                                                   "ppe-yolov11n-infer-v2"]
    assert step["registered_model"] == "acme-steel.ulsan-plant1.welding.ppe"
    assert quant["registered_model"] == "acme-steel.ulsan-plant1.welding.ppe__openvino_int8"
    assert (folder / "mlflow.db").is_file() and (folder / "mlartifacts").is_dir()
    assert not (tmp_path / "elsewhere.db").exists(), "the demo uses its own embedded store"
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    assert client.get_model_version_by_alias(step["registered_model"], "candidate")
    files = find_yaml_files([folder / "configs", folder / "experiments"])
    assert len(files) == 5 and all(load_any(f) for f in files)
    train = load_any(next(f for f in files if f.name.endswith("train-v1.yaml")))
    assert (train.model.input_size, train.dataset.image_count) == (96, 48)
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
    assert 0 <= rows["openvino_int8"]["cameras"] <= 32 and rows["base"]["cameras"] is None
    code, _, err = cli("demo", str(tmp_path), *QUICK)
    assert code == 2 and "not empty" in err
