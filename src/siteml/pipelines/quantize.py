"""Quantization pipeline: a registered detector into an OpenVINO or ONNX Runtime variant.

The source (a registered ``.pt``) is exported to FP32 (OpenVINO IR or ONNX) and turned into the
target precision: FP16 weights, or INT8 calibrated on a seeded subset of the train (or calib)
split, never the val split the gate scores. Source and variant are then scored on the same val
inputs by the same evaluator (``detection_map``), each at an explicit execution precision; a
variant that loses more than ``max_accuracy_drop`` mAP50-95 (or any class more than
``max_class_drop``) is logged but refused (the run fails, nothing is registered). A short
batch-1 latency check of both gives the speedup. The variant's detections on the first val
images are registered with it (``canary``), for an edge box to check its runtime against.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from siteml.backends import registry as backends
from siteml.backends.base import LoadOptions, VariantRequest, model_size_mb
from siteml.backends.ultralytics import offline_ultralytics
from siteml.core import keys
from siteml.core.models import PipelineResult, ProducedModel, Tracker
from siteml.core.progress import note
from siteml.data.layout import split_images
from siteml.pipelines.canary import CANARY_IMAGES, write_canary
from siteml.pipelines.checks import Problem, runtime_ready
from siteml.pipelines.detection_map import (
    Scores,
    deltas,
    drop_standard_error,
    evaluate,
    score,
    val_split,
)
from siteml.pipelines.gates import quantization_verdict
from siteml.pipelines.images import Letterboxed, sample_images
from siteml.pipelines.timing import interleaved_latencies_ms
from siteml.pipelines.weights import pt_weights
from siteml.scenario.schema import QuantizationScenario

LATENCY_WARMUP = 10
RECIPE_FIGURES = (keys.VARIANT_MAP50_95, keys.DELTA_MAP50_95, keys.SPEEDUP)
"""What a run keeps of a recipe that missed the budget (``ptq/delta/map50_95`` …)."""


def check(scenario: QuantizationScenario) -> Problem:
    """PyTorch (the source), the target runtime and its INT8 toolkit are installed, and the
    device is there for the target runtime (it times on the CPU a device it does not name)."""
    params = scenario.quantization
    backends.check_installed_for(backends.SOURCE_BACKEND)
    return runtime_ready(scenario, params.backend, int8=params.precision == "int8")


def check_models(scenario: QuantizationScenario,
                 read: Mapping[str, Mapping[str, str]]) -> Problem:
    """Quantization starts from PyTorch weights."""
    source = read.get("source", {}).get(keys.MODEL_BACKEND)
    if source is None or source == backends.SOURCE_BACKEND:
        return None
    return ("quantization.source", f"the source is saved for {source}; quantization starts "
            f"from the task's {backends.SOURCE_BACKEND} model (its base variant)")


def run(scenario: QuantizationScenario, tracker: Tracker) -> PipelineResult:
    """Build, score and time the variant; return it for registration if it passes the gate."""
    params = scenario.quantization
    offline_ultralytics(tracker.workdir)
    weights = pt_weights(tracker.source_model().path, tracker.workdir / "source")
    frames, truths = val_split(scenario.dataset.path, scenario.model.input_size)
    recipes = _recipes(scenario)
    for recipe in recipes:
        variant, calibrated = _build_variant(scenario, weights, tracker.workdir, frames, truths,
                                             recipe)
        metrics, facts, canary = _score_and_time(scenario, weights, variant, frames, truths)
        verdict = quantization_verdict(metrics, scenario.task.classes,
                                       params.max_accuracy_drop, params.max_class_drop)
        if not verdict.reasons or recipe == recipes[-1]:
            break
        tried = {f"{recipe}/{name}": metrics[name] for name in RECIPE_FIGURES}
        note(f"{recipe} loses more than the budget ({verdict.reasons[0]}); trying "
             f"{recipes[-1]}")
    _warn_unresolved(params.max_accuracy_drop, metrics[keys.DELTA_MAP50_95_SE], len(truths))
    if recipe != recipes[0]:
        metrics.update(tried)
        metrics[keys.RECIPE_SPEED_COST] = tried[f"{recipes[0]}/{keys.SPEEDUP}"] / metrics[
            keys.SPEEDUP]
    tags = {**_lineage_tags(scenario, calibrated, recipe, recipes), **facts}
    worst = keys.worst_class(metrics, "variant")
    if worst:
        tags[keys.WORST_CLASS] = worst
    tracker.set_tags(tags)
    if verdict.reasons:
        tracker.log_metrics(metrics)  # a refused variant's figures are kept for inspection
    tags.update(verdict.enforce(tracker, f"the {params.variant} variant"))
    produced = ProducedModel(variant, format=backends.get(params.backend).model_format,
                             backend=params.backend, precision=params.precision,
                             variant=params.variant, tags=tags, canary=canary)
    return PipelineResult(metrics=metrics, model=produced,
                          headline=keys.HEADLINE[scenario.experiment_type])


def _warn_unresolved(budget: float, standard_error: float, images: int) -> None:
    """Say so when the budget is inside the noise of the loss measured on the val split."""
    if budget < 2 * standard_error:
        note(f"the val split ({images} images) measures the mAP50-95 loss to "
             f"±{standard_error:.4f} (one standard error): max_accuracy_drop {budget:g} is "
             "within its noise, and a larger val split would resolve it")


def _recipes(scenario: QuantizationScenario) -> tuple[str, ...]:
    """The INT8 recipes to try in turn (the next only when the one before missed the budget);
    ``convert`` for FP32 and FP16."""
    params = scenario.quantization
    if params.precision != "int8":
        return ("convert",)
    if params.method != "auto":
        return (params.method,)
    if backends.get(params.backend).accuracy_control:
        return ("ptq", "accuracy_control")
    return ("ptq",)


def _lineage_tags(scenario: QuantizationScenario, calibrated: int, recipe: str,
                  recipes: tuple[str, ...]) -> dict[str, str]:
    """How the variant was made: the recipe that made it (and those tried before), calibration
    data, toolkit versions."""
    params = scenario.quantization
    backend = backends.get(params.backend)
    toolkits = (*backend.toolkits, *(backend.int8_modules if params.precision == "int8" else ()))
    tags = {keys.QUANT_METHOD: recipe,
            keys.QUANT_RECIPES_TRIED: ",".join(recipes[:recipes.index(recipe) + 1]),
            **{f"{keys.TOOLKIT_PREFIX}{name}": version(name) for name in toolkits}}
    if params.precision == "int8":
        tags.update({"quant.preset": params.preset,
                     "quant.bias_correction": params.bias_correction,
                     "quant.calibration_split": params.calibration_split,
                     "quant.calibration_size": str(calibrated),
                     "quant.calibration_dvc_hash": scenario.dataset.dvc_hash,
                     "quant.ignore_head_postprocessing": str(params.ignore_head_postprocessing)})
    return tags


def _score_and_time(scenario: QuantizationScenario, weights: Path, variant: Path,
                    frames: Sequence[Any], truths: list[Any]
                    ) -> tuple[dict[str, float], dict[str, str], Path]:
    """mAP50 / mAP50-95, size and batch-1 p50 of source and variant, their deltas and the
    speedup; the precision and device the variant really ran on; and its canary, written
    beside it from the first val images."""
    params, device = scenario.quantization, scenario.environment.device
    scores, sizes, facts, loaded = {}, {}, {}, {}
    for label, path, backend in (("source", weights, backends.SOURCE_BACKEND),
                                 ("variant", variant, params.backend)):
        options = LoadOptions(precision=backends.EXECUTION_PRECISION[params.precision],
                              device=backends.device_or_cpu(backend, device))
        loaded[label] = backends.load(path, frames[0], options, backend)
        scores[label] = score(loaded[label].predict, frames, truths, f"scoring the {label} on val")
        sizes[label] = model_size_mb(path)
        facts[f"{keys.QUANT_PREFIX}{label}_device"] = loaded[label].facts["device"]
    canary = write_canary(loaded["variant"].predict,
                          split_images(scenario.dataset.path, "val")[:CANARY_IMAGES],
                          scenario.model.input_size, variant.parent)
    times = interleaved_latencies_ms({label: model.infer for label, model in loaded.items()},
                                     LATENCY_WARMUP, params.latency_iterations)
    executed = loaded["variant"].facts["executed_precision"]
    facts[keys.QUANT_EXECUTED_PRECISION] = (f"int8+{executed}" if params.precision == "int8"
                                            else executed)
    p50_ms = {label: statistics.median(values) for label, values in times.items()}
    return figures(scores, sizes, p50_ms, scenario.task.classes), facts, canary


def figures(scores: dict[str, Scores], sizes: dict[str, float], p50_ms: dict[str, float],
            classes: Sequence[str]) -> dict[str, float]:
    """What a quant run logs: mAP50 and mAP50-95 (all classes and per class), size (MiB) and
    batch-1 p50 (ms) of the ``source`` and the ``variant``, the mAP deltas (and the standard
    error of the mAP50-95 one) and the speedup."""
    metrics: dict[str, float] = {}
    for label in ("source", "variant"):
        metrics.update(scores[label].metrics(label, classes))
        metrics[keys.scored(label, "size_mb")] = sizes[label]
        metrics[keys.quant_latency(label)] = p50_ms[label]
    metrics.update(deltas(scores["source"], scores["variant"], classes))
    metrics[keys.DELTA_MAP50_95_SE] = drop_standard_error(scores["source"], scores["variant"])
    metrics[keys.SPEEDUP] = p50_ms["source"] / p50_ms["variant"]
    return metrics


def _build_variant(scenario: QuantizationScenario, weights: Path, workdir: Path,
                   frames: Sequence[Any], truths: list[Any], recipe: str) -> tuple[Path, int]:
    """Have the target backend write the variant of ``recipe`` under ``workdir/<recipe>``;
    return its path and calibration size (``frames`` and ``truths``, the val split, drive
    accuracy control)."""
    params = scenario.quantization
    options = params.model_dump(include={"preset", "bias_correction", "per_channel",
                                         "ignore_head_postprocessing", "max_accuracy_drop",
                                         "max_reverted_groups"})
    request = VariantRequest(
        weights=weights, size=scenario.model.input_size, precision=params.precision,
        target=workdir / recipe / f"{weights.stem}_{params.variant}",
        calibration=lambda: _calibration(scenario), method=recipe, options=options,
        validation=_Pairs(frames, truths),
        score=lambda outputs, truths: evaluate(outputs, truths).map50_95)
    make_variant = backends.get(params.backend).make_variant
    if make_variant is None:
        raise ValueError(f"backend {params.backend} makes no variants")
    return make_variant(request)


class _Pairs(Sequence[tuple[Any, Any]]):
    """Val inputs beside their truths, an input read only when its item is asked for."""

    def __init__(self, frames: Sequence[Any], truths: list[Any]) -> None:
        self.frames, self.truths = frames, truths

    def __len__(self) -> int:
        return len(self.truths)

    def __getitem__(self, index: int) -> tuple[Any, Any]:  # type: ignore[override]
        return self.frames[index], self.truths[index]


def _calibration(scenario: QuantizationScenario) -> Letterboxed:
    """The seeded calibration sample, as model inputs read when the calibration asks."""
    params = scenario.quantization
    images = sample_images(scenario.dataset.path, params.calibration_split,
                           params.calibration_size, scenario.environment.seed)
    return Letterboxed(images, scenario.model.input_size)
