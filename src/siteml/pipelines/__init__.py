"""Pipelines: one plain function per experiment type, ``run(scenario, tracker) -> PipelineResult``.

``PIPELINES`` is the one dispatch table, keyed by ``experiment_type``. Entries are import paths,
so the heavy frameworks a pipeline needs are imported only when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from siteml.errors import SitemlError
from siteml.pipelines.base import PipelineResult, Tracker
from siteml.scenario.schema import BaseScenario

Pipeline = Callable[[BaseScenario, Tracker], PipelineResult]

PIPELINES: dict[str, str | Pipeline] = {
    "train": "siteml.pipelines.train:run",
    "quant": "siteml.pipelines.quantize:run",
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
