"""Typed scenario files and the MLflow names they produce.

Pure data and naming: this module does no I/O and imports neither MLflow nor any ML framework.
Relative paths are made absolute against ``base_dir`` from the validation context, which the
factory sets to the scenario file's folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from siteml.backends import registry as backends
from siteml.core import keys
from siteml.core.naming import (
    CUSTOMER_RE,
    MODELS_SCHEME,
    RESERVED_CUSTOMERS,
    SLUG_MAX,
    ModelRef,
    customer_of,
    customer_problem,
    registered_model_name,
    site_path,
    slug_problem,
)
from siteml.core.tasks import TASK_TYPES

TaskType = Literal[TASK_TYPES]  # type: ignore[valid-type]
Precision = Literal["fp32", "fp16", "int8"]
BenchmarkBackend = Literal[("auto", *backends.BACKENDS)]  # type: ignore[valid-type]
QuantBackend = Literal[backends.quantizing()]  # type: ignore[valid-type]
Architecture = Literal[
    "yolov8n", "yolov8s", "yolov8m", "yolov8l", "yolov8x",
    "yolov11n", "yolov11s", "yolov11m", "yolov11l", "yolov11x",
]
RESERVED_TAG_PREFIXES = (keys.SITE_PREFIX, keys.TASK_PREFIX, keys.DATA_PREFIX, keys.MODEL_PREFIX,
                         keys.ENV_PREFIX, keys.GIT_PREFIX, keys.SITEML_PREFIX, keys.MLFLOW_PREFIX,
                         *(f"{role}." for role in keys.MODEL_ROLES), keys.QUANT_PREFIX,
                         keys.BENCHMARK_PREFIX)


def _check_slug(value: str) -> str:
    problem = slug_problem(value)
    if problem:
        raise PydanticCustomError("slug", "{value} " + problem, {"value": repr(value)})
    return value


def _check_customer(value: str) -> str:
    problem = customer_problem(value)
    if problem:
        raise PydanticCustomError("customer", "{value} " + problem, {"value": repr(value)})
    return value


def _parse_model_ref(value: Any) -> ModelRef:
    if isinstance(value, ModelRef):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("model_ref", "must be a model reference string such as "
                                  "'customer/region-plant/zone/ppe@champion'")
    try:
        return ModelRef.parse(value)
    except ValueError as exc:
        raise PydanticCustomError("model_ref", str(exc)) from None


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return Path(os.path.normpath(Path(base, value))) if base and not value.is_absolute() else value


def _matching(pattern: str, hint: str) -> Any:
    """A string type that must fully match ``pattern``; errors say ``hint``, not the regex."""
    regex = re.compile(pattern)

    def check(value: Any) -> str:
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise PydanticCustomError("format", "{value} is not valid: {hint}",
                                      {"value": repr(value), "hint": hint})
        return value

    return Annotated[str, PlainValidator(check),
                     WithJsonSchema({"type": "string", "pattern": f"^{pattern}$"})]


Slug = Annotated[str, AfterValidator(_check_slug), WithJsonSchema(
    {"type": "string", "pattern": f"^[a-z0-9][a-z0-9-]{{0,{SLUG_MAX - 1}}}$"})]
Customer = Annotated[str, AfterValidator(_check_customer), WithJsonSchema(
    {"type": "string", "pattern": f"^{CUSTOMER_RE.pattern}$", "minLength": 2,
     "maxLength": SLUG_MAX, "not": {"enum": sorted(RESERVED_CUSTOMERS)}})]
Version = _matching(r"v(0|[1-9][0-9]{0,5})", "use 'v<N>', e.g. v2")
ScenarioName = _matching(r"[a-z0-9][a-z0-9_-]{0,99}",
                         "use lowercase letters, digits, '-' and '_' (at most 100)")
Label = _matching(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
                  "use letters, digits, '.', '_' and '-' (at most 64)")
ClassName = _matching(r"[A-Za-z0-9][A-Za-z0-9_ -]{0,63}",
                      "use letters, digits, '_', '-' and spaces (at most 64, no commas)")
DvcHash = _matching(r"[0-9a-f]{32}(\.dir)?", "DVC's md5: 32 lowercase hex digits, "
                    "plus '.dir' for a folder")
TagKey = _matching(r"[a-z][a-z0-9_.-]{0,99}", "use lowercase letters, digits, '.', '_', '-'")
ModelRefField = Annotated[
    ModelRef,
    PlainValidator(_parse_model_ref),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "Model reference: "
                    "'customer/region-plant/zone/task[__variant]@alias' or '.../3', or the "
                    "'models:/<dotted name>@alias' URI"}),
]
ResolvedPath = Annotated[Path, AfterValidator(_resolve_path)]


def _parse_source(value: Any, info: ValidationInfo) -> ModelRef | Path:
    """A model reference, or an export folder: a path starting with ``/``, ``.`` or ``~``."""
    if not (isinstance(value, Path) or (isinstance(value, str)
                                        and value.startswith(("/", ".", "~")))):
        return _parse_model_ref(value)
    folder = _resolve_path(Path(value).expanduser(), info)
    if not folder.is_dir():
        raise PydanticCustomError("export_folder", "{folder} is not a folder (a path names "
                                  "an export folder of siteml export)", {"folder": str(folder)})
    return folder


BenchmarkSourceField = Annotated[
    ModelRef | Path,
    PlainValidator(_parse_source),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "Model reference, or an export folder "
                    "of siteml export (a path starting with '/', '.' or '~'; its manifest "
                    "names the registered version)"}),
]


def _parse_weights(value: Any, info: ValidationInfo) -> Path | ModelRef:
    """A ``.pt`` file (relative to the scenario file) or a registered model reference."""
    if isinstance(value, Path | ModelRef):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("weights", "must be a .pt file or a model reference")
    if value.endswith(".pt") and "@" not in value and not value.startswith(MODELS_SCHEME):
        return _resolve_path(Path(value), info)
    try:
        return ModelRef.parse(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "weights", "{value} is neither a .pt file nor a model reference "
            "('site/task@alias', 'site/task/N' or 'models:/...'): {reason}",
            {"value": repr(value), "reason": str(exc)}) from None


Weights = Annotated[
    Path | ModelRef,
    PlainValidator(_parse_weights),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "A .pt file, or a registered model "
                    "'customer/region-plant/zone/task@alias' (or '/N', or 'models:/...')"}),
]
Fraction = Annotated[float, Field(ge=0, le=1)]


def _csv(values: list[Any]) -> str:
    return ",".join(str(v) for v in values)


def _words(items: Any, last: str = "and") -> str:
    """``a, b and c``."""
    items = list(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1] if len(items) > 1 else "".join(items)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    def _prefixed(self, prefix: str, exclude: tuple[str, ...] = ()) -> dict[str, str]:
        """Every set field as ``{prefix}.{field}`` -> string (lists comma-joined, None left out)."""
        out = {}
        for key, value in self.model_dump(mode="json", exclude=set(exclude)).items():
            if value is not None:
                out[f"{prefix}.{key}"] = _csv(value) if isinstance(value, list) else str(value)
        return out


GateMetric = Literal[keys.CLASS_FIGURES]  # type: ignore[valid-type]
ALL_CLASSES = "*"


class MetricFloors(_Section):
    """Lowest all-class values allowed on the final validation (0-1)."""

    precision: Fraction | None = Field(None, description="Lowest precision")
    recall: Fraction | None = Field(None, description="Lowest recall")
    map50: Fraction | None = Field(None, description="Lowest mAP50")
    map50_95: Fraction | None = Field(None, description="Lowest mAP50-95")


class ClassFloors(_Section):
    """Lowest values allowed per class (0-1), e.g. ``recall: {helmet: 0.8}``; ``'*'`` is every
    class of the task."""

    precision: dict[str, Fraction] | None = Field(None, description="Lowest precision per class")
    recall: dict[str, Fraction] | None = Field(None, description="Lowest recall per class")
    map50: dict[str, Fraction] | None = Field(None, description="Lowest AP50 per class")
    map50_95: dict[str, Fraction] | None = Field(None, description="Lowest AP50-95 per class")


class TrainingGate(_Section):
    """What a trained model must reach to be registered; one that fails ends FAILED, registers
    nothing, and keeps its weights as run artifacts."""

    min: MetricFloors = Field(default_factory=MetricFloors,
                              description="Lowest all-class values, e.g. {map50: 0.5}")
    min_per_class: ClassFloors = Field(default_factory=ClassFloors,
                                       description="Lowest values per class, e.g. "
                                       "{recall: {helmet: 0.8}}")
    compare_to: Literal["champion"] | None = Field(
        None, description="Score the site/task's @champion on this scenario's val split with "
        "the same evaluator, and refuse a model that regresses more than max_regression")
    max_regression: Fraction = Field(0.0, description="Largest drop below the champion allowed "
                                     "on regression_metric (absolute, 0-1)")
    regression_metric: GateMetric = Field("map50_95", description="Metric the champion rule "
                                          "compares")

    def class_rules(self) -> list[tuple[str, str, float]]:
        """``(figure, class or '*', floor)`` of every per-class rule."""
        return [(figure, name, floor) for figure, floors in
                self.min_per_class.model_dump(exclude_none=True).items()
                for name, floor in floors.items()]

    def to_params(self) -> dict[str, str]:
        """``gate.min.map50``, ``gate.min_per_class.recall.helmet``, ``gate.compare_to``..."""
        params = {f"gate.min.{k}": str(v)
                  for k, v in self.min.model_dump(exclude_none=True).items()}
        params.update({f"gate.min_per_class.{figure}.{name}": str(floor)
                       for figure, name, floor in self.class_rules()})
        if self.compare_to:
            params.update({"gate.compare_to": self.compare_to,
                           "gate.max_regression": str(self.max_regression),
                           "gate.regression_metric": self.regression_metric})
        return params

    def over(self, base: TrainingGate | None) -> TrainingGate:
        """This gate's rules on top of ``base`` (a site's default): what it sets wins."""
        if base is None:
            return self
        merged = base.model_dump(exclude_none=True)
        for key, value in self.model_dump(exclude_unset=True, exclude_none=True).items():
            if isinstance(value, dict):
                for inner, floor in value.items():
                    if isinstance(floor, dict):
                        merged[key].setdefault(inner, {}).update(floor)
                    else:
                        merged[key][inner] = floor
            else:
                merged[key] = value
        return TrainingGate.model_validate(merged)


class SiteConfig(_Section):
    """Where: one zone of one customer's plant. Names the MLflow experiment."""

    customer: Customer = Field(description="Customer slug, e.g. 'donghwa-entec' (on a team "
                               "server, the MLflow workspace)")
    region: Slug = Field(description="Region or city slug, e.g. 'busan'")
    plant: Slug = Field(description="Plant slug within the region, e.g. 'plant1'")
    zone: Slug = Field(description="Zone slug within the plant, e.g. 'welding'")
    description: str | None = Field(None, max_length=500,
                                    description="Free text about the site, shown in MLflow")
    gates: dict[TaskType, TrainingGate] = Field(
        default_factory=dict, description="Default training gates of the site, by task type")

    def to_experiment_name(self) -> str:
        """``{customer}/{region}-{plant}/{zone}``."""
        return site_path(self.customer, self.region, self.plant, self.zone)

    def to_tags(self) -> dict[str, str]:
        """``site.customer``, ``site.region``, ``site.plant``, ``site.zone``, ``site.path``."""
        return {**self._prefixed(keys.SITE_PREFIX.rstrip("."), ("description", "gates")),
                keys.SITE_PATH: self.to_experiment_name()}


class TaskConfig(_Section):
    """What: the detection task and its class names, in label-index order."""

    type: TaskType = Field(description=f"Task type: one of {', '.join(TASK_TYPES)}")
    classes: list[ClassName] = Field(min_length=1, max_length=1000,
                                     description="Class names in label-index order (index 0 first)")

    @field_validator("classes")
    @classmethod
    def _unique(cls, classes: list[str]) -> list[str]:
        seen = {c for c in classes if classes.count(c) > 1}
        if seen:
            raise PydanticCustomError("duplicate_class", "class names must be unique; repeated: "
                                      "{names}", {"names": ", ".join(sorted(seen))})
        return classes

    def to_tags(self) -> dict[str, str]:
        """``task.type``, ``task.classes`` (comma-joined), ``task.num_classes``."""
        return {keys.TASK_TYPE: self.type, f"{keys.TASK_PREFIX}classes": _csv(self.classes),
                f"{keys.TASK_PREFIX}num_classes": str(len(self.classes))}


class DatasetConfig(_Section):
    """With what data: a DVC-tracked dataset folder in Ultralytics' YOLO layout."""

    version: Label = Field(description="Dataset version label, e.g. 'v3' or '2026-05'")
    dvc_hash: DvcHash = Field(description="md5 that 'dvc add' records for the folder "
                              "(32 hex digits + '.dir')")
    path: ResolvedPath = Field(description="Dataset folder (images/, labels/); relative to the "
                               "scenario file")
    image_count: int = Field(ge=1, le=100_000_000,
                             description="Number of images in all splits, checked before a run")

    def to_tags(self) -> dict[str, str]:
        """``data.version``, ``data.dvc_hash``, ``data.path``, ``data.image_count``."""
        return self._prefixed("data")


class ModelConfig(_Section):
    """With what model: the YOLO architecture, its input size and optional starting weights."""

    architecture: Architecture = Field(description="Architecture as written in run names, "
                                       "e.g. 'yolov11n'")
    input_size: int = Field(ge=32, le=4096, multiple_of=32,
                            description="Square input size in pixels, a multiple of 32")
    weights_path: Weights | None = Field(
        None, description="Starting weights: a .pt file (relative to the scenario file) or a "
        "registered model of this customer (fine-tuning); none trains from scratch")
    reset_head: bool = Field(False, description="Allow starting weights whose classes differ "
                             "from task.classes: the head's class layers start afresh")
    num_classes: int = Field(ge=1, le=1000,
                             description="Number of classes; must equal len(task.classes)")

    @property
    def parent(self) -> ModelRef | None:
        """The registered model the weights come from, if they do."""
        return self.weights_path if isinstance(self.weights_path, ModelRef) else None

    @property
    def ultralytics_name(self) -> str:
        """Ultralytics' model name: ``yolov11n`` -> ``yolo11n``, ``yolov8n`` -> ``yolov8n``."""
        return self.architecture.replace("yolov11", "yolo11")

    def to_params(self) -> dict[str, str]:
        """``model.architecture``, ``.input_size``, ``.weights_path``, ``.num_classes``."""
        return self._prefixed("model")


class EnvironmentConfig(_Section):
    """Where it runs: device, numeric precision and random seed."""

    device: str = Field("cpu", pattern=r"^(cpu|cuda|cuda:\d+|CPU|GPU|GPU\.\d+|NPU|AUTO)$",
                        description="'cpu', 'cuda', 'cuda:N', or an OpenVINO device "
                        "(CPU, GPU, GPU.N, NPU, AUTO)")
    precision: Precision = Field("fp32", description="Numeric precision: fp32, fp16 or int8")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed for every library")
    host: Label | None = Field(None, description="The machine it must run on in a Ray batch "
                               "('siteml run --ray'): the node started with the custom resource "
                               "host:NAME (a site's edge box); ignored on this machine")

    def to_params(self) -> dict[str, str]:
        return self._prefixed("environment")


class TrainingParams(_Section):
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


class InferenceBenchmarkParams(_Section):
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


class QuantizationParams(_Section):
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
                                "precisions": _words(backend.precisions),
                                "others": _words(others, "or"), "field": "quantization.precision"})
        if self.method == "accuracy_control" and not (backend.accuracy_control
                                                      and self.precision == "int8"):
            able = [b for b in backends.quantizing() if backends.get(b).accuracy_control]
            raise PydanticCustomError("unsupported_method", "method accuracy_control needs "
                                      "backend {able} and precision int8",
                                      {"able": _words(able, "or"),
                                       "field": "quantization.method"})
        return self

    @property
    def variant(self) -> str:
        """``{backend}_{precision}``, e.g. ``openvino_int8``."""
        return f"{self.backend}_{self.precision}"

    def to_params(self) -> dict[str, str]:
        return self._prefixed("quantization")


class BaseScenario(_Section):
    """One run: where, what, with what, and how. Subclasses add the ``how``."""

    params_key: ClassVar[str]
    registers_model: ClassVar[bool] = True

    experiment_type: str = Field(description="The experiment type; picks the parameter section")
    name: ScenarioName = Field(description="Scenario name, a slug (underscores allowed)")
    version: Version = Field(description="Scenario version 'v<N>'; bump it for every new run")
    description: str | None = Field(None, max_length=5000, description="What this run is for")
    site: SiteConfig = Field(description="Site mapping, or the id of configs/sites/<id>.yaml")
    task: TaskConfig
    model: ModelConfig
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    dataset: DatasetConfig
    tags: dict[TagKey, Annotated[str, Field(max_length=5000)]] = Field(
        default_factory=dict, description="Extra MLflow run tags (reserved prefixes excluded)")
    _files: list[Path] = PrivateAttr(default_factory=list)

    @property
    def source_files(self) -> list[Path]:
        """The files the scenario was read from: its own, then the bases it extends."""
        return self._files

    @source_files.setter
    def source_files(self, files: list[Path]) -> None:
        self._files = list(files)

    @field_validator("tags")
    @classmethod
    def _not_reserved(cls, tags: dict[str, str]) -> dict[str, str]:
        reserved = [k for k in tags if k.startswith(RESERVED_TAG_PREFIXES)]
        if reserved:
            raise PydanticCustomError("reserved_tag",
                                      "tag {keys} uses a reserved prefix ({prefixes})",
                                      {"keys": ", ".join(reserved),
                                       "prefixes": ", ".join(RESERVED_TAG_PREFIXES)})
        return tags

    @model_validator(mode="after")
    def _class_count(self) -> BaseScenario:
        if self.model.num_classes != len(self.task.classes):
            raise PydanticCustomError(
                "class_count", "is {num} but task.classes names {count} classes",
                {"num": self.model.num_classes, "count": len(self.task.classes),
                 "field": "model.num_classes"})
        return self

    def resolved_yaml(self, exclude_defaults: bool = False) -> str:
        """The resolved scenario (bases merged, site inlined, overrides applied, defaults
        filled unless ``exclude_defaults``) as YAML."""
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=exclude_defaults),
                              sort_keys=False, allow_unicode=True)

    @property
    def params(self) -> TrainingParams | InferenceBenchmarkParams | QuantizationParams:
        """This scenario's type-specific parameter section."""
        return getattr(self, self.params_key)

    def model_reference(self, role: str) -> ModelRef | None:
        """The registered model the scenario reads as ``role`` (see ``ExperimentType.roles``),
        or None when it names none (or names an export folder)."""
        ref = getattr(self.params, role, None)
        return None if isinstance(ref, Path) else ref

    def model_folder(self, role: str) -> Path | None:
        """The export folder holding the model read as ``role``, when the scenario names one
        (its manifest says which registered version it is)."""
        ref = getattr(self.params, role, None)
        return ref if isinstance(ref, Path) else None

    def get_experiment_name(self) -> str:
        """MLflow experiment: the site path."""
        return self.site.to_experiment_name()

    def get_run_name(self) -> str:
        """MLflow run name: ``{task}-{architecture}-{exp_type}-{version}``."""
        return f"{self.task.type}-{self.model.architecture}-{self.experiment_type}-{self.version}"

    def get_registered_model_name(self, variant: str | None = None) -> str:
        """MLflow registered model name of this site and task, for ``variant`` if given."""
        return registered_model_name(self.get_experiment_name(), self.task.type, variant)

    def output_model_name(self) -> str | None:
        """The registered model a successful run adds a version to, or None."""
        return self.get_registered_model_name() if self.registers_model else None

    def to_all_tags(self) -> dict[str, str]:
        """Every run tag the scenario defines (site, task, dataset, siteml bookkeeping, user)."""
        tags = {**self.site.to_tags(), **self.task.to_tags(), **self.dataset.to_tags(),
                keys.EXPERIMENT_TYPE: self.experiment_type,
                keys.SCENARIO: self.name, keys.SCENARIO_VERSION: self.version}
        output = self.output_model_name()
        if output:
            tags[keys.REGISTERED_MODEL] = output
        return {**tags, **self.tags}

    def to_all_params(self) -> dict[str, str]:
        """Every run param: model, environment and the type-specific section."""
        return {**self.model.to_params(), **self.environment.to_params(),
                **self.params.to_params()}


class TrainingScenario(BaseScenario):
    """Train a detector for a site; registers ``{site}.{task}``."""

    params_key: ClassVar[str] = "training"
    experiment_type: Literal["train"]
    training: TrainingParams = Field(description="Ultralytics training arguments")

    @model_validator(mode="after")
    def _trainable_environment(self) -> TrainingScenario:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.environment.device):
            raise PydanticCustomError("train_device", "training runs on 'cpu', 'cuda' or "
                                      "'cuda:N', not the OpenVINO device {device!r}",
                                      {"device": self.environment.device,
                                       "field": "environment.device"})
        if self.environment.precision == "int8":
            raise PydanticCustomError("train_precision", "training runs in fp32 or fp16 (amp); "
                                      "int8 comes from a quant scenario",
                                      {"field": "environment.precision"})
        parent = self.model.parent
        if parent is not None:
            customer = customer_of(parent.site)
            if parent.variant:
                problem = (f"{parent.path} is the quantized variant {parent.variant}, which "
                           "cannot be trained; start from the task model")
            elif customer != self.site.customer:
                problem = (f"{parent.path} belongs to customer {customer!r}; a model starts only "
                           f"from models of its own customer ({self.site.customer!r})")
            else:
                problem = None
            if problem:
                raise PydanticCustomError("parent_model", problem, {"field": "model.weights_path"})
        self._check_gate_classes(self.training.gate, "training.gate")
        self._check_gate_classes(self.site.gates.get(self.task.type),
                                 f"site.gates.{self.task.type}")
        return self

    def _check_gate_classes(self, gate: TrainingGate | None, where: str) -> None:
        for figure, name, _ in gate.class_rules() if gate else ():
            if name != ALL_CLASSES and name not in self.task.classes:
                raise PydanticCustomError(
                    "gate_class", "{name} is not a class of the task (classes: {classes}; "
                    "'*' is every class)", {"name": repr(name),
                                            "classes": ", ".join(self.task.classes),
                                            "field": f"{where}.min_per_class.{figure}.{name}"})

    @property
    def gate(self) -> TrainingGate | None:
        """The training gate: the scenario's rules on top of the site's for the task."""
        site_gate = self.site.gates.get(self.task.type)
        return self.training.gate.over(site_gate) if self.training.gate else site_gate

    def model_reference(self, role: str) -> ModelRef | None:
        """``parent``: the registered model the weights come from; ``champion``: the task's
        @champion when the gate compares with it."""
        if role == "parent":
            return self.model.parent
        if role == "champion" and self.gate and self.gate.compare_to:
            return ModelRef(name=self.get_registered_model_name(), alias=self.gate.compare_to)
        return None

    def to_all_params(self) -> dict[str, str]:
        gate = self.gate
        return {**super().to_all_params(), **(gate.to_params() if gate else {})}


class InferenceBenchmarkScenario(BaseScenario):
    """Benchmark a registered model on a device; registers nothing."""

    params_key: ClassVar[str] = "benchmark"
    registers_model: ClassVar[bool] = False
    experiment_type: Literal["infer"]
    benchmark: InferenceBenchmarkParams = Field(description="Latency benchmark settings")

    @model_validator(mode="after")
    def _device_of_backend(self) -> InferenceBenchmarkScenario:
        backend = self.benchmark.backend
        problem = None if backend == "auto" else backends.device_problem(
            backend, self.environment.device)
        if problem:
            raise PydanticCustomError("benchmark_device", problem,
                                      {"field": "environment.device"})
        return self

    def to_all_tags(self) -> dict[str, str]:
        tags = super().to_all_tags()
        for role in ("source", "baseline"):
            if getattr(self.benchmark, role):
                tags[keys.role_tag(role, "model_ref")] = str(getattr(self.benchmark, role))
        return tags


class QuantizationScenario(BaseScenario):
    """Quantize or convert a registered model; registers ``{site}.{task}__{variant}``."""

    params_key: ClassVar[str] = "quantization"
    experiment_type: Literal["quant"]
    quantization: QuantizationParams = Field(description="Quantization target and method")

    def get_registered_model_name(self, variant: str | None = None) -> str:
        """As the base, but the variant defaults to this scenario's ``{backend}_{precision}``."""
        return super().get_registered_model_name(variant or self.quantization.variant)

    def to_all_tags(self) -> dict[str, str]:
        tags = {**super().to_all_tags(), keys.VARIANT: self.quantization.variant}
        if self.quantization.source:
            tags[keys.role_tag("source", "model_ref")] = str(self.quantization.source)
        return tags
