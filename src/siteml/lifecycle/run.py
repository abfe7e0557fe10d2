"""The run lifecycle of one scenario: preflight -> start -> execute -> register.

Everything that can reject a scenario (schema, dataset, a missing package or device, an existing
finished run, a missing source model or one the pipeline cannot use, an unreachable server) is
checked in ``preflight``, before the first write, so a rejected scenario leaves nothing behind.
A pipeline exception ends the run FAILED with ``error.txt``; Ctrl-C or SIGTERM ends it KILLED,
also when its exception was lost on the way (``core.interrupts``); in both cases nothing is
registered. What a run reads is resolved in ``reads``, its earlier attempts in ``attempts``.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from siteml.backends import registry as backends
from siteml.core import interrupts, keys
from siteml.core.errors import SitemlError
from siteml.core.interrupts import Terminated
from siteml.core.models import PipelineResult
from siteml.core.naming import CANDIDATE
from siteml.core.progress import note
from siteml.core.provenance import git_tags, host_tags
from siteml.core.secrets import redact
from siteml.lifecycle.attempts import Attempts, attempt_tags, earlier_attempts, run_key
from siteml.lifecycle.options import RunOptions
from siteml.lifecycle.outcomes import FAILED, FINISHED, KILLED, RUNNING, RunOutcome
from siteml.lifecycle.reads import ModelsRead, lineage_tags
from siteml.scenario.factory import load_scenario, scenario_problem
from siteml.scenario.schema import BaseScenario
from siteml.scenario.types import EXPERIMENT_TYPES
from siteml.tracking import model_register
from siteml.tracking.runs import RunRecorder, ensure_experiment, open_client
from siteml.tracking.store import Store, TrackingUnavailableError, check_reachable, resolve_store
from siteml.tracking.workspaces import enter_customer


class PipelineFailedError(SitemlError):
    """The pipeline raised; the run is FAILED with the traceback in ``error.txt`` (exit 1)."""


class RunInterruptedError(SitemlError):
    """Ctrl-C or SIGTERM during a run; the run is KILLED (exit 130 or 143)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Preflight:
    """A scenario that passed every check, with what running it needs."""

    path: Path
    scenario: BaseScenario
    pipeline: ModuleType
    store: Store
    client: Any
    options: RunOptions
    models: dict[str, Any]
    """Registered versions the scenario reads, by role (``source``, ``baseline``)."""
    local: dict[str, Path]
    """Roles whose files are on disk already (an export folder), instead of downloaded."""
    run_key: str | None
    """None while a model it reads is still to be produced (``RunOptions.pending``)."""
    attempts: Attempts

    @property
    def done(self) -> RunOutcome | None:
        """When its run key already FINISHED: the outcome of skipping it (that run, its
        version)."""
        if self.attempts.done is None:
            return None
        return RunOutcome.skipped(self.scenario.get_experiment_name(), self.attempts.done)


def run_scenario(path: str | Path, options: RunOptions) -> RunOutcome:
    """Validate and run one scenario file, recording everything in MLflow; a scenario whose
    run key already FINISHED is skipped (status SKIPPED, that run's id and version) unless
    ``options.rerun``.

    Raises:
        InvalidInputError: the scenario, its data or its source model is invalid (nothing written).
        TrackingUnavailableError: the tracking server is down (nothing written).
        MissingExtraError: a package the pipeline needs is not installed (nothing written).
        PipelineFailedError: the pipeline raised (run FAILED).
        RunInterruptedError: Ctrl-C or SIGTERM (run KILLED).
    """
    with interrupts.handled():
        try:
            checked = preflight(Path(path), options)
            return checked.done or execute(checked)
        except (KeyboardInterrupt, Terminated) as exc:  # before a run was started
            raise _killed(None, exc) from None


def preflight(path: Path, options: RunOptions) -> Preflight:
    """Every check, in the order of their cost; nothing is written. Roles that read a model
    in ``options.pending`` (one a batch will produce first) are not checked, and leave the run
    key open."""
    overrides = options.overrides
    scenario = load_scenario(path, overrides, options.sites_dir,
                             check_data=not options.skip_data_check)
    pipeline = importlib.import_module(EXPERIMENT_TYPES[scenario.experiment_type].pipeline)
    _refuse(path, overrides, pipeline.check(scenario))
    store = options.store or resolve_store()
    check_reachable(store)
    enter_customer(store, scenario.site.customer, "write")
    reads = ModelsRead.of(path, overrides, scenario, options.pending)
    reads.refuse_missing(store)  # before opening the store, which would create it
    client = open_client(store)
    models = reads.resolve(client, options.pinned)
    key = None if reads.open else run_key(scenario, models)
    attempts = earlier_attempts(client, store, path, options, scenario, key)
    read = {role: dict(version.tags) for role, version in models.items()}
    _refuse(path, overrides, pipeline.check_models(scenario, read))
    return Preflight(path, scenario, pipeline, store, client, options, models, reads.local, key,
                     attempts)


def start(checked: Preflight) -> RunRecorder:
    """Reap the dead attempts; create the site's experiment if needed, and the run with every
    tag and param."""
    scenario, path = checked.scenario, checked.path
    checked.attempts.reap(checked.client)
    experiment_id = ensure_experiment(
        checked.client, checked.store, scenario.get_experiment_name(), scenario.site.to_tags(),
        scenario.site.description or f"Runs for site {scenario.get_experiment_name()}")
    tags = {**scenario.to_all_tags(), **host_tags(backends.packages()),
            **git_tags(path.absolute()), keys.USER: getpass.getuser(),
            keys.SOURCE_TYPE: "LOCAL", keys.SOURCE_NAME: str(path.absolute()),
            **attempt_tags(scenario, checked.attempts.number, checked.options.skip_data_check),
            keys.RUN_KEY: checked.run_key, **checked.options.executor_tags,
            **lineage_tags(checked.models),
            **{keys.role_tag(role, "model_folder"): str(folder)
               for role, folder in checked.local.items()}}
    return RunRecorder.start(checked.client, checked.store, experiment_id,
                             scenario.get_run_name(), tags, scenario.to_all_params(),
                             checked.models, checked.local)


def execute(checked: Preflight) -> RunOutcome:
    """Start the run and do its work (``_work``); end it FINISHED, FAILED (with ``error.txt``)
    or KILLED. An interrupt received at any point, even one whose exception was lost, ends it
    KILLED with nothing registered."""
    recorder = None
    try:
        with interrupts.deferred():  # until it exists, a run cannot be marked KILLED
            recorder = start(checked)
        return _work(checked, recorder)
    except (KeyboardInterrupt, Terminated) as exc:
        raise _killed(recorder, exc) from None
    except TrackingUnavailableError as exc:  # it stayed away past the wait: no more waiting
        if recorder is None:
            raise
        try:
            _record_failure(recorder, exc)
            marked = "marked FAILED"
        except Exception:
            marked = "could not be marked FAILED (it stays RUNNING on the server)"
        raise TrackingUnavailableError(f"{exc}; nothing was registered; run {recorder.run_id} "
                                       f"{marked}") from None
    except Exception as exc:
        if recorder is None:
            raise
        if interrupts.requested():  # the interrupt surfaced as another error
            raise _killed(recorder, exc) from None
        _record_failure(recorder, exc)
        raise PipelineFailedError(f"pipeline failed: {type(exc).__name__}: {exc}\n"
                                  f"run {recorder.run_id} marked FAILED; traceback in its "
                                  "error.txt artifact") from exc
    finally:
        if recorder is not None:
            recorder.cleanup()


def _work(checked: Preflight, recorder: RunRecorder) -> RunOutcome:
    """Record the scenario and its dataset, run the pipeline, log its final metrics once,
    register its model, end the run FINISHED: unless an interrupt was received."""
    scenario = checked.scenario
    outcome = RunOutcome(scenario.get_experiment_name(), recorder.experiment_id,
                         scenario.get_run_name(), recorder.run_id, RUNNING)
    _record_inputs(recorder, scenario, checked.path,
                   profile=not checked.options.skip_data_check)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for siteml's --json
        result = checked.pipeline.run(scenario, recorder)
    recorder.log_metrics(result.metrics)
    recorder.settle()  # every metric recorded before anything is registered
    outcome.metrics = result.metrics
    interrupts.raise_if_requested()  # a lost interrupt registers nothing
    if result.model is not None and scenario.registers_model:
        version = register(checked, recorder, result)
        outcome.registered_model, outcome.model_version = version.name, int(version.version)
        outcome.alias = CANDIDATE
    interrupts.raise_if_requested()  # nor ends the run FINISHED
    recorder.finish(FINISHED)
    outcome.status = FINISHED
    return outcome


def _killed(recorder: RunRecorder | None, exc: BaseException) -> RunInterruptedError:
    """End an interrupted run KILLED (when it was created); the error that says so."""
    code = interrupts.exit_code(exc)
    what = "terminated" if code == interrupts.EXIT_SIGTERM else "interrupted"
    if recorder is None:
        return RunInterruptedError(what, code)
    recorder.finish(KILLED)
    return RunInterruptedError(f"{what}; run {recorder.run_id} marked KILLED", code)


def register(checked: Preflight, recorder: RunRecorder, result: PipelineResult) -> Any:
    """Register the run's model as a new version of its site/task (or variant) model, with
    lineage and headline metrics as version tags, and point ``@candidate`` at it."""
    scenario, model = checked.scenario, result.model
    assert model is not None
    name = scenario.get_registered_model_name(model.variant)
    earlier = model_register.version_with_key(checked.client, name, checked.run_key)
    if earlier is not None and checked.client.get_run(earlier.run_id).info.status != FINISHED:
        # an attempt that registered and then died (a retry): no second version
        recorder.set_tags({keys.MODEL_VERSION: f"{name}/{earlier.version}"})
        return earlier
    version_tags = {
        keys.RUN_ID: recorder.run_id,
        keys.RUN_KEY: checked.run_key,
        keys.SCENARIO: f"{scenario.name}:{scenario.version}",
        keys.DATA_DVC_HASH: scenario.dataset.dvc_hash,
        keys.DATA_VERSION: scenario.dataset.version,
        keys.MODEL_ARCHITECTURE: scenario.model.architecture,
        keys.MODEL_INPUT_SIZE: str(scenario.model.input_size),
        keys.MODEL_CLASSES: ",".join(scenario.task.classes),
        keys.MODEL_FORMAT: model.format,
        keys.MODEL_BACKEND: model.backend,
        keys.MODEL_PRECISION: model.precision,
        **lineage_tags(checked.models),
        **model.tags,
        **{f"{keys.METRIC_TAG_PREFIX}{k}": f"{result.metrics[k]:.6g}"
           for k in result.headline if k in result.metrics},
    }
    model_tags = {**scenario.site.to_tags(), keys.TASK_TYPE: scenario.task.type,
                  keys.VARIANT: model.variant or "base"}
    what = f"{model.variant} variant of the " if model.variant else ""
    description = (f"{what}{scenario.task.type} detector for site {scenario.get_experiment_name()} "
                   f"(classes: {', '.join(scenario.task.classes)})")
    version = model_register.register(
        checked.client, experiment_id=recorder.experiment_id, run_id=recorder.run_id,
        model=model, name=name, logged_name=name.rsplit(".", 1)[1], model_tags=model_tags,
        version_tags=version_tags, description=description,
        model_config={"imgsz": scenario.model.input_size})
    recorder.set_tags({keys.MODEL_VERSION: f"{name}/{version.version}"})
    return version


def _refuse(path: Path, overrides: Sequence[str], problem: tuple[str, str] | None) -> None:
    """Raise ``problem`` (YAML path, message) as an invalid-input error located in the file."""
    if problem:
        raise scenario_problem(path, overrides, *problem)


def _record_inputs(recorder: RunRecorder, scenario: BaseScenario, path: Path,
                   profile: bool) -> None:
    """The scenario, its files (its own and the bases it extends) and its dataset, with its
    lineage when it was grown; the dataset's profile too when the type asks for one and the
    data check was not skipped (a huge dataset)."""
    from siteml.data.grow import lineage_tags

    recorder.log_text(scenario.resolved_yaml(), "scenario.yaml")
    for source in scenario.source_files or [path]:
        recorder.log_artifact(source, "scenario_source")
    dataset = scenario.dataset
    found = None
    if profile and EXPERIMENT_TYPES[scenario.experiment_type].profiles_dataset:
        found = _dataset_profile(recorder, dataset.path, scenario.task.classes)
    lineage = lineage_tags(dataset.path)
    recorder.log_dataset(name=f"{scenario.task.type}-{dataset.version}", digest=dataset.dvc_hash,
                         source=str(dataset.path), context=scenario.experiment_type,
                         profile=found, tags=lineage)
    recorder.set_tags(lineage)


def _dataset_profile(recorder: RunRecorder, root: Path, classes: list[str]) -> dict[str, Any]:
    """Profile the dataset (as ``siteml data stats``), keep it as an artifact, and warn when
    val holds near-duplicates of train."""
    from siteml.data.profile import profile_dataset, val_leaks

    profile = profile_dataset(root, classes=classes)
    recorder.log_text(json.dumps(profile, indent=1), keys.DATASET_PROFILE_ARTIFACT)
    leaks = val_leaks(profile)
    recorder.set_tags({keys.DATA_VAL_NEAR_DUPLICATES: str(leaks)})
    if leaks:
        note(f"[yellow]warning:[/yellow] {leaks} val images are near-duplicates of train images "
             f"(see {keys.DATASET_PROFILE_ARTIFACT}): val metrics will look better than the "
             "site will see; re-split by camera (siteml data import --group-by)")
    return profile


def _record_failure(recorder: RunRecorder, exc: BaseException) -> None:
    text = redact("".join(traceback.format_exception(exc)))
    try:
        recorder.log_text(text, "error.txt")
        recorder.set_tags({keys.ERROR: redact(f"{type(exc).__name__}: {exc}")[:5000]})
    finally:
        recorder.finish(FAILED)
