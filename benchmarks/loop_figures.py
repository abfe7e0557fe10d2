"""Figures of the loop from a site's frames back to its dataset (issue 28), measured on the demo
store (``demo_store.py``; its INT8 variant serves, the trained model is its FP32 source).

- ``speed``: frames mined per second on this machine, both models run on every frame (the
  serving INT8 variant and the FP32 source with its features, both in OpenVINO), at the
  demo's input size: ``mine/frames_per_s`` of a real ``siteml run`` of a mine scenario over
  ``--frames`` frames made from the demo's images (goal: >= 40 at 320 px on 2 cores).

    python benchmarks/loop_figures.py --parts speed --frames 400
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from demo_store import add_demo_options, demo_from_args, demo_imgsz, siteml, write_scenario
from mlflow import MlflowClient

from siteml.core import keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="speed", help="which figures: speed")
    parser.add_argument("--frames", type=int, default=400)
    add_demo_options(parser)
    args = parser.parse_args()
    folder = demo_from_args(args)
    if "speed" in args.parts.split(","):
        speed(folder, args.frames)


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


def _site(folder: Path) -> str:
    import yaml

    from siteml.core.naming import site_path

    site = yaml.safe_load(next((folder / "configs" / "sites").glob("*.yaml")).read_text())
    return site_path(site["customer"], site["region"], site["plant"], site["zone"])


if __name__ == "__main__":
    main()
