"""Quantization pipeline: a registered detector into an OpenVINO or ONNX Runtime variant.

The source (a registered ``.pt``) is exported to FP32 (OpenVINO IR or ONNX) and turned into the
target precision: FP16 weights, or INT8 calibrated on a seeded subset of the train (or calib)
split, never the val split the gate scores. Source and variant are then scored on the same val
split by the same evaluator (Ultralytics' validator); a variant that loses more than
``max_accuracy_drop`` mAP50-95 is logged but refused (the run fails, nothing is registered). A
short batch-1 latency check of both, at an explicit execution precision, gives the speedup.
"""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

from siteml.pipelines import onnx_variant, openvino_variant
from siteml.pipelines.base import PipelineResult, ProducedModel, Tracker
from siteml.pipelines.detection_map import letterboxed_labels, map50_95
from siteml.pipelines.images import letterbox, sample_images
from siteml.pipelines.runtimes import load, p50_ms
from siteml.pipelines.ultralytics_env import offline_ultralytics
from siteml.progress import progress_bar
from siteml.scenario.schema import QuantizationScenario

EXECUTION_PRECISION = {"fp32": "f32", "fp16": "f16", "int8": "f32"}  # INT8 layers run in int8
HEADLINE = ("variant/map50_95", "delta/map50_95", "speedup")
LATENCY_WARMUP = 10
TOOLKITS = {"openvino": ("openvino",), "onnxruntime": ("onnxruntime", "onnx")}


class AccuracyGateError(Exception):
    """The variant lost more accuracy than the scenario allows."""


def run(scenario: QuantizationScenario, tracker: Tracker) -> PipelineResult:
    """Build, score and time the variant; return it for registration if it passes the gate."""
    params = scenario.quantization
    offline_ultralytics(tracker.workdir)
    weights = _source_weights(tracker.source_model().path, tracker.workdir)
    tags = {"quant.method": params.method if params.precision == "int8" else "convert",
            **{f"toolkit.{name}": version(name) for name in TOOLKITS[params.backend]}}
    if params.precision == "int8":
        tags.update({"quant.preset": params.preset,
                     "quant.calibration_split": params.calibration_split,
                     "quant.calibration_dvc_hash": scenario.dataset.dvc_hash,
                     "quant.ignore_head_postprocessing": str(params.ignore_head_postprocessing)})
        if params.backend == "openvino":
            tags["toolkit.nncf"] = version("nncf")
    variant, calibrated = _build_variant(scenario, weights, tracker.workdir)
    if calibrated:
        tags["quant.calibration_size"] = str(calibrated)

    data_yaml = _val_view(scenario, tracker.workdir)
    metrics = _score(weights, variant, data_yaml, scenario.model.input_size)
    speed, executed = _speed(weights, variant, scenario.model.input_size,
                             EXECUTION_PRECISION[params.precision], params.latency_iterations)
    metrics.update(speed)
    metrics["variant/size_mb"] = _size_mb(variant)
    metrics["source/size_mb"] = _size_mb(weights)
    tags["quant.executed_precision"] = (f"int8+{executed}" if params.precision == "int8"
                                        else executed)
    tracker.set_tags(tags)
    tracker.log_metrics(metrics)
    drop = metrics["source/map50_95"] - metrics["variant/map50_95"]
    if drop > params.max_accuracy_drop:
        tracker.set_tags({"siteml.gate": "refused"})
        raise AccuracyGateError(
            f"{params.variant} loses {drop:.4f} mAP50-95 ({metrics['source/map50_95']:.4f} -> "
            f"{metrics['variant/map50_95']:.4f}), more than max_accuracy_drop "
            f"{params.max_accuracy_drop}; not registered")
    tracker.set_tags({"siteml.gate": "passed"})
    produced = ProducedModel(variant, format="openvino" if params.backend == "openvino"
                             else "onnx", backend=params.backend, precision=params.precision,
                             variant=params.variant, tags=tags)
    return PipelineResult(metrics=metrics, model=produced, headline=HEADLINE)


def _source_weights(source: Path, workdir: Path) -> Path:
    """The source's ``.pt`` (inside its pyfunc artifacts), copied where exports may be written."""
    found = sorted(source.rglob("*.pt"))
    if not found:
        raise FileNotFoundError(f"source model at {source} has no .pt weights to quantize")
    target = workdir / "source" / found[0].name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(found[0], target)
    return target


def _build_variant(scenario: QuantizationScenario, weights: Path,
                   workdir: Path) -> tuple[Path, int]:
    """Write the variant under ``workdir/variant``; return its path and calibration size."""
    params, size = scenario.quantization, scenario.model.input_size
    target = workdir / "variant" / f"{weights.stem}_{params.variant}"
    if params.backend == "onnxruntime":
        fp32 = onnx_variant.export_onnx(weights, size)
        target = target.with_suffix(".onnx")
        if params.precision == "fp32":
            onnx_variant.copy_fp32(fp32, target)
            return target, 0
        calibration = _calibration(scenario)
        onnx_variant.quantize_int8(fp32, target, calibration, params.per_channel)
        return target, len(calibration)
    fp32 = openvino_variant.export_ir(weights, size)
    target = target.with_name(f"{target.name}_openvino_model")
    if params.precision == "fp32":
        openvino_variant.copy_fp32(fp32, target)
        return target, 0
    if params.precision == "fp16":
        openvino_variant.compress_fp16(fp32, target)
        return target, 0
    calibration = _calibration(scenario)
    if params.method == "ptq":
        openvino_variant.quantize_int8(fp32, target, calibration, params.preset,
                                       params.ignore_head_postprocessing)
    else:
        validation, truths = _validation(scenario)
        openvino_variant.quantize_int8_accuracy_control(
            fp32, target, calibration, validation, lambda outputs: map50_95(outputs, truths),
            params.max_accuracy_drop, params.preset, params.ignore_head_postprocessing)
    return target, len(calibration)


def _inputs(images: list[Path], size: int, description: str) -> list[Any]:
    batches = []
    with progress_bar(description, len(images)) as advance:
        for image in images:
            batches.append(letterbox(image, size))
            advance(image.name)
    return batches


def _calibration(scenario: QuantizationScenario) -> list[Any]:
    params = scenario.quantization
    images = sample_images(scenario.dataset.path, params.calibration_split,
                           params.calibration_size, scenario.environment.seed)
    return _inputs(images, scenario.model.input_size, "preparing calibration images")


def _validation(scenario: QuantizationScenario) -> tuple[list[Any], list[Any]]:
    """Every val image and its letterboxed labels, for NNCF's accuracy-control loop."""
    dataset, size = scenario.dataset.path, scenario.model.input_size
    images = sample_images(dataset, "val", 10**9, scenario.environment.seed)
    truths = [letterboxed_labels(image, dataset / "labels" / "val", size) for image in images]
    return _inputs(images, size, "preparing validation images"), truths


def _val_view(scenario: QuantizationScenario, workdir: Path) -> Path:
    from siteml.data.layout import training_view

    return training_view(scenario.dataset.path, scenario.task.classes, workdir / "dataset")


def _score(weights: Path, variant: Path, data_yaml: Path, size: int) -> dict[str, float]:
    """mAP50 and mAP50-95 of source and variant on the val split, and the deltas."""
    from ultralytics import YOLO

    metrics = {}
    with progress_bar("scoring source and variant on val", 2) as advance:
        for label, path in (("source", weights), ("variant", variant)):
            result = YOLO(str(path), task="detect").val(
                data=str(data_yaml), imgsz=size, batch=1, device="cpu", plots=False,
                verbose=False, project=str(variant.parent / "val"), name=label, exist_ok=True)
            metrics[f"{label}/map50"] = float(result.box.map50)
            metrics[f"{label}/map50_95"] = float(result.box.map)
            advance(label)
    metrics["delta/map50"] = metrics["variant/map50"] - metrics["source/map50"]
    metrics["delta/map50_95"] = metrics["variant/map50_95"] - metrics["source/map50_95"]
    return metrics


def _speed(weights: Path, variant: Path, size: int, precision: str,
           iterations: int) -> tuple[dict[str, float], str]:
    """Batch-1 p50 latency of the PyTorch source and the variant, the speedup, and the
    precision the variant's runtime executed."""
    import numpy as np

    frame = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    source = p50_ms(load(weights, frame).infer, LATENCY_WARMUP, iterations)
    loaded = load(variant, frame, precision=precision)
    variant_p50 = p50_ms(loaded.infer, LATENCY_WARMUP, iterations)
    return ({"latency/source_p50_ms": source, "latency/variant_p50_ms": variant_p50,
             "speedup": source / variant_p50}, loaded.facts["executed_precision"])


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20
