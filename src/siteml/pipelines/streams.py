"""Cameras per box: how many camera streams a model serves at a frame rate.

A camera delivers a frame every ``1 / fps`` seconds; cameras are evenly out of phase. Each has
its own thread and stream (an OpenVINO infer request of a throughput-compiled model, an ONNX
Runtime binding, the PyTorch module), which reads the newest frame when it is free, as a video
application does: frames that arrive while it is busy with an older one are dropped. A frame's
latency runs from its arrival to its result. A stream sustains the rate when it drops at most
``MAX_DROPPED`` of its frames and its p95 latency is within the limit.

The search starts where the flat-out throughput (``capacity``: the model's parallel streams
running back to back, as ``benchmark_app -hint throughput`` does) says it could, steps away
from there in doubling steps until one count passes and another fails, then bisects between
them; one camera is always measured too, for the curve. When every count up to the limit passes,
the search stops there and the result says so (``capped``): the box serves at least that many.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from siteml.core import keys

MAX_DROPPED = 0.05
MAX_CAMERAS = 256


@dataclass(frozen=True)
class Step:
    """One measured camera count.

    Attributes:
        cameras: Streams run at once.
        total_fps: Frames processed per second, all streams together.
        slowest_fps: The slowest stream's frames per second.
        p50_ms: Median frame latency over every stream.
        p95_ms: The worst stream's p95 frame latency.
        sustained: Whether every stream kept the rate within the latency limit.
    """

    cameras: int
    total_fps: float
    slowest_fps: float
    p50_ms: float
    p95_ms: float
    sustained: bool


@dataclass(frozen=True)
class Cameras:
    """The search's outcome: the largest sustained count (0: not even one), the flat-out
    throughput, every step measured, by camera count, and the most the search tried."""

    max_cameras: int
    capacity_fps: float
    steps: list[Step]
    limit: int

    @property
    def capped(self) -> bool:
        """Whether the limit itself passed: the box serves ``max_cameras`` or more."""
        return self.max_cameras >= self.limit

    def summary(self, fps: float) -> str:
        """The outcome in a line; where the limit passed, it says so and how to go further."""
        line = (f"{camera_count(self.max_cameras, self.capped)} cameras at {fps:g} FPS "
                f"(flat out: {self.capacity_fps:.1f} FPS)")
        if not self.capped:
            return line
        more = (f"raise benchmark.streams (up to {MAX_CAMERAS}) to find the most"
                if self.limit < MAX_CAMERAS else f"{MAX_CAMERAS} is the most siteml tries")
        return (f"{line}: the limit, not the box's most (every count up to {self.limit} "
                f"passed; flat out is {self.capacity_fps / fps:.0f} cameras' worth): {more}")

    def metrics(self, fps: float, max_latency_ms: float) -> dict[str, float]:
        """``streams/*`` metrics; the latencies and total rate at ``max_cameras``."""
        figures = {keys.STREAMS_MAX_CAMERAS: float(self.max_cameras),
                   keys.STREAMS_CAPPED: float(self.capped),
                   keys.STREAMS_TARGET_FPS: fps, keys.STREAMS_MAX_LATENCY: max_latency_ms,
                   keys.STREAMS_CAPACITY_FPS: self.capacity_fps}
        chosen = next((s for s in self.steps if s.cameras == self.max_cameras), None)
        if chosen is not None:
            figures.update({keys.STREAMS_TOTAL_FPS: chosen.total_fps,
                            keys.STREAMS_P50: chosen.p50_ms, keys.STREAMS_P95: chosen.p95_ms})
        return figures


def camera_count(count: float, capped: bool) -> str:
    """A camera count as shown: ``>=32`` where the search stopped at its limit of 32."""
    return f"{'>=' if capped else ''}{count:.0f}"


Stream = Callable[[], None]
"""One inference of a stream's frame; streams run at once from their own threads."""


def find_max_cameras(open_stream: Callable[[int], Stream], parallel: int, fps: float,
                     max_latency_ms: float, seconds: float, limit: int = MAX_CAMERAS,
                     report: Callable[[Step], None] = lambda step: None) -> Cameras:
    """The largest number of cameras (up to ``limit``) that ``open_stream(camera)`` serves at
    ``fps`` each, every stream within ``max_latency_ms`` at p95, each count run ``seconds``."""
    capacity = flat_out_fps([open_stream(k) for k in range(parallel)], seconds)
    measured: dict[int, Step] = {}

    def passes(count: int) -> bool:
        if count not in measured:
            measured[count] = run_cameras([open_stream(k) for k in range(count)], fps,
                                          max_latency_ms, seconds)
            report(measured[count])
        return measured[count].sustained

    most = largest_passing(passes, max(1, min(limit, int(capacity // fps))), limit)
    passes(1)
    return Cameras(most, capacity, [measured[k] for k in sorted(measured)], limit)


def largest_passing(passes: Callable[[int], bool], guess: int, limit: int) -> int:
    """The largest count in 1..``limit`` that ``passes`` (0: none), for a ``passes`` true up
    to some count and false after it: doubling steps from ``guess``, then bisection."""
    low, high = _bracket(passes, guess, limit)
    while high - low > 1:  # low passes, high fails (or is past the limit)
        middle = (low + high) // 2
        low, high = (middle, high) if passes(middle) else (low, middle)
    return low


def _bracket(passes: Callable[[int], bool], guess: int, limit: int) -> tuple[int, int]:
    """Counts ``low`` < ``high`` with ``low`` passing (0: none does) and ``high`` failing
    (``limit + 1``: the limit passed), found by steps that double away from ``guess``."""
    step = 1
    if passes(guess):
        low = guess
        while low < limit:
            high = min(limit, low + step)
            if not passes(high):
                return low, high
            low, step = high, step * 2
        return limit, limit + 1
    high = guess
    while high > 1:
        low = max(1, high - step)
        if passes(low):
            return low, high
        high, step = low, step * 2
    return 0, 1


def flat_out_fps(streams: Sequence[Stream], seconds: float) -> float:
    """Inferences per second with every stream running back to back for ``seconds``."""
    counts = [0] * len(streams)

    def work(index: int, stream: Stream, start: float, end: float) -> None:
        while time.perf_counter() < end:
            stream()
            counts[index] += 1

    wall = _together(streams, work, seconds)
    return sum(counts) / wall


def run_cameras(streams: Sequence[Stream], fps: float, max_latency_ms: float,
                seconds: float) -> Step:
    """Each stream serves one camera at ``fps`` for ``seconds``, newest frame first."""
    import numpy as np

    interval = 1 / fps
    latencies: list[list[float]] = [[] for _ in streams]
    dropped = [0] * len(streams)

    def work(index: int, stream: Stream, start: float, end: float) -> None:
        phase = start + interval * index / len(streams)
        frame = 0
        while (arrival := phase + frame * interval) < end:
            wait = arrival - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            stream()
            done = time.perf_counter()
            latencies[index].append((done - arrival) * 1000)
            newest = int((done - phase) // interval)  # the latest frame arrived by now
            dropped[index] += max(0, newest - frame - 1)
            frame = max(frame + 1, newest)

    _together(streams, work, seconds)
    rates = [len(times) / seconds for times in latencies]
    p95s = [float(np.percentile(times, 95)) if times else float("inf") for times in latencies]
    kept = all(drops <= MAX_DROPPED * (drops + len(times))
               for drops, times in zip(dropped, latencies, strict=True))
    every = [t for times in latencies for t in times]
    return Step(len(streams), sum(rates), min(rates),
                float(np.median(every)) if every else float("inf"), max(p95s),
                kept and max(p95s) <= max_latency_ms)


def _together(streams: Sequence[Stream],
              work: Callable[[int, Stream, float, float], None], seconds: float) -> float:
    """Run ``work(index, stream, start, end)`` for every stream in its own thread, all starting
    at one moment after each stream's untimed first inference; return the wall time (s)."""
    for stream in streams:
        stream()
    start = time.perf_counter() + 0.05
    end = start + seconds
    threads = [threading.Thread(target=work, args=(index, stream, start, end), daemon=True)
               for index, stream in enumerate(streams)]
    for thread in threads:
        thread.start()
    while time.perf_counter() < start:
        time.sleep(start - time.perf_counter())
    for thread in threads:
        thread.join()
    return max(time.perf_counter(), end) - start


def log_curve(tracker: Any, cameras: Cameras, fps: float, max_latency_ms: float) -> None:
    """The measured steps as ``streams/curve.csv`` and a plot of rate and p95 by camera count."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    folder = tracker.workdir / "streams"
    folder.mkdir(exist_ok=True)
    with (folder / "curve.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cameras", "total_fps", "slowest_fps", "p50_ms", "p95_ms", "sustained"])
        writer.writerows((s.cameras, round(s.total_fps, 2), round(s.slowest_fps, 2),
                          round(s.p50_ms, 2), round(s.p95_ms, 2), s.sustained)
                         for s in cameras.steps)
    figure, rate = pyplot.subplots(figsize=(6, 3.5))
    counts = [s.cameras for s in cameras.steps]
    rate.plot(counts, [s.total_fps for s in cameras.steps], "o-", label="total FPS")
    rate.plot(counts, [fps * n for n in counts], ":", color="grey", label=f"{fps:g} FPS each")
    rate.set(xlabel="cameras", ylabel="frames/s",
             title=f"{camera_count(cameras.max_cameras, cameras.capped)} cameras at {fps:g} FPS")
    latency = rate.twinx()
    latency.plot(counts, [s.p95_ms for s in cameras.steps], "s--", color="tab:red",
                 label="worst p95 ms")
    latency.axhline(max_latency_ms, color="tab:red", linewidth=0.8)
    latency.set_ylabel("p95 latency (ms)")
    figure.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(folder / "cameras.png", dpi=100)
    pyplot.close(figure)
    tracker.log_artifact(folder, "streams")
