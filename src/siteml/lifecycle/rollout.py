"""``siteml rollout``: a version onto a site's boxes ring by ring, as AWS Greengrass rolls out a
deployment (rate by ring, abort past a failure threshold, roll back).

Each ring moves the desired state of its boxes (``siteml deploy``) and waits until every box of
the ring serves the version and reports healthy. A box that refuses the version, goes stale
(three missed reports) or is still not serving it when the ring's time is up counts as failed;
past ``max_failed`` failures the rollout stops and puts every box it moved back on the version
it had before, and waits for them to serve it again.

The rollout is a run of the site (``siteml.experiment_type = rollout``) holding its plan and
progress as tags: interrupted (Ctrl-C, a lost connection), the same command resumes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siteml.core import keys
from siteml.core.errors import InvalidInputError
from siteml.core.naming import ModelRef, registry_path
from siteml.lifecycle.deploy import desired_of, move_box, task_models
from siteml.scenario.factory import load_site
from siteml.tracking.fleet import fleet
from siteml.tracking.model_access import open_registry, parse_reference
from siteml.tracking.model_resolve import resolve
from siteml.tracking.runs import find_experiment_id
from siteml.tracking.store import Store

ROLLOUT_TYPE = "rollout"


@dataclass
class RolloutOutcome:
    """How a rollout ended: ``finished`` or ``rolled_back``; the rings (cumulative box
    counts), the failed boxes and why, the boxes moved and put back, and the time taken."""

    status: str
    model: str
    version: int
    rings: list[int]
    failed: dict[str, str] = field(default_factory=dict)
    moved: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rollback_s: float | None = None
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def reason(self) -> str:
        """Why it was rolled back, box by box."""
        return "; ".join(f"{box} {why}" for box, why in sorted(self.failed.items()))


def parse_rings(text: str, count: int) -> list[int]:
    """``1,25%,100%`` as cumulative box counts of ``count`` boxes (``[1, 3, 10]`` of 10);
    rings that round to the same count merge.

    Raises:
        InvalidInputError: an item that is not a count or a percentage, counts that go
            down, or a last ring that is not every box.
    """
    counts = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = (math.ceil(float(item[:-1]) * count / 100) if item.endswith("%")
                     else int(item))
        except ValueError:
            raise InvalidInputError(f"--rings {text!r}: {item!r} is neither a box count nor a "
                                    "percentage") from None
        if value < 1 or (counts and value < counts[-1]) or value > count:
            raise InvalidInputError(
                f"--rings {text!r} does not add up over {count} boxes: each ring holds at "
                "least one box, rings only grow, and none exceeds the site's boxes")
        if not counts or value > counts[-1]:
            counts.append(value)
    if not counts or counts[-1] != count:
        raise InvalidInputError(f"--rings {text!r} ends at {counts[-1] if counts else 0} of "
                                f"{count} boxes: the last ring must be 100%")
    return counts


@dataclass(frozen=True)
class RolloutPlan:
    """What ``siteml rollout`` was asked: the version, the site file, the rings, how many
    failed boxes it tolerates, how long a ring may take, how often it looks."""

    reference: str
    site_file: Path
    rings: str = "1,25%,100%"
    max_failed: int = 0
    ring_timeout_s: float = 600.0
    poll_s: float = 2.0


def rollout(plan: RolloutPlan, user: str, store: Store | None = None,
            say: Callable[[str], None] = lambda line: None) -> RolloutOutcome:
    """Run (or resume) the rollout ``plan`` describes.

    Raises:
        InvalidInputError: a bad reference, site file or ring list, or a model of another
            site (nothing moved).
    """
    started = time.monotonic()
    ref = parse_reference(plan.reference)
    site = load_site(plan.site_file)
    if site.get_experiment_name() != ref.site:
        raise InvalidInputError(f"{plan.reference} is a model of {ref.site}, not of the site "
                                f"of {plan.site_file} ({site.get_experiment_name()})")
    boxes = [box.name for box in site.boxes]
    if not boxes:
        raise InvalidInputError(f"{plan.site_file} lists no boxes (add a boxes: list)")
    rings = parse_rings(plan.rings, len(boxes))
    _, client = open_registry(ref, "manage", store)
    version = resolve(client, ref)
    target = (version.name, int(version.version))
    siblings = task_models(client, ref)
    run = _rollout_run(client, ref.site, target, rings, plan.max_failed)
    state = json.loads(run.data.tags.get(keys.ROLLOUT_STATE) or "{}")
    previous: dict[str, list[Any] | None] = state.get("previous", {})
    outcome = RolloutOutcome("finished", registry_path(target[0]), target[1], rings,
                             run_id=run.info.run_id)
    try:
        for ring, upto in enumerate(rings):
            members, since_ms = boxes[:upto], int(time.time() * 1000)
            for box in members:
                if box not in previous:
                    previous[box] = list(desired_of(client, siblings, box) or []) or None
                    _save(client, run.info.run_id, previous, ring)
                    move_box(client, siblings, box, *target, user)
            say(f"ring {ring + 1}/{len(rings)}: {len(members)} of {len(boxes)} boxes")
            failed = _wait(client, ref.site, members, target, plan, since_ms)
            outcome.failed.update(failed)
            if len(outcome.failed) > plan.max_failed:
                break
        else:
            outcome.moved = sorted(previous)
            _end(client, run.info.run_id, "FINISHED", previous, len(rings))
            outcome.seconds = round(time.monotonic() - started, 1)
            return outcome
    except BaseException as exc:  # Ctrl-C, the server away: the same command resumes it
        with contextlib.suppress(Exception):
            _end(client, run.info.run_id, "KILLED", previous, -1,
                 f"{type(exc).__name__}: {exc}")
        raise
    say(f"{len(outcome.failed)} boxes failed ({', '.join(sorted(outcome.failed))}); putting "
        f"{len(previous)} boxes back")
    rolled = time.monotonic()
    for box, before in previous.items():
        move_box(client, siblings, box, *(before or (None, None)), user)
    _wait_back(client, ref.site, previous, plan)
    outcome.status, outcome.moved = "rolled_back", sorted(previous)
    outcome.rollback_s = round(time.monotonic() - rolled, 1)
    outcome.seconds = round(time.monotonic() - started, 1)
    _end(client, run.info.run_id, "FAILED", previous, -1, outcome.reason())
    return outcome


def _rows(client: Any, site: str, boxes: list[str], task: str) -> dict[str, dict[str, Any]]:
    return {row["box"]: row for row in fleet(client, site)
            if row["box"] in boxes and row["task"] == task}


def _wait(client: Any, site: str, boxes: list[str], target: tuple[str, int],
          plan: RolloutPlan, since_ms: int) -> dict[str, str]:
    """Until every box of ``boxes`` serves ``target`` healthy, or fails (a refusal since
    ``since_ms``, when the ring began to move): the failed ones."""
    task = ModelRef(name=target[0], version=target[1]).task
    deadline = time.monotonic() + plan.ring_timeout_s
    while True:
        failed, pending = {}, []
        rows = _rows(client, site, boxes, task)
        for box in boxes:
            row = rows.get(box)
            serves = row and (row["model"], row["serving"]) == (registry_path(target[0]),
                                                               target[1])
            if row and row["health"] == "refused" and row["refused_at"] >= since_ms:
                failed[box] = f"refused it ({row['refused']})"
            elif row and row["health"] == "stale":
                failed[box] = f"went stale (no report for {row['age_s']:.0f} s)"
            elif not (serves and row["health"] == "ok"):
                pending.append(box)
        if not pending:
            return failed
        if time.monotonic() > deadline:
            return {**failed, **{box: f"not serving it after {plan.ring_timeout_s:g} s"
                                 for box in pending}}
        time.sleep(plan.poll_s)


def _wait_back(client: Any, site: str, previous: dict[str, list[Any] | None],
               plan: RolloutPlan) -> None:
    """Until each box put back serves its previous version again (or the time is up)."""
    deadline = time.monotonic() + plan.ring_timeout_s
    while time.monotonic() < deadline:
        rows = {row["box"]: row for row in fleet(client, site)}
        back = [box for box, before in previous.items() if before is None or (
            rows.get(box, {}).get("model"), rows.get(box, {}).get("serving")) == (
            registry_path(before[0]), before[1])]
        if len(back) == len(previous):
            return
        time.sleep(plan.poll_s)


def _rollout_run(client: Any, site: str, target: tuple[str, int], rings: list[int],
                 max_failed: int) -> Any:
    """The unfinished rollout of ``target`` at ``site`` to resume, or a new one."""
    experiment = find_experiment_id(client, site)
    found = client.search_runs(
        [experiment], f"tags.`{keys.EXPERIMENT_TYPE}` = '{ROLLOUT_TYPE}' and "
        f"tags.`{keys.ROLLOUT_TARGET}` = '{target[0]}/{target[1]}' and "
        "attributes.status != 'FINISHED' and attributes.status != 'FAILED'",
        max_results=1, order_by=["attributes.start_time DESC"])
    if found:
        client.update_run(found[0].info.run_id, "RUNNING")
        return found[0]
    ref = ModelRef(name=target[0], version=target[1])
    return client.create_run(experiment, run_name=f"{ref.task}-rollout-v{target[1]}", tags={
        keys.EXPERIMENT_TYPE: ROLLOUT_TYPE, keys.ROLLOUT_TARGET: f"{target[0]}/{target[1]}",
        keys.TASK_TYPE: ref.task, keys.ROLLOUT_RINGS: json.dumps(rings),
        keys.ROLLOUT_MAX_FAILED: str(max_failed)})


def _save(client: Any, run_id: str, previous: dict[str, Any], ring: int) -> None:
    client.set_tag(run_id, keys.ROLLOUT_STATE, json.dumps({"previous": previous,
                                                           "ring": ring}))


def _end(client: Any, run_id: str, status: str, previous: dict[str, Any], ring: int,
         reason: str | None = None) -> None:
    _save(client, run_id, previous, ring)
    if reason:
        client.set_tag(run_id, keys.ROLLOUT_REASON, reason[:5000])
    client.set_terminated(run_id, status)
