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
from siteml.scenario.schema import BaseScenario

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
