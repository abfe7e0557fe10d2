"""A batch: scenario files run as one dependency graph (``siteml run PATH...``).

A scenario depends on the one in the batch that produces a registered model it reads (a
source, baseline, parent or champion; a source left unset reads its site/task model). The
graph is checked before anything runs: two producers of one model, a cycle, or a model that
neither the batch nor the registry holds are invalid input, each located in its file. Runs go
in dependency order (file order among equals). A scenario whose run key already FINISHED is
skipped; the dependents of one that failed are blocked, other branches go on. A source left
unset reads the version its producer made in this batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siteml.core import keys
from siteml.core.errors import InvalidInputError, Problem, ScenarioError, SitemlError
from siteml.core.naming import registry_path
from siteml.lifecycle.run import (
    EXIT_SIGINT,
    RunInterruptedError,
    model_read,
    preflight,
    run_scenario,
)
from siteml.scenario.factory import find_yaml_files, is_site_file, load_scenario, scenario_problem
from siteml.scenario.schema import BaseScenario
from siteml.scenario.types import EXPERIMENT_TYPES
from siteml.tracking.store import Store

FINISHED, SKIPPED, FAILED, BLOCKED, NOT_RUN = "finished", "skipped", "failed", "blocked", "not run"


@dataclass
class Step:
    """One scenario of the batch and the steps (indices in run order) it waits for."""

    path: Path
    scenario: BaseScenario
    needs: list[int] = field(default_factory=list)

    @property
    def produces(self) -> str | None:
        return self.scenario.output_model_name()

    def reads(self) -> dict[str, str]:
        """Registered models it reads, by role."""
        kind = EXPERIMENT_TYPES[self.scenario.experiment_type]
        return {role: name for role in kind.roles
                if (name := model_read(self.scenario, role)) is not None}


class BatchInterruptedError(RunInterruptedError):
    """Ctrl-C or SIGTERM during a batch: the running run KILLED, the rest not run."""

    def __init__(self, message: str, exit_code: int, outcomes: list[StepOutcome]):
        super().__init__(message, exit_code)
        self.outcomes = outcomes


@dataclass
class StepOutcome:
    """One row of the batch's table."""

    file: str
    run_name: str
    status: str
    run_id: str | None = None
    duration_s: float | None = None
    model_version: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def plan_batch(paths: Sequence[str | Path], overrides: Sequence[str] = (),
               sites_dir: str | Path | None = None) -> list[Step]:
    """The batch's scenarios in run order, each with the steps it waits for.

    Raises:
        ScenarioError: a file is invalid, two scenarios produce one model, or they wait for
            each other in a cycle (every problem of every file, located).
        InvalidInputError: the paths hold no scenario file.
    """
    files = [f for f in find_yaml_files(paths) if not is_site_file(f)]
    if not files:
        raise InvalidInputError(f"no scenario files in {', '.join(map(str, paths))}")
    steps, problems = [], []
    for path in files:
        try:
            steps.append(Step(path, load_scenario(path, overrides, sites_dir)))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioError(problems)
    producers: dict[str, Step] = {}
    for step in steps:
        other = producers.setdefault(step.produces, step) if step.produces else step
        if other is not step:
            problems += _located(step, overrides, "name", (
                f"registers {registry_path(step.produces)} as {other.path} does; a batch "
                "holds one producer of each model"))
    if problems:
        raise ScenarioError(problems)
    waits = {id(s): [producers[n] for n in s.reads().values()
                     if n in producers and producers[n] is not s] for s in steps}
    return _in_order(steps, waits, overrides)


def _in_order(steps: list[Step], waits: dict[int, list[Step]],
              overrides: Sequence[str]) -> list[Step]:
    """Steps after the ones they wait for, in file order among equals; a cycle is refused."""
    ordered: list[Step] = []
    placed: set[int] = set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if id(s) not in placed
                 and all(id(w) in placed for w in waits[id(s)])]
        if not ready:
            stuck = [s for s in steps if id(s) not in placed]
            loop = ", ".join(str(s.path) for s in stuck)
            raise ScenarioError([p for s in stuck for p in _located(
                s, overrides, _first_read(s), f"waits in a cycle for a model that this batch "
                f"produces only afterwards ({loop})")])
        ordered.append(ready[0])
        placed.add(id(ready[0]))
    index = {id(s): i for i, s in enumerate(ordered)}
    for step in ordered:
        step.needs = sorted({index[id(w)] for w in waits[id(step)]})
    return ordered


def _first_read(step: Step) -> str:
    kind = EXPERIMENT_TYPES[step.scenario.experiment_type]
    return next(iter(kind.roles.values()), "name")


def _located(step: Step, overrides: Sequence[str], yaml_path: str,
             message: str) -> list[Problem]:
    return scenario_problem(step.path, overrides, yaml_path, message).problems


def survey(steps: list[Step], store: Store, overrides: Sequence[str] = (),
           sites_dir: str | Path | None = None, rerun: bool = False,
           skip_data_check: bool = False) -> list[str]:
    """What running the batch would do to each step (``skipped`` or ``run``), after checking,
    without writing, every step against its data and the registry.

    Raises:
        ScenarioError: every step's problems (a model neither the batch nor the registry
            holds, a dataset that changed, a FINISHED run of another key), located.
    """
    actions: list[str] = []
    pinned: dict[str, int] = {}
    problems: list[Problem] = []
    for step in steps:
        pending = frozenset(steps[n].produces for n in step.needs if actions[n] != SKIPPED)
        try:
            checked = preflight(step.path, overrides, sites_dir=sites_dir, rerun=rerun,
                                skip_data_check=skip_data_check, store=store, pinned=pinned,
                                pending=pending - {None})
        except ScenarioError as exc:
            problems.extend(exc.problems)
            actions.append(FAILED)
            continue
        except InvalidInputError as exc:
            problems.append(Problem(str(step.path), None, "", str(exc)))
            actions.append(FAILED)
            continue
        done = checked.done
        actions.append(SKIPPED if done is not None else "run")
        version = done.data.tags.get(keys.MODEL_VERSION) if done is not None else None
        if version and step.produces:
            pinned[step.produces] = int(version.rsplit("/", 1)[1])
    if problems:  # a base shared by several scenarios: its problem once
        raise ScenarioError(list(dict.fromkeys(problems)))
    return actions


def run_batch(steps: list[Step], store: Store, overrides: Sequence[str] = (),
              sites_dir: str | Path | None = None, rerun: bool = False,
              skip_data_check: bool = False,
              report: Callable[[StepOutcome], None] = lambda _: None) -> list[StepOutcome]:
    """Run the steps in order; one row per step, ``report`` told each as it ends.

    Raises:
        BatchInterruptedError: Ctrl-C or SIGTERM; the running run is KILLED, the rest not run.
    """
    survey(steps, store, overrides, sites_dir, rerun, skip_data_check)
    outcomes: list[StepOutcome] = []
    pinned: dict[str, int] = {}
    for step in steps:
        scenario = step.scenario
        row = StepOutcome(str(step.path), scenario.get_run_name(), NOT_RUN)
        broken = [steps[n] for n in step.needs if outcomes[n].status not in (FINISHED, SKIPPED)]
        if broken:
            row.status, row.detail = BLOCKED, f"needs {broken[0].path} ({broken[0].produces})"
            outcomes.append(row)
            report(row)
            continue
        started = time.perf_counter()
        try:
            outcome = run_scenario(step.path, overrides, sites_dir=sites_dir, rerun=rerun,
                                   skip_data_check=skip_data_check, store=store, pinned=pinned)
        except (RunInterruptedError, KeyboardInterrupt) as exc:
            code = getattr(exc, "exit_code", EXIT_SIGINT)
            row.status, row.detail = FAILED, str(exc) or "interrupted"
            outcomes.append(row)
            outcomes += [StepOutcome(str(s.path), s.scenario.get_run_name(), NOT_RUN)
                         for s in steps[len(outcomes):]]
            left = sum(o.status == NOT_RUN for o in outcomes)
            raise BatchInterruptedError(f"batch interrupted at {step.path}; {left} not run",
                                        code, outcomes) from None
        except SitemlError as exc:
            row.status, row.detail = FAILED, "; ".join(str(exc).splitlines())
        else:
            row.status = SKIPPED if outcome.status == "SKIPPED" else FINISHED
            row.run_id = outcome.run_id
            if outcome.registered_model:
                pinned[outcome.registered_model] = int(outcome.model_version)
                row.model_version = f"{registry_path(outcome.registered_model)}/" \
                                    f"{outcome.model_version}"
        row.duration_s = round(time.perf_counter() - started, 1)
        outcomes.append(row)
        report(row)
    return outcomes
