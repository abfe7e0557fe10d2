"""ONNX Runtime variants of a detector: FP32 ONNX export and static QDQ INT8.

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

from siteml.extras import require
from siteml.pipelines.ultralytics_env import quiet_export
from siteml.progress import progress_bar

QUANTIZED_OPS = ("Conv", "MatMul")


def export_onnx(weights: Path, size: int) -> Path:
    """Ultralytics' FP32 ONNX export of ``weights`` (class names and input size are kept in the
    model's metadata), written beside the weights."""
    require("onnx", "quantize")
    require("onnxslim", "quantize")
    from ultralytics import YOLO

    with quiet_export():
        return Path(YOLO(str(weights)).export(format="onnx", imgsz=size, dynamic=False,
                                              simplify=True, verbose=False))


def copy_fp32(fp32: Path, target: Path) -> None:
    """The FP32 export as the variant itself."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(fp32, target)


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
