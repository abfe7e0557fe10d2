"""Wrapper overhead: the same training through `siteml run` and through bare Ultralytics.

All are cold processes training yolov11n from scratch on the same synthetic dataset with the
same seed, epochs and arguments, timed interleaved in one run (the machine is shared and noisy).
Bare Ultralytics gets the same offline settings but records nothing. siteml also computes on
every core where Ultralytics leaves one to its loader workers, so a third series runs bare
Ultralytics with that same thread setting: siteml / that one is the wrapper's own overhead.
Goal (issue 4): <= 1.05.

    python benchmarks/train_overhead.py [--epochs 3] [--repeats 3]
        [--train-images 200 --val-images 50 --imgsz 320]  (the published figure's sizes)
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
from siteml.backends.ultralytics import offline_ultralytics
scenario = yaml.safe_load(Path(sys.argv[1]).read_text())
work = Path(sys.argv[2])
offline_ultralytics(work)
from ultralytics import YOLO
data = training_view(Path(scenario["dataset"]["path"]), scenario["task"]["classes"], work / "view")
model = YOLO("yolo11n.yaml")
if sys.argv[3] == "all-cores":
    from siteml.backends.ultralytics import use_all_cores
    model.add_callback("on_pretrain_routine_start", use_all_cores)
model.train(data=str(data), imgsz=scenario["model"]["input_size"], device="cpu",
                           seed=0, pretrained=False, project=str(work / "runs"), name="train",
                           exist_ok=True, plots=True, verbose=False, val=True,
                           **scenario["training"])
"""


BARE_VARIANTS = (("bare Ultralytics", "default"), ("bare, all cores", "all-cores"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--val-images", type=int, default=50)
    parser.add_argument("--imgsz", type=int, default=320, help="a multiple of 32")
    args = parser.parse_args()
    images = args.train_images + args.val_images
    from siteml.data.synth import synthesize
    from siteml.scenario.factory import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        found = synthesize(root / "data", ["helmet", "vest", "person"],
                           {"train": args.train_images, "val": args.val_images},
                           imgsz=args.imgsz, seed=0)
        scenario = {
            "name": "overhead", "version": "v1", "experiment_type": "train",
            "site": {"customer": "bench", "region": "r", "plant": "p", "zone": "z"},
            "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
            "model": {"architecture": "yolov11n", "input_size": args.imgsz, "num_classes": 3},
            "environment": {"device": "cpu", "seed": 0},
            "dataset": {"version": "synth", "dvc_hash": found.md5, "path": str(root / "data"),
                        "image_count": images},
            "training": {"epochs": args.epochs, "batch": 16, "workers": 0},
        }
        path = root / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario, sort_keys=False))
        full = load_scenario(path).training.ultralytics_arguments()  # defaults included
        (root / "bare.yaml").write_text(yaml.safe_dump({**scenario, "training": full}))
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}
        times: dict[str, list[float]] = {"siteml run": [], "bare Ultralytics": [],
                                         "bare, all cores": []}
        for i in range(args.repeats):
            times["siteml run"].append(wall(
                [sys.executable, "-m", "siteml", "run", str(path), "--set", f"version=v{i + 1}"],
                env, root))
            for name, threads in BARE_VARIANTS:
                times[name].append(wall([sys.executable, "-c", BARE, str(root / "bare.yaml"),
                                         str(root / f"{threads}{i}"), threads], env, root))
    med = report(times)
    print(f"ratio siteml / bare Ultralytics defaults: "
          f"{med['siteml run'] / med['bare Ultralytics']:.3f}")
    verdict(f"wrapper overhead, siteml / bare all cores ({args.epochs} epochs, {images} images, "
            f"{args.imgsz} px)", med["siteml run"] / med["bare, all cores"], 1.05)


if __name__ == "__main__":
    main()
