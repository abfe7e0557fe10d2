"""Timing loops and latency statistics: pure Python and numpy, the same for every runtime."""

from __future__ import annotations

import time
from collections.abc import Callable

from siteml.core import keys

PERCENTILES = (50, 90, 95, 99)
DRIFT_PARTS = 10
DRIFT_WARNING = 1.10
"""Above this latency drift the machine changed speed during the run."""
REWARM = 3
"""Untimed calls before each later turn of an interleaved timing (caches held another model)."""


def latencies_ms(infer: Callable[[], float | None], warmup: int, iterations: int | None = None,
                 duration_s: float | None = None) -> list[float]:
    """``warmup`` untimed calls, then the time (ms) of each call, for ``iterations`` calls or
    until ``duration_s`` seconds have passed: the time a call returns (the runtime's own
    clock), else the time it took."""
    for _ in range(warmup):
        infer()
    clock = time.perf_counter
    times = []
    deadline = clock() + duration_s if duration_s else None
    while (len(times) < iterations) if iterations else (clock() < deadline):
        start = clock()
        own = infer()
        times.append((clock() - start) * 1000 if own is None else own)
    return times


def interleaved_latencies_ms(calls: dict[str, Callable[[], float | None]], warmup: int,
                             iterations: int, rounds: int = 5) -> dict[str, list[float]]:
    """The time (ms) of each call of several models, ``iterations`` each, taken in turns over
    ``rounds`` so that a change in the machine's speed hits all of them alike: ``warmup``
    untimed calls before a model's first turn, ``REWARM`` before each later one."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    turns = [iterations // rounds + (k < iterations % rounds) for k in range(rounds)]
    for index, count in enumerate(t for t in turns if t):
        for label, call in calls.items():
            times[label] += latencies_ms(call, warmup if index == 0 else REWARM, count)
    return times


def latency_stats(times: list[float], batch: int, wall_s: float) -> dict[str, float]:
    """Latency percentiles, mean, std, min, max (ms), throughput (images/s), count, drift."""
    import numpy as np

    values = np.asarray(times)
    stats = {keys.latency_percentile(q): float(np.percentile(values, q)) for q in PERCENTILES}
    stats.update({"latency_mean_ms": float(values.mean()), "latency_std_ms": float(values.std()),
                  "latency_min_ms": float(values.min()), "latency_max_ms": float(values.max()),
                  keys.FPS: batch * len(values) / wall_s, "iterations": float(len(values)),
                  keys.LATENCY_DRIFT: latency_drift(times)})
    return stats


def latency_drift(times: list[float]) -> float:
    """Highest over lowest median of up to ``DRIFT_PARTS`` consecutive parts of the run (at
    least 10 iterations each): 1.0 when the machine ran at one speed throughout."""
    import numpy as np

    parts = np.array_split(np.asarray(times), max(1, min(DRIFT_PARTS, len(times) // 10)))
    medians = [float(np.median(part)) for part in parts]
    return max(medians) / min(medians)
