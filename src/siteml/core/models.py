"""What a pipeline receives and returns: the produced and source model types, the result, and
the tracker protocol. No MLflow here: the tracker hides it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

FILES = "files"
ModelFormat = str
"""How MLflow clients load a registered model: ``files`` (no loader, just the files) or a
backend's ``model_format`` (saved as a pyfunc model that runs on that backend)."""
CANARY_DIR = "canary"
"""The folder of canary detections at the root of a registered version's files (and of an
exported version), beside the model."""


@dataclass
class ProducedModel:
    """Model files a run produced, to be logged and registered.

    Attributes:
        path: A file or a folder holding the model files.
        format: How MLflow clients should load it (``files``: no loader, just the files).
        backend: Runtime the files are for (``pytorch``, ``openvino``, ``onnxruntime``).
        precision: Numeric precision of the weights (``fp32``, ``fp16``, ``int8``).
        variant: None for the task model, ``{backend}_{precision}`` for a converted variant.
        tags: Extra registered-version tags (lineage, toolkit versions).
        canary: A folder of canary images and their detections by this model
            (``pipelines/canary.py``), registered with it as ``canary/`` so that an edge box
            can check its runtime detects the same; None for none.
    """

    path: Path
    format: ModelFormat = FILES
    backend: str = "pytorch"
    precision: str = "fp32"
    variant: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    canary: Path | None = None


@dataclass
class PipelineResult:
    """What a pipeline hands back to the runner.

    Attributes:
        metrics: Final metrics (MLflow-safe names, e.g. ``val/map50_95``).
        model: The model to register, or None.
        headline: Metric names copied onto the registered version as ``metrics.*`` tags, so
            ``siteml models`` shows them without reading runs.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    model: ProducedModel | None = None
    headline: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceModel:
    """A registered model version a pipeline consumes, downloaded to ``path``."""

    name: str
    version: int
    run_id: str | None
    path: Path
    tags: dict[str, str]


class Tracker(Protocol):
    """The run a pipeline logs into."""

    workdir: Path
    """A run-scoped scratch folder, removed after the run."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics now (per-step metrics as they come); names are sanitized; no ``step``
        means after the last step logged."""

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file or folder as a run artifact."""

    def set_tags(self, tags: dict[str, str]) -> None:
        """Add run tags."""

    def reads(self, role: str) -> bool:
        """Whether the scenario reads a registered model as ``role`` (a champion to compare
        with may be missing)."""

    def source_model(self, role: str = "source") -> SourceModel:
        """Download a model the scenario reads: its ``source`` (quant and infer scenarios), a
        benchmark's ``baseline``, a training's ``parent`` or the ``champion`` it is compared
        with."""
