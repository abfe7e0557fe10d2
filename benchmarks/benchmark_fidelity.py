"""Benchmark figures (issue 6): siteml's p50 against OpenVINO's own benchmark_app, and its spread.

On the demo's OpenVINO INT8 variant (the demo folder from `quant_figures.py`, or a fresh
`siteml demo` there), alternating in one run:
- fidelity: `siteml run` of an infer scenario (latency hint, f32 execution, batch 1) and
  `benchmark_app` on the same IR, device, shape, hint and precision;
  goal: siteml's p50 within 10% of benchmark_app's median.
- stability: the p50 of 5 repeated siteml benchmark runs, max / min; goal <= 1.10.
benchmark_app runs with HOME pointed at a folder whose consent file declines OpenVINO telemetry.

    python benchmarks/benchmark_fidelity.py [--demo-dir /tmp/siteml-quant-bench] [--repeats 5]
        [--iterations 1000]  (--demo-* options: see demo_store.py)
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from demo_store import add_demo_options, demo_from_args, demo_imgsz, siteml_run, write_scenario
from timing import benchmark_app

MODEL = "acme-steel/ulsan-plant1/welding/ppe__openvino_int8@candidate"


def siteml_p50(folder: Path, number: int, iterations: int) -> tuple[float, float, str]:
    """p50 (ms) of one `siteml run` of an infer scenario (a fresh process, as a user runs it),
    how far its median moved during the run, and the threads it used."""
    from mlflow import MlflowClient

    from siteml.tracking.store import resolve_store

    path = write_scenario(folder, "fidelity", {
        "name": "fidelity", "version": f"v{number}", "experiment_type": "infer",
        "benchmark": {"source": MODEL, "warmup": 50, "iterations": iterations,
                      "hint": "latency", "inference_precision": "f32"}})
    outcome = siteml_run(folder, path)
    tags = MlflowClient(resolve_store({}, cwd=folder).tracking_uri).get_run(
        outcome["run_id"]).data.tags
    metrics = outcome["metrics"]
    return metrics["b1/latency_p50_ms"], metrics["b1/latency_drift"], tags["env.threads"]


def model_ir(folder: Path) -> Path:
    """The IR file of the registered variant siteml measures."""
    from siteml.backends.openvino import ir_file
    from siteml.backends.registry import find_model
    from siteml.core.naming import ModelRef
    from siteml.tracking.model_resolve import download_version, resolve
    from siteml.tracking.runs import open_client
    from siteml.tracking.store import resolve_store

    store = resolve_store({}, cwd=folder)
    version = resolve(open_client(store), ModelRef.parse(MODEL))
    local = download_version(version, folder / "fidelity-model", store.tracking_uri).path
    return ir_file(find_model(local))


def benchmark_app_p50(xml: Path, iterations: int, imgsz: int) -> float:
    """Median latency (ms) benchmark_app reports for the same configuration (both leave the
    thread count to the latency hint: benchmark_app refuses -nthreads with a hint)."""
    return benchmark_app(xml, "Median", "-hint", "latency", "-niter", str(iterations),
                         "-shape", f"[1,3,{imgsz},{imgsz}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=1000)
    add_demo_options(parser)
    args = parser.parse_args()
    folder = demo_from_args(args)
    imgsz = demo_imgsz(folder)
    xml = model_ir(folder)
    ours, theirs = [], []
    for repeat in range(args.repeats):
        p50, drift, threads = siteml_p50(folder, 100 + repeat, args.iterations)
        ours.append(p50)
        theirs.append(benchmark_app_p50(xml, args.iterations, imgsz))
        print(f"repeat {repeat + 1}: siteml p50 {ours[-1]:.3f} ms, benchmark_app median "
              f"{theirs[-1]:.3f} ms ({threads} threads; siteml's drift within the run "
              f"{drift:.2f}x)", flush=True)
    ratio = statistics.median(ours) / statistics.median(theirs)
    spread = max(ours) / min(ours)
    print(f"\nfidelity: siteml p50 / benchmark_app median = {ratio:.3f} "
          f"(goal within 10%: {'met' if abs(ratio - 1) <= 0.10 else 'NOT met'})")
    print(f"stability: max/min of {len(ours)} siteml p50s = {spread:.3f} "
          f"(goal <= 1.10: {'met' if spread <= 1.10 else 'NOT met'})")
    print(f"benchmark_app spread for reference: {max(theirs) / min(theirs):.3f}")


if __name__ == "__main__":
    main()
