"""ONNX Runtime: ONNX models on the CPU (or CUDA with onnxruntime-gpu), and the variants it
makes from PyTorch weights: FP32 ONNX export and static QDQ INT8.

INT8 quantizes only Conv and MatMul (per-channel int8 weights, uint8 activations) after ONNX
Runtime's pre-processing: quantizing every op puts box pixels and class scores under one uint8
scale in the head's concat and scores mAP 0. Ultralytics' own ``int8=True`` ONNX export is not
used: it ran slower than FP32 here and deletes the FP32 file beside it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from siteml.backends.base import (
    Backend,
    LoadedModel,
    LoadOptions,
    Signature,
    TensorSpec,
    VariantRequest,
)
from siteml.backends.ultralytics import export
from siteml.core.cores import usable_cores
from siteml.core.extras import require
from siteml.core.progress import progress_bar

QUANTIZED_OPS = ("Conv", "MatMul")


def export_onnx(weights: Path, size: int) -> Path:
    """Ultralytics' FP32 ONNX export of ``weights`` (class names and input size are kept in the
    model's metadata), written beside the weights."""
    require("onnx", "quantize")
    require("onnxslim", "quantize")
    return export(weights, format="onnx", imgsz=size, dynamic=False, simplify=True)


def quantize_int8(fp32: Path, target: Path, calibration: Sequence[Any],
                  per_channel: bool) -> None:
    """Static QDQ INT8 calibrated (MinMax) on ``calibration`` input batches."""
    import onnx

    require("onnxruntime", "quantize")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = onnx.load(str(fp32))
    input_name = source.graph.input[0].name

    class Batches(CalibrationDataReader):
        def __init__(self, advance: Callable[[str], None]) -> None:
            self._batches, self._advance = iter(calibration), advance

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._advance("")
            return {input_name: batch}

    target.parent.mkdir(parents=True, exist_ok=True)
    prepared = target.with_name(f"{target.stem}.prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))
    with progress_bar("calibrating INT8 (ONNX Runtime)", len(calibration)) as advance:
        quantize_static(str(prepared), str(target), Batches(advance),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS),
                        per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    prepared.unlink()
    _copy_metadata(source, target)


def _copy_metadata(source: Any, target: Path) -> None:
    """Ultralytics reads class names and input size from the model's metadata properties."""
    import onnx

    model = onnx.load(str(target))
    del model.metadata_props[:]
    model.metadata_props.extend(source.metadata_props)
    onnx.save(model, str(target))


def load(path: Path, frame: Any, options: LoadOptions) -> LoadedModel:
    """A session on the CPU (or CUDA) with ``frame`` bound through I/O binding and fixed-shape
    outputs allocated once."""
    import numpy as np

    threads, device = options.threads or len(usable_cores()), options.device

    ort = require("onnxruntime", "quantize")
    settings = ort.SessionOptions()
    settings.intra_op_num_threads = threads
    settings.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = (["CUDAExecutionProvider"] if device.startswith("cuda") else []) + [
        "CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), settings, providers=providers)
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
                       lambda batch: session.run(None, {name: batch})[0],
                       lambda frame: lambda: session.run(None, {name: frame}), {
                           "runtime": "onnxruntime", "runtime_version": ort.__version__,
                           "executed_precision": "f32", "threads": str(threads),
                           "device": session.get_providers()[0]})


def _fixed(shape: list[Any]) -> bool:
    """Whether an ONNX Runtime shape has no symbolic (named or unknown) dimension."""
    return all(isinstance(d, int) for d in shape)

def make_variant(request: VariantRequest) -> tuple[Path, int]:
    """The variant as ``<target>.onnx``; the calibration images used."""
    fp32 = export_onnx(request.weights, request.size)
    target = request.target.with_suffix(".onnx")
    target.parent.mkdir(parents=True, exist_ok=True)
    if request.precision == "fp32":
        shutil.copy2(fp32, target)
        return target, 0
    calibration = request.calibration()
    quantize_int8(fp32, target, calibration, request.options["per_channel"])
    return target, len(calibration)


def missing_device(device: str) -> str | None:
    """Left alone, ONNX Runtime falls back to the CPU without a word: its providers decide."""
    providers = require("onnxruntime", "quantize").get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return None
    return (f"this ONNX Runtime has no CUDAExecutionProvider (it has: {', '.join(providers)}); "
            "install onnxruntime-gpu")


def signature(path: Path) -> Signature:
    """The graph's inputs (its initializers left out) and outputs, read with ``onnx``."""
    onnx = require("onnx", "quantize")
    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        return TensorSpec(value.name,
                          onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
                          tuple(d.dim_value if d.HasField("dim_value") else -1
                                for d in tensor.shape.dim))

    return Signature(tuple(spec(v) for v in graph.input if v.name not in weights),
                     tuple(map(spec, graph.output)))


BACKEND = Backend(
    name="onnxruntime", extra="quantize", modules=("onnx", "onnxslim", "onnxruntime"),
    packages=("onnxruntime",), devices=r"cpu|CPU|cuda(:\d+)?", device_names="cpu or cuda[:N]",
    model_format="onnx", owns=lambda path: path.suffix == ".onnx", globs=("*.onnx",), load=load,
    missing_device=missing_device, precisions=("fp32", "int8"), make_variant=make_variant,
    toolkits=("onnxruntime", "onnx"), signature=signature,
    serve=lambda path, folder: Path(shutil.copy2(path, folder / "model.onnx")))
