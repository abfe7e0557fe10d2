"""Shared by the benchmark scripts: time cold commands and print medians side by side."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path


def wall(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Seconds one command takes, start to exit. Its output is dropped; if it fails, its
    standard error is raised."""
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: {' '.join(cmd)[:300]}\n"
                           f"{result.stderr[-3000:]}")
    return elapsed


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
