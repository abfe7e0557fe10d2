"""A detector loaded on its runtime (PyTorch, OpenVINO, ONNX Runtime), ready for timed calls.

The input is bound once, outside the timed region, and each runtime is called through its
lowest-overhead path (an OpenVINO infer request with a preset tensor, ONNX Runtime I/O binding,
torch in inference mode), so that Python overhead does not swamp a 2 ms inference. The precision
the runtime actually executes is set explicitly and read back: OpenVINO runs FP32 IRs in bf16 on
CPUs that have it unless ``INFERENCE_PRECISION_HINT`` says otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siteml.extras import require
from siteml.pipelines.openvino_env import offline_openvino

EXECUTION_PRECISION = {"fp32": "f32", "fp16": "f16", "int8": "f32"}
"""Runtime precision for a model precision (INT8 layers run in int8, the rest in this)."""
REWARM = 3
"""Untimed calls before each later turn of an interleaved timing (caches held another model)."""
OPENVINO_PROPERTIES = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
                       "INFERENCE_PRECISION_HINT", "OPTIMAL_NUMBER_OF_INFER_REQUESTS")


@dataclass
class LoadedModel:
    """A model with its input bound.

    Attributes:
        infer: One inference on the bound input; returns nothing.
        predict: One inference on a given NCHW batch; returns the raw output array.
        facts: What the runtime reports about itself (executed precision, threads, properties).
        run_async: OpenVINO throughput mode only: ``run_async(count)`` runs ``count`` inferences
            over parallel infer requests, returning each request's latency (ms) and the wall
            time (s).
    """

    infer: Callable[[], None]
    predict: Callable[[Any], Any]
    facts: dict[str, str] = field(default_factory=dict)
    run_async: Callable[[int], tuple[list[float], float]] | None = None


def backend_of(path: Path) -> str:
    """The runtime a model file or folder is for: ``.pt``, ``.onnx`` or an OpenVINO IR."""
    if (path.is_dir() and any(path.glob("*.xml"))) or path.suffix == ".xml":
        return "openvino"
    if path.suffix == ".onnx":
        return "onnxruntime"
    if path.suffix == ".pt":
        return "pytorch"
    raise ValueError(f"{path}: not a .pt, .onnx or OpenVINO IR model")


def find_model(folder: Path) -> Path:
    """The model inside a registered version's files: an IR folder, an ``.onnx`` or a ``.pt``."""
    candidates = sorted(p.parent for p in folder.rglob("*.xml"))
    candidates += sorted(folder.rglob("*.onnx")) + sorted(folder.rglob("*.pt"))
    if not candidates:
        raise FileNotFoundError(f"{folder} holds no OpenVINO IR, .onnx or .pt model")
    return candidates[0]


def model_size_mb(path: Path) -> float:
    """Size of a model file, or of every file in a model folder, in MiB."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def load(path: Path, frame: Any, *, backend: str | None = None, precision: str = "f32",
         threads: int | None = None, device: str = "cpu", hint: str = "latency",
         streams: int | None = None, requests: int | None = None) -> LoadedModel:
    """Load ``path`` with ``frame`` (an NCHW float32 batch) bound as its input.

    Args:
        path: ``.pt`` weights, ``.onnx`` file, or OpenVINO IR folder / ``.xml``.
        frame: The input batch; its batch size is the one compiled for.
        backend: ``pytorch``, ``openvino`` or ``onnxruntime`` (default: what the files are for;
            OpenVINO also reads ``.onnx``).
        precision: Execution precision for OpenVINO (``f32``, ``f16``, ``bf16``).
        threads: Inference threads (default: every core; OpenVINO: what its hint picks).
        device: ``cpu`` or ``cuda[:N]`` (PyTorch, ONNX Runtime), or an OpenVINO device name.
        hint: OpenVINO performance hint: ``latency``, ``throughput`` or ``none``.
        streams: OpenVINO streams; requests: OpenVINO infer requests in throughput mode.
    """
    backend = backend or backend_of(path)
    if backend == "openvino":
        return _openvino(path, frame, precision, threads, device, hint, streams, requests)
    threads = threads or os.cpu_count() or 1
    if backend == "onnxruntime":
        return _onnxruntime(path, frame, threads, device)
    return _pytorch(path, frame, threads, device)


def missing_device(backend: str, device: str) -> str | None:
    """Why this machine cannot run ``backend`` on ``device`` (a name that runtime accepts), or
    None when it can. A runtime left to itself would fail late or, ONNX Runtime, fall back to
    the CPU without a word."""
    if device.upper() in ("CPU", "AUTO"):
        return None
    if backend == "openvino":
        available = offline_openvino().Core().available_devices
        if device in available or any(name.split(".")[0] == device for name in available):
            return None
        return f"OpenVINO finds no {device} on this machine (it has: {', '.join(available)})"
    if backend == "onnxruntime":
        providers = require("onnxruntime", "quantize").get_available_providers()
        if "CUDAExecutionProvider" in providers:
            return None
        return (f"this ONNX Runtime has no CUDAExecutionProvider (it has: {', '.join(providers)});"
                " install onnxruntime-gpu")
    count = require("torch", "train").cuda.device_count()
    if int(device.partition(":")[2] or 0) < count:
        return None
    return f"PyTorch finds {count} CUDA device(s) on this machine, so no {device}"


def _pytorch(path: Path, frame: Any, threads: int, device: str) -> LoadedModel:
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

    def predict(batch: Any) -> Any:
        with torch.inference_mode():
            return net(torch.from_numpy(batch).to(target))[0].cpu().numpy()

    return LoadedModel(infer, predict, {"runtime": "pytorch", "runtime_version": torch.__version__,
                                        "executed_precision": "f32", "threads": str(threads),
                                        "device": target})


def _openvino(path: Path, frame: Any, precision: str, threads: int | None, device: str, hint: str,
              streams: int | None, requests: int | None) -> LoadedModel:
    ov = offline_openvino()
    core = ov.Core()
    model = core.read_model(path if path.is_file() else next(path.glob("*.xml")))
    if list(model.inputs[0].get_partial_shape()) != list(frame.shape):
        model.reshape({model.inputs[0]: ov.PartialShape(list(frame.shape))})
    target = "CPU" if device.lower() == "cpu" else device
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision}
    if hint != "none":
        config["PERFORMANCE_HINT"] = hint.upper()
    if target == "CPU" and threads:
        config["INFERENCE_NUM_THREADS"] = threads
    if streams:
        config["NUM_STREAMS"] = streams
    compiled = core.compile_model(model, target, config)
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(frame))
    facts = {"runtime": "openvino", "runtime_version": ov.get_version(), "device": target,
             "executed_precision": compiled.get_property("INFERENCE_PRECISION_HINT")
             .get_type_name()}
    for name in OPENVINO_PROPERTIES:
        try:
            facts[f"ov.{name.lower()}"] = str(compiled.get_property(name))
        except RuntimeError:  # not every device reports every property
            continue
    facts["threads"] = facts.get("ov.inference_num_threads", "")
    jobs = requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def run_async(count: int) -> tuple[list[float], float]:
        queue = ov.AsyncInferQueue(compiled, jobs)
        latencies: list[float] = []
        queue.set_callback(lambda _request, started: latencies.append(
            (time.perf_counter() - started) * 1000))
        for index in range(jobs):
            queue[index].set_input_tensor(ov.Tensor(frame))
        start = time.perf_counter()
        for _ in range(count):
            queue.start_async(userdata=time.perf_counter())
        queue.wait_all()
        return latencies, time.perf_counter() - start

    facts["ov.infer_requests"] = str(jobs)
    return LoadedModel(request.infer, lambda batch: compiled(batch)[0], facts, run_async)


def _onnxruntime(path: Path, frame: Any, threads: int, device: str) -> LoadedModel:
    import numpy as np

    ort = require("onnxruntime", "quantize")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = (["CUDAExecutionProvider"] if device.startswith("cuda") else []) + [
        "CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), options, providers=providers)
    name = session.get_inputs()[0].name
    shape = session.get_inputs()[0].shape
    if _fixed(shape) and list(shape) != list(frame.shape):
        raise ValueError(f"{path.name} takes a fixed input {shape}, not {list(frame.shape)}: "
                         "benchmark it at that batch size")
    binding = session.io_binding()
    binding.bind_cpu_input(name, frame)
    for output in session.get_outputs():
        if session.get_providers()[0] == "CPUExecutionProvider" and _fixed(output.shape):
            # a fixed shape: allocate it once
            buffer = ort.OrtValue.ortvalue_from_shape_and_type(output.shape, np.float32)
            binding.bind_ortvalue_output(output.name, buffer)
        else:
            binding.bind_output(output.name)
    return LoadedModel(lambda: session.run_with_iobinding(binding),
                       lambda batch: session.run(None, {name: batch})[0], {
                           "runtime": "onnxruntime", "runtime_version": ort.__version__,
                           "executed_precision": "f32", "threads": str(threads),
                           "device": session.get_providers()[0]})


def _fixed(shape: list[Any]) -> bool:
    """Whether an ONNX Runtime shape has no symbolic (named or unknown) dimension."""
    return all(isinstance(d, int) for d in shape)


def latencies_ms(infer: Callable[[], None], warmup: int, iterations: int | None = None,
                 duration_s: float | None = None) -> list[float]:
    """``warmup`` untimed calls, then the time (ms) of each call, for ``iterations`` calls or
    until ``duration_s`` seconds have passed."""
    for _ in range(warmup):
        infer()
    clock = time.perf_counter
    times = []
    deadline = clock() + duration_s if duration_s else None
    while (len(times) < iterations) if iterations else (clock() < deadline):
        start = clock()
        infer()
        times.append((clock() - start) * 1000)
    return times


def interleaved_latencies_ms(calls: dict[str, Callable[[], None]], warmup: int,
                             iterations: int, rounds: int = 5) -> dict[str, list[float]]:
    """The time (ms) of each call of several models, ``iterations`` each, taken in turns over
    ``rounds`` so that a change in the machine's speed hits all of them alike: ``warmup``
    untimed calls before a model's first turn, ``REWARM`` before each later one."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    turns = [iterations // rounds + (k < iterations % rounds) for k in range(rounds)]
    for index, count in enumerate(t for t in turns if t):
        for label, call in calls.items():
            times[label] += latencies_ms(call, warmup if index == 0 else REWARM, count)
    return times
