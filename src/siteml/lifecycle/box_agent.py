"""``siteml box run``: the agent of one edge box. It pulls what the box should serve from the
registry (the ``box-<name>`` aliases ``siteml deploy`` sets), has each new version checked and
switched (``box_switch``, in a child process), and reports what the box serves.

What the box serves is read from the repository's config, never remembered: a deployment run
of the site (``siteml.experiment_type = serve``) is RUNNING while the box serves its version,
its heartbeat set every cycle, FINISHED when replaced; a refusal is a FAILED run with its
reason. After a ``kill -9`` or a power cut the repository is the old or the new version (the
config names a complete folder), and the next start brings the runs in line with it.

Between switches the agent holds neither MLflow's client nor a runtime: on a tracking server
it talks MLflow's REST API with the standard library (``tracking.rest_client``), so an idle
box pays for Python and little more.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from siteml.core import keys
from siteml.core.clock import stamp
from siteml.core.errors import InvalidInputError, SitemlError
from siteml.core.naming import ModelRef, customer_of, registry_path
from siteml.lifecycle.repository import (
    exported_manifest,
    repository_name,
    served_version,
    switch_lock,
    unserve,
)
from siteml.tracking.model_listing import all_pages, like_pattern
from siteml.tracking.store import Store, check_reachable

AGENT_LOCK = ".siteml-agent.lock"
RESCAN_CYCLES = 10
"""An idle cycle beats the runs the last one left serving; every this many cycles (and after a
cycle that changed or failed) it searches them again, to see a run ended from outside."""


@dataclass(frozen=True)
class Box:
    """One box as its agent runs it: its name, site (path), model repository and server."""

    name: str
    site: str
    repo: Path
    layout: str = "ovms"
    interval_s: float = 30.0
    cameras: int = 0
    fps: float = 0.0
    max_slowdown: float = 2.0
    """A new version may be at most this many times slower than the one it replaces."""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "repo": str(self.repo)}


@dataclass
class Change:
    """What a switch did: ``serving`` (the box serves ``version`` now) or ``refused``
    (``reason``; the version that served before serves on)."""

    model: str
    version: int
    status: str
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Switch = Callable[[Box, str, int], Change]


def switch_in_child(box: Box, name: str, version: int) -> Change:
    """``box_switch.switch`` in a child process (``siteml box switch``).

    Raises:
        SitemlError: the child failed without a verdict (the registry away): try again.
    """
    done = subprocess.run(
        [sys.executable, "-m", "siteml", "box", "switch", "--box-json",
         json.dumps(box.to_dict()), "--model", name, "--version", str(version)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SitemlError(f"switching to {registry_path(name)}/{version} failed: {last}")
    return Change(**json.loads(done.stdout.strip().splitlines()[-1]))


def tracking_client(store: Store, customer: str) -> Any:
    """What the agent reports through: MLflow's REST API on a tracking server (in the
    customer's workspace where the server has them), MLflow's client on an embedded store."""
    if store.is_server:
        from siteml.tracking.rest_client import RestClient
        from siteml.tracking.workspaces import workspaces_on

        return RestClient(store.tracking_uri,
                          customer if workspaces_on(store.tracking_uri) else None)
    from siteml.tracking.reporting_client import ReportingClient
    from siteml.tracking.workspaces import enter_customer

    enter_customer(store, customer, "write")
    return ReportingClient(store.tracking_uri, store.tracking_uri)


class Agent:
    """The agent of ``box`` on ``store``; ``cycle()`` is one pull, switch and report.

    Raises (on creation):
        InvalidInputError: another agent runs on the repository.
        TrackingUnavailableError: the server does not answer.
    """

    def __init__(self, box: Box, store: Store, switch: Switch = switch_in_child) -> None:
        self.box, self.switch = box, switch
        self._lock = _hold_lock(box.repo)
        check_reachable(store)
        self.client = tracking_client(store, customer_of(box.site))
        self.refused: dict[str, int] = {}
        """Model -> the version the box refused, not tried again while it is desired."""
        self._experiment: str | None = None
        self._known: list[Any] | None = None
        """The runs the last cycle left serving; None: search them."""
        self._cycles = 0

    @property
    def experiment_id(self) -> str:
        if self._experiment is None:
            found = self.client.get_experiment_by_name(self.box.site)
            if found is None:
                raise InvalidInputError(f"site {self.box.site} has no experiment: nothing was "
                                        "ever registered there")
            self._experiment = str(found.experiment_id)
        return self._experiment

    def cycle(self) -> list[Change]:
        """Bring the box to its desired versions, then make the runs say what it serves."""
        runs, self._known = self._known, None
        self._cycles += 1
        desired = self.desired()
        if runs is None or self._cycles % RESCAN_CYCLES == 0:
            runs = self._serving_runs()
        names = set(desired) | {run.data.tags[keys.SERVE_MODEL] for run in runs}
        changes = []
        for name, version in sorted(desired.items()):
            if self.refused.get(name, version) != version:
                del self.refused[name]
            if self._served(name) == version or name in self.refused:
                continue
            change = self._switched(name, version)
            if change.status == "refused":
                self.refused[name] = version
                self._refusal(name, version, change)
            else:
                self._start_run(name, version, change.metrics)
            changes.append(change)
        self._unserve_replaced(desired, names - set(desired))
        self._known = self._settle(names, self._serving_runs() if changes else runs)
        return changes

    def _unserve_replaced(self, desired: dict[str, int], undesired: set[str]) -> None:
        """Stop serving each model no longer desired once the box serves another variant of
        its task in its place (a box moved to another variant); a task is never left with
        nothing to serve."""
        tasks = {_task(name) for name, version in desired.items()
                 if self._served(name) == version}
        for name in sorted(undesired):
            if _task(name) in tasks and self._served(name) is not None:
                with switch_lock(self.box.repo):
                    unserve(self.box.repo, repository_name(name))

    def _served(self, name: str) -> int | None:
        return served_version(self.box.repo, repository_name(name), self.box.layout)

    def _switched(self, name: str, version: int) -> Change:
        """``self.switch``, the runs that serve beating every interval while it works (a
        switch takes seconds; the box must not look stale meanwhile)."""
        done: dict[str, Any] = {}

        def work() -> None:
            try:
                done["change"] = self.switch(self.box, name, version)
            except Exception as exc:  # raised again in the agent's thread
                done["error"] = exc

        worker = threading.Thread(target=work, name="siteml-switch", daemon=True)
        worker.start()
        while worker.join(self.box.interval_s) is None and worker.is_alive():
            self._beat(self._serving_runs())
        if "error" in done:
            raise done["error"]
        return done["change"]

    def desired(self) -> dict[str, int]:
        """Registered name -> the version the box should serve (its ``box-<name>`` alias)."""
        alias = keys.box_alias(self.box.name)
        pattern = f"{like_pattern(self.box.site.replace('/', '.'))}.%"
        models = all_pages(lambda token: self.client.search_registered_models(
            f"name LIKE '{pattern}'", max_results=1000, page_token=token))
        return {m.name: int(m.aliases[alias]) for m in models if alias in m.aliases}

    def _serving_runs(self) -> list[Any]:
        return list(self.client.search_runs(
            [self.experiment_id], f"tags.`{keys.EXPERIMENT_TYPE}` = '{keys.SERVE_TYPE}' and "
            f"tags.`{keys.BOX}` = '{self.box.name}' and attributes.status = 'RUNNING'",
            max_results=1000))

    def _settle(self, names: set[str], runs: list[Any]) -> list[Any]:
        """End each RUNNING run of ``runs`` whose version no longer serves (saying what
        replaced it), start one for a served version without one (its switch was cut short
        before its run began), beat the rest; the runs that serve now."""
        served = {name: self._served(name) for name in names}
        kept: dict[str, Any] = {}
        for run in runs:
            name, version = run.data.tags[keys.SERVE_MODEL], int(run.data.tags[keys.SERVE_VERSION])
            if keys.SERVE_REFUSED in run.data.tags:  # a refusal its agent was killed recording
                self.client.set_terminated(run.info.run_id, "FAILED")
                continue
            if served[name] == version and name not in kept:
                kept[name] = run
                continue
            self.client.set_tag(run.info.run_id, keys.SERVE_REPLACED_BY,
                                _replacement(name, served))
            self.client.set_terminated(run.info.run_id, "FINISHED")
        for name in sorted(names - set(kept)):
            if served[name] is not None:
                kept[name] = self._start_run(name, served[name], {})
        self._beat(list(kept.values()))
        return list(kept.values())

    def _beat(self, runs: list[Any]) -> None:
        for run in runs:
            self._report(run.info.run_id, {keys.HEARTBEAT: stamp()}, {})

    def _refusal(self, name: str, version: int, change: Change) -> None:
        run = self._create_run(name, version, {keys.SERVE_REFUSED: (change.reason or "")[:5000]})
        self._report(run.info.run_id, {}, change.metrics)
        self.client.set_terminated(run.info.run_id, "FAILED")

    def _start_run(self, name: str, version: int, metrics: dict[str, float]) -> Any:
        run = self._create_run(name, version, self._lineage(name, version))
        self._report(run.info.run_id, {}, metrics)
        return run

    def _lineage(self, name: str, version: int) -> dict[str, str]:
        """The served version's source model, from its manifest."""
        _, manifest = exported_manifest(self.box.repo / repository_name(name) / str(version))
        lineage = manifest["lineage"]
        return {keys.SOURCE_MODEL_NAME: lineage.get("source_model") or "",
                keys.SOURCE_MODEL_VERSION: str(lineage.get("source_version") or "")}

    def _create_run(self, name: str, version: int, tags: dict[str, str]) -> Any:
        task = _task(name)
        return self.client.create_run(
            self.experiment_id, run_name=f"{task}-serve-{self.box.name}-v{version}", tags={
                keys.EXPERIMENT_TYPE: keys.SERVE_TYPE, keys.BOX: self.box.name,
                keys.SERVE_MODEL: name, keys.SERVE_VERSION: str(version),
                keys.SERVE_INTERVAL_S: f"{self.box.interval_s:g}", keys.TASK_TYPE: task,
                keys.SITE_PATH: self.box.site, keys.ENV_HOSTNAME: platform.node(),
                keys.PID: str(os.getpid()), keys.HEARTBEAT: stamp(), **tags})

    def _report(self, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
        """``tags`` and ``metrics`` with the cameras and FPS the box serves, in one call."""
        self.client.log_report(run_id, tags, {**metrics,
                                              keys.SERVE_CAMERAS: float(self.box.cameras),
                                              keys.SERVE_FPS: float(self.box.fps)})


def _replacement(name: str, served: dict[str, int | None]) -> str:
    """What serves in place of model ``name``: its version, or the variant of its task."""
    if served[name] is not None:
        return f"{registry_path(name)}/{served[name]}"
    return next((f"{registry_path(other)}/{version}" for other, version in sorted(served.items())
                 if version is not None and _task(other) == _task(name)), "nothing")


def _task(name: str) -> str:
    """The task of registered model ``name`` (its variant's too)."""
    return ModelRef(name=name, version=1).task


def _hold_lock(repo: Path) -> IO[str]:
    """Hold the repository's agent lock for the life of this process (one agent per box).

    Raises:
        InvalidInputError: another agent holds it.
    """
    repo.mkdir(parents=True, exist_ok=True)
    handle = (repo / AGENT_LOCK).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InvalidInputError(f"another box agent runs on {repo}") from None
    return handle


def run_agent(agent: Agent, stop: threading.Event, once: bool = False,
              report: Callable[[list[Change]], None] = lambda changes: None,
              warn: Callable[[str], None] = print) -> None:
    """Cycle until ``stop`` is set (or once); a cycle that fails (the server away) is
    reported and retried after the interval, as a run waits through an outage.

    Raises:
        Exception: the failure of a ``once`` cycle.
    """
    while True:
        try:
            report(agent.cycle())
        except Exception as exc:  # the box serves on what it serves; try again later
            if once:
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            warn(f"cycle failed, retrying in {agent.box.interval_s:g} s: "
                 f"{type(exc).__name__}: {first}")
        if once or stop.wait(agent.box.interval_s):
            return
