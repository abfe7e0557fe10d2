"""A store with a tiny detector trained on synthetic data (96 px, 25 epochs: mAP50-95 about 0.5,
so accuracy can move), shared by the quantization and benchmark tests."""

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from siteml.core.naming import site_path
from siteml.data.dvc_hash import dir_hash
from siteml.data.synth import synthesize
from siteml.scenario.types import EXPERIMENT_TYPES
from tests.conftest import NetworkBlocked, invoke

SITE = {"customer": "acme-steel", "region": "ulsan", "plant": "plant2", "zone": "quant"}
SITE_PATH = "acme-steel/ulsan-plant2/quant"
MODEL = "acme-steel.ulsan-plant2.quant.ppe"


@dataclass
class TinyStore:
    """Scenario files under ``root`` about ``dataset``, run on the store at ``uri``."""

    root: Path
    dataset: Path
    uri: str
    site: dict = field(default_factory=lambda: SITE)
    imgsz: int = 96
    images: int = 144

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def scenario(self, experiment_type: str, version: str, section: dict) -> Path:
        path = self.root / f"{experiment_type}-{version}.yaml"
        path.write_text(yaml.safe_dump({
            "name": "tiny", "version": version, "experiment_type": experiment_type,
            "site": self.site, "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
            "model": {"architecture": "yolov11n", "input_size": self.imgsz,
                      "num_classes": 3},
            "environment": {"device": "cpu", "seed": 0},
            "dataset": {"version": "tiny", "dvc_hash": dir_hash(self.dataset).md5,
                        "path": str(self.dataset), "image_count": self.images},
            EXPERIMENT_TYPES[experiment_type].section: section,
        }, sort_keys=False))
        return path

    def runs_named(self, run_name: str) -> list:
        """The runs called ``run_name`` at the store's site (none if it has no experiment)."""
        client = self.client()
        experiment = client.get_experiment_by_name(site_path(**self.site))
        return [] if experiment is None else client.search_runs(
            [experiment.experiment_id], f"attributes.run_name = '{run_name}'")

    def invoke(self, *args: str) -> tuple[int, str, str]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", self.uri)
            return invoke(*args)

    def run(self, experiment_type: str, version: str, **section) -> tuple[int, dict | None, str]:
        """``siteml run --json`` offline; OpenVINO / NNCF telemetry must not send anything."""
        return self.run_file(self.scenario(experiment_type, version, section))

    def run_file(self, path: Path) -> tuple[int, dict | None, str]:
        """``run`` of a scenario file already written."""
        from openvino_telemetry.utils.sender import TelemetrySender

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", self.uri)
            blocked = NetworkBlocked(mp)
            sent = []
            mp.setattr(TelemetrySender, "send", lambda self, backend, msg: sent.append(msg))
            code, out, err = invoke("run", str(path), "--json")
        assert sent == [], "OpenVINO / NNCF telemetry must stay off"
        assert blocked.attempts == []
        return code, json.loads(out) if code == 0 else None, err

    def run_ok(self, experiment_type: str, version: str, **section) -> dict:
        code, outcome, err = self.run(experiment_type, version, **section)
        assert code == 0, err
        return outcome


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> TinyStore:
    """A store holding one trained tiny model (ppe@candidate) that finds objects."""
    root = tmp_path_factory.mktemp("tiny-store")
    return trained_store(root, f"sqlite:///{root}/mlflow.db", SITE, epochs=25)


def trained_store(root: Path, uri: str, site: dict, epochs: int, train: int = 128,
                  val: int = 16, imgsz: int = 96) -> TinyStore:
    """Synthesize the tiny dataset under ``root`` and train ``ppe@candidate`` into ``uri``."""
    store = TinyStore(root, root / "data", uri, site, imgsz, train + val)
    synthesize(store.dataset, ["helmet", "vest", "person"], {"train": train, "val": val},
               imgsz=imgsz, seed=1)
    path = store.scenario("train", "v1", {"epochs": epochs, "batch": 8, "workers": 0,
                                          "warmup_epochs": 1, "close_mosaic": min(3, epochs)})
    code, _, err = store.invoke("run", str(path), "--json")
    assert code == 0, err
    return store


TARGETS = [("openvino", "fp32"), ("openvino", "fp16"), ("openvino", "int8"),
           ("onnxruntime", "fp32"), ("onnxruntime", "int8")]


def source_version(tiny_store):
    return tiny_store.client().get_model_version_by_alias(MODEL, "candidate")


def quantize(tiny_store, backend: str, precision: str):
    """Quantize the tiny model to one target, under that target's own scenario version."""
    return tiny_store.run("quant", target_version(backend, precision), backend=backend,
                          precision=precision, calibration_size=32, max_accuracy_drop=0.05,
                          latency_iterations=5)


def target_version(backend: str, precision: str) -> str:
    return f"v{TARGETS.index((backend, precision)) + 1}"


def candidate(tiny_store, backend: str, precision: str):
    """The version that the target's own quant run registered, made now if the test that
    makes it has not run (other tests may register more versions of the same variant)."""
    run_name = f"ppe-yolov11n-quant-{target_version(backend, precision)}"
    if not tiny_store.runs_named(run_name):
        code, _, err = quantize(tiny_store, backend, precision)
        assert code == 0, err
    [run] = tiny_store.runs_named(run_name)
    name = f"{MODEL}__{backend}_{precision}"
    [version] = [v for v in tiny_store.client().search_model_versions(f"name = '{name}'")
                 if v.run_id == run.info.run_id]
    return version


def openvino_executes(hint: str) -> str:
    """The precision OpenVINO's CPU plugin executes for an ``INFERENCE_PRECISION_HINT`` on this
    machine, read back from a one-op model: what a test must expect here. It differs by CPU:
    bf16 runs on AVX-512 CPUs without native bf16 (not in OPTIMIZATION_CAPABILITIES) but not on
    AVX2-only ones; f16 falls back to bf16 or f32 without native f16."""
    import numpy as np
    import openvino as ov

    parameter = ov.opset13.parameter([1, 3, 8, 8], np.float32)
    model = ov.Model([ov.opset13.relu(parameter)], [parameter])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


@pytest.fixture
def frames(tiny_store, tmp_path) -> Path:
    """Two cameras' frames: the val images, in turns, and one frame copied as the next."""
    folder = tmp_path / "frames"
    folder.mkdir()
    images = sorted((tiny_store.dataset / "images" / "val").iterdir())
    for index, image in enumerate(images):
        shutil.copy2(image, folder / f"cam{index % 2}_2026112{index // 2:02d}.jpg")
    shutil.copy2(images[0], folder / "cam0_20261130.jpg")  # the same picture, later
    return folder


def mine(tiny_store, version: str, frames: Path, **settings) -> tuple[int, dict | None, str]:
    source = f"{SITE_PATH}/ppe__openvino_int8/{candidate(tiny_store, 'openvino', 'int8').version}"
    return tiny_store.run("mine", version, source=source, frames=str(frames), **settings)
