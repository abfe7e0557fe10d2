"""Model files as an MLflow pyfunc model that standard MLflow clients can load and run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siteml.backends.registry import get
from siteml.core import keys
from siteml.core.models import ProducedModel
from siteml.core.provenance import package_versions

DETECTOR_CODE = Path(__file__).with_name("detector_model.py")
DEFAULT_CONFIG = {"conf": 0.25}


def requirements(backend: str) -> list[str]:
    """Pinned pip requirements for loading a model of ``backend``."""
    names = ("mlflow", "ultralytics", "pandas", *get(backend).packages)
    return [f"{name}=={version}" for name, version in package_versions(names).items()]


def save_detector(model: ProducedModel, dst: Path, config: dict[str, Any]) -> Path:
    """Write ``model`` as a pyfunc model folder at ``dst`` (MLmodel, code, the model files)."""
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        path=str(dst), python_model=str(DETECTOR_CODE), artifacts={"model": str(model.path)},
        model_config={**DEFAULT_CONFIG, **config}, pip_requirements=requirements(model.backend),
        metadata={keys.FORMAT: model.format, "backend": model.backend,
                  "precision": model.precision})
    return dst
