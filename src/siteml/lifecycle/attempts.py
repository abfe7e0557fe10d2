"""Attempt bookkeeping: the run key that tells two runs of one scenario apart, what the earlier
runs of its run name mean for a new one (done: skip it; FINISHED with another key: refuse it
unless rerun; RUNNING: refuse it while alive, reap it when dead), and the tags that number an
attempt."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siteml import __version__
from siteml.core import keys
from siteml.core.digests import folder_digest, sha256
from siteml.core.errors import Problem, ScenarioError
from siteml.core.progress import note
from siteml.lifecycle.options import RunOptions
from siteml.scenario.factory import scenario_problem
from siteml.scenario.schema import BaseScenario
from siteml.scenario.types import EXPERIMENT_TYPES
from siteml.tracking.heartbeat import StaleRun, reap, stale, stale_after_s, staleness
from siteml.tracking.runs import find_experiment_id, runs_named
from siteml.tracking.store import Store


def run_key(scenario: BaseScenario, models: dict[str, Any]) -> str:
    """``siteml.run_key``: what the scenario sets (bases, site and overrides merged) and the
    versions it reads, hashed. Values left at their defaults are left out, so that a setting a
    later siteml adds (with its default) does not make every FINISHED run look like another
    one; what it reads from disk is named by content (``_by_content``), so that the same
    scenario in a copied or moved folder is the same run."""
    reads = {role: f"{version.name}/{version.version}" for role, version in models.items()}
    text = json.dumps({"scenario": _by_content(scenario), "reads": reads}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _by_content(scenario: BaseScenario) -> dict[str, Any]:
    """The scenario as set, each filesystem path replaced by what it holds: the dataset folder
    by ``dataset.dvc_hash`` and ``image_count`` (already there, and checked against it), a
    ``.pt`` file by its sha256, an export folder by the registered version it holds (among the
    versions read), a mine's frames folder by the sha256 of its files."""
    content = scenario.model_dump(mode="json", exclude_defaults=True)
    del content["dataset"]["path"]
    weights = scenario.model.weights_path
    if isinstance(weights, Path):
        content["model"]["weights_path"] = f"sha256:{sha256(weights)}"
    frames = getattr(scenario.params, "frames", None)
    if isinstance(frames, Path):
        content[scenario.params_key]["frames"] = f"sha256:{folder_digest(frames)}"
    for role in EXPERIMENT_TYPES[scenario.experiment_type].roles:
        if scenario.model_folder(role) is not None:
            del content[scenario.params_key][role]
    return content


@dataclass
class Attempts:
    """The earlier runs of a scenario's run name, as they bear on a new one."""

    number: int
    """This attempt's number (``siteml.attempt``)."""
    done: Any = None
    """The FINISHED run with the same run key, when there is one: nothing to do."""
    dead: list[StaleRun] = field(default_factory=list)
    """Earlier attempts still RUNNING whose process is gone: reaped (KILLED) at start."""

    def reap(self, client: Any) -> None:
        for dead in self.dead:
            reap(client, dead)
            note(f"reaped run {dead.run_id} (KILLED): {dead.reason}")


def earlier_attempts(client: Any, store: Store, path: Path, options: RunOptions,
                     scenario: BaseScenario, key: str | None) -> Attempts:
    """The earlier runs of the scenario's run name at its site, for an attempt of run key
    ``key`` (None: not known yet).

    Raises:
        ScenarioError: one FINISHED with another key (unless ``options.rerun``), or one is
            RUNNING and alive.
    """
    experiment_id = (find_experiment_id(client, scenario.get_experiment_name())
                     if store.exists() else None)
    previous = runs_named(client, experiment_id, scenario.get_run_name()) if experiment_id else []
    finished = [run for run in previous if run.info.status == "FINISHED"]
    done = next((run for run in finished if run.data.tags.get(keys.RUN_KEY) == key),
                None) if key and not options.rerun else None
    if done is not None:
        return Attempts(len(previous) + 1, done)
    if key and finished and not options.rerun:
        raise scenario_problem(path, options.overrides, "version", (
            f"run {scenario.get_run_name()!r} already FINISHED in experiment "
            f"{scenario.get_experiment_name()!r} (run id {finished[0].info.run_id}); bump "
            "'version' for a new run, or pass --rerun"))
    ray_task = options.executor_tags.get(keys.RAY_TASK)
    return Attempts(len(previous) + 1, dead=[_dead(path, scenario, run, ray_task)
                                             for run in previous if run.info.status == "RUNNING"])


def _dead(path: Path, scenario: BaseScenario, run: Any, ray_task: str | None) -> StaleRun:
    """An earlier attempt still RUNNING, to reap: a stale one or an earlier attempt of this Ray
    task (Ray retries a task only when its worker died); a live one refuses a second."""
    same_task = ray_task is not None and run.data.tags.get(keys.RAY_TASK) == ray_task
    reason = (f"an earlier attempt of Ray task {ray_task}, whose worker died" if same_task
              else staleness(run, stale_after_s()))
    if reason is None:
        tags = run.data.tags
        raise ScenarioError([Problem(str(path), None, "", (
            f"run {scenario.get_run_name()!r} is RUNNING in experiment "
            f"{scenario.get_experiment_name()!r} (run id {run.info.run_id}, host "
            f"{tags.get(keys.ENV_HOSTNAME, '?')}, pid {tags.get(keys.PID, '?')}, heartbeat "
            f"{tags.get(keys.HEARTBEAT, 'none')}); wait for it to end (it counts as crashed "
            f"after {stale_after_s():.0f} s without a heartbeat: siteml runs --stale)"))])
    return stale(run, scenario.get_experiment_name(), reason)


def attempt_tags(scenario: BaseScenario, number: int, skip_data_check: bool) -> dict[str, str]:
    """The siteml version, the attempt's number, the resolved scenario's sha256, and whether
    the data check was skipped."""
    tags = {keys.SITEML_VERSION: __version__, keys.ATTEMPT: str(number),
            keys.SCENARIO_SHA256: hashlib.sha256(scenario.resolved_yaml().encode()).hexdigest()}
    if skip_data_check:
        tags[keys.DATA_CHECK] = "skipped"
    if scenario.description:
        tags[keys.NOTE] = scenario.description
    return tags
