"""Issue 16's export figure, measured on this machine: `siteml export` of the demo's INT8
variant from a plain `mlflow server` into each layout, in turns; the command's wall time, the
export's own time (from the call, after the imports), the seconds its download took, and what
is beyond the download, for the export and for the whole command (goal: under 2 s).

    python benchmarks/export_figures.py [--rounds 3] [--demo-epochs 2] [--demo-train-images 16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo_store import add_demo_options, demo_size
from team_server_overhead import free_port, start
from timing import wall

from siteml.lifecycle.demo import prepare

LAYOUTS = ("ovms", "triton", "plain")
VARIANT = "acme-steel/ulsan-plant1/welding/ppe__openvino_int8@candidate"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    add_demo_options(parser, folder=False)
    parser.set_defaults(demo_epochs=2, demo_train_images=16, demo_val_images=8, demo_imgsz=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"http://127.0.0.1:{free_port()}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        server = start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                        f"sqlite:///{root}/server.db", "--artifacts-destination",
                        str(root / "art"), "--port", url.rsplit(":", 1)[1], "--workers", "1"],
                       base, url)
        try:
            env = {**base, "MLFLOW_TRACKING_URI": url}
            paths = prepare(root / "demo", demo_size(args))
            wall([sys.executable, "-m", "siteml", "run", str(paths[0]), str(paths[1])], env)
            rows: dict[str, list[tuple[float, float, float]]] = {layout: [] for layout in LAYOUTS}
            for n in range(args.rounds):
                for layout in LAYOUTS:
                    started = time.perf_counter()
                    out = subprocess.run(
                        [sys.executable, "-m", "siteml", "export", VARIANT,
                         str(root / f"box-{n}-{layout}"), "--layout", layout, "--json"],
                        env=env, capture_output=True, text=True, check=True).stdout
                    seconds = time.perf_counter() - started
                    outcome = json.loads(out)
                    rows[layout].append((seconds, outcome["seconds"], outcome["download_s"]))
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)
    print(f"siteml export of the demo's INT8 variant from a plain mlflow server, "
          f"{args.rounds} rounds:")
    worst = 0.0
    for layout, runs in rows.items():
        command, export, download = (statistics.median(run[i] for run in runs) for i in range(3))
        beyond = statistics.median(run[1] - run[2] for run in runs)
        worst = max(worst, beyond)
        print(f"{layout:>6}: command {command:.2f} s (beyond the download "
              f"{command - download:.2f} s), export {export:.2f} s, download {download:.2f} s, "
              f"export beyond the download {beyond:.2f} s")
    print(f"export time beyond the download (worst layout): {worst:.2f} s  goal < 2 -> "
          f"{'met' if worst < 2 else 'NOT met'}")

if __name__ == "__main__":
    main()
