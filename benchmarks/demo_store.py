"""Shared by the quantization and benchmark figure scripts: the demo store they measure.

The published figures measure the full demo (15 epochs, 200 + 50 images, 320 px). The
``--demo-*`` options build a smaller one instead, for a quick check that a script runs:

    python benchmarks/demo_store.py --demo-dir /tmp/tiny-demo --demo-epochs 1 \\
        --demo-train-images 16 --demo-val-images 8 --demo-imgsz 64
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from siteml.lifecycle.demo import DemoSize, run_demo

DEFAULT_DIR = Path("/tmp/siteml-quant-bench")


def add_demo_options(parser: argparse.ArgumentParser, folder: bool = True) -> None:
    """The options naming the demo folder (unless ``folder`` is False: a script that builds
    fresh demos) and, when it must be built, its size."""
    group = parser.add_argument_group(
        "demo store", "where the demo is (built there first if it is not; the sizes only "
        "apply then)")
    if folder:
        group.add_argument("--demo-dir", type=Path, default=DEFAULT_DIR)
    size = DemoSize()
    group.add_argument("--demo-epochs", type=int, default=size.epochs)
    group.add_argument("--demo-train-images", type=int, default=size.train_images)
    group.add_argument("--demo-val-images", type=int, default=size.val_images)
    group.add_argument("--demo-imgsz", type=int, default=size.imgsz, help="a multiple of 32")
    group.add_argument("--demo-iterations", type=int, default=size.iterations,
                       help="timed iterations of each benchmark")
    group.add_argument("--demo-warmup", type=int, default=size.warmup)
    group.add_argument("--demo-cameras", type=int, default=size.cameras,
                       help="the most cameras the INT8 benchmark tries")
    group.add_argument("--demo-stream-seconds", type=float, default=size.stream_seconds)


def demo_size(args: argparse.Namespace) -> DemoSize:
    """The demo's size from the options ``add_demo_options`` added."""
    return DemoSize(args.demo_epochs, args.demo_train_images, args.demo_val_images,
                    args.demo_imgsz, args.demo_iterations, args.demo_warmup, args.demo_cameras,
                    args.demo_stream_seconds)


def demo_from_args(args: argparse.Namespace) -> Path:
    """``demo_folder`` with the options ``add_demo_options`` added."""
    return demo_folder(args.demo_dir, demo_size(args))


def demo_folder(path: Path, size: DemoSize | None = None) -> Path:
    """``path`` as an absolute folder holding a finished `siteml demo` (run now if it is not,
    at the size given, else the README's)."""
    folder = path.absolute()
    if not (folder / "mlflow.db").exists():
        run_demo(folder, size or DemoSize())  # on the folder's own store, whatever the environment
    return folder


def demo_scenario(folder: Path) -> tuple[Path, dict]:
    """The demo's quant scenario file and its content."""
    path = next((folder / "experiments").rglob("*-quant-v1.yaml"))
    return path, yaml.safe_load(path.read_text())


def demo_imgsz(folder: Path) -> int:
    """The input size the demo's model was trained and exported at."""
    return demo_scenario(folder)[1]["model"]["input_size"]


def siteml_run(folder: Path, scenario: Path, pythonpath: str | None = None) -> dict:
    """`siteml run SCENARIO --rerun --json` (``siteml``); its JSON outcome."""
    return siteml(folder, "run", str(scenario), "--rerun", pythonpath=pythonpath)


def siteml(folder: Path, *args: str, pythonpath: str | None = None) -> dict:
    """`siteml ARGS --json` as a fresh process in the demo folder, on the folder's own store
    (whatever ``MLFLOW_TRACKING_URI`` says), with ``pythonpath`` (another siteml source tree)
    first if given; its JSON outcome.

    Raises:
        RuntimeError: the command failed (with its standard error).
    """
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    result = subprocess.run([sys.executable, "-m", "siteml", *args, "--json"], cwd=folder,
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"siteml {' '.join(args[:2])} exited {result.returncode}:\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def write_scenario(folder: Path, stem: str, changes: dict) -> Path:
    """A scenario beside the demo's (same site, task, model, dataset), with ``changes`` over
    the demo's quant scenario minus its ``quantization`` section; return its path."""
    template_path, template = demo_scenario(folder)
    template.pop("quantization")
    path = template_path.with_name(f"{stem}.yaml")
    path.write_text(yaml.safe_dump({**template, **changes}, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the demo store the figure scripts "
                                     "measure (nothing happens if it is there already).")
    add_demo_options(parser)
    folder = demo_from_args(parser.parse_args())
    print(f"demo store ready: {folder} ({demo_imgsz(folder)} px)")


if __name__ == "__main__":
    main()
