"""``siteml deploy``: which version each edge box of a site should serve.

The desired state lives in the registry, where MLflow's UI and client show it: the alias
``box-<name>`` on the variant's registered model points at the version box ``<name>`` should
serve (one variant per task and box: moving a box to another variant takes the alias off the
old one). Every move is a line of the model's alias history (``siteml models --history``), with
who and when. The boxes are those of the site file (``boxes:``), checked before anything moves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from siteml.backends.registry import get
from siteml.core import keys
from siteml.core.errors import InvalidInputError
from siteml.core.naming import ModelRef, registry_path
from siteml.scenario.factory import find_site
from siteml.scenario.schema import SiteConfig
from siteml.tracking.model_access import open_registry, parse_reference
from siteml.tracking.model_listing import all_pages, like_pattern
from siteml.tracking.model_resolve import resolve
from siteml.tracking.promotion import promote, unset_alias
from siteml.tracking.store import Store


@dataclass(frozen=True)
class BoxMove:
    """One box's desired version, moved: the version before on this model, and the other
    variant the box was taken off (None when it served this one or nothing)."""

    box: str
    model: str | None
    version: int | None
    previous: int | None
    taken_from: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def site_boxes(site: str, names: list[str], sites_dir: Path | None = None) -> SiteConfig:
    """The site file of ``site``, checked to list every box of ``names``.

    Raises:
        InvalidInputError: no site file, or a box it does not list (naming the known ones).
    """
    try:
        _, config = find_site(site, sites_dir)
    except FileNotFoundError as exc:
        raise InvalidInputError(f"site {site}: {exc}") from None
    unknown = [name for name in names if config.box(name) is None]
    if unknown:
        known = ", ".join(box.name for box in config.boxes) or "none (add a boxes: list)"
        raise InvalidInputError(f"site {site} has no box {', '.join(unknown)} "
                                f"(its boxes: {known})")
    return config


def deploy(reference: str, boxes: list[str], user: str, store: Store | None = None,
           sites_dir: Path | None = None) -> list[BoxMove]:
    """Point each box of ``boxes`` at the version ``reference`` names.

    Raises:
        InvalidInputError: no box, an unknown site or box, a missing model or version, or a
            version the box's server cannot serve (nothing moved).
    """
    if not boxes:
        raise InvalidInputError("name at least one --box")
    ref = parse_reference(reference)
    config = site_boxes(ref.site, boxes, sites_dir)
    _, client = open_registry(ref, "manage", store)
    version = resolve(client, ref)
    backend = get(version.tags.get(keys.MODEL_BACKEND, "pytorch"))
    if backend.serve is None:
        layouts = {config.box(name).layout for name in boxes}  # type: ignore[union-attr]
        raise InvalidInputError(
            f"{registry_path(version.name)}/{version.version} is a {backend.name} model, which "
            f"{' and '.join(sorted(layouts))} cannot serve: deploy an OpenVINO or ONNX variant")
    siblings = task_models(client, ref)
    return [move_box(client, siblings, box, version.name, int(version.version), user)
            for box in boxes]


def move_box(client: Any, siblings: list[str], box: str, name: str | None, version: int | None,
             user: str) -> BoxMove:
    """Point ``box``'s alias at ``name``/``version`` (None: at nothing), taking it off every
    other model of ``siblings`` (the task's models)."""
    alias = keys.box_alias(box)
    taken = [other for other in siblings
             if other != name and unset_alias(client, other, alias, user) is not None]
    previous = None
    if name is not None and version is not None:
        previous = promote(client, ModelRef(name=name, version=version), alias, user).previous
    return BoxMove(box, registry_path(name) if name else None, version, previous,
                   registry_path(taken[0]) if taken else None)


def desired_of(client: Any, siblings: list[str], box: str) -> tuple[str, int] | None:
    """The model and version ``box`` should serve now, among the task's models."""
    alias = keys.box_alias(box)
    for name in siblings:
        aliases = client.get_registered_model(name).aliases
        if alias in aliases:
            return name, int(aliases[alias])
    return None


def task_models(client: Any, ref: ModelRef) -> list[str]:
    """The registered names of ``ref``'s task at its site: the task model and its variants."""
    prefix = f"{ref.site.replace('/', '.')}.{ref.task}"
    found = all_pages(lambda token: client.search_registered_models(
        f"name LIKE '{like_pattern(prefix)}%'", max_results=1000, page_token=token))
    return [m.name for m in found
            if m.name == prefix or m.name.startswith(f"{prefix}__")]
