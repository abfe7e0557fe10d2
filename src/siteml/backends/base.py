"""What a runtime backend is: one record per runtime, read by the schema, the checks before a
run, the loader used for timing, the quantization pipeline, the pyfunc model and provenance."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siteml.core.models import ModelFormat


@dataclass
class LoadedModel:
    """A model with its input bound.

    Attributes:
        infer: One inference on the bound input; returns its latency (ms) where the runtime
            measures it itself (OpenVINO, as ``benchmark_app`` reads it), else None: the
            caller's clock times the call.
        predict: One inference on a given NCHW batch; returns the raw output array.
        stream: ``stream(frame)``: a camera stream of its own (an infer request, a binding),
            returning a call that runs one inference on ``frame``; streams run at once from
            their own threads.
        facts: What the runtime reports about itself (executed precision, threads, properties).
        run_async: Throughput mode only (OpenVINO): ``run_async(count)`` runs ``count``
            inferences over parallel infer requests, returning each request's latency (ms) and
            the wall time (s).
        parallel: Streams that keep the device busy (OpenVINO: its optimal infer requests).
    """

    infer: Callable[[], float | None]
    predict: Callable[[Any], Any]
    stream: Callable[[Any], Callable[[], None]]
    facts: dict[str, str] = field(default_factory=dict)
    run_async: Callable[[int], tuple[list[float], float]] | None = None
    parallel: int = 1


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model for timing (what a runtime does not use, it ignores).

    Attributes:
        precision: Execution precision (OpenVINO's ``INFERENCE_PRECISION_HINT``: f32, f16, bf16).
        threads: Inference threads (default: every core; OpenVINO: what its hint picks).
        device: ``cpu``, ``cuda[:N]``, or an OpenVINO device name.
        hint: OpenVINO performance hint: ``latency``, ``throughput`` or ``none``.
        streams: OpenVINO streams; requests: OpenVINO infer requests in throughput mode.
    """

    precision: str = "f32"
    threads: int | None = None
    device: str = "cpu"
    hint: str = "latency"
    streams: int | None = None
    requests: int | None = None


@dataclass(frozen=True)
class VariantRequest:
    """What the quantization pipeline asks a backend to build from PyTorch weights.

    Attributes:
        weights: The source ``.pt`` (exports are written beside it).
        size: Square input size in pixels.
        precision: Target precision, one of the backend's ``precisions``.
        target: Where to write the variant, without suffix (the backend adds its own).
        calibration: Returns the calibration input batches (INT8 only; read lazily).
        method: ``ptq`` or ``accuracy_control``.
        options: The scenario's quantization settings (preset, bias_correction,
            ignore_head_postprocessing, per_channel, max_accuracy_drop,
            max_reverted_groups).
        validation: Val items ``(input batch, truth)``, and ``score`` (raw outputs and their
            truths -> mAP50-95), for accuracy-controlled INT8 (which scores subsets too).
    """

    weights: Path
    size: int
    precision: str
    target: Path
    calibration: Callable[[], Sequence[Any]]
    method: str = "ptq"
    options: dict[str, Any] = field(default_factory=dict)
    validation: Sequence[tuple[Any, Any]] = ()
    score: Callable[[list[Any], list[Any]], float] | None = None


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model: its name, NumPy dtype name and shape (-1: dynamic)."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


SERVED_INPUT, SERVED_OUTPUT = "images", "output"
"""Names of unnamed tensors in a served model: ``images`` (one input; else ``images0`` …) and
``output0`` …, as Ultralytics names its ONNX exports."""


def served_name(prefix: str, index: int, count: int) -> str:
    return f"{prefix}{index}" if count > 1 or prefix == SERVED_OUTPUT else prefix


@dataclass(frozen=True)
class Signature:
    """What a model takes and returns, read from the model file itself."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Backend:
    """One runtime.

    Attributes:
        name: As written in scenarios (``benchmark.backend``, ``quantization.backend``).
        extra: The siteml extra that installs it.
        modules: Import names it needs to run a model (checked before a run).
        packages: Pip distributions a model of it needs to load (the pyfunc model's
            requirements, and what runs record as provenance).
        devices: Regex of the device names it accepts; ``device_names`` says them in words.
        model_format: The format its registered models are saved in (the pyfunc loader's key).
        owns: Whether a model file or folder is for this runtime.
        globs: Patterns that find its model inside a registered version's files.
        load: ``load(path, frame, options)``: a ``LoadedModel`` with ``frame`` bound.
        missing_device: Why this machine lacks a device it accepts, or None (CPU: no import).
        precisions: The precisions it can make a variant in (empty: it cannot quantize).
        make_variant: ``make_variant(request)`` -> (variant path, calibration images used).
        int8_modules: Extra import names INT8 needs.
        toolkits: Pip distributions that make its variants (lineage tags of a variant).
        also_runs: Other runtimes whose model files it also runs (OpenVINO reads ONNX).
        accuracy_control: Whether it offers accuracy-aware INT8.
        signature: ``signature(path)``: the model's inputs and outputs, read from its files.
        serve: ``serve(path, folder)``: write the model into an inference server's version
            folder (OVMS, Triton) under the names those load, every tensor named; returns the
            model's path there. None where no such server runs it.
    """

    name: str
    extra: str
    modules: tuple[str, ...]
    packages: tuple[str, ...]
    devices: str
    device_names: str
    model_format: ModelFormat
    owns: Callable[[Path], bool]
    globs: tuple[str, ...]
    load: Callable[[Path, Any, LoadOptions], LoadedModel]
    missing_device: Callable[[str], str | None]
    precisions: tuple[str, ...] = ()
    make_variant: Callable[[VariantRequest], tuple[Path, int]] | None = None
    int8_modules: tuple[str, ...] = ()
    toolkits: tuple[str, ...] = ()
    also_runs: tuple[str, ...] = ()
    accuracy_control: bool = False
    signature: Callable[[Path], Signature] | None = None
    serve: Callable[[Path, Path], Path] | None = None

    def accepts(self, device: str) -> bool:
        """Whether ``device`` is a name this runtime uses."""
        return re.fullmatch(self.devices, device) is not None


def on_cpu(device: str) -> bool:
    """Whether a device name means the CPU (which every machine has)."""
    return device.upper() in ("CPU", "AUTO")


def model_size_mb(path: Path) -> float:
    """Size of a model file, or of every file in a model folder, in MiB."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20
