"""`siteml demo`: one demo site, end to end, on an embedded store in a folder of its own.

Writes a site file and scenarios, generates the synthetic dataset (with its ``.dvc`` file), and
runs every pipeline this version has, in order, recording into ``DIR/mlflow.db``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from siteml.core.errors import InvalidInputError
from siteml.core.naming import site_path
from siteml.core.progress import progress_bar
from siteml.core.tasks import TASK_CLASSES
from siteml.data.dvc_hash import dvc_file, read_dvc_file
from siteml.data.synth import synthesize
from siteml.lifecycle.options import RunOptions
from siteml.lifecycle.outcomes import RunOutcome
from siteml.lifecycle.run import run_scenario
from siteml.tracking.store import resolve_store

SITE_ID = "acme-ulsan-welding"
SITE = {"customer": "acme-steel", "region": "ulsan", "plant": "plant1", "zone": "welding",
        "description": "siteml demo: welding bays with synthetic PPE data",
        # a new model may not fall more than 2 points of mAP50-95 below the site's champion
        "gates": {"ppe": {"compare_to": "champion", "max_regression": 0.02}},
        # the edge boxes of the site (siteml deploy, box run, rollout, fleet)
        "boxes": [{"name": f"welding-0{n}", "layout": "ovms", "cameras": 6} for n in (1, 2)]}
TASK = "ppe"
MARKER = ".siteml-demo"


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: the README's figures are measured at the defaults; a test makes
    the whole chain small (training, images, and the benchmarks' iterations and cameras)."""

    epochs: int = 15
    train_images: int = 200
    val_images: int = 50
    imgsz: int = 320
    iterations: int = 300
    """Timed iterations of each benchmark (the quant run's speed check takes at most 100)."""
    warmup: int = 20
    cameras: int = 32
    """The most cameras the INT8 benchmark tries (a tiny demo model would serve hundreds)."""
    stream_seconds: float = 2.0
    """How long each camera count is measured."""

    @property
    def splits(self) -> dict[str, int]:
        return {"train": self.train_images, "val": self.val_images}


@dataclass
class DemoStep:
    """One scenario the demo ran."""

    scenario: Path
    outcome: RunOutcome


def _common(dataset: Path, dvc_hash: str, size: DemoSize) -> dict:
    """Site, task, model, environment and dataset: the same for every demo scenario."""
    classes = list(TASK_CLASSES[TASK])
    return {
        "site": SITE_ID,
        "task": {"type": TASK, "classes": classes},
        "model": {"architecture": "yolov11n", "input_size": size.imgsz,
                  "num_classes": len(classes)},
        "environment": {"device": "cpu", "precision": "fp32", "seed": 0},
        "dataset": {"version": "synth-v1", "dvc_hash": dvc_hash,
                    "path": f"../../{dataset.relative_to(dataset.parents[1]).as_posix()}",
                    "image_count": sum(size.splits.values())},
    }


def _train_scenario(dataset: Path, dvc_hash: str, size: DemoSize) -> dict:
    return {"name": "demo-ppe", "version": "v1", "experiment_type": "train",
            "description": "Demo: yolov11n from scratch on synthetic PPE images",
            **_common(dataset, dvc_hash, size),
            "training": {"epochs": size.epochs, "batch": 16, "workers": 2, "patience": 0,
                         "close_mosaic": 3}}


def _quant_scenario(dataset: Path, dvc_hash: str, size: DemoSize) -> dict:
    return {"name": "demo-ppe-int8", "version": "v1", "experiment_type": "quant",
            "description": "Demo: OpenVINO INT8 of the trained model, within 1 point of "
                           "mAP50-95 (plain PTQ, else NNCF's accuracy-aware quantization)",
            **_common(dataset, dvc_hash, size),
            "quantization": {"backend": "openvino", "precision": "int8",
                             "calibration_size": size.train_images, "max_accuracy_drop": 0.01,
                             **({"latency_iterations": size.iterations}
                                if size.iterations < 100 else {})}}


def _infer_scenario(dataset: Path, dvc_hash: str, size: DemoSize, version: str,
                    variant: str | None) -> dict:
    model = f"{TASK}__{variant}" if variant else TASK
    site = site_path(SITE["customer"], SITE["region"], SITE["plant"], SITE["zone"])
    return {"name": f"demo-{model.replace('__', '-').replace('_', '-')}-latency",
            "version": version, "experiment_type": "infer",
            "description": f"Demo: batch-1 latency of {model} on this machine's CPU"
                           + (", and the cameras it serves at 10 FPS" if variant else ""),
            **_common(dataset, dvc_hash, size),
            "benchmark": {"source": f"{site}/{model}@candidate", "warmup": size.warmup,
                          "iterations": size.iterations, "measure_accuracy": True,
                          # a variant is timed in turns with the trained model (a fair
                          # speedup), and counts the cameras it serves at 10 FPS
                          **({"baseline": f"{site}/{TASK}@candidate", "streams": size.cameras,
                              "stream_seconds": size.stream_seconds} if variant else {})}}


def prepare(folder: Path, size: DemoSize) -> list[Path]:
    """Write the demo's site, dataset and scenarios into ``folder``; return the scenarios."""
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise InvalidInputError(f"{folder} is not empty and holds no siteml demo; "
                                "give an empty or new folder")
    (folder / "configs" / "sites").mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()
    site_file = folder / "configs" / "sites" / f"{SITE_ID}.yaml"
    site_file.write_text(yaml.safe_dump(SITE, sort_keys=False))
    dataset = folder / "data" / f"{TASK}-synth"
    if not (dataset / "images").exists():
        with progress_bar("generating synthetic images", sum(size.splits.values())) as advance:
            synthesize(dataset, TASK_CLASSES[TASK], size.splits, size.imgsz, seed=0,
                       progress=lambda _: advance(""))
    dvc_hash = read_dvc_file(dvc_file(dataset))
    scenarios = folder / "experiments" / SITE["customer"]
    scenarios.mkdir(parents=True, exist_ok=True)
    steps = [("train-v1", _train_scenario(dataset, dvc_hash, size)),
             ("quant-v1", _quant_scenario(dataset, dvc_hash, size)),
             ("infer-v1", _infer_scenario(dataset, dvc_hash, size, "v1", None)),
             ("infer-v2", _infer_scenario(dataset, dvc_hash, size, "v2", "openvino_int8"))]
    written = []
    for name, content in steps:
        path = scenarios / f"{TASK}-yolov11n-{name}.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        written.append(path)
    return written


def run_demo(folder: Path, size: DemoSize = DemoSize()) -> list[DemoStep]:
    """Prepare the demo folder and run its scenarios on the folder's own embedded store."""
    folder = folder.absolute()
    store = resolve_store({}, cwd=folder)
    return [DemoStep(path, run_scenario(path, RunOptions(rerun=True, store=store)))
            for path in prepare(folder, size)]
