"""The model registry: registering produced models, resolving references, promotion and queries.

Queries filter on names and tags (never an unfiltered scan), so they stay fast on a big store.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from siteml.core import keys
from siteml.core.errors import InvalidInputError, SitemlError
from siteml.core.models import FILES, ProducedModel, SourceModel
from siteml.core.naming import CANDIDATE, CHAMPION, ModelRef, registered_model_name, registry_path
from siteml.tracking.pyfunc import save_detector

ALIAS_ATTEMPTS = 4
UNIQUE_KEY_ERRORS = ("IntegrityError", "UniqueViolation", "UNIQUE constraint failed",
                     "duplicate key", "sqlalche.me/e/21/gkpj")
"""How a lost race on a unique key reads in MLflow's errors (SQLAlchemy, PostgreSQL, sqlite)."""


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


def default_source(client: MlflowClient, site: str, task: str) -> ModelRef:
    """The site/task model's @champion when it has one, else its @candidate."""
    name = registered_model_name(site, task)
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if not _missing(exc):
            raise
        raise ModelNotFoundError(f"no registered model {registry_path(name)!r} to use as "
                                 "source; train one first or set the source") from None
    alias = CHAMPION if CHAMPION in aliases else CANDIDATE
    return ModelRef(name=name, alias=alias)


def download_version(version: Any, dst: Path, tracking_uri: str) -> SourceModel:
    """Download a version's model files into ``dst``."""
    import mlflow.artifacts

    dst.mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{version.name}/{version.version}", dst_path=str(dst),
        tracking_uri=tracking_uri)
    return SourceModel(name=version.name, version=int(version.version), run_id=version.run_id,
                       path=Path(local), tags=dict(version.tags))


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
    files are logged as they are.

    Returns:
        The new ModelVersion, with ``alias`` pointing at it.
    """
    _ensure_registered_model(client, name, model_tags, description)
    logged = client.create_logged_model(experiment_id, name=logged_name, source_run_id=run_id,
                                        tags={keys.FORMAT: model.format},
                                        model_type=model.format)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = model.path
            if model.format != FILES:
                folder = save_detector(model, Path(tmp) / "model", model_config or {})
            elif model.path.is_file():
                folder = Path(tmp)
                shutil.copy2(model.path, folder / model.path.name)
            client.log_model_artifacts(logged.model_id, str(folder))
        client.finalize_logged_model(logged.model_id, "READY")
    except BaseException:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    version = client.create_model_version(name, source=f"models:/{logged.model_id}",
                                          run_id=run_id, tags=version_tags,
                                          model_id=logged.model_id)
    set_alias(client, name, alias, version.version)
    return version


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


class PromotionRefusedError(SitemlError):
    """The version did not pass its gate (or was never scored); ``--force`` overrides (exit 1)."""


def gate_problem(version_tags: dict[str, str]) -> str | None:
    """Why a version may not become champion, or None: its gate refused it, it was never
    scored by one, or it carries a warning."""
    gate, problems = version_tags.get(keys.GATE), []
    if gate is None:
        problems.append("it was never scored by a gate (its run had no training.gate)")
    elif gate != keys.GATE_PASSED:
        problems.append(f"its gate says {gate}: {version_tags.get(keys.GATE_REASONS, '')}")
    if keys.WARNING in version_tags:
        problems.append(f"it carries a warning: {version_tags[keys.WARNING]}")
    return "; ".join(problems) or None


@dataclass(frozen=True)
class Promotion:
    """One alias move: the version it points at now, the one before, and the gate problem it
    was forced past (None when there was none)."""

    version: Any
    previous: int | None
    forced_past: str | None


def promote(client: MlflowClient, ref: ModelRef, alias: str, user: str,
            force: bool = False) -> Promotion:
    """Point ``alias`` at the version ``ref`` resolves to and record the move in the model's
    promotion history.

    Raises:
        PromotionRefusedError: ``alias`` is champion and the version has a ``gate_problem``
            (unless ``force``, which is recorded on the version with ``user``'s name).
    """
    version = resolve(client, ref)
    problem = gate_problem(version.tags) if alias == CHAMPION else None
    if problem and not force:
        raise PromotionRefusedError(
            f"{registry_path(version.name)}/{version.version} cannot become @{alias}: {problem}; "
            "pass --force to promote it anyway (recorded with your name)")
    before = client.get_registered_model(version.name).aliases.get(alias)
    previous = int(before) if before else None
    stamp = int(time.time() * 1000)
    if problem:
        client.set_model_version_tag(version.name, version.version, keys.GATE_FORCED, json.dumps(
            {"by": user, "at": stamp, "alias": alias, "problem": problem})[:5000])
    set_alias(client, version.name, alias, version.version)
    client.set_registered_model_tag(version.name, f"{keys.PROMOTION_PREFIX}{stamp}", json.dumps(
        {"alias": alias, "from": previous, "to": int(version.version), "by": user,
         "forced": bool(problem)}))
    return Promotion(version, previous, problem)


def promotion_history(client: MlflowClient, site: str | None = None,
                      task: str | None = None) -> list[dict[str, Any]]:
    """Every recorded alias move of the matching models, oldest first: when (ms), model,
    alias, from and to version, who, and whether it was forced past a gate."""
    moves = []
    for entry in model_tree(client, site, task):
        for key, value in entry["tags"].items():
            if key.startswith(keys.PROMOTION_PREFIX):
                moves.append({"at": int(key.removeprefix(keys.PROMOTION_PREFIX)),
                              "model": entry["path"], **json.loads(value)})
    return sorted(moves, key=lambda move: move["at"])


def all_pages(fetch: Any) -> list[Any]:
    """Every item of a paged MLflow search: ``fetch(page_token)`` returns one page."""
    items: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def headline_metrics(version_tags: dict[str, str]) -> dict[str, str]:
    """A version's headline metrics, from its ``metrics.*`` tags."""
    return {k.removeprefix(keys.METRIC_TAG_PREFIX): v for k, v in version_tags.items()
            if k.startswith(keys.METRIC_TAG_PREFIX)}


def like_pattern(prefix: str) -> str:
    """``prefix`` escaped for a ``LIKE`` filter (quotes dropped, ``%`` and ``_`` literal)."""
    return prefix.replace("'", "").replace("%", "\\%").replace("_", "\\_")


def model_tree(client: MlflowClient, site: str | None = None,
               task: str | None = None) -> list[dict[str, Any]]:
    """Registered models as site -> task -> variant -> versions, for ``siteml models``."""
    pattern = f"{like_pattern(site.replace('/', '.'))}.%" if site else "%"
    models = all_pages(lambda token: client.search_registered_models(
        f"name LIKE '{pattern}'", max_results=1000, page_token=token))
    versions_of: dict[str, list[Any]] = {}
    for version in all_pages(lambda token: client.search_model_versions(
            f"name LIKE '{pattern}'", max_results=10_000, page_token=token)):
        versions_of.setdefault(version.name, []).append(version)
    entries = []
    for model in sorted(models, key=lambda m: m.name):
        try:
            ref = ModelRef(name=model.name, version=1)
            model_site, model_task, variant = ref.site, ref.task, ref.variant
        except (IndexError, ValueError):
            continue
        if task and model_task != task:
            continue
        versions = versions_of.get(model.name, [])
        entries.append({
            "site": model_site, "task": model_task, "variant": variant, "name": model.name,
            "path": registry_path(model.name), "tags": dict(model.tags),
            "aliases": {alias: int(number) for alias, number in model.aliases.items()},
            "versions": [{
                "version": int(v.version), "run_id": v.run_id, "status": v.status,
                "created": v.creation_timestamp,
                "aliases": [a for a, n in model.aliases.items() if str(n) == str(v.version)],
                "metrics": headline_metrics(v.tags),
                "gate": v.tags.get(keys.GATE), "forced": v.tags.get(keys.GATE_FORCED),
                "warning": v.tags.get(keys.WARNING), "worst_class": v.tags.get(keys.WORST_CLASS),
                "parent": v.tags.get(keys.role_tag("parent", "model_path")),
            } for v in sorted(versions, key=lambda v: int(v.version), reverse=True)],
        })
    return entries
