"""OpenVINO IR variants of a detector: FP32 export, FP16 weights, NNCF INT8 (plain or
accuracy-controlled), with the detection head's box decode kept in float."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from siteml.pipelines.openvino_env import offline_openvino, quiet_nncf
from siteml.pipelines.ultralytics_env import quiet_export
from siteml.scenario.schema import QuantizationParams


def export_ir(weights: Path, size: int) -> Path:
    """Ultralytics' FP32 OpenVINO export of ``weights``: a folder with ``.xml``, ``.bin`` and
    ``metadata.yaml`` (class names, input size) beside the weights."""
    offline_openvino()
    from ultralytics import YOLO

    with quiet_export():
        return Path(YOLO(str(weights)).export(format="openvino", imgsz=size, dynamic=False,
                                              verbose=False))


def _xml(folder: Path) -> Path:
    return next(folder.glob("*.xml"))


def _save(model: Any, source: Path, target: Path, compress_to_fp16: bool) -> None:
    """Write ``model`` under ``target`` with the same file names and metadata as ``source``."""
    import openvino as ov

    target.mkdir(parents=True)
    ov.save_model(model, target / _xml(source).name, compress_to_fp16=compress_to_fp16)
    shutil.copy2(source / "metadata.yaml", target / "metadata.yaml")


def copy_fp32(fp32: Path, target: Path) -> None:
    """The FP32 export as the variant itself."""
    shutil.copytree(fp32, target)


def compress_fp16(fp32: Path, target: Path) -> None:
    """FP16 weights (the runtime still picks its execution precision: set it explicitly)."""
    import openvino as ov

    _save(ov.Core().read_model(_xml(fp32)), fp32, target, compress_to_fp16=True)


def quantize_int8(fp32: Path, target: Path, calibration: Sequence[Any],
                  params: QuantizationParams) -> None:
    """NNCF post-training INT8 quantization, calibrated on ``calibration`` input batches."""
    import openvino as ov

    nncf = quiet_nncf()
    model = ov.Core().read_model(_xml(fp32))
    quantized = nncf.quantize(model, nncf.Dataset(calibration), **_options(nncf, model, params,
                                                                           len(calibration)))
    _save(quantized, fp32, target, compress_to_fp16=False)


def quantize_int8_accuracy_control(fp32: Path, target: Path, calibration: Sequence[Any],
                                   params: QuantizationParams, validation: Sequence[Any],
                                   score: Callable[[list[Any]], float]) -> None:
    """NNCF accuracy-aware INT8: quantize, then return the layers that cost most accuracy to
    float until the drop of ``score`` (mAP50-95 of raw outputs on ``validation``) is within
    ``max_accuracy_drop`` (absolute)."""
    import openvino as ov

    nncf = quiet_nncf()
    model = ov.Core().read_model(_xml(fp32))

    def validate(compiled: Any, items: Any) -> float:
        return score([compiled(item)[0] for item in items])

    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(calibration), nncf.Dataset(validation), validation_fn=validate,
        max_drop=params.max_accuracy_drop, drop_type=nncf.DropType.ABSOLUTE,
        **_options(nncf, model, params, len(calibration)))
    _save(quantized, fp32, target, compress_to_fp16=False)


def _options(nncf: ModuleType, model: Any, params: QuantizationParams,
             subset_size: int) -> dict[str, Any]:
    """NNCF arguments from the scenario: preset, bias correction, the head's ignored scope."""
    return {"subset_size": subset_size,
            "preset": {"mixed": nncf.QuantizationPreset.MIXED,
                       "performance": nncf.QuantizationPreset.PERFORMANCE}[params.preset],
            "fast_bias_correction": params.bias_correction == "fast",
            "ignored_scope": head_scope(model) if params.ignore_head_postprocessing else None}


def head_scope(model: Any) -> Any:
    """The detection head's box decode (DFL, sigmoid and the arithmetic after it) as an NNCF
    ignored scope, as Ultralytics' and NNCF's YOLO examples keep it."""
    import nncf

    operations = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in operations if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(names=[
        op.get_friendly_name() for op in operations
        if op.get_type_name() == "Sigmoid"
        or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))])
