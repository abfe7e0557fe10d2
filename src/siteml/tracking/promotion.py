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
