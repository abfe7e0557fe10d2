"""The fleet as the registry and the deployment runs tell it (``siteml fleet``): per box and
task, the version it should serve (its ``box-<name>`` alias), the one it serves (its RUNNING
deployment run), when its agent last reported, its health, and whether it lags the site's
``@champion``. Two queries per call (the sites' models, their deployment runs), filtered on
names and tags, so the answer stays fast on a big store."""

from __future__ import annotations

import time
from typing import Any

from mlflow import MlflowClient

from siteml.core import keys
from siteml.core.clock import seconds_of
from siteml.core.naming import CHAMPION, ModelRef, registry_path
from siteml.tracking.model_listing import all_pages, like_pattern
from siteml.tracking.queries import site_experiments

MISSED_BEATS = 3
"""A box is stale after this many intervals without a report."""
HEALTH = ("ok", "updating", "refused", "stale", "not reporting")


def fleet(client: MlflowClient, site: str | None = None,
          now: float | None = None) -> list[dict[str, Any]]:
    """One row per box and task of ``site`` (or of every site), by site, box and task."""
    experiments = site_experiments(client, site)
    if not experiments:
        return []
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    champions = _desired(client, site, rows)
    for run in _serve_runs(client, list(experiments)):
        _serving(rows, experiments[run.info.experiment_id], run, now or time.time())
    for (row_site, _, task), row in rows.items():
        row["champion"] = champions.get((row_site, task))
        row["lagging"] = (row["champion"] is not None and row["source_version"] is not None
                          and row["source_version"] != row["champion"])
        row["health"] = _health(row)
    return [rows[key] for key in sorted(rows)]


def _row(rows: dict[tuple[str, str, str], dict[str, Any]], site: str, box: str,
         task: str) -> dict[str, Any]:
    return rows.setdefault((site, box, task), {
        "site": site, "box": box, "task": task, "desired_model": None, "desired": None,
        "model": None, "serving": None, "source_version": None, "heartbeat": None,
        "age_s": None, "interval_s": None, "cameras": None, "fps": None, "refused": None,
        "refused_at": None,
        "champion": None, "lagging": False, "health": None})


def _desired(client: MlflowClient, site: str | None,
             rows: dict[tuple[str, str, str], dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Fill each box's desired version from the aliases; the champion of each site and task."""
    pattern = f"{like_pattern(site.replace('/', '.'))}.%" if site else "%"
    champions = {}
    for model in all_pages(lambda token: client.search_registered_models(
            f"name LIKE '{pattern}'", max_results=1000, page_token=token)):
        try:
            ref = ModelRef(name=model.name, version=1)
        except (IndexError, ValueError):
            continue
        if ref.variant is None and CHAMPION in model.aliases:
            champions[(ref.site, ref.task)] = int(model.aliases[CHAMPION])
        for alias, version in model.aliases.items():
            if alias.startswith(keys.BOX_ALIAS_PREFIX):
                row = _row(rows, ref.site, alias.removeprefix(keys.BOX_ALIAS_PREFIX), ref.task)
                row["desired_model"], row["desired"] = registry_path(model.name), int(version)
    return champions


def _serve_runs(client: MlflowClient, experiment_ids: list[str]) -> list[Any]:
    """Deployment runs that serve now, and refusals, newest first."""
    return all_pages(lambda token: client.search_runs(
        experiment_ids, f"tags.`{keys.EXPERIMENT_TYPE}` = '{keys.SERVE_TYPE}' and "
        "attributes.status != 'FINISHED'", max_results=10_000,
        order_by=["attributes.start_time DESC"], page_token=token))


def _serving(rows: dict[tuple[str, str, str], dict[str, Any]], site: str, run: Any,
             now: float) -> None:
    """Read one deployment run into its box's row (the newest run of each kind wins)."""
    tags, metrics = run.data.tags, run.data.metrics
    row = _row(rows, site, tags.get(keys.BOX, "?"), tags.get(keys.TASK_TYPE, "?"))
    version = int(tags.get(keys.SERVE_VERSION, 0))
    if run.info.status not in ("RUNNING", "FAILED"):
        return
    if run.info.status == "FAILED" or keys.SERVE_REFUSED in tags:  # a refusal is RUNNING
        # from its creation (with its reason) until the agent ends it: never a version served
        refusal = (registry_path(tags.get(keys.SERVE_MODEL, "")), version)
        if refusal == (row["desired_model"], row["desired"]) and row["refused"] is None:
            row["refused"], row["refused_at"] = tags.get(keys.SERVE_REFUSED), run.info.start_time
        return
    if row["serving"] is not None:
        return
    seen = seconds_of(tags.get(keys.HEARTBEAT))
    source = tags.get(keys.SOURCE_MODEL_VERSION)
    row.update({
        "model": registry_path(tags.get(keys.SERVE_MODEL, "")), "serving": version,
        "source_version": int(source) if source and source.isdigit() else None,
        "heartbeat": tags.get(keys.HEARTBEAT), "age_s": round(now - seen, 1) if seen else None,
        "interval_s": float(tags.get(keys.SERVE_INTERVAL_S) or 30),
        "cameras": metrics.get(keys.SERVE_CAMERAS), "fps": metrics.get(keys.SERVE_FPS)})


def _health(row: dict[str, Any]) -> str:
    if row["serving"] is None:
        return "refused" if row["refused"] else "not reporting"
    if row["age_s"] is None or row["age_s"] > MISSED_BEATS * row["interval_s"]:
        return "stale"
    if row["desired"] is not None and (row["desired"], row["desired_model"]) != (
            row["serving"], row["model"]):
        return "refused" if row["refused"] else "updating"
    return "ok"
