"""Quantization pipeline: a registered detector into an OpenVINO or ONNX Runtime variant.

The source (a registered ``.pt``) is exported to FP32 (OpenVINO IR or ONNX) and turned into the
target precision: FP16 weights, or INT8 calibrated on a seeded subset of the train (or calib)
split, never the val split the gate scores. Source and variant are then scored on the same val
inputs by the same evaluator (``detection_map``), each at an explicit execution precision; a
variant that loses more than ``max_accuracy_drop`` mAP50-95 is logged but refused (the run
fails, nothing is registered). A short batch-1 latency check of both gives the speedup.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from siteml.pipelines import onnx_variant, openvino_variant
from siteml.pipelines.base import PipelineResult, ProducedModel, Tracker
from siteml.pipelines.detection_map import mean_ap, score, val_split
from siteml.pipelines.images import Letterboxed, sample_images
from siteml.pipelines.runtimes import (
    EXECUTION_PRECISION,
    interleaved_latencies_ms,
    load,
    model_size_mb,
)
from siteml.pipelines.ultralytics_env import offline_ultralytics
from siteml.scenario.schema import QuantizationScenario, device_or_cpu

HEADLINE = ("variant/map50_95", "delta/map50_95", "source/map50_95", "speedup")
LATENCY_WARMUP = 10
TOOLKITS = {"openvino": ("openvino",), "onnxruntime": ("onnxruntime", "onnx")}


class AccuracyGateError(Exception):
    """The variant lost more accuracy than the scenario allows."""


def run(scenario: QuantizationScenario, tracker: Tracker) -> PipelineResult:
    """Build, score and time the variant; return it for registration if it passes the gate."""
    params = scenario.quantization
    offline_ultralytics(tracker.workdir)
    weights = _source_weights(tracker.source_model().path, tracker.workdir)
    frames, truths = val_split(scenario.dataset.path, scenario.model.input_size)
    variant, calibrated = _build_variant(scenario, weights, tracker.workdir, frames, truths)
    metrics, facts = _score_and_time(scenario, weights, variant, frames, truths)
    tags = {**_lineage_tags(scenario, calibrated), **facts}
    tracker.set_tags(tags)
    tracker.log_metrics(metrics)
    drop = -metrics["delta/map50_95"]
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


def _lineage_tags(scenario: QuantizationScenario, calibrated: int) -> dict[str, str]:
    """How the variant was made: method, calibration data, toolkit versions."""
    params = scenario.quantization
    tags = {"quant.method": params.method if params.precision == "int8" else "convert",
            **{f"toolkit.{name}": version(name) for name in TOOLKITS[params.backend]}}
    if params.precision == "int8":
        tags.update({"quant.preset": params.preset,
                     "quant.bias_correction": params.bias_correction,
                     "quant.calibration_split": params.calibration_split,
                     "quant.calibration_size": str(calibrated),
                     "quant.calibration_dvc_hash": scenario.dataset.dvc_hash,
                     "quant.ignore_head_postprocessing": str(params.ignore_head_postprocessing)})
        if params.backend == "openvino":
            tags["toolkit.nncf"] = version("nncf")
    return tags


def _score_and_time(scenario: QuantizationScenario, weights: Path, variant: Path,
                    frames: Sequence[Any], truths: list[Any]) -> tuple[dict[str, float],
                                                                       dict[str, str]]:
    """mAP50 / mAP50-95, size and batch-1 p50 of source and variant, their deltas and the
    speedup; and the precision and device the variant really ran on."""
    params, device = scenario.quantization, scenario.environment.device
    metrics: dict[str, float] = {}
    facts: dict[str, str] = {}
    loaded = {}
    for label, path, backend in (("source", weights, "pytorch"),
                                 ("variant", variant, params.backend)):
        loaded[label] = load(path, frames[0], precision=EXECUTION_PRECISION[params.precision],
                             device=device_or_cpu(backend, device))
        metrics[f"{label}/map50"], metrics[f"{label}/map50_95"] = score(
            loaded[label].predict, frames, truths, f"scoring the {label} on val")
        metrics[f"{label}/size_mb"] = model_size_mb(path)
        facts[f"quant.{label}_device"] = loaded[label].facts["device"]
    times = interleaved_latencies_ms({label: model.infer for label, model in loaded.items()},
                                     LATENCY_WARMUP, params.latency_iterations)
    for label, values in times.items():
        metrics[f"latency/{label}_p50_ms"] = statistics.median(values)
    executed = loaded["variant"].facts["executed_precision"]
    facts["quant.executed_precision"] = (f"int8+{executed}" if params.precision == "int8"
                                         else executed)
    metrics["delta/map50"] = metrics["variant/map50"] - metrics["source/map50"]
    metrics["delta/map50_95"] = metrics["variant/map50_95"] - metrics["source/map50_95"]
    metrics["speedup"] = metrics["latency/source_p50_ms"] / metrics["latency/variant_p50_ms"]
    return metrics, facts


def _source_weights(source: Path, workdir: Path) -> Path:
    """The source's ``.pt`` (inside its pyfunc artifacts), copied where exports may be written."""
    found = sorted(source.rglob("*.pt"))
    if not found:
        raise FileNotFoundError(f"source model at {source} has no .pt weights to quantize")
    target = workdir / "source" / found[0].name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(found[0], target)
    return target


def _build_variant(scenario: QuantizationScenario, weights: Path, workdir: Path,
                   frames: Sequence[Any], truths: list[Any]) -> tuple[Path, int]:
    """Write the variant under ``workdir/variant``; return its path and calibration size
    (``frames`` and ``truths``, the val split, drive NNCF's accuracy control)."""
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
        openvino_variant.quantize_int8(fp32, target, calibration, params)
    else:
        openvino_variant.quantize_int8_accuracy_control(
            fp32, target, calibration, params, frames,
            lambda outputs: mean_ap(outputs, truths)[1])
    return target, len(calibration)


def _calibration(scenario: QuantizationScenario) -> Letterboxed:
    """The seeded calibration sample, as model inputs read when the calibration asks."""
    params = scenario.quantization
    images = sample_images(scenario.dataset.path, params.calibration_split,
                           params.calibration_size, scenario.environment.seed)
    return Letterboxed(images, scenario.model.input_size)
