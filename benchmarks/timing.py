"""Shared by the benchmark scripts: time cold commands and print medians side by side."""

from __future__ import annotations

import statistics
import subprocess
import time


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds one command takes, start to exit (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def report(times: dict[str, list[float]], unit: str = "s") -> dict[str, float]:
    """Print each series' median, min, max and count; return the medians."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    width = max(map(len, times))
    for name, values in times.items():
        print(f"{name:>{width}}: median {medians[name]:.3f} {unit}  (min {min(values):.3f}, "
              f"max {max(values):.3f}, n={len(values)})")
    return medians


def verdict(label: str, value: float, goal: float) -> None:
    """Print a ratio against its goal (lower is better)."""
    print(f"{label}: {value:.3f}  goal <= {goal} -> {'met' if value <= goal else 'NOT met'}")
