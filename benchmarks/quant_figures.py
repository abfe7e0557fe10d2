"""Quantization figures (issue 5): every variant of the demo model, side by side.

Runs the demo (15 epochs, 320 px; see demo_store.py) into DIR unless DIR already holds it,
quantizes its model to each backend x precision through `siteml run` (which scores each variant
against the PyTorch source on the val split), then times every model at batch 1 on one real val
image, round-robin over several rounds so that the shared machine's noise hits all of them
alike. OpenVINO's FP32 IR is timed twice: in true f32 (the reference) and with bf16 execution,
which is what OpenVINO picks by itself on a CPU with bf16.

Goals: OpenVINO INT8 >= 5x PyTorch FP32 and >= 1.7x OpenVINO f32 at p50, mAP50-95 drop <= 0.5 pt;
ONNX Runtime INT8 faster than ONNX Runtime FP32 with a drop <= 2 pt.

    python benchmarks/quant_figures.py [--demo-dir /tmp/siteml-quant-bench] [--rounds 5]
        [--iterations 100]  (--demo-* options: see demo_store.py)
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from demo_store import add_demo_options, demo_from_args, demo_imgsz, write_scenario

TARGETS = [("openvino", "fp32"), ("openvino", "fp16"), ("openvino", "int8"),
           ("onnxruntime", "fp32"), ("onnxruntime", "int8")]


def quantize_all(folder: Path, iterations: int) -> dict[str, dict]:
    """Run one quant scenario per target on the demo store (its speed check ``iterations``
    long); return metrics and model files."""
    from siteml.backends.registry import find_model
    from siteml.core.naming import ModelRef
    from siteml.lifecycle.options import RunOptions
    from siteml.lifecycle.run import run_scenario
    from siteml.tracking.model_resolve import download_version, resolve
    from siteml.tracking.runs import open_client
    from siteml.tracking.store import resolve_store

    store = resolve_store({}, cwd=folder)
    client = open_client(store)
    results = {}
    for number, (backend, precision) in enumerate(TARGETS, start=11):
        path = write_scenario(folder, f"bench-{backend}-{precision}", {
            "name": f"bench-{backend}-{precision}", "version": f"v{number}",
            "quantization": {"backend": backend, "precision": precision,
                             "calibration_size": 200, "max_accuracy_drop": 0.05,
                             "latency_iterations": iterations}})
        outcome = run_scenario(path, RunOptions(rerun=True, store=store))
        version = resolve(client, ModelRef(name=outcome.registered_model,
                                           version=outcome.model_version))
        files = download_version(version, folder / "bench-models" / path.stem,
                                 store.tracking_uri).path
        results[f"{backend}_{precision}"] = {"metrics": outcome.metrics,
                                             "files": find_model(files)}
    return results


def source_weights(folder: Path) -> Path:
    return next((folder / "mlartifacts").rglob("best.pt"))


def time_round_robin(models: dict[str, tuple[Path, str]], frame, rounds: int,
                     iterations: int) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per-iteration latencies (ms) of each model, interleaved over ``rounds``, and the
    precision each runtime reports it executed."""
    from siteml.backends.base import LoadOptions
    from siteml.backends.registry import load
    from siteml.pipelines.timing import interleaved_latencies_ms

    loaded = {label: load(path, frame, LoadOptions(precision=precision))
              for label, (path, precision) in models.items()}
    times = interleaved_latencies_ms({label: model.infer for label, model in loaded.items()},
                                     20, rounds * iterations, rounds)
    return times, {label: model.facts["executed_precision"] for label, model in loaded.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    add_demo_options(parser)
    args = parser.parse_args()
    folder = demo_from_args(args)
    imgsz = demo_imgsz(folder)
    variants = quantize_all(folder, args.iterations)
    from siteml.backends.ultralytics import letterbox
    from siteml.data.layout import split_images

    frame = letterbox(split_images(folder / "data" / "ppe-synth", "val")[0], imgsz)
    models = {"pytorch_fp32": (source_weights(folder), "f32"),
              "openvino_fp32 (bf16 exec)": (variants["openvino_fp32"]["files"], "bf16")}
    models.update({label: (v["files"], "f16" if label.endswith("fp16") else "f32")
                   for label, v in variants.items()})
    times, executed = time_round_robin(models, frame, args.rounds, args.iterations)
    p50 = {label: statistics.median(values) for label, values in times.items()}

    source = next(iter(variants.values()))["metrics"]
    print(f"\nyolov11n demo model, {imgsz} px, batch 1, p50 of {args.rounds} x "
          f"{args.iterations} iterations interleaved")
    print(f"{'variant':<26}{'size MB':>8}{'mAP50':>8}{'mAP50-95':>10}{'delta pt':>10}"
          f"{'p50 ms':>8}  {'exec':<9}{'x PyTorch':>10}{'x OV f32':>9}")
    print(f"{'pytorch_fp32 (source)':<26}{source['source/size_mb']:>8.2f}"
          f"{source['source/map50']:>8.3f}{source['source/map50_95']:>10.3f}{'':>10}"
          f"{p50['pytorch_fp32']:>8.2f}  {'f32':<9}{1:>10.2f}"
          f"{p50['openvino_fp32'] / p50['pytorch_fp32']:>9.2f}")
    for label in models:
        if label == "pytorch_fp32":
            continue
        metrics = variants[label.split()[0]]["metrics"]
        precision = f"int8+{executed[label]}" if label.endswith("int8") else executed[label]
        print(f"{label:<26}{metrics['variant/size_mb']:>8.2f}{metrics['variant/map50']:>8.3f}"
              f"{metrics['variant/map50_95']:>10.3f}{metrics['delta/map50_95'] * 100:>+10.2f}"
              f"{p50[label]:>8.2f}  {precision:<9}{p50['pytorch_fp32'] / p50[label]:>10.2f}"
              f"{p50['openvino_fp32'] / p50[label]:>9.2f}")
    ov, ort = variants["openvino_int8"]["metrics"], variants["onnxruntime_int8"]["metrics"]
    print()
    goal("OpenVINO INT8 speedup vs PyTorch FP32", p50["pytorch_fp32"] / p50["openvino_int8"], 5)
    goal("OpenVINO INT8 speedup vs OpenVINO f32", p50["openvino_fp32"] / p50["openvino_int8"], 1.7)
    goal("OpenVINO INT8 mAP50-95 drop (pt), at most", -ov["delta/map50_95"] * 100, 0.5, True)
    goal("ONNX Runtime INT8 speedup vs ORT FP32",
         p50["onnxruntime_fp32"] / p50["onnxruntime_int8"], 1.0)
    goal("ONNX Runtime INT8 mAP50-95 drop (pt), at most", -ort["delta/map50_95"] * 100, 2, True)


def goal(label: str, value: float, target: float, at_most: bool = False) -> None:
    met = value <= target if at_most else value >= target
    print(f"{label}: {value:.2f}  goal {'<=' if at_most else '>='} {target} -> "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
