"""``siteml export``: registered variants of the tiny model into OVMS, Triton and plain
repositories, loaded back from there by OpenVINO and ONNX Runtime (through Ultralytics), and
checked against their manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pipelines.conftest import MODEL, SITE_PATH, candidate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tiny_store):
    """An OpenVINO INT8 and an ONNX Runtime FP32 variant of the tiny model (the quant tests'
    own, made once per session); their references."""
    refs = {backend: f"{SITE_PATH}/ppe__{backend}_{precision}/"
            f"{candidate(tiny_store, backend, precision).version}"
            for backend, precision in (("openvino", "int8"), ("onnxruntime", "fp32"))}
    return tiny_store, refs


def export(store, *args: str) -> tuple[int, dict | None, str]:
    code, out, err = store.invoke("export", *args, "--json")
    return code, json.loads(out) if code == 0 and out.strip() else None, err


def detections(model_path: Path, images: list[str]) -> list[tuple]:
    """Class, score and box of every detection, as Ultralytics reads the exported files (an
    IR through a link named as Ultralytics wants its IR folders)."""
    from ultralytics import YOLO

    if model_path.suffix == ".xml":
        link = model_path.parents[3] / f"{model_path.parents[2].name}_openvino_model"
        link.unlink(missing_ok=True)
        link.symlink_to(model_path.parent, target_is_directory=True)
        model_path = link
    model, found = YOLO(str(model_path), task="detect"), []
    for image in images:  # one at a time, as the pyfunc model predicts (the IR's batch is 1)
        [result] = model.predict(image, imgsz=96, conf=0.001, verbose=False)
        found += [(int(c), round(s, 4), *(round(v, 2) for v in box)) for box, s, c in zip(
            result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.tolist(),
            strict=True)]
    return sorted(found)


def served_names(path: Path) -> tuple[list[str], list[str]]:
    """The input and output names a server sees, read by the runtime itself."""
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        return [t.name for t in session.get_inputs()], [t.name for t in session.get_outputs()]
    import openvino

    model = openvino.Core().compile_model(str(path), "CPU")
    return ([p.get_any_name() for p in model.inputs],
            [p.get_any_name() for p in model.outputs])


def registered(ref: str) -> str:
    """The MLflow name of ``customer/region-plant/zone/task__variant/N``."""
    return ref.rsplit("/", 1)[0].replace("/", ".")


def pyfunc_detections(store, ref: str, images: list[str]) -> list[tuple]:
    import mlflow.pyfunc

    name, version = registered(ref), ref.rsplit("/", 1)[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store.uri)
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}",
                                         model_config={"conf": 0.001, "imgsz": 96})
    frame = model.predict(images)
    return sorted((int(r.class_id), round(r.score, 4), *(round(v, 2) for v in (
        r.x1, r.y1, r.x2, r.y2))) for r in frame.itertuples())


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_each_layout_serves_what_the_registry_holds(exported, tmp_path, backend):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    store, refs = exported
    ref = refs[backend]
    images = sorted(str(p) for p in (store.dataset / "images" / "val").glob("*.jpg"))[:4]
    expected = pyfunc_detections(store, ref, images)
    assert expected
    served = "model.xml" if backend == "openvino" else "model.onnx"
    for layout in ("ovms", "triton", "plain"):
        root = tmp_path / layout
        code, outcome, err = export(store, ref, str(root), "--layout", layout)
        assert code == 0, err
        folder = Path(outcome["folder"])
        name, version = folder.parent.name, int(folder.name)
        assert (name, folder.parent.parent) == (registered(ref).replace(".", "_"), root)
        manifest = json.loads((folder / "siteml-manifest.json").read_text())
        assert manifest["registered_model"] == registered(ref)
        assert manifest["version"] == version == int(ref.rsplit("/", 1)[1])
        assert manifest["backend"] == backend and manifest["classes"] == [
            "helmet", "vest", "person"]
        assert manifest["input_size"] == 96 and manifest["lineage"]["source_model"] == MODEL
        assert manifest["lineage"]["dataset_dvc_hash"] and manifest["metrics"]
        assert set(manifest["files"]) == {str(p.relative_to(folder)) for p in folder.rglob("*")
                                          if p.is_file() and p.name != "siteml-manifest.json"}
        model_file = folder / served if layout != "plain" else next(
            p for p in folder.iterdir() if p.name not in ("siteml-manifest.json", "canary"))
        assert detections(model_file, images) == expected, layout
        if layout != "plain":
            assert served_names(model_file) == (["images"], ["output0"])
        if layout == "ovms":
            config = json.loads((root / "config.json").read_text())
            assert config == {"model_config_list": [{"config": {"name": name,
                                                                "base_path": name}}]}
        if layout == "triton":
            parsed = text_format.Parse((root / name / "config.pbtxt").read_text(),
                                       model_config_pb2.ModelConfig())
            assert (parsed.name, parsed.backend, parsed.max_batch_size) == (name, backend, 0)
            assert [(t.name, list(t.dims)) for t in parsed.input] == [("images", [1, 3, 96, 96])]
            assert [t.name for t in parsed.output] == ["output0"]
            assert model_config_pb2.DataType.Name(parsed.input[0].data_type) == "TYPE_FP32"
            assert [t["name"] for t in manifest["outputs"]] == ["output0"]
        before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
        code, again, err = export(store, ref, str(root), "--layout", layout)
        assert code == 0 and again["status"] == "unchanged", err
        assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_one_repository_holds_both_variants_and_verify_catches_changes(exported, tmp_path):
    store, refs = exported
    root = tmp_path / "repo"
    folders = []
    for ref in refs.values():
        code, outcome, err = export(store, ref, str(root), "--layout", "ovms")
        assert code == 0, err
        folders.append(Path(outcome["folder"]))
    names = [e["config"]["name"] for e in json.loads(
        (root / "config.json").read_text())["model_config_list"]]
    assert names == [f.parent.name for f in folders]
    code, report, _ = export(store, "--verify", str(root))
    assert code == 0 and report == {"versions": 2, "problems": []}

    weights = folders[0] / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    (folders[1] / "model.onnx").unlink()
    code, _, err = store.invoke("export", "--verify", str(root))
    assert code == 1
    assert f"changed: {weights}" in err and f"missing: {folders[1] / 'model.onnx'}" in err


def test_bad_exports_are_refused_and_write_nothing(exported, tmp_path):
    store, refs = exported
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("the site's own file")
    pytorch = f"{SITE_PATH}/ppe@candidate"
    cases = [
        ((refs["openvino"], str(foreign)), "notes.txt"),
        ((f"{SITE_PATH}/ppe__openvino_int8/999", str(tmp_path / "a")), "no version 999"),
        ((f"{SITE_PATH}/ppe@nosuch", str(tmp_path / "b")), "no alias @nosuch"),
        ((f"{SITE_PATH}/fire@candidate", str(tmp_path / "c")), "no registered model"),
        ((pytorch, str(tmp_path / "d"), "--layout", "ovms"), "cannot serve"),
        ((pytorch, str(tmp_path / "e"), "--layout", "triton"), "cannot serve"),
        ((refs["openvino"], str(tmp_path / "f"), "--layout", "kserve"), "--layout 'kserve'"),
    ]
    for args, says in cases:
        code, _, err = store.invoke("export", *args)
        assert code == 2, (args, err)
        assert says in err, (args, err)
    assert [p.name for p in tmp_path.iterdir()] == ["theirs"]
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    code, outcome, err = export(store, pytorch, str(tmp_path / "plain"), "--layout", "plain")
    assert code == 0, err
    assert [p.suffix for p in Path(outcome["folder"]).iterdir()
            if p.name != "siteml-manifest.json"] == [".pt"]


WITHOUT_TRAIN_EXTRA = (
    "import sys; sys.modules.update(dict.fromkeys(['torch', 'torchvision', 'ultralytics', "
    "'cv2'], None)); sys.argv[0] = 'siteml'; from siteml.cli import main; main()")
"""``siteml`` as on an edge box with only the ``quantize`` extra: PyTorch, Ultralytics and
OpenCV cannot be imported."""


def test_an_edge_box_benchmarks_an_export_folder_and_counts_cameras(exported, tmp_path):
    import csv
    import os
    import subprocess
    import sys

    store, refs = exported
    code, outcome, err = export(store, refs["openvino"], str(tmp_path / "box"),
                                "--layout", "ovms")
    assert code == 0, err
    folder = Path(outcome["folder"])
    section = {"source": str(folder.parent), "iterations": 20, "warmup": 2, "streams": 6,
               "target_fps": 100, "stream_seconds": 0.5}
    path = store.scenario("infer", "v70", section)
    done = subprocess.run([sys.executable, "-c", WITHOUT_TRAIN_EXTRA, "run", str(path),
                           "--json"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MLFLOW_TRACKING_URI": store.uri})
    assert done.returncode == 0, done.stderr
    client = store.client()
    run = client.get_run(json.loads(done.stdout)["run_id"])
    version = client.get_model_version(registered(refs["openvino"]), folder.name)
    tags, metrics = run.data.tags, run.data.metrics
    assert (tags["source.model_name"], tags["source.model_version"], tags["source.run_id"]) == (
        version.name, str(version.version), version.run_id)
    assert tags["source.model_folder"] == str(folder)
    assert metrics["b1/iterations"] == 20 and metrics["b1/latency_p50_ms"] > 0

    local = Path(client.download_artifacts(run.info.run_id, "streams", str(tmp_path)))
    assert (local / "cameras.png").stat().st_size > 0
    curve = list(csv.DictReader((local / "curve.csv").open()))
    sustained = {int(r["cameras"]): r["sustained"] == "True" for r in curve}
    most = int(metrics["streams/max_cameras"])
    assert 1 in sustained and all(1 <= n <= 6 for n in sustained)
    assert most == max((n for n, ok in sustained.items() if ok), default=0)
    assert most == 6 or sustained[most + 1] is False
    assert metrics["streams/capped"] == float(most == 6)  # 6: the limit, the box may serve more
    assert metrics["streams/target_fps"] == 100 and metrics["streams/max_latency_ms"] == 10
    assert metrics["streams/capacity_fps"] > 0
    if most:
        chosen = next(r for r in curve if int(r["cameras"]) == most)
        assert metrics["streams/total_fps"] == pytest.approx(float(chosen["total_fps"]), 0.01)
        assert metrics["streams/total_fps"] >= 0.95 * 100 * most
        assert metrics["streams/p95_ms"] <= 10
    code, out, err = store.invoke("compare", SITE_PATH, "--task", "ppe", "--json")
    assert code == 0, err
    [row] = [r for r in json.loads(out) if r["benchmark_run_id"] == run.info.run_id]
    assert (row["variant"], row["cameras"], row["camera_fps"]) == ("openvino_int8", most, 100)
    assert row["cameras_capped"] is (most == 6)

    weights = folder / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    code, _, err = store.run("infer", "v71", **section)
    assert code == 2 and f"changed: {weights}" in err and "benchmark.source" in err
    assert store.runs_named("ppe-yolov11n-infer-v71") == []
