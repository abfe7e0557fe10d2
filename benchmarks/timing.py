"""Shared by the benchmark scripts: time cold commands, run OpenVINO's ``benchmark_app``, and
print medians side by side."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def benchmark_app(xml: Path, figure: str, *options: str) -> float:
    """A figure ``benchmark_app`` prints (``Median`` ms, ``Throughput`` FPS) for ``xml`` on the
    CPU in f32 with ``options``: this environment's ``benchmark_app``, with HOME pointed at a
    folder whose consent file declines OpenVINO telemetry (nothing is sent or written to the
    user's home)."""
    beside = Path(sys.executable).parent / "benchmark_app"  # OpenVINO's, of this environment
    command = str(beside) if beside.exists() else shutil.which("benchmark_app") or "benchmark_app"
    with tempfile.TemporaryDirectory(prefix="siteml-bench-home-") as home:
        (Path(home) / "intel").mkdir()
        (Path(home) / "intel" / "openvino_telemetry").write_text("0")
        result = subprocess.run(
            [command, "-m", str(xml), "-d", "CPU", "-infer_precision", "f32", *options],
            capture_output=True, text=True, check=True, env={**os.environ, "HOME": home})
    found = re.search(rf"{figure}:\s+([\d.]+)", result.stdout + result.stderr)
    if not found:
        raise RuntimeError(f"no {figure} in benchmark_app output:\n{result.stdout[-2000:]}")
    return float(found.group(1))
