"""Telling MLflow's errors apart from others, for the CLI's error reporting."""

from __future__ import annotations

from mlflow.exceptions import MlflowException


def is_mlflow_error(exc: BaseException) -> bool:
    """An ``MlflowException``, including a tracking server's ``RestException``."""
    return isinstance(exc, MlflowException)
