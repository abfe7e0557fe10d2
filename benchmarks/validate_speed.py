"""`siteml validate` on 200 scenario files, cold process, against the `import yaml, pydantic` floor.

The commands are timed interleaved in one run (the machine is shared and noisy); the script
prints medians and ratios. Goal (issue 2): under 0.5 s, and under 3x the floor. `import pydantic`
is lazy and loads almost nothing, so a second floor also defines one pydantic model, which is
the least any validation with pydantic costs.

    python benchmarks/validate_speed.py [--repeats 11]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from timing import wall

REPO = Path(__file__).resolve().parents[1]


def make_corpus(root: Path, count: int) -> None:
    """Copy the shipped scenarios (with the bases they extend, and the site files) into
    ``root`` until there are ``count`` scenarios, one copy of the folder tree at a time."""
    shutil.copytree(REPO / "configs", root / "configs")
    sources = sorted(p.relative_to(REPO / "experiments")
                     for p in (REPO / "experiments").rglob("*.yaml"))
    scenarios = [p for p in sources if not p.name.startswith("_")]
    for i in range(count):
        copy = root / "experiments" / f"copy-{i // len(scenarios)}"
        for src in [scenarios[i % len(scenarios)], *(p for p in sources if p not in scenarios)]:
            (copy / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / "experiments" / src, copy / src)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_corpus(root, args.files)
        validate = [sys.executable, "-m", "siteml", "validate", str(root / "experiments")]
        commands = {
            "validate": validate,
            "floor": [sys.executable, "-c", "import yaml, pydantic"],
            "floor+model": [sys.executable, "-c", "import yaml, pydantic\n"
                            "class M(pydantic.BaseModel):\n    a: int"],
        }
        runs: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():
            wall(cmd)  # warm the page cache
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                runs[name].append(wall(cmd))
    med = {name: statistics.median(times) for name, times in runs.items()}
    v = med["validate"]
    print(f"siteml validate ({args.files} files): median {v:.3f} s "
          f"(min {min(runs['validate']):.3f}, max {max(runs['validate']):.3f})")
    print(f"python -c 'import yaml, pydantic':            median {med['floor']:.3f} s")
    print(f"  ... and define one pydantic model:           median {med['floor+model']:.3f} s")
    print(f"ratio validate / floor: {v / med['floor']:.2f}x; / floor+model: "
          f"{v / med['floor+model']:.2f}x")
    print(f"goal < 0.5 s: {'met' if v < 0.5 else 'NOT met'}; goal < 3x floor: "
          f"{'met' if v / med['floor'] < 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
