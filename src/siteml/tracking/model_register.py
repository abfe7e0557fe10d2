"""Registering produced models: a LoggedModel of the run, a version of the registered model,
and the alias moved onto it (retried when another process sets a new alias at the same time)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from siteml.core import keys
from siteml.core.digests import file_hashes
from siteml.core.models import CANARY_DIR, FILES, ProducedModel
from siteml.core.naming import CANDIDATE
from siteml.tracking.global_uris import pinned_uris
from siteml.tracking.pyfunc import save_detector

ALIAS_ATTEMPTS = 4
UNIQUE_KEY_ERRORS = ("IntegrityError", "UniqueViolation", "UNIQUE constraint failed",
                     "duplicate key", "sqlalche.me/e/21/gkpj")
"""How a lost race on a unique key reads in MLflow's errors (SQLAlchemy, PostgreSQL, sqlite)."""


def _ensure_registered_model(client: MlflowClient, name: str, tags: dict[str, str],
                             description: str) -> None:
    try:
        client.create_registered_model(name, tags=tags, description=description)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register(client: MlflowClient, *, experiment_id: str, run_id: str, model: ProducedModel,
             name: str, logged_name: str, model_tags: dict[str, str], version_tags: dict[str, str],
             description: str, alias: str = CANDIDATE,
             model_config: dict[str, Any] | None = None) -> Any:
    """Log ``model`` as an MLflow LoggedModel of the run and register a version of ``name``.

    Files of a loadable format become a pyfunc model (``model_config`` is its config); plain
    files are logged as they are. The model's canary, if any, goes beside them as ``canary/``.
    The version's ``model.files`` tag holds the sha256 of each file, so that every download of
    it can be checked.

    Returns:
        The new ModelVersion, with ``alias`` pointing at it.
    """
    _ensure_registered_model(client, name, model_tags, description)
    logged = client.create_logged_model(experiment_id, name=logged_name, source_run_id=run_id,
                                        tags={keys.FORMAT: model.format},
                                        model_type=model.format)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = _artifacts(model, Path(tmp) / "model", model_config or {})
            files = json.dumps(file_hashes(folder), separators=(",", ":"))
            client.log_model_artifacts(logged.model_id, str(folder))
        client.finalize_logged_model(logged.model_id, "READY")
    except BaseException:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    # an embedded (SQL) registry looks the models:/m-… source up through the global URIs
    with pinned_uris(client.tracking_uri):
        version = client.create_model_version(name, source=f"models:/{logged.model_id}",
                                              run_id=run_id,
                                              tags={**version_tags, keys.MODEL_FILES: files},
                                              model_id=logged.model_id)
    set_alias(client, name, alias, version.version)
    return version


def _artifacts(model: ProducedModel, scratch: Path, model_config: dict[str, Any]) -> Path:
    """The folder to log as the LoggedModel's files: a pyfunc model, or the plain files
    (copied to ``scratch`` where the canary is added or the model is one file; the run's own
    files are never changed)."""
    if model.format != FILES:
        folder = save_detector(model, scratch, model_config)
    elif model.path.is_file():
        scratch.mkdir()
        shutil.copy2(model.path, scratch / model.path.name)
        folder = scratch
    elif model.canary:
        folder = Path(shutil.copytree(model.path, scratch))
    else:
        return model.path
    if model.canary:
        shutil.copytree(model.canary, folder / CANARY_DIR)
    return folder


def version_with_key(client: MlflowClient, name: str, run_key: str) -> Any:
    """The version of ``name`` registered for ``run_key`` (``siteml.run_key``), or None."""
    found = client.search_model_versions(
        f"name = '{name}' and tags.`{keys.RUN_KEY}` = '{run_key}'", max_results=1)
    return found[0] if found else None


def set_alias(client: MlflowClient, name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``.

    MLflow's store sets an alias by reading it and then inserting or updating it, so two
    processes that set a new alias at the same moment both insert, and one fails on the unique
    key (seen with 4 processes on a PostgreSQL-backed server). The loser sets it again: the row
    exists by then, and the retry updates it.
    """
    for attempt in range(ALIAS_ATTEMPTS):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except MlflowException as exc:
            if attempt == ALIAS_ATTEMPTS - 1 or not any(
                    sign in str(exc) for sign in UNIQUE_KEY_ERRORS):
                raise
            time.sleep(0.05 * (attempt + 1))
