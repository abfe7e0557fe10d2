"""A detector loaded on its runtime (PyTorch, OpenVINO, ONNX Runtime), ready for timed calls.

The input is bound once, outside the timed region, and each runtime is called through its
lowest-overhead path (an OpenVINO infer request with a preset tensor, ONNX Runtime I/O binding,
torch in inference mode), so that Python overhead does not swamp a 2 ms inference. The precision
the runtime actually executes is set explicitly and read back: OpenVINO runs FP32 IRs in bf16 on
CPUs that have it unless ``INFERENCE_PRECISION_HINT`` says otherwise.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siteml.extras import require
from siteml.pipelines.openvino_env import offline_openvino

BACKENDS = ("pytorch", "openvino", "onnxruntime")


@dataclass
class LoadedModel:
    """A model with its input bound: ``infer()`` runs one inference on it.

    Attributes:
        infer: One inference on the bound input; returns nothing.
        facts: What the runtime reports about itself (executed precision, threads, ...).
    """

    infer: Callable[[], None]
    facts: dict[str, str] = field(default_factory=dict)


def backend_of(path: Path) -> str:
    """The runtime a model file or folder is for: ``.pt``, ``.onnx`` or an OpenVINO IR."""
    if (path.is_dir() and any(path.glob("*.xml"))) or path.suffix == ".xml":
        return "openvino"
    if path.suffix == ".onnx":
        return "onnxruntime"
    if path.suffix == ".pt":
        return "pytorch"
    raise ValueError(f"{path}: not a .pt, .onnx or OpenVINO IR model")


def load(path: Path, frame: Any, *, precision: str = "f32", threads: int | None = None,
         device: str = "cpu") -> LoadedModel:
    """Load ``path`` on the runtime its files are for, with ``frame`` (NCHW float32) bound.

    Args:
        path: ``.pt`` weights, ``.onnx`` file, or OpenVINO IR folder / ``.xml``.
        frame: The input batch.
        precision: Execution precision for OpenVINO (``f32``, ``f16``, ``bf16``).
        threads: Inference threads (default: every core).
        device: ``cpu`` or ``cuda[:N]`` (PyTorch, ONNX Runtime), or an OpenVINO device name.
    """
    threads = threads or os.cpu_count() or 1
    loader = {"pytorch": _pytorch, "openvino": _openvino, "onnxruntime": _onnxruntime}
    return loader[backend_of(path)](path, frame, precision, threads, device)


def _pytorch(path: Path, frame: Any, precision: str, threads: int, device: str) -> LoadedModel:
    torch = require("torch", "train")
    from ultralytics import YOLO

    torch.set_num_threads(threads)
    target = "cpu" if device.upper() in ("CPU", "AUTO") else device
    net = YOLO(str(path)).model.fuse().eval().to(target)
    tensor = torch.from_numpy(frame).to(target)
    synchronize = torch.cuda.synchronize if target.startswith("cuda") else (lambda: None)

    def infer() -> None:
        with torch.inference_mode():
            net(tensor)
        synchronize()

    return LoadedModel(infer, {"runtime": "pytorch", "runtime_version": torch.__version__,
                               "executed_precision": "f32", "threads": str(threads),
                               "device": target})


def _openvino(path: Path, frame: Any, precision: str, threads: int, device: str) -> LoadedModel:
    ov = offline_openvino()
    xml = path if path.suffix == ".xml" else next(path.glob("*.xml"))
    target = "CPU" if device.lower() == "cpu" else device
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    if target == "CPU":
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = ov.Core().compile_model(xml, target, config)
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(frame))
    return LoadedModel(request.infer, {
        "runtime": "openvino", "runtime_version": ov.get_version(), "device": target,
        "executed_precision": compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
        "threads": str(compiled.get_property("INFERENCE_NUM_THREADS")) if target == "CPU"
        else ""})


def _onnxruntime(path: Path, frame: Any, precision: str, threads: int,
                 device: str) -> LoadedModel:
    ort = require("onnxruntime", "quantize")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = (["CUDAExecutionProvider"] if device.startswith("cuda") else []) + [
        "CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), options, providers=providers)
    binding = session.io_binding()
    binding.bind_cpu_input(session.get_inputs()[0].name, frame)
    for output in session.get_outputs():
        binding.bind_output(output.name)
    return LoadedModel(lambda: session.run_with_iobinding(binding), {
        "runtime": "onnxruntime", "runtime_version": ort.__version__,
        "executed_precision": "f32", "threads": str(threads),
        "device": session.get_providers()[0]})


def latencies_ms(infer: Callable[[], None], warmup: int, iterations: int) -> list[float]:
    """``warmup`` untimed calls, then the time of each of ``iterations`` calls, in ms."""
    for _ in range(warmup):
        infer()
    clock = time.perf_counter
    times = []
    for _ in range(iterations):
        start = clock()
        infer()
        times.append((clock() - start) * 1000)
    return times


def p50_ms(infer: Callable[[], None], warmup: int, iterations: int) -> float:
    return statistics.median(latencies_ms(infer, warmup, iterations))
