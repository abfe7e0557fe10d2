"""Issue 13's figures: what the champion rule costs, and what fine-tuning from the registry saves.

1. Site A trains a first model and promotes it @champion; a second training
   of site A then compares with it (``compare_to: champion``): the challenger and the champion
   scored on the same val split. Cost = that scoring's wall time / the training run's wall
   time (goal <= 5 % on the demo's sizes).
2. Site B (same customer, other synthetic images) trains from scratch and, on the same data,
   fine-tunes from site A's @champion: the first epoch at which val mAP50 reaches 0.5, each.

Every run is a fresh `siteml run` process on one embedded store, one at a time.

    python benchmarks/training_gates.py [--epochs 15] [--finetune-epochs 5]
        [--train-images 200 --val-images 50 --imgsz 320]  (the demo's sizes)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

CLASSES = ["helmet", "vest", "person"]
CUSTOMER = "bench"
TARGET = 0.5


def scenario(root: Path, data: dict, zone: str, version: str, training: dict,
             model: dict | None = None) -> Path:
    """A train scenario file for ``zone`` of the customer, on ``data`` (path, hash, count)."""
    path = root / f"{zone}-{version}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "gates", "version": version, "experiment_type": "train",
        "site": {"customer": CUSTOMER, "region": "ulsan", "plant": "plant1", "zone": zone},
        "task": {"type": "ppe", "classes": CLASSES},
        "model": {"architecture": "yolov11n", "input_size": data["imgsz"], "num_classes": 3,
                  **(model or {})},
        "environment": {"device": "cpu", "seed": 0},
        "dataset": {"version": "synth", "dvc_hash": data["hash"], "path": str(data["path"]),
                    "image_count": data["count"]},
        "training": training,
    }, sort_keys=False))
    return path


def siteml(env: dict, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "siteml", *args], env=env,
                            capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"siteml {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")


def run_of(client, zone: str, version: str):
    [run] = client.search_runs(
        [client.get_experiment_by_name(f"{CUSTOMER}/ulsan-plant1/{zone}").experiment_id],
        f"attributes.run_name = 'ppe-yolov11n-train-{version}'")
    return run


def first_epoch_reaching(client, run, target: float) -> int | None:
    history = client.get_metric_history(run.info.run_id, "val/map50")
    return next((m.step for m in sorted(history, key=lambda m: m.step) if m.value >= target),
                None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--val-images", type=int, default=50)
    parser.add_argument("--imgsz", type=int, default=320, help="a multiple of 32")
    args = parser.parse_args()
    from mlflow import MlflowClient

    from siteml.data.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        data = {}
        for site, seed in (("a", 0), ("b", 1)):
            found = synthesize(root / site, CLASSES, {"train": args.train_images,
                                                      "val": args.val_images},
                               imgsz=args.imgsz, seed=seed)
            data[site] = {"path": root / site, "hash": found.md5, "imgsz": args.imgsz,
                          "count": args.train_images + args.val_images}
        training = {"epochs": args.epochs, "batch": 16, "workers": 2, "patience": 0,
                    "close_mosaic": min(3, args.epochs)}
        siteml(env, "run", str(scenario(root, data["a"], "a", "v1", training)))
        siteml(env, "promote", f"{CUSTOMER}/ulsan-plant1/a/ppe/1", "champion", "--force")
        challenger = {**training, "gate": {"compare_to": "champion", "max_regression": 1.0}}
        siteml(env, "run", str(scenario(root, data["a"], "a", "v2", challenger)))
        parent = {"weights_path": f"{CUSTOMER}/ulsan-plant1/a/ppe@champion"}
        finetune = {**training, "epochs": args.finetune_epochs,
                    "close_mosaic": min(3, args.finetune_epochs)}
        siteml(env, "run", str(scenario(root, data["b"], "b", "v1", training)))
        siteml(env, "run", str(scenario(root, data["b"], "b", "v2", finetune, parent)))
        client = MlflowClient(uri, uri)
        run = run_of(client, "a", "v2")
        wall_s = (run.info.end_time - run.info.start_time) / 1000
        scoring_s = run.data.metrics["time/gate_scoring_s"]
        print(f"sizes: {args.train_images} train + {args.val_images} val images at "
              f"{args.imgsz} px, {args.epochs} epochs")
        print(f"challenger rule: scoring both models on val {scoring_s:.1f} s of a "
              f"{wall_s:.1f} s training run = {scoring_s / wall_s:.1%} (goal <= 5%)")
        print(f"  champion mAP50-95 {run.data.metrics['champion/map50_95']:.3f}, challenger "
              f"{run.data.metrics['challenger/map50_95']:.3f} on the same val split")
        scratch, tuned = run_of(client, "b", "v1"), run_of(client, "b", "v2")
        for label, found, epochs in (("from scratch", scratch, args.epochs),
                                     ("fine-tuned from site a @champion", tuned,
                                      args.finetune_epochs)):
            reached = first_epoch_reaching(client, found, TARGET)
            print(f"site b {label}: val mAP50 >= {TARGET} at epoch "
                  f"{reached if reached else f'> {epochs}'}; final val mAP50 "
                  f"{found.data.metrics['val/map50']:.3f} after {epochs} epochs")


if __name__ == "__main__":
    main()
