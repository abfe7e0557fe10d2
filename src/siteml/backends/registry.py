"""The runtime backends, one module each: adding a backend is one new module in this package
plus its name in ``BACKEND_MODULES``.

Every module defines ``BACKEND`` (a ``Backend`` record) and imports its runtime only inside
functions, so reading the registry costs no heavy import. An unknown name is an error that
lists the known ones, never a fallthrough to another runtime.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from siteml.backends.base import Backend, LoadedModel, LoadOptions, on_cpu
from siteml.core.errors import SitemlError
from siteml.core.extras import check_installed

BACKEND_MODULES = ("pytorch", "onnxruntime", "openvino")
"""In the order the schema lists them; each is ``siteml.backends.<name>``."""

BACKENDS: dict[str, Backend] = {
    backend.name: backend for backend in (
        importlib.import_module(f"siteml.backends.{module}").BACKEND
        for module in BACKEND_MODULES)}
SOURCE_BACKEND = "pytorch"
"""The runtime that trains, and that every quantization starts from."""
EXECUTION_PRECISION = {"fp32": "f32", "fp16": "f16", "int8": "f32"}
"""Execution precision asked of a runtime for a model precision (an INT8 model's float
layers run in f32)."""


def execution_precision(precision: str | None) -> str:
    """``EXECUTION_PRECISION`` of a model precision tag (fp32 when it has none)."""
    return EXECUTION_PRECISION.get(precision or "fp32", "f32")


class UnknownBackendError(SitemlError):
    """A backend name siteml does not know."""


def get(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        UnknownBackendError: listing the known backends.
    """
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(f"unknown backend {name!r}; known: "
                                  f"{', '.join(BACKENDS)}") from None


def quantizing() -> tuple[str, ...]:
    """Backends that can make a variant."""
    return tuple(name for name, backend in BACKENDS.items() if backend.precisions)


def backend_of(path: Path) -> str:
    """The runtime a model file or folder is for.

    Raises:
        ValueError: no backend owns it.
    """
    for name, backend in BACKENDS.items():
        if backend.owns(path):
            return name
    raise ValueError(f"{path}: no backend runs it (known: {', '.join(BACKENDS)})")


def find_model(folder: Path) -> Path:
    """The model inside a registered version's files (an IR folder, an ``.onnx``, a ``.pt``)."""
    for backend in BACKENDS.values():
        for pattern in backend.globs:
            found = sorted(folder.rglob(pattern))
            if found:  # the file, or the folder holding it when that is the model (an IR)
                return found[0].parent if backend.owns(found[0].parent) else found[0]
    raise FileNotFoundError(f"{folder} holds no model that a backend runs "
                            f"({', '.join(BACKENDS)})")


def load(path: Path, frame: Any, options: LoadOptions | None = None,
         backend: str | None = None) -> LoadedModel:
    """Load ``path`` on ``backend`` (default: what its files are for) with ``frame`` (an NCHW
    float32 batch whose size is compiled for) bound as its input."""
    return get(backend or backend_of(path)).load(path, frame, options or LoadOptions())


def runtime_for(requested: str, saved_for: str) -> str:
    """The runtime that runs a model saved for ``saved_for`` when ``requested`` (a benchmark's
    ``backend``, or ``auto``) is asked for.

    Raises:
        ValueError: ``requested`` cannot run that model.
    """
    if requested in ("auto", saved_for):
        return saved_for
    if saved_for in get(requested).also_runs:
        return requested
    raise ValueError(f"backend {requested} cannot run models saved for {saved_for}; use backend "
                     f"auto or {saved_for}")


def device_problem(backend: str, device: str) -> str | None:
    """Why ``device`` is not a device name of runtime ``backend``, or None when it is."""
    found = get(backend)
    return None if found.accepts(device) else (
        f"{backend} does not run on {device!r}: use {found.device_names}")


def device_or_cpu(backend: str, device: str) -> str:
    """``device`` if runtime ``backend`` names it, else the CPU: where a model that is not the
    scenario's subject (a quant run's source, a benchmark's baseline) runs."""
    return device if device_problem(backend, device) is None else "cpu"


def check_installed_for(backend: str, int8: bool = False) -> None:
    """Check that ``backend``'s runtime (and its INT8 toolkit) is installed, importing nothing.

    Raises:
        MissingExtraError: naming the extra that installs it.
    """
    found = get(backend)
    for module in (*found.modules, *(found.int8_modules if int8 else ())):
        check_installed(module, found.extra)


def missing_device(backend: str, device: str) -> str | None:
    """Why this machine cannot run ``backend`` on ``device``, or None when it can (or when the
    runtime does not name that device: it then runs on the CPU)."""
    if on_cpu(device) or device_problem(backend, device):
        return None
    return get(backend).missing_device(device)


def packages() -> tuple[str, ...]:
    """Pip distributions of every backend, for provenance."""
    return tuple(dict.fromkeys(p for b in BACKENDS.values()
                                for p in (*b.packages, *b.toolkits, *b.int8_modules)))
