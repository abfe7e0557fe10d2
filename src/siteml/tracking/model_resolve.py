"""Resolving model references to registered versions, and downloading a version's files: what
a run reads, and what ``siteml export`` writes out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from siteml.core import keys
from siteml.core.digests import differences, file_hashes
from siteml.core.errors import InvalidInputError, SitemlError
from siteml.core.models import SourceModel
from siteml.core.naming import CANDIDATE, CHAMPION, ModelRef, registry_path
from siteml.tracking.global_uris import pinned_uris


class ModelNotFoundError(InvalidInputError):
    """A model reference names no registered model, alias or version (exit code 2)."""


def _missing(exc: MlflowException) -> bool:
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def resolve(client: MlflowClient, ref: ModelRef) -> Any:
    """The ModelVersion a reference points at.

    Raises:
        ModelNotFoundError: naming what exists instead.
    """
    try:
        model = client.get_registered_model(ref.name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        raise ModelNotFoundError(f"no registered model {registry_path(ref.name)!r} "
                                 f"(MLflow name {ref.name!r})") from None
    if ref.alias:
        if ref.alias not in model.aliases:
            known = ", ".join(f"@{a} -> v{v}" for a, v in sorted(model.aliases.items()))
            raise ModelNotFoundError(f"model {registry_path(ref.name)!r} has no alias "
                                     f"@{ref.alias} (aliases: {known or 'none'})")
        return client.get_model_version(ref.name, model.aliases[ref.alias])
    try:
        return client.get_model_version(ref.name, str(ref.version))
    except MlflowException as exc:
        if not _missing(exc):
            raise
        latest = max((int(v.version) for v in client.search_model_versions(
            f"name = '{ref.name}'")), default=None)
        raise ModelNotFoundError(f"model {registry_path(ref.name)!r} has no version {ref.version} "
                                 f"(latest: {latest or 'none'})") from None


def default_source(client: MlflowClient, name: str) -> ModelRef:
    """Registered model ``name`` (a site/task model) at @champion when it has one, else at
    @candidate."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if not _missing(exc):
            raise
        raise ModelNotFoundError(f"no registered model {registry_path(name)!r} to use as "
                                 "source; train one first or set the source") from None
    alias = CHAMPION if CHAMPION in aliases else CANDIDATE
    return ModelRef(name=name, alias=alias)


DOWNLOAD_ATTEMPTS = 2
"""A copy whose files differ from the registered ones is downloaded once more (a transfer
damaged on its way) before the registry's own copy is taken for damaged."""


class DamagedDownloadError(SitemlError):
    """A version's downloaded files differ from the sha256s registered with it: exit code 1."""


def download_version(version: Any, dst: Path, tracking_uri: str) -> SourceModel:
    """Download a version's model files into ``dst``, checked against the sha256 of each file
    registered with it (``model.files``; versions registered before siteml recorded them are
    taken as they come).

    Raises:
        DamagedDownloadError: the files differ, twice.
    """
    import mlflow.artifacts

    expected = json.loads(version.tags.get(keys.MODEL_FILES) or "{}")
    for _ in range(DOWNLOAD_ATTEMPTS):
        dst.mkdir(parents=True, exist_ok=True)
        with pinned_uris(tracking_uri):  # a models:/ download finds the version through them
            local = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{version.name}/{version.version}", dst_path=str(dst),
                tracking_uri=tracking_uri))
        problems = differences(expected, file_hashes(local), local) if expected else []
        if not problems:
            return SourceModel(name=version.name, version=int(version.version),
                               run_id=version.run_id, path=local, tags=dict(version.tags))
        shutil.rmtree(local)
    raise DamagedDownloadError(
        f"{registry_path(version.name)}/{version.version}: the downloaded files differ from "
        f"the ones registered, twice ({'; '.join(problems[:2])}): the registry's copy is "
        "damaged")
