"""Issue 26's quick-tier figure: `python -m pytest -m "not slow"` in one process against the
same under pytest-xdist (`-n N`), timed in turns in one run (the machine is shared and noisy).
Goal: the quick tier within 30 s on 2 cores.

    python benchmarks/quick_tier.py [--rounds 3] [--workers 2] [PATH...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from timing import report, wall

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("paths", nargs="*", default=["tests"], help="what to collect")
    args = parser.parse_args()
    pytest = [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider",
              *args.paths]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ways = {"one process": pytest, f"-n {args.workers}": [*pytest, "-n", str(args.workers)]}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way, cmd in ways.items():
            times[way].append(wall(cmd, env, REPO))
    print(f"quick tier ({' '.join(args.paths)}), {args.rounds} rounds in turns, "
          f"{os.cpu_count()} cores:")
    medians = report(times)
    print(f"ratio -n {args.workers} / one process: "
          f"{medians[f'-n {args.workers}'] / medians['one process']:.3f}")
    best = min(medians.values())
    print(f"quick tier, the faster way: {best:.1f} s  goal <= 30 -> "
          f"{'met' if best <= 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
