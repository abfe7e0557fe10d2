"""How a scenario runs: ``siteml run``'s options, and what a batch adds for each of its steps;
one object from the command line down to ``preflight``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from siteml.tracking.store import Store


@dataclass(frozen=True)
class RunOptions:
    """How a scenario runs (``siteml run``'s options and a batch's additions)."""

    overrides: tuple[str, ...] = ()
    sites_dir: str | Path | None = None
    rerun: bool = False
    """Run again although this run name FINISHED, even with the same run key."""
    skip_data_check: bool = False
    store: Store | None = None
    """None: the one the environment names (``resolve_store``), as a batch's worker finds it."""
    pinned: Mapping[str, int] = field(default_factory=dict)
    """Registered model names -> the version a batch produced: a source left unset reads that
    version instead of @champion / @candidate."""
    pending: frozenset[str] = frozenset()
    """Models a batch will produce first (while planning it): roles that read one are not
    checked, and leave the run key open."""
    executor_tags: Mapping[str, str] = field(default_factory=dict)
    """Where a batch ran it (``ray.task_id`` ...): an earlier RUNNING attempt of the same Ray
    task died."""
