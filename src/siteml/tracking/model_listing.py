"""Listing the registry: registered models as site -> task -> variant -> versions, in paged,
name-filtered queries (never an unfiltered scan), so listing stays fast on a big store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from siteml.core import keys
from siteml.core.naming import ModelRef, registry_path

if TYPE_CHECKING:  # the box agent pages through searches without importing MLflow
    from mlflow import MlflowClient


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
