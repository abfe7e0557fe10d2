"""The quant run's speed check: how much its logged speedup moves between identical runs.

Repeats one quant scenario of the demo model (OpenVINO FP32, a conversion: quick) as fresh
`siteml run` processes and prints each run's `speedup` (PyTorch p50 / variant p50, measured in
interleaved turns) and the spread (max / min). The same variant quantized again must not look
1.2x or 2.2x faster depending on when the host was busy. With ``--baseline-src``, each repeat
also runs another siteml source tree (e.g. a `git worktree` of an older commit), alternating.

    python benchmarks/speed_check_spread.py [--demo-dir /tmp/siteml-quant-bench] [--repeats 5]
        [--baseline-src /tmp/old/src]  (--demo-* options: see demo_store.py)

Without ``--baseline-src`` it measures this tree alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from demo_store import add_demo_options, demo_from_args, siteml_run, write_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="another siteml source tree (its src/), run in turns with this one")
    add_demo_options(parser)
    args = parser.parse_args()
    folder = demo_from_args(args)
    path = write_scenario(folder, f"speed-check-{args.precision}", {
        "name": "speed-check", "version": "v1",
        "quantization": {"backend": "openvino", "precision": args.precision,
                         "calibration_size": 100, "max_accuracy_drop": 0.05}})
    sources = {"this tree": None}
    if args.baseline_src:
        sources["baseline"] = str(args.baseline_src.absolute())
    speedups: dict[str, list[float]] = {name: [] for name in sources}
    for repeat in range(args.repeats):
        for name, src in sources.items():
            metrics = siteml_run(folder, path, src)["metrics"]
            speedups[name].append(metrics["speedup"])
            print(f"repeat {repeat + 1}, {name}: speedup {speedups[name][-1]:.2f}x (PyTorch "
                  f"p50 {metrics['latency/source_p50_ms']:.2f} ms, variant p50 "
                  f"{metrics['latency/variant_p50_ms']:.2f} ms)", flush=True)
    for name, values in speedups.items():
        print(f"{name}: speedup spread over {len(values)} identical quant runs (max/min): "
              f"{max(values) / min(values):.3f}")


if __name__ == "__main__":
    main()
