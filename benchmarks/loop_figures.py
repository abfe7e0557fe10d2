"""Figures of the loop from a site's frames back to its dataset (issue 28), measured on the demo
store (``demo_store.py``; its INT8 variant serves, the trained model is its FP32 source).

- ``speed``: frames mined per second on this machine, both models run on every frame (the
  serving INT8 variant and the FP32 source with its features, both in OpenVINO), at the
  demo's input size: ``mine/frames_per_s`` of a real ``siteml run`` of a mine scenario over
  ``--frames`` frames made from the demo's images (goal: >= 40 at 320 px on 2 cores).

    python benchmarks/loop_figures.py --parts speed --frames 400

- ``grow``: ``siteml data grow`` of ``--grow-frames`` labelled frames into a parent of
  ``--grow-images`` images (synthetic, 64 px, 20 cameras), after the parent was hashed and
  profiled as its import and its training do (goal: 1,000 into 100,000 in <= 10 s); beside it,
  in the same run, what reading the whole grown version costs: a cold hash of it (a file state
  that knows nothing), and the ratio of the two.

    python benchmarks/loop_figures.py --parts grow --grow-images 100000 --grow-frames 1000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from demo_store import add_demo_options, demo_from_args, demo_imgsz, siteml, write_scenario
from mlflow import MlflowClient

from siteml.core import keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="speed,grow",
                        help="which figures, comma-separated: speed, grow")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--grow-images", type=int, default=100_000)
    parser.add_argument("--grow-frames", type=int, default=1000)
    parser.add_argument("--grow-dir", type=Path, default=Path("/tmp/siteml-grow-bench"))
    add_demo_options(parser)
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "speed" in parts:
        speed(demo_from_args(args), args.frames)
    if "grow" in parts:
        grow(args.grow_dir.absolute(), args.grow_images, args.grow_frames)


def speed(folder: Path, count: int) -> None:
    """One mine run over ``count`` frames (the demo's images in turns, two cameras)."""
    frames = folder / "mine-frames"
    shutil.rmtree(frames, ignore_errors=True)
    frames.mkdir()
    images = sorted((folder / "data").rglob("*.jpg"))
    for index in range(count):
        shutil.copy2(images[index % len(images)], frames / f"cam{index % 2}_{index:06d}.jpg")
    scenario = write_scenario(folder, "mine-speed", {
        "name": "demo-mine-speed", "version": "v1", "experiment_type": "mine",
        "mine": {"source": f"{_site(folder)}/ppe__openvino_int8@candidate",
                 "frames": str(frames), "budget": 50, "novelty_images": 64}})
    outcome = siteml(folder, "run", str(scenario), "--rerun")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    metrics = MlflowClient(uri, uri).get_run(outcome["run_id"]).data.metrics
    size = demo_imgsz(folder)
    rate = metrics[keys.MINE_FRAMES_PER_S]
    verdict = ("met" if rate >= 40 else "NOT met") if size >= 320 else "n/a below 320 px"
    print(f"mining speed: {rate:.1f} frames/s over {count} frames at {size} px (the INT8 variant "
          f"and the FP32 model with its features on each), {metrics[keys.MINE_SELECTED]:.0f} "
          f"picked  goal >= 40 at 320 px -> {verdict}")


def grow(root: Path, images: int, frames: int) -> None:
    """Time ``siteml data grow`` against a cold hash of the version it wrote."""
    from siteml.data.dvc_hash import dir_hash, write_dvc_file
    from siteml.data.profile import profile_dataset

    shutil.rmtree(root, ignore_errors=True)
    os.environ["SITEML_CACHE_DIR"] = str(root / "file-state")  # this run's, not the user's
    rng = np.random.default_rng(0)
    parent = root / "v1"
    for index in range(images):
        split = "val" if index % 5 == 0 else "train"
        _labelled_image(rng, parent / "images" / split, parent / "labels" / split,
                        f"cam{index % 20:02d}_{index:07d}")
    (parent / "data.yaml").write_text("names: {0: helmet, 1: vest, 2: person}\n")
    start = time.perf_counter()
    write_dvc_file(parent, dir_hash(parent))
    profile_dataset(parent)
    warm_up = time.perf_counter() - start
    new = root / "increment"
    for index in range(frames):
        _labelled_image(rng, new / "images", new / "labels", f"cam{20 + index % 3}__f{index:05d}")
    (new / "classes.txt").write_text("helmet\nvest\nperson\n")
    (new / "import.json").write_text(json.dumps({"siteml_labelled": 1, "mine_run": "bench",
                                                 "tool": "labelstudio", "project": "1"}))
    start = time.perf_counter()
    grown = json.loads(subprocess.run(
        [sys.executable, "-m", "siteml", "data", "grow", str(parent), str(new), "--out",
         str(root / "v2"), "--group-by", r"cam\d+", "--json"],
        check=True, capture_output=True, text=True).stdout)
    took = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as cold:
        os.environ["SITEML_CACHE_DIR"] = cold
        start = time.perf_counter()
        assert dir_hash(root / "v2").md5 == grown["dataset"]["dvc_hash"]
        whole = time.perf_counter() - start
    verdict = "met" if took <= 10 else "NOT met"
    print(f"grow: {frames} frames into {images} images in {took:.2f} s (the command, process "
          f"start included), {grown['hashes_reused']} hashes reused, {grown['files_hashed']} "
          f"files hashed; a cold hash of the grown version {whole:.2f} s; ratio "
          f"{took / whole:.2f}  goal <= 10 s at 1,000 into 100,000 -> "
          f"{verdict if images >= 100_000 else 'n/a below 100,000'}")
    print(f"grow: the parent's hashing and profiling before (as its import and training do): "
          f"{warm_up:.1f} s, once")
    shutil.rmtree(root, ignore_errors=True)


def _labelled_image(rng: np.random.Generator, images: Path, labels: Path, stem: str) -> None:
    """A 64-px noise JPEG (every one different) and a one-box label."""
    from PIL import Image

    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (images / f"{stem}.jpg").write_bytes(buffer.getvalue())
    (labels / f"{stem}.txt").write_text(f"{int(rng.integers(0, 3))} 0.5 0.5 0.2 0.2\n")


def _site(folder: Path) -> str:
    import yaml

    from siteml.core.naming import site_path

    site = yaml.safe_load(next((folder / "configs" / "sites").glob("*.yaml")).read_text())
    return site_path(site["customer"], site["region"], site["plant"], site["zone"])


if __name__ == "__main__":
    main()
