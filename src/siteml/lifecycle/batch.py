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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from siteml.core import interrupts
from siteml.core.errors import InvalidInputError, Problem, ScenarioError, SitemlError
from siteml.core.interrupts import Terminated
from siteml.core.naming import registry_path
from siteml.core.secrets import redact
from siteml.lifecycle.options import RunOptions
from siteml.lifecycle.outcomes import (
    BLOCKED,
    DONE,
    FAILED,
    KILLED,
    NOT_RUN,
    SKIPPED,
    RunOutcome,
    StepOutcome,
)
from siteml.lifecycle.reads import model_read
from siteml.lifecycle.run import RunInterruptedError, preflight, run_scenario
from siteml.scenario.factory import find_yaml_files, is_site_file, load_scenario, scenario_problem
from siteml.scenario.schema import BaseScenario
from siteml.scenario.types import EXPERIMENT_TYPES
from siteml.tracking.errors import access_error, is_mlflow_error
from siteml.tracking.store import Store


@dataclass
class Step:
    """One scenario of the batch and the steps (indices in run order) it waits for."""

    path: Path
    scenario: BaseScenario
    needs: list[int] = field(default_factory=list)

    @property
    def produces(self) -> str | None:
        return self.scenario.get_output_model_name()

    def reads(self) -> dict[str, str]:
        """Registered models it reads, by role."""
        kind = EXPERIMENT_TYPES[self.scenario.experiment_type]
        return {role: name for role in kind.roles
                if (name := model_read(self.scenario, role)) is not None}

    def row(self, status: str, detail: str | None = None, outcome: RunOutcome | None = None,
            duration_s: float | None = None) -> StepOutcome:
        """This step's row in the batch's table; ``outcome``: its run's, when it finished or
        was skipped."""
        made = outcome and outcome.registered_model and (
            f"{outcome.registered_model}/{outcome.model_version}")
        return StepOutcome(str(self.path), self.scenario.get_run_name(), status,
                           outcome.run_id if outcome else None, duration_s, made or None, detail)


class BatchInterruptedError(RunInterruptedError):
    """Ctrl-C or SIGTERM during a batch: the running run KILLED, the rest not run."""

    def __init__(self, message: str, exit_code: int, outcomes: list[StepOutcome]):
        super().__init__(message, exit_code)
        self.outcomes = outcomes


def plan_batch(paths: Sequence[str | Path], options: RunOptions) -> list[Step]:
    """The batch's scenarios in run order, each with the steps it waits for (its files read
    with ``options.overrides`` and ``sites_dir``).

    Raises:
        ScenarioError: a file is invalid, two scenarios produce one model, or they wait for
            each other in a cycle (every problem of every file, located).
        InvalidInputError: the paths hold no scenario file.
    """
    files = [f for f in find_yaml_files(paths) if not is_site_file(f)]
    if not files:
        raise InvalidInputError(f"no scenario files in {', '.join(map(str, paths))}")
    overrides = options.overrides
    steps, problems = [], []
    for path in files:
        try:
            steps.append(Step(path, load_scenario(path, overrides, options.sites_dir)))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioError(problems)
    runs: dict[tuple[str, str], Step] = {}
    for step in steps:
        key = (step.scenario.get_experiment_name(), step.scenario.get_run_name())
        other = runs.setdefault(key, step)
        if other is not step:
            problems += _located(step, overrides, "version", (
                f"names run {key[1]!r} at {key[0]} as {other.path} does (the run name is "
                "task, architecture, type and version); bump one version"))
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


def survey(steps: list[Step], store: Store, options: RunOptions) -> list[StepOutcome | None]:
    """Check every step, without writing, against its data and the registry; for each, the
    SKIPPED row of the FINISHED run with its run key, or None when it is to run.

    Raises:
        ScenarioError: every step's problems (a model neither the batch nor the registry
            holds, a dataset that changed, a FINISHED run of another key), located.
    """
    found: list[StepOutcome | None] = []
    pinned: dict[str, int] = {}
    problems: list[Problem] = []
    for step in steps:
        pending = frozenset(steps[n].produces for n in step.needs if found[n] is None) - {None}
        found.append(None)
        try:
            checked = preflight(step.path, replace(options, store=store, pinned=dict(pinned),
                                                   pending=pending))
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        except InvalidInputError as exc:
            problems.append(Problem(str(step.path), None, "", str(exc)))
            continue
        if checked.done is not None:
            found[-1] = step.row(SKIPPED, outcome=checked.done, duration_s=0.0)
            if found[-1].pin:
                pinned.update([found[-1].pin])
    if problems:  # a base shared by several scenarios: its problem once
        raise ScenarioError(list(dict.fromkeys(problems)))
    return found


def run_step(step: Step, options: RunOptions) -> StepOutcome:
    """Run one step of a batch (here or in a worker); a failure is a row, not an error.

    Raises:
        RunInterruptedError: Ctrl-C or SIGTERM (the run is KILLED).
    """
    started = time.perf_counter()
    try:
        outcome = run_scenario(step.path, options)
    except RunInterruptedError:
        raise
    except ScenarioError as exc:  # the row names the file already
        row = step.row(FAILED, "; ".join(problem.beside(str(step.path))
                                         for problem in exc.problems))
    except SitemlError as exc:
        row = step.row(FAILED, "; ".join(str(exc).splitlines()))
    except Exception as exc:
        if not is_mlflow_error(exc):
            raise
        row = step.row(FAILED, redact(str(access_error(exc) or exc)))
    else:
        row = step.row(outcome.status, outcome=outcome)
    row.duration_s = round(time.perf_counter() - started, 1)
    return row


class Executor(Protocol):
    """Where a batch's steps run: ``submit`` starts a step (its models pinned) and returns a
    handle; ``wait`` returns one finished handle and its row; ``cancel`` stops what runs."""

    capacity: int
    checks_data_here: bool
    """False where the steps run on other machines, which check their own copy."""

    def submit(self, index: int, pinned: dict[str, int]) -> Any: ...

    def wait(self, running: list[Any]) -> tuple[Any, StepOutcome]: ...

    def cancel(self, running: list[Any]) -> None: ...

    def close(self) -> None: ...


class _HereInTurn:
    """The local executor: one step at a time, in this process."""

    capacity = 1
    checks_data_here = True

    def __init__(self, steps: list[Step], store: Store, options: RunOptions):
        self.steps, self.options = steps, replace(options, store=store)
        self.done: dict[int, StepOutcome] = {}

    def submit(self, index: int, pinned: dict[str, int]) -> int:
        self.done[index] = run_step(self.steps[index], replace(self.options, pinned=pinned))
        return index

    def wait(self, running: list[int]) -> tuple[int, StepOutcome]:
        return running[0], self.done.pop(running[0])

    def cancel(self, running: list[int]) -> None:
        """Nothing runs between calls."""

    def close(self) -> None:
        """Nothing to let go of."""


def run_batch(steps: list[Step], store: Store, options: RunOptions,
              report: Callable[[StepOutcome], None] = lambda _: None,
              executor: Executor | None = None) -> list[StepOutcome]:
    """Check the whole batch (``survey``), then run its steps in order, as many at once as
    the executor takes (default: here, one at a time; it is closed at the end); one row per
    step, in run order, ``report`` told each as it ends. Dependents of a step that did not
    finish are blocked.

    Raises:
        ScenarioError: the survey's problems (nothing ran).
        BatchInterruptedError: Ctrl-C or SIGTERM; the running runs are KILLED, the rest not run.
    """
    executor = executor or _HereInTurn(steps, store, options)
    done = survey(steps, store, options if executor.checks_data_here else replace(
        options, skip_data_check=True))
    rows: dict[int, StepOutcome] = {}
    running: dict[Any, int] = {}
    starting: list[int] = []  # a step being submitted (the local executor runs it right there)
    pinned: dict[str, int] = {}

    def finish(index: int, row: StepOutcome) -> None:
        rows[index] = row
        if row.pin:
            pinned.update([row.pin])
        report(row)

    try:
        with interrupts.handled():
            while len(rows) < len(steps):
                interrupts.raise_if_requested()  # one whose exception was lost here
                for index, step in enumerate(steps):
                    if index not in rows and (skipped := done[index]) is not None:
                        finish(index, skipped)
                    busy = index in rows or index in running.values()
                    if busy or len(running) >= executor.capacity or any(
                            n not in rows for n in step.needs):
                        continue
                    broken = [steps[n] for n in step.needs if rows[n].status not in DONE]
                    if broken:
                        finish(index, step.row(BLOCKED, f"needs {broken[0].path}, which did "
                                                        "not finish"))
                        continue
                    starting[:] = [index]
                    running[executor.submit(index, dict(pinned))] = index
                    starting.clear()
                if running:
                    handle, row = executor.wait(list(running))
                    finish(running.pop(handle), row)
    except (RunInterruptedError, KeyboardInterrupt, Terminated) as exc:
        executor.cancel(list(running))
        raise _interrupted(steps, rows, [*running.values(), *starting], exc) from None
    finally:
        executor.close()
    return [rows[i] for i in range(len(steps))]


def _interrupted(steps: list[Step], rows: dict[int, StepOutcome], stopped: list[int],
                 exc: BaseException) -> BatchInterruptedError:
    """The error of an interrupted batch, with a row for every step: those it stopped KILLED,
    those it had not reached NOT_RUN."""
    for index in stopped:
        rows[index] = steps[index].row(KILLED, str(exc) or "interrupted")
    left = [step.row(NOT_RUN) for i, step in enumerate(steps) if i not in rows]
    return BatchInterruptedError(f"batch interrupted; {len(left)} not run",
                                 getattr(exc, "exit_code", None) or interrupts.exit_code(exc),
                                 [rows[i] for i in sorted(rows)] + left)
