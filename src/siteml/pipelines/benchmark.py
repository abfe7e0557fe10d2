"""Inference benchmark pipeline: a registered model's latency on a device, as ``benchmark_app``
measures it.

Per batch size: load and compile, one timed first inference (logged on its own), warm-up, then a
fixed iteration count or duration over real dataset images preprocessed outside the timed region
and bound once. ``hint: throughput`` on OpenVINO runs parallel async infer requests (throughput =
images / wall time; latency per request). ``end_to_end`` times reading + preprocessing +
inference + NMS per image instead, as an application sees it. Logged per batch size ``b``:
``b{b}/latency_{p50,p90,p95,p99,mean,std,min,max}_ms``, ``b{b}/fps``, ``b{b}/first_inference_ms``,
``b{b}/load_ms``, ``b{b}/iterations``, ``b{b}/latency_drift`` (how far the median moved during
the run: above ``DRIFT_WARNING`` the machine was not steady, a warning says so and the run is
tagged ``benchmark.steady=false``); the raw latencies as CSV and a histogram PNG; the runtime's
facts (executed precision, threads, compiled-model properties) and CPU flags as ``env.*`` tags.
With a ``baseline`` model, both are timed in alternating turns, so that a change in the host's
speed hits both alike, and ``b{b}/baseline_latency_p50_ms`` and ``b{b}/speedup_vs_baseline`` are
logged too. With ``streams``, the most camera streams served at ``target_fps`` each
(``pipelines.streams``) follows.

Frames to time are read without Ultralytics (``images.timing_frame``), so that a box with only
its runtime installed can time an exported model; ``end_to_end`` and ``measure_accuracy`` use
Ultralytics' own letterbox, NMS and scoring.
"""

from __future__ import annotations

import csv
import gc
import statistics
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from siteml.backends import registry as backends
from siteml.backends import ultralytics
from siteml.backends.base import LoadedModel, LoadOptions, model_size_mb
from siteml.core import keys
from siteml.core.models import PipelineResult, Tracker
from siteml.core.progress import note
from siteml.core.provenance import cpu_flags
from siteml.pipelines.checks import Problem, runtime_ready
from siteml.pipelines.detection_map import score, val_split
from siteml.pipelines.images import sample_images, timing_frame
from siteml.pipelines.streams import MAX_CAMERAS, find_max_cameras, log_curve
from siteml.pipelines.timing import (
    DRIFT_WARNING,
    interleaved_latencies_ms,
    latencies_ms,
    latency_stats,
)
from siteml.scenario.params import InferenceBenchmarkParams
from siteml.scenario.schema import InferenceBenchmarkScenario

STREAM_IMAGES = 16
"""Val images the camera streams cycle through (camera ``k`` shows image ``k mod 16``)."""


class BackendMismatchError(ValueError):
    """The scenario's backend or device cannot run the source model's files."""


def check(scenario: InferenceBenchmarkScenario) -> Problem:
    """A named backend is installed, with the device (``auto`` is checked once the source says
    which runtime it needs); so are PyTorch and Ultralytics where their preprocessing, NMS or
    scoring is timed or used (``end_to_end``, ``measure_accuracy``). Timing an exported model
    needs only its runtime: the edge box may have nothing else."""
    if uses_ultralytics(scenario.benchmark):
        backends.check_installed_for(backends.SOURCE_BACKEND)
    backend = scenario.benchmark.backend
    return None if backend == "auto" else runtime_ready(scenario, backend)


def check_models(scenario: InferenceBenchmarkScenario,
                 read: Mapping[str, Mapping[str, str]]) -> Problem:
    """The backend can run the source's files (``auto``: the source's runtime is installed and
    has the device); the baseline's runtime is installed and has the device when it names it."""
    source, baseline = (read.get(role, {}).get(keys.MODEL_BACKEND)
                        for role in ("source", "baseline"))
    if source is not None:
        requested = scenario.benchmark.backend
        try:
            backend = backends.runtime_for(requested, source)
        except ValueError as exc:
            return "benchmark.backend", str(exc)
        if requested == "auto":
            problem = backends.device_problem(backend, scenario.environment.device)
            problem_at = ("environment.device", problem) if problem else runtime_ready(
                scenario, backend)
            if problem_at:
                return problem_at
    problem_at = runtime_ready(scenario, baseline) if baseline else None
    return None if problem_at is None else ("benchmark.baseline", problem_at[1])


def uses_ultralytics(params: InferenceBenchmarkParams) -> bool:
    """Whether the benchmark reads images or scores detections as Ultralytics does."""
    return params.end_to_end or params.measure_accuracy


def run(scenario: InferenceBenchmarkScenario, tracker: Tracker) -> PipelineResult:
    """Measure the source model at each batch size; return the statistics as metrics."""
    params = scenario.benchmark
    source = tracker.source_model()
    model_path = backends.find_model(source.path)
    backend = _backend(params.backend, model_path)
    if uses_ultralytics(params) or backends.SOURCE_BACKEND in (
            backend, tracker.source_model("baseline").tags.get(keys.MODEL_BACKEND)
            if params.baseline else None):
        ultralytics.offline_ultralytics(tracker.workdir)
    _check_device(backend, scenario.environment.device)
    precision = params.inference_precision or backends.EXECUTION_PRECISION[
        scenario.environment.precision]
    size = scenario.model.input_size
    images = sample_images(scenario.dataset.path, "val", max(params.batch_sizes),
                           scenario.environment.seed)
    metrics: dict[str, float] = {keys.MODEL_SIZE_MB: model_size_mb(model_path)}
    facts: dict[str, str] = {}
    steady = True
    baseline = (backends.find_model(tracker.source_model("baseline").path) if params.baseline
                else None)
    options = LoadOptions(precision=precision, threads=params.num_threads,
                          device=scenario.environment.device, hint=params.hint,
                          streams=params.num_streams, requests=params.num_requests)
    import numpy as np

    for batch in params.batch_sizes:
        frame = np.concatenate([timing_frame(images[k % len(images)], size)
                                for k in range(batch)])
        started = time.perf_counter()
        loaded = backends.load(model_path, frame, options, backend)
        metrics[keys.batch_metric(batch, keys.LOAD_MS)] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        loaded.infer()
        metrics[keys.batch_metric(batch, keys.FIRST_INFERENCE_MS)] = (
            time.perf_counter() - started) * 1000
        paired = _load_baseline(baseline, frame, scenario, options) if baseline else None
        times, wall_s, baseline_times = _measure(loaded, scenario, images, batch, paired)
        metrics.update(batch_figures(batch, times, wall_s, baseline_times))
        drift = metrics[keys.batch_metric(batch, keys.LATENCY_DRIFT)]
        if drift > DRIFT_WARNING:
            steady = False
            note(f"[yellow]warning:[/yellow] batch {batch}: the median latency moved "
                 f"{drift:.2f}x during the run: the machine was not steady, "
                 "repeat the benchmark before trusting it")
        _log_latencies(tracker, times, batch)
        facts = loaded.facts
        del loaded, paired  # free the runtimes before the next batch size compiles others
        gc.collect()
    if params.streams is not None:
        metrics.update(_cameras(model_path, backend, options, scenario, tracker))
    if params.measure_accuracy:
        frames, truths = val_split(scenario.dataset.path, size)
        loaded = backends.load(model_path, frames[0], LoadOptions(
            precision=precision, device=scenario.environment.device), backend)
        metrics.update(score(loaded.predict, frames, truths, "measuring accuracy on val")
                       .metrics(keys.ACCURACY, scenario.task.classes))
    tracker.set_tags(run_tags(facts, backend, model_path.name, steady))
    return PipelineResult(metrics=metrics)


def _cameras(model_path: Path, backend: str, options: LoadOptions,
             scenario: InferenceBenchmarkScenario, tracker: Tracker) -> dict[str, float]:
    """Cameras per box: the most camera streams of val images served at the target rate
    (OpenVINO: infer requests of a throughput-hinted model)."""
    params = scenario.benchmark
    size = scenario.model.input_size
    frames = [timing_frame(image, size) for image in sample_images(
        scenario.dataset.path, "val", STREAM_IMAGES, scenario.environment.seed)]
    loaded = backends.load(model_path, frames[0], replace(options, hint="throughput"), backend)
    limit = MAX_CAMERAS if params.streams == "auto" else int(params.streams)
    fps, latency_ms = params.target_fps, params.latency_limit_ms
    note(f"cameras per box: up to {limit} streams at {fps:g} FPS, p95 within "
         f"{latency_ms:g} ms, {params.stream_seconds:g} s each")
    found = find_max_cameras(
        lambda camera: loaded.stream(frames[camera % len(frames)]), loaded.parallel, fps,
        latency_ms, params.stream_seconds, limit, report=lambda step: note(
            f"  {step.cameras} cameras: {step.total_fps:.1f} FPS in all, slowest "
            f"{step.slowest_fps:.1f}, worst p95 {step.p95_ms:.1f} ms"
            + ("" if step.sustained else " (not sustained)")))
    note(found.summary(fps))
    log_curve(tracker, found, fps, latency_ms)
    return found.metrics(fps, latency_ms)


def batch_figures(batch: int, times: list[float], wall_s: float,
                  baseline_times: list[float] | None = None) -> dict[str, float]:
    """What a benchmark logs for one batch size: the latency statistics, throughput and drift
    of ``times`` (ms), and with a baseline timed in turns, its p50 and the speedup over it."""
    stats = latency_stats(times, batch, wall_s)
    figures = {keys.batch_metric(batch, name): value for name, value in stats.items()}
    if baseline_times:
        baseline_p50 = statistics.median(baseline_times)
        figures[keys.batch_metric(batch, keys.BASELINE_P50)] = baseline_p50
        figures[keys.batch_metric(batch, keys.SPEEDUP_VS_BASELINE)] = (
            baseline_p50 / stats[keys.LATENCY_P50])
    return figures


def run_tags(facts: dict[str, str], backend: str, model_file: str,
             steady: bool) -> dict[str, str]:
    """A benchmark run's tags: the runtime's facts and the CPU's flags as ``env.*``, the backend
    and file timed, and whether the host kept one speed throughout."""
    return {**{f"{keys.ENV_PREFIX}{k}": v for k, v in facts.items()}, **cpu_flags(),
            keys.BENCHMARK_BACKEND: backend, keys.BENCHMARK_MODEL_FILE: model_file,
            keys.BENCHMARK_STEADY: str(steady).lower()}


def _backend(requested: str, model_path: Path) -> str:
    try:
        return backends.runtime_for(requested, backends.backend_of(model_path))
    except ValueError as exc:
        raise BackendMismatchError(f"{model_path.name}: {exc}") from None


def _check_device(backend: str, device: str) -> None:
    problem = backends.device_problem(backend, device)
    if problem:
        raise BackendMismatchError(f"environment.device: {problem}")


def _load_baseline(path: Path, frame: Any, scenario: InferenceBenchmarkScenario,
                   options: LoadOptions) -> LoadedModel:
    """The baseline model on the scenario's device if its runtime names it, else the CPU."""
    backend = backends.backend_of(path)
    device = backends.device_or_cpu(backend, scenario.environment.device)
    return backends.load(path, frame, LoadOptions(
        precision=options.precision, threads=options.threads, device=device, hint=options.hint),
        backend)


def _measure(loaded: LoadedModel, scenario: InferenceBenchmarkScenario, images: list[Path],
             batch: int, paired: LoadedModel | None = None,
             ) -> tuple[list[float], float, list[float] | None]:
    """Per-iteration latencies (ms), the time (s) they took together (for the throughput), and
    the latencies of the ``paired`` baseline, timed in alternating turns with them."""
    params = scenario.benchmark
    if params.hint == "throughput" and loaded.run_async is not None and not params.end_to_end:
        for _ in range(params.warmup):
            loaded.infer()
        return (*loaded.run_async(params.iterations or _async_count(loaded, params.duration_s)),
                None)

    def call(model: LoadedModel) -> Any:
        if params.end_to_end:
            return _end_to_end(model, images, batch, scenario.model.input_size)
        return model.infer

    amount = f"{params.iterations} iterations" if params.iterations else f"{params.duration_s} s"
    note(f"timing batch {batch}: {params.warmup} warm-up, then {amount}"
         + (", in turns with the baseline" if paired else ""))
    if paired is None:
        times = latencies_ms(call(loaded), params.warmup, params.iterations, params.duration_s)
        return times, sum(times) / 1000, None  # one request at a time: busy time is wall time
    both = interleaved_latencies_ms({"source": call(loaded), "baseline": call(paired)},
                                    params.warmup, params.iterations)
    return both["source"], sum(both["source"]) / 1000, both["baseline"]


def _async_count(loaded: LoadedModel, duration_s: float | None) -> int:
    """Iterations that fill ``duration_s``, from a short timed sample."""
    sample = max(1, int(loaded.facts.get("ov.infer_requests", "1")) * 4)
    _, wall_s = loaded.run_async(sample)
    return max(sample, int(sample * (duration_s or 1) / max(wall_s, 1e-6)))


def _end_to_end(loaded: LoadedModel, images: list[Path], batch: int, size: int) -> Any:
    """One iteration as an application sees it: read, letterbox, infer, NMS."""
    import numpy as np

    position = [0]

    def call() -> None:
        picked = [images[(position[0] + k) % len(images)] for k in range(batch)]
        position[0] += batch
        output = loaded.predict(np.concatenate([ultralytics.letterbox(p, size) for p in picked]))
        ultralytics.nms(output, conf=0.25, iou=0.7)

    return call


def _log_latencies(tracker: Tracker, times: list[float], batch: int) -> None:
    """The raw latencies as ``latencies_b{batch}.csv`` and a histogram PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    folder = tracker.workdir / "latency"
    folder.mkdir(exist_ok=True)
    table = folder / f"latencies_b{batch}.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", "latency_ms"])
        writer.writerows(enumerate(times))
    figure, axes = pyplot.subplots(figsize=(6, 3.5))
    axes.hist(times, bins=50)
    axes.set(xlabel="latency (ms)", ylabel="iterations", title=f"batch {batch}")
    figure.tight_layout()
    figure.savefig(folder / f"latency_hist_b{batch}.png", dpi=100)
    pyplot.close(figure)
    tracker.log_artifact(folder, "latency")
