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
logged too.
"""

from __future__ import annotations

import csv
import gc
import time
from pathlib import Path
from typing import Any

from siteml.pipelines.base import PipelineResult, Tracker
from siteml.pipelines.detection_map import score, val_split
from siteml.pipelines.images import letterbox, sample_images
from siteml.pipelines.runtimes import (
    EXECUTION_PRECISION,
    LoadedModel,
    backend_of,
    find_model,
    interleaved_latencies_ms,
    latencies_ms,
    load,
    model_size_mb,
)
from siteml.pipelines.ultralytics_env import offline_ultralytics
from siteml.progress import note
from siteml.provenance import cpu_flags
from siteml.scenario.schema import (
    InferenceBenchmarkScenario,
    device_or_cpu,
    device_problem,
    runtime_for,
)

PERCENTILES = (50, 90, 95, 99)
DRIFT_PARTS = 10
DRIFT_WARNING = 1.10


class BackendMismatchError(ValueError):
    """The scenario's backend or device cannot run the source model's files."""


def run(scenario: InferenceBenchmarkScenario, tracker: Tracker) -> PipelineResult:
    """Measure the source model at each batch size; return the statistics as metrics."""
    params = scenario.benchmark
    offline_ultralytics(tracker.workdir)
    source = tracker.source_model()
    model_path = find_model(source.path)
    backend = _backend(params.backend, model_path)
    _check_device(backend, scenario.environment.device)
    precision = params.inference_precision or EXECUTION_PRECISION[
        scenario.environment.precision]
    size = scenario.model.input_size
    images = sample_images(scenario.dataset.path, "val", max(params.batch_sizes),
                           scenario.environment.seed)
    metrics: dict[str, float] = {"model/size_mb": model_size_mb(model_path)}
    facts: dict[str, str] = {}
    steady = True
    baseline = find_model(tracker.source_model("baseline").path) if params.baseline else None
    import numpy as np

    for batch in params.batch_sizes:
        frame = np.concatenate([letterbox(images[k % len(images)], size) for k in range(batch)])
        started = time.perf_counter()
        loaded = load(model_path, frame, backend=backend, precision=precision,
                      threads=params.num_threads, device=scenario.environment.device,
                      hint=params.hint, streams=params.num_streams, requests=params.num_requests)
        metrics[f"b{batch}/load_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        loaded.infer()
        metrics[f"b{batch}/first_inference_ms"] = (time.perf_counter() - started) * 1000
        paired = _load_baseline(baseline, frame, scenario, precision) if baseline else None
        times, wall_s, baseline_times = _measure(loaded, scenario, images, batch, paired)
        stats = latency_stats(times, batch, wall_s)
        metrics.update({f"b{batch}/{k}": v for k, v in stats.items()})
        if baseline_times:
            metrics[f"b{batch}/baseline_latency_p50_ms"] = float(np.median(baseline_times))
            metrics[f"b{batch}/speedup_vs_baseline"] = (
                metrics[f"b{batch}/baseline_latency_p50_ms"] / stats["latency_p50_ms"])
        if stats["latency_drift"] > DRIFT_WARNING:
            steady = False
            note(f"[yellow]warning:[/yellow] batch {batch}: the median latency moved "
                 f"{stats['latency_drift']:.2f}x during the run: the machine was not steady, "
                 "repeat the benchmark before trusting it")
        _log_latencies(tracker, times, batch)
        facts = loaded.facts
        del loaded, paired  # free the runtimes before the next batch size compiles others
        gc.collect()
    if params.measure_accuracy:
        frames, truths = val_split(scenario.dataset.path, size)
        loaded = load(model_path, frames[0], backend=backend, precision=precision,
                      device=scenario.environment.device)
        metrics["accuracy/map50"], metrics["accuracy/map50_95"] = score(
            loaded.predict, frames, truths, "measuring accuracy on val")
    tracker.set_tags({**{f"env.{k}": v for k, v in facts.items()}, **cpu_flags(),
                      "benchmark.backend": backend, "benchmark.model_file": model_path.name,
                      "benchmark.steady": str(steady).lower()})
    tracker.log_metrics(metrics)
    return PipelineResult(metrics=metrics)


def _backend(requested: str, model_path: Path) -> str:
    try:
        return runtime_for(requested, backend_of(model_path))
    except ValueError as exc:
        raise BackendMismatchError(f"{model_path.name}: {exc}") from None


def _check_device(backend: str, device: str) -> None:
    problem = device_problem(backend, device)
    if problem:
        raise BackendMismatchError(f"environment.device: {problem}")


def _load_baseline(path: Path, frame: Any, scenario: InferenceBenchmarkScenario,
                   precision: str) -> LoadedModel:
    """The baseline model on the scenario's device if its runtime names it, else the CPU."""
    params, device = scenario.benchmark, scenario.environment.device
    backend = backend_of(path)
    return load(path, frame, backend=backend, precision=precision, threads=params.num_threads,
                device=device_or_cpu(backend, device), hint=params.hint)


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
    import torch
    from ultralytics.utils.nms import non_max_suppression

    position = [0]

    def call() -> None:
        picked = [images[(position[0] + k) % len(images)] for k in range(batch)]
        position[0] += batch
        output = loaded.predict(np.concatenate([letterbox(p, size) for p in picked]))
        non_max_suppression(torch.as_tensor(np.asarray(output)), conf_thres=0.25, iou_thres=0.7)

    return call


def latency_stats(times: list[float], batch: int, wall_s: float) -> dict[str, float]:
    """Latency percentiles, mean, std, min, max (ms), throughput (images/s), count, drift."""
    import numpy as np

    values = np.asarray(times)
    stats = {f"latency_p{q}_ms": float(np.percentile(values, q)) for q in PERCENTILES}
    stats.update({"latency_mean_ms": float(values.mean()), "latency_std_ms": float(values.std()),
                  "latency_min_ms": float(values.min()), "latency_max_ms": float(values.max()),
                  "fps": batch * len(values) / wall_s, "iterations": float(len(values)),
                  "latency_drift": latency_drift(times)})
    return stats


def latency_drift(times: list[float]) -> float:
    """Highest over lowest median of up to ``DRIFT_PARTS`` consecutive parts of the run (at
    least 10 iterations each): 1.0 when the machine ran at one speed throughout."""
    import numpy as np

    parts = np.array_split(np.asarray(times), max(1, min(DRIFT_PARTS, len(times) // 10)))
    medians = [float(np.median(part)) for part in parts]
    return max(medians) / min(medians)


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
