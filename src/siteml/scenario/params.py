"""The type-specific parameter sections of a scenario: how it trains, benchmarks, quantizes or
mines (each checked against what its backend supports)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from siteml.backends import registry as backends
from siteml.scenario.fields import (
    BenchmarkBackend,
    BenchmarkSourceField,
    ClassName,
    Fraction,
    ModelRefField,
    Precision,
    QuantBackend,
    ResolvedPath,
    Section,
    words,
)
from siteml.scenario.gates import TrainingGate


class TrainingParams(Section):
    """Ultralytics training arguments (``model.train(...)``); image size is ``model.input_size``."""

    epochs: int = Field(100, ge=1, le=10_000, description="Training epochs")
    batch: int = Field(16, ge=1, le=1024, description="Images per batch")
    optimizer: Literal["auto", "SGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSProp"] = (
        Field("auto", description="Optimizer; 'auto' lets Ultralytics choose"))
    lr0: float = Field(0.01, gt=0, le=1, description="Initial learning rate")
    lrf: float = Field(0.01, gt=0, le=1, description="Final learning rate as a fraction of lr0")
    momentum: float = Field(0.937, ge=0, lt=1, description="SGD momentum / Adam beta1")
    weight_decay: float = Field(0.0005, ge=0, le=0.1, description="L2 weight decay")
    warmup_epochs: float = Field(3.0, ge=0, le=100, description="Learning-rate warm-up, in epochs")
    cos_lr: bool = Field(False, description="Cosine learning-rate schedule instead of linear")
    patience: int = Field(100, ge=0, le=10_000,
                          description="Epochs without val improvement before stopping (0 = never)")
    workers: int = Field(2, ge=0, le=64, description="Data-loader worker processes")
    cache: Literal[False, "ram", "disk"] = Field(False, description="Cache decoded images")
    amp: bool = Field(True, description="Automatic mixed precision (CUDA only)")
    deterministic: bool = Field(True, description="Deterministic algorithms where available")
    close_mosaic: int = Field(10, ge=0, le=10_000,
                              description="Turn mosaic off for the last N epochs")
    hsv_h: float = Field(0.015, ge=0, le=1, description="Hue augmentation (fraction)")
    hsv_s: float = Field(0.7, ge=0, le=1, description="Saturation augmentation (fraction)")
    hsv_v: float = Field(0.4, ge=0, le=1, description="Value augmentation (fraction)")
    degrees: float = Field(0.0, ge=0, le=180, description="Rotation augmentation (+/- degrees)")
    translate: float = Field(0.1, ge=0, le=1, description="Translation augmentation (fraction)")
    scale: float = Field(0.5, ge=0, le=1, description="Scale augmentation (gain)")
    shear: float = Field(0.0, ge=0, le=180, description="Shear augmentation (+/- degrees)")
    perspective: float = Field(0.0, ge=0, le=0.001, description="Perspective augmentation")
    flipud: float = Field(0.0, ge=0, le=1, description="Vertical flip probability")
    fliplr: float = Field(0.5, ge=0, le=1, description="Horizontal flip probability")
    mosaic: float = Field(1.0, ge=0, le=1, description="Mosaic probability")
    mixup: float = Field(0.0, ge=0, le=1, description="MixUp probability")
    copy_paste: float = Field(0.0, ge=0, le=1, description="Copy-paste probability")
    gate: TrainingGate | None = Field(None, description="Rules the model must pass to be "
                                      "registered (on top of the site file's gates for the task)")

    def ultralytics_arguments(self) -> dict[str, Any]:
        """The arguments for Ultralytics' ``train``."""
        return self.model_dump(exclude={"gate"})

    def to_params(self) -> dict[str, str]:
        return self._prefixed("training", ("gate",))


STREAM_SETTINGS = ("target_fps", "max_latency_ms", "stream_seconds")


class InferenceBenchmarkParams(Section):
    """Latency benchmark settings, after OpenVINO's ``benchmark_app``."""

    source: BenchmarkSourceField | None = Field(
        None, description="Model to benchmark (any variant), or the export folder holding it; "
        "default: this site/task @champion, else @candidate")
    backend: BenchmarkBackend = Field(
        "auto", description="Runtime; 'auto' follows the model files")
    batch_sizes: list[Annotated[int, Field(ge=1, le=256)]] = Field(
        [1], min_length=1, max_length=16, description="Batch sizes to measure, each separately")
    warmup: int = Field(10, ge=0, le=100_000, description="Untimed warm-up iterations")
    iterations: int | None = Field(None, ge=1, le=10_000_000,
                                   description="Timed iterations (default 200 unless duration_s)")
    duration_s: float | None = Field(None, gt=0, le=86_400,
                                     description="Timed duration in seconds, instead of iterations")
    hint: Literal["latency", "throughput", "none"] = Field(
        "latency", description="Performance hint (OpenVINO); 'throughput' uses async requests")
    num_streams: int | None = Field(None, ge=1, le=256, description="OpenVINO streams")
    num_threads: int | None = Field(None, ge=1, le=1024,
                                    description="Inference threads (OpenVINO, intra-op threads "
                                    "for ONNX Runtime / PyTorch)")
    num_requests: int | None = Field(None, ge=1, le=1024,
                                     description="OpenVINO infer requests in throughput mode")
    inference_precision: Literal["f32", "f16", "bf16"] | None = Field(
        None, description="Precision executed (OpenVINO INFERENCE_PRECISION_HINT); default follows "
        "environment.precision")
    end_to_end: bool = Field(False, description="Time preprocessing + inference + NMS together")
    measure_accuracy: bool = Field(False, description="Also measure mAP on the val split")
    baseline: ModelRefField | None = Field(
        None, description="Another registered model (e.g. the task's PyTorch model) timed in "
        "alternating turns with the source in this run: speedup_vs_baseline under the same "
        "host conditions (latency or none hint, iterations)")
    streams: Literal["auto"] | Annotated[int, Field(ge=1, le=256)] | None = Field(
        None, description="Cameras per box: find the most camera streams served at target_fps "
        "each ('auto', or at most this many); OpenVINO runs them as infer requests of a "
        "throughput-hinted model")
    target_fps: float = Field(10, gt=0, le=1000, description="Frames per second of each camera")
    max_latency_ms: float | None = Field(
        None, gt=0, le=60_000, description="p95 frame latency each stream must keep "
        "(default: one frame interval, 1000 / target_fps)")
    stream_seconds: float = Field(5, gt=0, le=3600,
                                  description="How long each camera count is run")

    @field_validator("batch_sizes")
    @classmethod
    def _distinct(cls, sizes: list[int]) -> list[int]:
        if len(set(sizes)) != len(sizes):
            raise PydanticCustomError("duplicate_batch", "batch sizes must be distinct")
        return sizes

    @model_validator(mode="after")
    def _iterations_or_duration(self) -> InferenceBenchmarkParams:
        if self.iterations is not None and self.duration_s is not None:
            raise PydanticCustomError("iterations_or_duration", "set iterations or duration_s, "
                                      "not both", {"field": "benchmark.duration_s"})
        if self.iterations is None and self.duration_s is None:
            self.iterations = 200
        if self.baseline is not None and (self.hint == "throughput" or self.duration_s):
            raise PydanticCustomError(
                "baseline_turns", "a baseline is timed in alternating turns of single requests: "
                "use iterations (not duration_s) and hint latency or none",
                {"field": "benchmark.baseline"})
        return self

    @property
    def latency_limit_ms(self) -> float:
        """The p95 frame latency a camera stream must keep."""
        return self.max_latency_ms or 1000 / self.target_fps

    def to_params(self) -> dict[str, str]:
        return self._prefixed("benchmark", () if self.streams else STREAM_SETTINGS)


class QuantizationParams(Section):
    """Post-training quantization or conversion of a registered model into a deployable variant."""

    source: ModelRefField | None = Field(None, description="Model to quantize; default: this "
                                         "site/task @champion, else @candidate")
    backend: QuantBackend = Field(description="Target runtime")
    precision: Precision = Field(description="Target precision: fp32, fp16 (OpenVINO) or int8")
    method: Literal["auto", "ptq", "accuracy_control"] = Field(
        "auto", description="INT8 method: plain PTQ, NNCF accuracy-aware (OpenVINO), or auto: "
        "PTQ, then accuracy-aware where PTQ loses more than max_accuracy_drop and the backend "
        "offers it")
    calibration_size: int = Field(300, ge=1, le=100_000,
                                  description="Calibration images, sampled with the seed")
    calibration_split: Literal["train", "calib"] = Field(
        "train", description="Split to calibrate on; never the val split the gate scores")
    preset: Literal["performance", "mixed"] = Field(
        "mixed", description="NNCF preset: symmetric (performance) or asymmetric activations")
    bias_correction: Literal["full", "fast"] = Field(
        "full", description="NNCF bias correction: full (slower, measured closer to FP32) or fast")
    ignore_head_postprocessing: bool = Field(
        True, description="Keep the detection head's box decode and box logits in float (NNCF "
        "ignored scope)")
    per_channel: bool = Field(True, description="Per-channel weight scales (ONNX Runtime)")
    max_reverted_groups: int = Field(
        5, ge=1, le=10_000, description="Accuracy-aware INT8: at most this many groups of "
        "layers returned to float (NNCF's iterations; each costs a val pass, a step back a "
        "new ranking)")
    max_accuracy_drop: float = Field(0.01, ge=0, le=1,
                                     description="Largest mAP50-95 drop allowed (absolute, 0-1)")
    max_class_drop: Fraction | None = Field(None, description="Largest AP50-95 drop allowed for "
                                            "any one class present in val (absolute, 0-1)")
    latency_iterations: int = Field(100, ge=1, le=100_000,
                                    description="Timed iterations of the speed check")

    @model_validator(mode="after")
    def _supported(self) -> QuantizationParams:
        backend = backends.get(self.backend)
        if self.precision not in backend.precisions:
            others = [b for b in backends.quantizing()
                      if self.precision in backends.get(b).precisions]
            raise PydanticCustomError(
                "unsupported_target", "{backend} supports {precisions}; use backend {others} for "
                "{precision}", {"backend": self.backend, "precision": self.precision,
                                "precisions": words(backend.precisions),
                                "others": words(others, "or"), "field": "quantization.precision"})
        if self.method == "accuracy_control" and not (backend.accuracy_control
                                                      and self.precision == "int8"):
            able = [b for b in backends.quantizing() if backends.get(b).accuracy_control]
            raise PydanticCustomError("unsupported_method", "method accuracy_control needs "
                                      "backend {able} and precision int8",
                                      {"able": words(able, "or"),
                                       "field": "quantization.method"})
        return self

    @property
    def variant(self) -> str:
        """``{backend}_{precision}``, e.g. ``openvino_int8``."""
        return f"{self.backend}_{self.precision}"

    def to_params(self) -> dict[str, str]:
        return self._prefixed("quantization")


class ScoreWeights(Section):
    """How much each of mining's scores counts in a frame's total (their weighted mean)."""

    uncertainty: float = Field(1.0, ge=0, le=100, description="Detections near the threshold")
    disagreement: float = Field(1.0, ge=0, le=100, description="The serving variant against "
                                "its FP32 source: unmatched boxes at IoU 0.5, class flips")
    novelty: float = Field(1.0, ge=0, le=100, description="Distance to the dataset's train "
                           "images in the source's own features")
    flicker: float = Field(1.0, ge=0, le=100, description="A detection that blinks across a "
                           "camera's consecutive frames")

    @model_validator(mode="after")
    def _some_weight(self) -> ScoreWeights:
        if not any(self.model_dump().values()):
            raise PydanticCustomError("no_weight", "at least one score needs a weight above 0",
                                      {"field": "mine.weights"})
        return self


class MiningParams(Section):
    """Mining a site's unlabelled frames for the ones its model gets wrong, down to a budget
    of frames to label."""

    source: ModelRefField = Field(description="The model that serves at the site, e.g. "
                                  "site/ppe__openvino_int8@box-welding-01")
    reference: ModelRefField | None = Field(
        None, description="Its FP32 source, compared with it; default: the version the source "
        "was made from")
    frames: ResolvedPath = Field(description="Folder of unlabelled frames from the site's "
                                 "cameras (searched recursively); relative to the scenario file")
    name_pattern: str = Field(
        r"(?P<camera>[^_]+)_(?P<time>.+)", max_length=500,
        description="Regular expression over each frame's file name without its suffix, with "
        "the groups camera and time (time orders a camera's frames)")
    budget: int = Field(ge=1, le=100_000, description="Frames to pick, at most")
    band: float = Field(0.1, gt=0, le=0.25, description="Uncertainty: how far from the 0.25 "
                        "threshold a detection still counts as doubtful")
    weights: ScoreWeights = Field(default_factory=ScoreWeights)
    quotas: dict[ClassName, Fraction] = Field(
        default_factory=dict, description="Class -> the share of the budget kept for frames "
        "where it is detected (rare classes first), e.g. {fall: 0.2}")
    max_hash_bits: int = Field(6, ge=0, le=64, description="Frames whose perceptual hashes "
                               "differ by at most this many bits are near-duplicates")
    novelty_images: int = Field(500, ge=1, le=100_000, description="Train images (drawn with "
                                "the seed) whose features novelty is measured against")

    @field_validator("name_pattern")
    @classmethod
    def _pattern(cls, pattern: str) -> str:
        try:
            groups = re.compile(pattern).groupindex
        except re.error as exc:
            raise PydanticCustomError("bad_pattern", "is not a regular expression: {why}",
                                      {"why": str(exc)}) from None
        if "camera" not in groups:
            raise PydanticCustomError("camera_group", "needs a named group camera, e.g. "
                                      "(?P<camera>[^_]+)_(?P<time>.+)", {})
        return pattern

    @model_validator(mode="after")
    def _quotas(self) -> MiningParams:
        if sum(self.quotas.values()) > 1:
            raise PydanticCustomError("quota_sum", "quotas add up to more than the whole "
                                      "budget ({total:g})",
                                      {"total": sum(self.quotas.values()),
                                       "field": "mine.quotas"})
        return self

    def to_params(self) -> dict[str, str]:
        sections = {"weights": json.dumps(self.weights.model_dump()),
                    "quotas": json.dumps(self.quotas)}
        return {**self._prefixed("mine", tuple(sections)),
                **{f"mine.{key}": value for key, value in sections.items()}}
