"""Promotion: moving an alias onto a version (champion only past its gate, or forced with a
name on record) and the promotion history those moves leave on the registered model."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient

from siteml.core import keys
from siteml.core.errors import SitemlError
from siteml.core.gate_policy import gate_problem
from siteml.core.naming import CHAMPION, ModelRef, registry_path
from siteml.tracking.model_listing import model_tree
from siteml.tracking.model_register import set_alias
from siteml.tracking.model_resolve import resolve


class PromotionRefusedError(SitemlError):
    """The version did not pass its gate (or was never scored); ``--force`` overrides (exit 1)."""


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
    _record(client, version.name, stamp, {"alias": alias, "from": previous,
                                          "to": int(version.version), "by": user,
                                          "forced": bool(problem)})
    return Promotion(version, previous, problem)


def unset_alias(client: MlflowClient, name: str, alias: str, user: str) -> int | None:
    """Take ``alias`` off registered model ``name``, recording the move (``to``: None); the
    version it pointed at, or None where it was not set (nothing recorded)."""
    before = client.get_registered_model(name).aliases.get(alias)
    if not before:
        return None
    client.delete_registered_model_alias(name, alias)
    _record(client, name, int(time.time() * 1000),
            {"alias": alias, "from": int(before), "to": None, "by": user, "forced": False})
    return int(before)


def _record(client: MlflowClient, name: str, stamp: int, move: dict[str, Any]) -> None:
    """One alias move in the model's history: tag ``siteml.promotion.<ms>.<alias>`` (the alias
    keeps two moves of one command, e.g. several boxes, apart)."""
    client.set_registered_model_tag(name, f"{keys.PROMOTION_PREFIX}{stamp}.{move['alias']}",
                                    json.dumps(move))


def promotion_history(client: MlflowClient, site: str | None = None,
                      task: str | None = None) -> list[dict[str, Any]]:
    """Every recorded alias move of the matching models, oldest first: when (ms), model,
    alias, from and to version, who, and whether it was forced past a gate."""
    moves = []
    for entry in model_tree(client, site, task):
        for key, value in entry["tags"].items():
            if key.startswith(keys.PROMOTION_PREFIX):
                stamp = key.removeprefix(keys.PROMOTION_PREFIX).split(".")[0]
                moves.append({"at": int(stamp),
                              "model": entry["path"], **json.loads(value)})
    return sorted(moves, key=lambda move: move["at"])
