"""Typed scenario files and the MLflow names they produce: where (site), what (task), with what
(dataset, model, environment), and the scenario classes that add each type's parameters.

Pure data and naming: this module does no I/O and imports neither MLflow nor any ML framework.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from siteml.backends import registry as backends
from siteml.core import keys
from siteml.core.naming import ModelRef, customer_of, registered_model_name, site_path
from siteml.core.tasks import TASK_TYPES
from siteml.scenario.fields import (
    Architecture,
    ClassName,
    Customer,
    DvcHash,
    Label,
    Precision,
    ResolvedPath,
    ScenarioName,
    Section,
    Slug,
    TagKey,
    TaskType,
    Version,
    Weights,
    comma_joined,
)
from siteml.scenario.gates import ALL_CLASSES, TrainingGate
from siteml.scenario.params import (
    InferenceBenchmarkParams,
    MiningParams,
    QuantizationParams,
    TrainingParams,
)

RESERVED_TAG_PREFIXES = (keys.SITE_PREFIX, keys.TASK_PREFIX, keys.DATA_PREFIX, keys.MODEL_PREFIX,
                         keys.ENV_PREFIX, keys.GIT_PREFIX, keys.SITEML_PREFIX, keys.MLFLOW_PREFIX,
                         *(f"{role}." for role in keys.MODEL_ROLES), keys.QUANT_PREFIX,
                         keys.BENCHMARK_PREFIX, keys.MINE_PREFIX)


BOX_LAYOUTS = ("ovms", "triton")
"""The inference servers a box runs (``siteml export --layout``)."""


class BoxConfig(Section):
    """One edge box of the site: the name its agent reports under, the server it runs."""

    name: Slug = Field(description="Box name, unique within the site, e.g. 'welding-01'")
    layout: Literal["ovms", "triton"] = Field(
        "ovms", description="The inference server of the box: ovms (OpenVINO Model Server) "
        "or triton")
    cameras: int | None = Field(None, ge=0, le=10_000,
                                description="Cameras the box is meant to serve")
    description: str | None = Field(None, max_length=500, description="Free text")


class SiteConfig(Section):
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
    boxes: list[BoxConfig] = Field(
        default_factory=list, max_length=10_000,
        description="The site's edge boxes (siteml deploy, siteml rollout, siteml fleet)")

    @field_validator("boxes")
    @classmethod
    def _unique_boxes(cls, boxes: list[BoxConfig]) -> list[BoxConfig]:
        names = [box.name for box in boxes]
        seen = sorted({name for name in names if names.count(name) > 1})
        if seen:
            raise PydanticCustomError("duplicate_box", "box names must be unique; repeated: "
                                      "{names}", {"names": ", ".join(seen)})
        return boxes

    def box(self, name: str) -> BoxConfig | None:
        return next((box for box in self.boxes if box.name == name), None)

    def get_experiment_name(self) -> str:
        """``{customer}/{region}-{plant}/{zone}``."""
        return site_path(self.customer, self.region, self.plant, self.zone)

    def to_tags(self) -> dict[str, str]:
        """``site.customer``, ``site.region``, ``site.plant``, ``site.zone``, ``site.path``."""
        return {**self._prefixed(keys.SITE_PREFIX.rstrip("."),
                                ("description", "gates", "boxes")),
                keys.SITE_PATH: self.get_experiment_name()}


class TaskConfig(Section):
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
        return {keys.TASK_TYPE: self.type, f"{keys.TASK_PREFIX}classes": comma_joined(self.classes),
                f"{keys.TASK_PREFIX}num_classes": str(len(self.classes))}


class DatasetConfig(Section):
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


class ModelConfig(Section):
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


class EnvironmentConfig(Section):
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


class BaseScenario(Section):
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
    def params(self) -> (TrainingParams | InferenceBenchmarkParams | QuantizationParams
                         | MiningParams):
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
        return self.site.get_experiment_name()

    def get_run_name(self) -> str:
        """MLflow run name: ``{task}-{architecture}-{exp_type}-{version}``."""
        return f"{self.task.type}-{self.model.architecture}-{self.experiment_type}-{self.version}"

    def get_task_model_name(self) -> str:
        """MLflow registered model name of this site and task (no variant): what a source left
        unset reads."""
        return registered_model_name(self.get_experiment_name(), self.task.type)

    def get_registered_model_name(self, variant: str | None = None) -> str:
        """MLflow registered model name of this site and task, for ``variant`` if given."""
        return registered_model_name(self.get_experiment_name(), self.task.type, variant)

    def get_output_model_name(self) -> str | None:
        """The registered model a successful run adds a version to, or None."""
        return self.get_registered_model_name() if self.registers_model else None

    def to_all_tags(self) -> dict[str, str]:
        """Every run tag the scenario defines (site, task, dataset, siteml bookkeeping, user)."""
        tags = {**self.site.to_tags(), **self.task.to_tags(), **self.dataset.to_tags(),
                keys.EXPERIMENT_TYPE: self.experiment_type,
                keys.SCENARIO: self.name, keys.SCENARIO_VERSION: self.version}
        output = self.get_output_model_name()
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


class MiningScenario(BaseScenario):
    """Mine a site's unlabelled frames for the ones its model gets wrong; registers nothing."""

    params_key: ClassVar[str] = "mine"
    registers_model: ClassVar[bool] = False
    experiment_type: Literal["mine"]
    mine: MiningParams = Field(description="Frames, scores, budget and quotas")

    @model_validator(mode="after")
    def _own_models_and_classes(self) -> MiningScenario:
        for field, ref in (("mine.source", self.mine.source),
                           ("mine.reference", self.mine.reference)):
            if ref is not None and customer_of(ref.site) != self.site.customer:
                raise PydanticCustomError(
                    "other_customer", "{path} belongs to customer '{customer}'; a site mines "
                    "with its own customer's models ('{own}')",
                    {"path": ref.path, "customer": customer_of(ref.site),
                     "own": self.site.customer, "field": field})
        for name in self.mine.quotas:
            if name not in self.task.classes:
                raise PydanticCustomError(
                    "quota_class", "{name} is not a class of the task (classes: {classes})",
                    {"name": repr(name), "classes": ", ".join(self.task.classes),
                     "field": f"mine.quotas.{name}"})
        return self

    def model_reference(self, role: str) -> ModelRef | None:
        """``source``: the serving model; ``baseline``: its FP32 reference, when named."""
        return {"source": self.mine.source, "baseline": self.mine.reference}.get(role)

    def to_all_tags(self) -> dict[str, str]:
        tags = super().to_all_tags()
        for role, ref in (("source", self.mine.source), ("baseline", self.mine.reference)):
            if ref is not None:
                tags[keys.role_tag(role, "model_ref")] = str(ref)
        return tags
