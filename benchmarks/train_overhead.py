"""Wrapper overhead: the same training through `siteml run` and through bare Ultralytics.

Both are cold processes training yolov11n from scratch on the same synthetic dataset with the
same seed, epochs and arguments, timed interleaved in one run (the machine is shared and noisy).
Bare Ultralytics gets the same offline settings but records nothing. Goal (issue 4): <= 1.05.

    python benchmarks/train_overhead.py [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml
from timing import report, verdict, wall

BARE = """
import sys, yaml
from pathlib import Path
from siteml.data.layout import training_view
from siteml.pipelines.ultralytics_env import offline_ultralytics
scenario = yaml.safe_load(Path(sys.argv[1]).read_text())
work = Path(sys.argv[2])
offline_ultralytics(work)
from ultralytics import YOLO
data = training_view(Path(scenario["dataset"]["path"]), scenario["task"]["classes"], work / "view")
YOLO("yolo11n.yaml").train(data=str(data), imgsz=scenario["model"]["input_size"], device="cpu",
                           seed=0, pretrained=False, project=str(work / "runs"), name="train",
                           exist_ok=True, plots=True, verbose=False, val=True,
                           **scenario["training"])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from siteml.data.synth import synthesize
    from siteml.scenario.factory import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        found = synthesize(root / "data", ["helmet", "vest", "person"],
                           {"train": 200, "val": 50}, imgsz=320, seed=0)
        scenario = {
            "name": "overhead", "version": "v1", "experiment_type": "train",
            "site": {"customer": "bench", "region": "r", "plant": "p", "zone": "z"},
            "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
            "model": {"architecture": "yolov11n", "input_size": 320, "num_classes": 3},
            "environment": {"device": "cpu", "seed": 0},
            "dataset": {"version": "synth", "dvc_hash": found.md5, "path": str(root / "data"),
                        "image_count": 250},
            "training": {"epochs": args.epochs, "batch": 16, "workers": 0},
        }
        path = root / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario, sort_keys=False))
        full = load_scenario(path).training.model_dump()  # same arguments, defaults included
        (root / "bare.yaml").write_text(yaml.safe_dump({**scenario, "training": full}))
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}
        times: dict[str, list[float]] = {"siteml run": [], "bare Ultralytics": []}
        for i in range(args.repeats):
            times["siteml run"].append(wall(
                [sys.executable, "-m", "siteml", "run", str(path), "--set", f"version=v{i + 1}"],
                env))
            work = root / f"bare{i}"
            times["bare Ultralytics"].append(wall(
                [sys.executable, "-c", BARE, str(root / "bare.yaml"), str(work)], env))
    med = report(times)
    verdict(f"ratio siteml / bare ({args.epochs} epochs, 250 images, 320 px)",
            med["siteml run"] / med["bare Ultralytics"], 1.05)


if __name__ == "__main__":
    main()
