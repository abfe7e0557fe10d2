"""Issue 16's cameras-per-box figures, measured on this machine: the demo model (320 px) as
PyTorch FP32, OpenVINO FP32 and OpenVINO INT8, each benchmarked with ``streams: auto`` at
10 FPS per camera; and for both IRs, siteml's streams throughput against OpenVINO's own
``benchmark_app -hint throughput`` on the same IR and device, in alternating turns (goal:
within 10%).

    python benchmarks/cameras_figures.py [--rounds 2] [--seconds 3] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from timing import wall

from siteml.core.provenance import cpu_flags, instruction_set
from siteml.lifecycle.demo import DemoSize, prepare

SITE = "acme-steel/ulsan-plant1/welding"
MODELS = {"PyTorch FP32": "ppe", "OpenVINO FP32": "ppe__openvino_fp32",
          "OpenVINO INT8": "ppe__openvino_int8"}
THROUGHPUT = re.compile(r"Throughput:\s+([0-9.]+) FPS")


def siteml(*args: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "siteml", *args, "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def benchmark_app(model: Path, seconds: float) -> float:
    """OpenVINO's ``benchmark_app`` total FPS with the throughput hint on the CPU."""
    out = subprocess.run(["benchmark_app", "-m", str(model), "-d", "CPU", "-hint", "throughput",
                          "-t", str(int(seconds)), "-infer_precision", "f32"],
                         capture_output=True, text=True, check=True).stdout
    return float(THROUGHPUT.search(out)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3, help="per camera count")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
               "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}
        train, quant, template, _ = prepare(root / "demo", DemoSize(
            epochs=args.epochs, train_images=16, val_images=8))
        fp32 = quant.with_name("quant-fp32.yaml")
        data = yaml.safe_load(quant.read_text())
        data["quantization"].update(precision="fp32", max_accuracy_drop=1.0)
        fp32.write_text(yaml.safe_dump({**data, "version": "v2"}, sort_keys=False))
        data["quantization"].update(precision="int8")
        quant.write_text(yaml.safe_dump(data, sort_keys=False))  # speed only: any accuracy
        wall([sys.executable, "-m", "siteml", "run", str(train), str(quant), str(fp32)], env)
        scenario = yaml.safe_load(template.read_text())
        irs = {}
        for label, model in MODELS.items():
            if "OpenVINO" in label:
                irs[label] = Path(siteml("export", f"{SITE}/{model}@candidate",
                                         str(root / "box"), "--layout", "ovms", env=env)[
                                             "folder"]) / "model.xml"
        found: dict[str, list[dict]] = {label: [] for label in MODELS}
        reference: dict[str, list[float]] = {label: [] for label in irs}
        version = 10
        for _ in range(args.rounds):
            for label, model in MODELS.items():
                version += 1
                scenario.update(version=f"v{version}")
                scenario["benchmark"] = {"source": f"{SITE}/{model}@candidate", "warmup": 5,
                                         "iterations": 50, "streams": "auto",
                                         "target_fps": 10, "stream_seconds": args.seconds}
                path = template.with_name(f"cameras-{version}.yaml")
                path.write_text(yaml.safe_dump(scenario, sort_keys=False))
                outcome = siteml("run", str(path), env=env)
                found[label].append(outcome["metrics"])
                if label in irs:
                    reference[label].append(benchmark_app(irs[label], args.seconds * 3))
    print(f"cameras per box at 10 FPS, demo model at 320 px, {args.rounds} rounds, CPU "
          f"{instruction_set(cpu_flags()['env.cpu_flags'])}, {os.cpu_count()} cores:")
    for label, runs in found.items():
        cameras = statistics.median(run["streams/max_cameras"] for run in runs)
        capacity = statistics.median(run["streams/capacity_fps"] for run in runs)
        p50 = statistics.median(run["b1/latency_p50_ms"] for run in runs)
        line = (f"{label:>14}: {cameras:.0f} cameras (runs: "
                f"{', '.join(str(int(r['streams/max_cameras'])) for r in runs)}), batch-1 p50 "
                f"{p50:.1f} ms, siteml flat-out {capacity:.1f} FPS")
        if label in reference:
            app = statistics.median(reference[label])
            total = statistics.median(run.get("streams/total_fps", 0.0) for run in runs)
            line += (f", benchmark_app -hint throughput {app:.1f} FPS: flat-out ratio "
                     f"{capacity / app:.2f} (goal 0.90-1.10), at {cameras:.0f} cameras "
                     f"{total:.1f} FPS = {total / app:.2f}")
        print(line)


if __name__ == "__main__":
    main()
