"""The field types of scenario files and their parsers: slugs, names, hashes, model references,
paths made absolute against the scenario file's folder, and the sections' common base.

Pure: no I/O, no MLflow, no ML framework. ``base_dir`` comes from the validation context, which
the factory sets to the scenario file's folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from siteml.backends import registry as backends
from siteml.core.naming import (
    CUSTOMER_RE,
    MODELS_SCHEME,
    RESERVED_CUSTOMERS,
    SLUG_MAX,
    ModelRef,
    customer_problem,
    slug_problem,
)
from siteml.core.tasks import TASK_TYPES

if TYPE_CHECKING:  # built from the registries when imported: to a type checker, names
    TaskType: TypeAlias = str
    BenchmarkBackend: TypeAlias = str
    QuantBackend: TypeAlias = str
else:
    TaskType = Literal[TASK_TYPES]
    BenchmarkBackend = Literal[("auto", *backends.BACKENDS)]
    QuantBackend = Literal[backends.quantizing()]
Precision = Literal["fp32", "fp16", "int8"]
Architecture = Literal[
    "yolov8n", "yolov8s", "yolov8m", "yolov8l", "yolov8x",
    "yolov11n", "yolov11s", "yolov11m", "yolov11l", "yolov11x",
]


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


def comma_joined(values: list[Any]) -> str:
    """``a,b,c``: how a list goes into a tag or param."""
    return ",".join(str(v) for v in values)


def words(items: Any, last: str = "and") -> str:
    """``a, b and c``."""
    items = list(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1] if len(items) > 1 else "".join(items)


class Section(BaseModel):
    """A section of a scenario file: unknown keys are errors, defaults are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    def _prefixed(self, prefix: str, exclude: tuple[str, ...] = ()) -> dict[str, str]:
        """Every set field as ``{prefix}.{field}`` -> string (lists comma-joined, None left out)."""
        out = {}
        for key, value in self.model_dump(mode="json", exclude=set(exclude)).items():
            if value is not None:
                out[f"{prefix}.{key}"] = (comma_joined(value) if isinstance(value, list)
                                          else str(value))
        return out
