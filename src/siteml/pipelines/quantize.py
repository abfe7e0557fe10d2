"""Quantization pipeline: a registered detector into an OpenVINO FP32/FP16/INT8 variant.

The source (a registered ``.pt``) is exported to an OpenVINO IR; FP16 compresses its weights; INT8
is NNCF post-training quantization calibrated on a seeded subset of the train (or calib) split,
never the val split the gate scores, with the detection head's box decode kept in float (NNCF's
ignored scope, as Ultralytics and NNCF's YOLO guidance do). Source and variant are scored on the
same val split by the same evaluator; a variant that loses more than ``max_accuracy_drop``
mAP50-95 is logged but refused (the run fails, nothing is registered). A short batch-1 latency
check of both, at an explicit inference precision, gives the speedup.
"""

from __future__ import annotations

import logging
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from siteml.data.layout import split_images, training_view
from siteml.extras import require
from siteml.pipelines.base import PipelineResult, ProducedModel, Tracker
from siteml.pipelines.ultralytics_env import offline_ultralytics
from siteml.progress import progress_bar
from siteml.scenario.schema import QuantizationScenario

EXECUTION_PRECISION = {"fp32": "f32", "fp16": "f16", "int8": "f32"}  # INT8 layers run in int8
HEADLINE = ("variant/map50_95", "delta/map50_95", "speedup")
LATENCY_WARMUP = 10


class AccuracyGateError(Exception):
    """The variant lost more accuracy than the scenario allows."""


def run(scenario: QuantizationScenario, tracker: Tracker) -> PipelineResult:
    """Build, score and time the variant; return it for registration if it passes the gate."""
    params = scenario.quantization
    if params.backend != "openvino" or params.method != "ptq":
        raise NotImplementedError(f"{params.backend} / {params.method} quantization is not in this "
                                  "version of siteml yet: use backend openvino with method ptq")
    require("openvino", "quantize")
    offline_ultralytics(tracker.workdir)
    source = tracker.source_model()
    weights = _source_weights(source.path, tracker.workdir)
    size = scenario.model.input_size
    data_yaml = training_view(scenario.dataset.path, scenario.task.classes,
                              tracker.workdir / "dataset")
    fp32_dir = _export_fp32(weights, size)
    variant_dir = tracker.workdir / f"{weights.stem}_{params.variant}_openvino_model"
    tags = {"quant.method": params.method, "toolkit.openvino": _version("openvino")}
    if params.precision == "fp32":
        shutil.copytree(fp32_dir, variant_dir)
    elif params.precision == "fp16":
        _compress_fp16(fp32_dir, variant_dir)
    else:
        images = _calibration_images(scenario)
        tags.update({"quant.preset": params.preset, "quant.calibration_size": str(len(images)),
                     "quant.calibration_split": params.calibration_split,
                     "quant.calibration_dvc_hash": scenario.dataset.dvc_hash,
                     "toolkit.nncf": _version("nncf")})
        _quantize_int8(fp32_dir, variant_dir, images, size, params.preset,
                       params.ignore_head_postprocessing)
    tracker.set_tags(tags)

    metrics = _score(weights, variant_dir, data_yaml, size)
    metrics.update(_speed(weights, variant_dir, size, params.precision, params.latency_iterations))
    metrics["variant/size_mb"] = sum(f.stat().st_size for f in variant_dir.iterdir()) / 2**20
    tracker.log_metrics(metrics)
    drop = -metrics["delta/map50_95"]
    if drop > params.max_accuracy_drop:
        tracker.set_tags({"siteml.gate": "refused"})
        raise AccuracyGateError(
            f"{params.variant} loses {drop:.4f} mAP50-95 ({metrics['source/map50_95']:.4f} -> "
            f"{metrics['variant/map50_95']:.4f}), more than max_accuracy_drop "
            f"{params.max_accuracy_drop}; not registered")
    tracker.set_tags({"siteml.gate": "passed"})
    produced = ProducedModel(variant_dir, format="openvino", backend="openvino",
                             precision=params.precision, variant=params.variant,
                             tags={**tags, "quant.executed_precision":
                                   EXECUTION_PRECISION[params.precision]})
    return PipelineResult(metrics=metrics, model=produced, headline=HEADLINE)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _source_weights(source: Path, workdir: Path) -> Path:
    """The source's ``.pt`` (inside its pyfunc artifacts), copied where exports may be written."""
    found = sorted(source.rglob("*.pt"))
    if not found:
        raise FileNotFoundError(f"source model at {source} has no .pt weights to quantize")
    target = workdir / "source" / "weights" / found[0].name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(found[0], target)
    return target


def _export_fp32(weights: Path, size: int) -> Path:
    from ultralytics import YOLO

    exported = YOLO(str(weights)).export(format="openvino", imgsz=size, dynamic=False,
                                         verbose=False)
    return Path(exported)


def _compress_fp16(fp32_dir: Path, target: Path) -> None:
    import openvino as ov

    target.mkdir(parents=True)
    xml = next(fp32_dir.glob("*.xml"))
    ov.save_model(ov.Core().read_model(xml), target / xml.name, compress_to_fp16=True)
    shutil.copy2(fp32_dir / "metadata.yaml", target / "metadata.yaml")


def _calibration_images(scenario: QuantizationScenario) -> list[Path]:
    params = scenario.quantization
    images = split_images(scenario.dataset.path, params.calibration_split)
    if not images:
        raise FileNotFoundError(f"no images in split {params.calibration_split!r} to calibrate on")
    rng = random.Random(scenario.environment.seed)
    return sorted(rng.sample(images, min(params.calibration_size, len(images))))


def _preprocess(image: Path, size: int) -> Any:
    """Letterbox, BGR->RGB, 0-1, NCHW float32: what Ultralytics' exported models expect."""
    import cv2
    import numpy as np
    from ultralytics.data.augment import LetterBox

    frame = LetterBox((size, size), auto=False)(image=cv2.imread(str(image)))
    return np.ascontiguousarray(frame[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255


def _quantize_int8(fp32_dir: Path, target: Path, images: list[Path], size: int, preset: str,
                   ignore_head: bool) -> None:
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.WARNING)  # its INFO lines go to stdout, which carries --json
    xml = next(fp32_dir.glob("*.xml"))
    model = ov.Core().read_model(xml)
    inputs = []
    with progress_bar("calibrating INT8", len(images)) as advance:
        for image in images:
            inputs.append(_preprocess(image, size))
            advance("")
    ignored = _head_scope(model) if ignore_head else None
    quantized = nncf.quantize(
        model, nncf.Dataset(inputs), subset_size=len(inputs),
        preset=nncf.QuantizationPreset.MIXED if preset == "mixed"
        else nncf.QuantizationPreset.PERFORMANCE,
        ignored_scope=ignored)
    target.mkdir(parents=True)
    ov.save_model(quantized, target / xml.name, compress_to_fp16=False)
    shutil.copy2(fp32_dir / "metadata.yaml", target / "metadata.yaml")


def _head_scope(model: Any) -> Any:
    """The detection head's box decode (DFL, sigmoid and the arithmetic after it) stays float."""
    import nncf

    operations = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in operations if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(names=[
        op.get_friendly_name() for op in operations
        if op.get_type_name() == "Sigmoid"
        or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))])


def _score(weights: Path, variant: Path, data_yaml: Path, size: int) -> dict[str, float]:
    """mAP50 and mAP50-95 of source and variant on the val split, and the deltas."""
    from ultralytics import YOLO

    metrics = {}
    for label, path in (("source", weights), ("variant", variant)):
        result = YOLO(str(path), task="detect").val(data=str(data_yaml), imgsz=size, batch=1,
                                                     device="cpu", plots=False, verbose=False,
                                                     project=str(variant.parent / "val"),
                                                     name=label, exist_ok=True)
        metrics[f"{label}/map50"] = float(result.box.map50)
        metrics[f"{label}/map50_95"] = float(result.box.map)
    metrics["delta/map50"] = metrics["variant/map50"] - metrics["source/map50"]
    metrics["delta/map50_95"] = metrics["variant/map50_95"] - metrics["source/map50_95"]
    return metrics


def _speed(weights: Path, variant: Path, size: int, precision: str,
           iterations: int) -> dict[str, float]:
    """Batch-1 p50 latency of the PyTorch source and the OpenVINO variant, and the speedup."""
    import numpy as np
    import openvino as ov
    import torch
    from ultralytics import YOLO

    frame = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    net = YOLO(str(weights)).model.fuse().eval()
    tensor = torch.from_numpy(frame)
    with torch.inference_mode():
        source = _p50(lambda: net(tensor), iterations)
    compiled = ov.Core().compile_model(
        next(variant.glob("*.xml")), "CPU",
        {"PERFORMANCE_HINT": "LATENCY",
         "INFERENCE_PRECISION_HINT": EXECUTION_PRECISION[precision]})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(frame))
    variant_p50 = _p50(request.infer, iterations)
    return {"latency/source_p50_ms": source, "latency/variant_p50_ms": variant_p50,
            "speedup": source / variant_p50}


def _p50(call: Any, iterations: int) -> float:
    for _ in range(LATENCY_WARMUP):
        call()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
