"""Pipelines: one plain function per experiment type, ``run(scenario, tracker) -> PipelineResult``.

``PIPELINES`` is the one dispatch table, keyed by ``experiment_type``. Entries are import paths,
so the heavy frameworks a pipeline needs are imported only when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from siteml.errors import SitemlError
from siteml.extras import check_installed
from siteml.pipelines.base import PipelineResult, Tracker
from siteml.scenario.schema import BaseScenario, device_problem, runtime_for

Pipeline = Callable[[BaseScenario, Tracker], PipelineResult]

PIPELINES: dict[str, str | Pipeline] = {
    "train": "siteml.pipelines.train:run",
    "quant": "siteml.pipelines.quantize:run",
    "infer": "siteml.pipelines.benchmark:run",
}


def get_pipeline(experiment_type: str) -> Pipeline:
    """The pipeline for ``experiment_type``, imported on first use."""
    entry = PIPELINES.get(experiment_type)
    if entry is None:
        available = ", ".join(sorted(PIPELINES)) or "none"
        raise SitemlError(f"no pipeline for experiment_type {experiment_type!r} in this version "
                          f"of siteml (available: {available})")
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = PIPELINES[experiment_type] = getattr(importlib.import_module(module), name)
    return entry


TRAIN_MODULES = (("torch", "train"), ("ultralytics", "train"))
BACKEND_MODULES = {"openvino": (("openvino", "quantize"),),
                   "onnxruntime": (("onnx", "quantize"), ("onnxslim", "quantize"),
                                   ("onnxruntime", "quantize"))}


def check_extras(scenario: BaseScenario) -> None:
    """Check that what the scenario's pipeline needs is installed, before any run is created.

    Raises:
        MissingExtraError: naming the siteml extra that installs the missing package.
    """
    modules = list(TRAIN_MODULES)
    backend = getattr(scenario.params, "backend", None)
    modules += BACKEND_MODULES.get(backend, ())
    if getattr(scenario.params, "precision", None) == "int8" and backend == "openvino":
        modules.append(("nncf", "quantize"))
    for module, extra in modules:
        check_installed(module, extra)


def check_device(scenario: BaseScenario, backend: str | None = None) -> tuple[str, str] | None:
    """Whether this machine has the scenario's device for ``backend``, the runtime that will use
    it (default: the one the scenario names; none for a benchmark's ``auto``).

    Returns:
        None, or the YAML path to blame and why.
    """
    params, device = scenario.params, scenario.environment.device
    backend = backend or ("pytorch" if scenario.experiment_type == "train"
                          else getattr(params, "backend", None))
    if backend in (None, "auto") or device_problem(backend, device):
        return None  # quantization times on the CPU what its runtime cannot name
    from siteml.pipelines.runtimes import missing_device

    missing = missing_device(backend, device)
    return ("environment.device", missing) if missing else None


def check_source(scenario: BaseScenario, saved_for: str | None) -> tuple[str, str] | None:
    """Whether the pipeline can use its source model, saved for runtime ``saved_for`` (the
    version's ``model.backend`` tag; None if it has none), and the runtime that a benchmark's
    ``backend: auto`` picks for it is installed and has the device.

    Returns:
        None, or the YAML path to blame and why.

    Raises:
        MissingExtraError: the runtime that will run the source is not installed.
    """
    if saved_for is None:
        return None
    if scenario.experiment_type == "quant" and saved_for != "pytorch":
        return ("quantization.source", f"the source is saved for {saved_for}; quantization "
                "starts from the task's PyTorch model (its base variant)")
    if scenario.experiment_type != "infer":
        return None
    try:
        backend = runtime_for(scenario.params.backend, saved_for)
    except ValueError as exc:
        return "benchmark.backend", str(exc)
    if scenario.params.backend != "auto":
        return None  # its package and device were checked before the source was known
    problem = device_problem(backend, scenario.environment.device)
    return ("environment.device", problem) if problem else _runtime_ready(scenario, backend)


def check_baseline(scenario: BaseScenario, saved_for: str | None) -> tuple[str, str] | None:
    """Whether the runtime of a benchmark's baseline model (saved for ``saved_for``) is installed
    and has the scenario's device when it names one (it runs on the CPU otherwise)."""
    problem = _runtime_ready(scenario, saved_for) if saved_for else None
    return None if problem is None else ("benchmark.baseline", problem[1])


def _runtime_ready(scenario: BaseScenario, backend: str) -> tuple[str, str] | None:
    """Check that runtime ``backend`` is installed (PyTorch always is: every scenario checks
    it); return ``check_device``'s answer for it."""
    for module, extra in BACKEND_MODULES.get(backend, ()):
        check_installed(module, extra)
    return check_device(scenario, backend)
