"""MLflow's process-wide tracking and registry URIs, pointed at one store only for the MLflow
calls that read them instead of the client's, then put back as they were.

Two such calls remain in MLflow 3.17: the SQL registry store resolves a version's
``models:/m-…`` source with ``MlflowClient()`` (its own TODO says so), and a ``models:/``
download looks the version up through ``mlflow.get_registry_uri()``, whatever ``tracking_uri``
it is given. MLflow's ``_use_tracking_uri`` is not enough to put things back: restoring an
unset URI also removes ``MLFLOW_TRACKING_URI`` from the environment, where siteml finds its
store. So the variables and the environment are both saved and restored here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def pinned_uris(uri: str) -> Iterator[None]:
    """MLflow's global tracking and registry URIs are ``uri`` inside the block, and what they
    were (set, from the environment, or unset) after it."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_uris
    from mlflow.tracking._tracking_service import utils as tracking_uris

    tracking, registry = tracking_uris._tracking_uri, registry_uris._registry_uri
    environment = {name: os.environ.get(name) for name in ENVIRONMENT}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking)  # through the setter: it resets MLflow's tracer
        registry_uris._registry_uri = registry
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
