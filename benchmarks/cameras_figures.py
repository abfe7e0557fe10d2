"""Issue 16's cameras-per-box figures, measured on this machine: the demo model (see
demo_store.py) as PyTorch FP32, OpenVINO FP32 and OpenVINO INT8, each benchmarked by
`siteml run` with ``streams: auto`` at 10 FPS per camera; and for both IRs, siteml's streams
throughput against OpenVINO's own ``benchmark_app -hint throughput`` on the same IR and
device, in alternating turns (goal: within 10%).

    python benchmarks/cameras_figures.py [--rounds 2] [--seconds 3] [--fps 10]
        [--max-cameras auto]  (--demo-* options: see demo_store.py)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from demo_store import (
    add_demo_options,
    demo_from_args,
    demo_imgsz,
    siteml,
    siteml_run,
    write_scenario,
)
from timing import benchmark_app

SITE = "acme-steel/ulsan-plant1/welding"
MODELS = {"PyTorch FP32": "ppe", "OpenVINO FP32": "ppe__openvino_fp32",
          "OpenVINO INT8": "ppe__openvino_int8"}


def throughput_fps(model: Path, seconds: float) -> float:
    """OpenVINO's ``benchmark_app`` total FPS with the throughput hint on the CPU, f32."""
    return benchmark_app(model, "Throughput", "-hint", "throughput",
                         "-t", str(max(1, round(seconds))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3, help="per camera count")
    parser.add_argument("--fps", type=float, default=10, help="per camera")
    parser.add_argument("--max-cameras", default="auto", help="'auto' or a number")
    add_demo_options(parser)
    args = parser.parse_args()
    folder = demo_from_args(args)
    fp32 = write_scenario(folder, "bench-openvino-fp32", {  # as quant_figures.py makes it
        "name": "bench-openvino-fp32", "version": "v11", "quantization": {
            "backend": "openvino", "precision": "fp32", "calibration_size": 200,
            "max_accuracy_drop": 0.05}})
    siteml(folder, "run", str(fp32))  # skipped when it ran already
    box = folder / "bench-box"
    irs = {label: Path(siteml(folder, "export", f"{SITE}/{model}@candidate", str(box),
                              "--layout", "ovms")["folder"]) / "model.xml"
           for label, model in MODELS.items() if "OpenVINO" in label}
    limit = args.max_cameras if args.max_cameras == "auto" else int(args.max_cameras)
    found: dict[str, list[dict]] = {label: [] for label in MODELS}
    reference: dict[str, list[float]] = {label: [] for label in irs}
    for turn in range(args.rounds):
        for number, (label, model) in enumerate(MODELS.items()):
            path = write_scenario(folder, f"bench-cameras-{number}", {
                "name": f"bench-cameras-{number}", "version": f"v{number + 1}",
                "experiment_type": "infer", "benchmark": {
                    "source": f"{SITE}/{model}@candidate", "warmup": 5, "iterations": 50,
                    "streams": limit, "target_fps": args.fps,
                    "stream_seconds": args.seconds}})
            found[label].append(siteml_run(folder, path)["metrics"])
            if label in irs:
                reference[label].append(throughput_fps(irs[label], args.seconds * 3))
        print(f"round {turn + 1} of {args.rounds} done", file=sys.stderr)
    from siteml.core.provenance import cpu_flags, instruction_set

    print(f"cameras per box at {args.fps:g} FPS each, demo model at {demo_imgsz(folder)} px, "
          f"{args.rounds} rounds, CPU {instruction_set(cpu_flags()['env.cpu_flags'])}, "
          f"{os.cpu_count()} cores:")
    for label, runs in found.items():
        cameras = statistics.median(run["streams/max_cameras"] for run in runs)
        capacity = statistics.median(run["streams/capacity_fps"] for run in runs)
        p50 = statistics.median(run["b1/latency_p50_ms"] for run in runs)
        line = (f"{label}: {cameras:g} cameras (runs: "
                f"{', '.join(str(int(r['streams/max_cameras'])) for r in runs)}), batch-1 p50 "
                f"{p50:.2f} ms, flat out {capacity:.1f} FPS")
        if label in reference:
            app = statistics.median(reference[label])
            total = statistics.median(run.get("streams/total_fps", 0.0) for run in runs)
            line += (f"; benchmark_app -hint throughput {app:.1f} FPS: siteml flat out / "
                     f"benchmark_app = {capacity / app:.2f} (goal 0.90-1.10), at "
                     f"{cameras:g} cameras {total:.1f} FPS = {total / app:.2f}")
        print(line)


if __name__ == "__main__":
    main()
