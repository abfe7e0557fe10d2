"""OpenVINO: IR (or ONNX) models on CPU, GPU or NPU, and the variants it makes from PyTorch
weights: FP32 export, FP16 weights, NNCF INT8 (its recipes: ``openvino_int8``).

Telemetry: OpenVINO's model converter and NNCF report usage through ``openvino_telemetry``
unless the user ran ``opt_in_out --opt_out``, which writes ``~/intel/openvino_telemetry``.
siteml declines for its own process instead, without writing the user's home: the consent check
answers "declined", so neither tool sends anything or writes its statistics file.

Precision: OpenVINO runs FP32 IRs in bf16 on CPUs that have it unless
``INFERENCE_PRECISION_HINT`` says otherwise, so every load sets it and reads it back.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from siteml.backends.base import (
    SERVED_INPUT,
    SERVED_OUTPUT,
    Backend,
    LoadedModel,
    LoadOptions,
    Signature,
    TensorSpec,
    VariantRequest,
    served_name,
)
from siteml.backends.ultralytics import export
from siteml.core.extras import require

PROPERTIES = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
              "INFERENCE_PRECISION_HINT", "OPTIMAL_NUMBER_OF_INFER_REQUESTS")
"""Compiled-model properties recorded as ``env.ov.*`` facts."""


def offline_openvino() -> ModuleType:
    """Import OpenVINO with its telemetry declined for this process; return the module.

    The decline comes first: importing ``openvino`` imports its converter, which sends an event.
    """
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package, nothing to decline
        pass
    else:
        OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED
    return require("openvino", "quantize")


def load(path: Path, frame: Any, options: LoadOptions) -> LoadedModel:
    """Compile for the device with the precision hint set; one infer request with ``frame`` set,
    timed by OpenVINO's own clock around the inference (``request.latency``, what
    ``benchmark_app`` reports: the Python call, the GIL and the outputs' NumPy arrays are left
    out, 0.05-0.18 ms a call on a 2-core host), and an async queue for throughput mode."""
    ov = offline_openvino()
    compiled, target = _compile(ov, path, frame, options)
    facts = _facts(ov, compiled, target)
    jobs = options.requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

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

    def bind(frame: Any) -> Any:
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(frame))
        return request

    def stream(frame: Any) -> Callable[[], None]:
        return partial(bind(frame).infer, share_outputs=True)  # the outputs as views, no copy

    request = bind(frame)

    def infer() -> float:
        request.infer(share_outputs=True)
        return request.latency

    facts["ov.infer_requests"] = str(jobs)
    return LoadedModel(infer, lambda batch: compiled(batch)[0], stream, facts, run_async,
                       parallel=jobs)


def _compile(ov: ModuleType, path: Path, frame: Any, options: LoadOptions) -> tuple[Any, str]:
    """The IR at ``path`` reshaped to ``frame`` and compiled as ``options`` say; the device."""
    core = ov.Core()
    model = core.read_model(ir_file(path))
    if list(model.inputs[0].get_partial_shape()) != list(frame.shape):
        model.reshape({model.inputs[0]: ov.PartialShape(list(frame.shape))})
    target = "CPU" if options.device.lower() == "cpu" else options.device
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": options.precision}
    if options.hint != "none":
        config["PERFORMANCE_HINT"] = options.hint.upper()
    if target == "CPU" and options.threads:
        config["INFERENCE_NUM_THREADS"] = options.threads
    if options.streams:
        config["NUM_STREAMS"] = options.streams
    return core.compile_model(model, target, config), target


def _facts(ov: ModuleType, compiled: Any, target: str) -> dict[str, str]:
    """What the compiled model runs as: runtime, device, the precision it executes, and the
    properties the device reports."""
    facts = {"runtime": "openvino", "runtime_version": ov.get_version(), "device": target,
             "executed_precision": compiled.get_property("INFERENCE_PRECISION_HINT")
             .get_type_name()}
    if target == "CPU":
        facts["ov.cpu_capabilities"] = ",".join(cpu_capabilities())
    for name in PROPERTIES:
        try:
            facts[f"ov.{name.lower()}"] = str(compiled.get_property(name))
        except RuntimeError:  # not every device reports every property
            continue
    facts["threads"] = facts.get("ov.inference_num_threads", "")
    return facts


def cpu_capabilities() -> tuple[str, ...]:
    """The precisions and features OpenVINO finds this CPU able to execute (``FP32``, ``INT8``,
    ``BF16``, ``FP16`` ...): a precision hint the CPU lacks runs in another precision."""
    return tuple(offline_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def missing_device(device: str) -> str | None:
    """OpenVINO's ``available_devices`` decide (``GPU`` matches ``GPU.0``)."""
    available = offline_openvino().Core().available_devices
    if device in available or any(name.split(".")[0] == device for name in available):
        return None
    return f"OpenVINO finds no {device} on this machine (it has: {', '.join(available)})"


def make_variant(request: VariantRequest) -> tuple[Path, int]:
    """The variant as an IR folder ``<target>_openvino_model``; the calibration images used."""
    fp32 = export_ir(request.weights, request.size)
    target = request.target.with_name(f"{request.target.name}_openvino_model")
    if request.precision == "fp32":
        shutil.copytree(fp32, target)
        return target, 0
    if request.precision == "fp16":
        compress_fp16(fp32, target)
        return target, 0
    from siteml.backends.openvino_int8 import (  # it imports this module
        quantize_int8,
        quantize_int8_accuracy_control,
    )

    calibration = request.calibration()
    if request.method == "accuracy_control":
        quantize_int8_accuracy_control(fp32, target, calibration, request)
    else:
        quantize_int8(fp32, target, calibration, request)
    return target, len(calibration)


def export_ir(weights: Path, size: int) -> Path:
    """Ultralytics' FP32 OpenVINO export of ``weights``: a folder with ``.xml``, ``.bin`` and
    ``metadata.yaml`` (class names, input size) beside the weights."""
    offline_openvino()
    return export(weights, format="openvino", imgsz=size, dynamic=False)


def ir_file(path: Path) -> Path:
    """The IR's ``.xml``: ``path`` itself, or the first one (by name) in the folder ``path``."""
    return next(iter(sorted(path.glob("*.xml")))) if path.is_dir() else path


def read_ir(path: Path) -> Any:
    """The IR at ``path`` (its ``.xml``, or the folder holding it), read, not compiled."""
    return offline_openvino().Core().read_model(str(ir_file(path)))


def save_ir(model: Any, source: Path, target: Path, compress_to_fp16: bool) -> None:
    """Write ``model`` under ``target`` with the same file names and metadata as ``source``."""
    ov = offline_openvino()
    target.mkdir(parents=True)
    ov.save_model(model, target / ir_file(source).name, compress_to_fp16=compress_to_fp16)
    shutil.copy2(source / "metadata.yaml", target / "metadata.yaml")


def compress_fp16(fp32: Path, target: Path) -> None:
    """FP16 weights (the runtime still picks its execution precision: set it explicitly)."""
    save_ir(read_ir(fp32), fp32, target, compress_to_fp16=True)


def signature(path: Path) -> Signature:
    """The IR's inputs and outputs (read, not compiled); an unnamed tensor's name is ""."""
    model = read_ir(path)

    def spec(port: Any) -> TensorSpec:
        return TensorSpec(port.get_any_name() if port.get_names() else "",
                          port.get_element_type().to_dtype().name,
                          tuple(d.get_length() if d.is_static else -1
                                for d in port.get_partial_shape()))

    return Signature(tuple(map(spec, model.inputs)), tuple(map(spec, model.outputs)))


def serve(path: Path, folder: Path) -> Path:
    """The IR as ``model.xml`` / ``model.bin`` (the names Triton's OpenVINO backend loads),
    its input named ``images`` and its outputs ``output0`` … as in the ONNX exports (an IR
    converted from PyTorch leaves its outputs unnamed, which servers cannot address); the
    weights are written as they are (no FP16 compression)."""
    model = name_tensors(read_ir(path))
    offline_openvino().save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    return folder / "model.xml"


def name_tensors(model: Any) -> Any:
    """Name the model's input ``images`` and its outputs ``output0`` …, as in the ONNX
    exports; return it."""
    for ports, prefix in ((model.inputs, SERVED_INPUT), (model.outputs, SERVED_OUTPUT)):
        for index, port in enumerate(ports):
            port.get_tensor().set_names({served_name(prefix, index, len(ports))})
    return model


BACKEND = Backend(
    name="openvino", extra="quantize", modules=("openvino",), packages=("openvino",),
    devices=r"CPU|GPU(\.\d+)?|NPU|AUTO|cpu", device_names="CPU, GPU, GPU.N, NPU or AUTO",
    model_format="openvino",
    owns=lambda path: (path.is_dir() and any(path.glob("*.xml"))) or path.suffix == ".xml",
    globs=("*.xml",), load=load, missing_device=missing_device,
    precisions=("fp32", "fp16", "int8"), make_variant=make_variant, int8_modules=("nncf",),
    toolkits=("openvino",), also_runs=("onnxruntime",), accuracy_control=True,
    signature=signature, serve=serve)
