"""Train, quantize, benchmark and compare against a tracking server (CI: PostgreSQL-backed), the
way a team shares one store: every artifact goes through the server, nothing through local paths."""

import json
import uuid

import mlflow.pyfunc
import pytest

from tests.conftest import needs
from tests.pipelines.conftest import trained_store

pytestmark = pytest.mark.slow  # trains, quantizes, benchmarks or starts a server
needs("ultralytics", "train")
needs("openvino", "quantize")
needs("nncf", "quantize")


def test_lifecycle_on_a_tracking_server(mlflow_server, tmp_path, monkeypatch):
    site = {"customer": f"t{uuid.uuid4().hex[:10]}", "region": "ulsan", "plant": "plant3",
            "zone": "server"}
    site_path = f"{site['customer']}/ulsan-plant3/server"
    store = trained_store(tmp_path, mlflow_server, site, epochs=1, train=16, val=8, imgsz=64)
    quant = store.run_ok("quant", "v2", backend="openvino", precision="int8",
                         calibration_size=8, max_accuracy_drop=1.0, latency_iterations=3,
                         bias_correction="fast")
    assert quant["registered_model"].endswith(".server.ppe__openvino_int8")
    for number, model in ((3, "ppe"), (4, "ppe__openvino_int8")):
        store.run_ok("infer", f"v{number}", source=f"{site_path}/{model}@candidate",
                     iterations=10)
    plot = tmp_path / "pareto.png"
    code, out, err = store.invoke("compare", site_path, "--task", "ppe", "--json",
                                  "--plot", str(plot))
    assert code == 0, err
    assert {row["variant"] for row in json.loads(out)} == {"base", "openvino_int8"}
    assert plot.stat().st_size > 0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    model = mlflow.pyfunc.load_model(f"models:/{quant['registered_model']}@candidate")
    images = sorted(str(p) for p in (store.dataset / "images" / "val").glob("*.jpg"))[:2]
    assert list(model.predict(images).columns)[:4] == ["image", "class_id", "class_name", "score"]
