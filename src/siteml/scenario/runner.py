"""The run lifecycle: validate, then experiment, run, tags and params, pipeline, registry.

Everything that can reject a scenario (schema, dataset, a missing package or device, an existing
finished run, a missing source model or one the pipeline cannot use, an unreachable server) is
checked before the first write, so a rejected scenario leaves nothing behind. A pipeline
exception ends the run FAILED with ``error.txt``; Ctrl-C or SIGTERM ends it KILLED; in both
cases nothing is registered.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from siteml import __version__
from siteml.errors import InvalidInputError, SitemlError
from siteml.pipelines import (
    check_baseline,
    check_device,
    check_extras,
    check_source,
    get_pipeline,
)
from siteml.provenance import git_tags, host_tags
from siteml.scenario.factory import load_scenario, scenario_problem
from siteml.scenario.naming import registered_model_name, registry_path
from siteml.scenario.schema import BaseScenario
from siteml.tracking import registry
from siteml.tracking.runs import (
    RunRecorder,
    ensure_experiment,
    find_experiment_id,
    open_client,
    runs_named,
)
from siteml.tracking.store import Store, check_reachable, resolve_store

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class PipelineFailedError(SitemlError):
    """The pipeline raised; the run is FAILED with the traceback in ``error.txt`` (exit 1)."""


class RunInterruptedError(SitemlError):
    """Ctrl-C or SIGTERM during a run; the run is KILLED (exit 130 or 143)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class _Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives."""


@dataclass
class RunOutcome:
    """What ``siteml run`` reports."""

    experiment_name: str
    experiment_id: str
    run_name: str
    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    registered_model: str | None = None
    model_version: int | None = None
    alias: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_scenario(path: str | Path, overrides: Sequence[str] = (), *,
                 sites_dir: str | Path | None = None, rerun: bool = False,
                 skip_data_check: bool = False, store: Store | None = None) -> RunOutcome:
    """Validate and run one scenario file, recording everything in MLflow.

    Raises:
        InvalidInputError: the scenario, its data or its source model is invalid (nothing written).
        TrackingUnavailableError: the tracking server is down (nothing written).
        PipelineFailedError: the pipeline raised (run FAILED).
        RunInterruptedError: Ctrl-C or SIGTERM (run KILLED).
    """
    scenario = load_scenario(path, overrides, sites_dir, check_data=not skip_data_check)
    pipeline = get_pipeline(scenario.experiment_type)
    check_extras(scenario)
    _refuse(path, overrides, check_device(scenario))
    store = store or resolve_store()
    check_reachable(store)
    if not store.exists() and _wants_source(scenario):
        wanted = scenario.params.source
        task_model = registered_model_name(scenario.get_experiment_name(), scenario.task.type)
        what = wanted.path if wanted else f"{registry_path(task_model)}@champion or @candidate"
        raise registry.ModelNotFoundError(f"{path}: no registered model {what}: the store "
                                          f"{store.display} has no models yet")
    client = open_client(store)

    experiment_name, run_name = scenario.get_experiment_name(), scenario.get_run_name()
    experiment_id = find_experiment_id(client, experiment_name) if store.exists() else None
    previous = runs_named(client, experiment_id, run_name) if experiment_id else []
    finished = [r for r in previous if r.info.status == "FINISHED"]
    if finished and not rerun:
        raise InvalidInputError(
            f"{path}: run {run_name!r} already FINISHED in experiment {experiment_name!r} "
            f"(run id {finished[0].info.run_id}); bump 'version' for a new run, or pass --rerun")
    source = baseline = None
    if _wants_source(scenario):
        with _located(path, overrides, f"{scenario.params_key}.source"):
            source = registry.resolve(client, scenario.params.source or registry.default_source(
                client, scenario.get_experiment_name(), scenario.task.type))
        _refuse(path, overrides, check_source(scenario, source.tags.get("model.backend")))
    if getattr(scenario.params, "baseline", None) is not None:
        with _located(path, overrides, "benchmark.baseline"):
            baseline = registry.resolve(client, scenario.params.baseline)
        _refuse(path, overrides, check_baseline(scenario, baseline.tags.get("model.backend")))

    experiment_id = ensure_experiment(
        client, store, experiment_name, scenario.site.to_tags(),
        scenario.site.description or f"Runs for site {experiment_name}")
    tags = {**scenario.to_all_tags(), **host_tags(), **git_tags(Path(path).absolute()),
            "mlflow.user": getpass.getuser(), "mlflow.source.type": "LOCAL",
            "mlflow.source.name": str(Path(path).absolute()),
            **_bookkeeping_tags(scenario, len(previous) + 1, skip_data_check),
            **_model_tags("source", source), **_model_tags("baseline", baseline)}
    recorder = RunRecorder.start(client, store, experiment_id, run_name, tags,
                                 scenario.to_all_params(),
                                 {"source": source, "baseline": baseline})
    outcome = RunOutcome(experiment_name, experiment_id, run_name, recorder.run_id, "RUNNING")
    try:
        with _sigterm_raises():
            _record_inputs(recorder, scenario, Path(path))
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for siteml's --json
                result = pipeline(scenario, recorder)
            recorder.log_metrics(result.metrics)
            outcome.metrics = result.metrics
            if result.model is not None and scenario.registers_model:
                version = _register(client, recorder, scenario, result, source)
                outcome.registered_model = version.name
                outcome.model_version = int(version.version)
                outcome.alias = registry.CANDIDATE
            recorder.finish("FINISHED")
            outcome.status = "FINISHED"
    except KeyboardInterrupt:
        recorder.finish("KILLED")
        raise RunInterruptedError(f"interrupted; run {recorder.run_id} marked KILLED",
                                  EXIT_SIGINT) from None
    except _Terminated:
        recorder.finish("KILLED")
        raise RunInterruptedError(f"terminated; run {recorder.run_id} marked KILLED",
                                  EXIT_SIGTERM) from None
    except Exception as exc:
        _record_failure(recorder, exc)
        raise PipelineFailedError(f"pipeline failed: {type(exc).__name__}: {exc}\n"
                                  f"run {recorder.run_id} marked FAILED; traceback in its "
                                  "error.txt artifact") from exc
    finally:
        recorder.cleanup()
    return outcome


def _refuse(path: str | Path, overrides: Sequence[str], problem: tuple[str, str] | None) -> None:
    """Raise ``problem`` (YAML path, message) as an invalid-input error located in the file."""
    if problem:
        raise scenario_problem(path, overrides, *problem)


def _wants_source(scenario: BaseScenario) -> bool:
    return hasattr(scenario.params, "source")


@contextlib.contextmanager
def _located(path: str | Path, overrides: Sequence[str], yaml_path: str) -> Iterator[None]:
    """Report a missing registered model as an error at ``yaml_path`` of the scenario file
    (a source defaults to the site/task's @champion, else @candidate)."""
    try:
        yield
    except registry.ModelNotFoundError as exc:
        raise scenario_problem(path, overrides, yaml_path, str(exc)) from None


def _model_tags(role: str, version: Any) -> dict[str, str]:
    """``{role}.model_name``, ``.model_version``, ``.model_path``, ``.run_id`` of a version read."""
    if version is None:
        return {}
    return {f"{role}.model_name": version.name, f"{role}.model_version": str(version.version),
            f"{role}.model_path": f"{registry_path(version.name)}/{version.version}",
            f"{role}.run_id": version.run_id or ""}


def scenario_yaml(scenario: BaseScenario) -> str:
    """The resolved scenario (site inlined, overrides applied, defaults filled) as YAML."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _bookkeeping_tags(scenario: BaseScenario, attempt: int,
                      skip_data_check: bool) -> dict[str, str]:
    tags = {"siteml.version": __version__, "siteml.attempt": str(attempt),
            "siteml.scenario_sha256": hashlib.sha256(scenario_yaml(scenario).encode()).hexdigest()}
    if skip_data_check:
        tags["siteml.data_check"] = "skipped"
    if scenario.description:
        tags["mlflow.note.content"] = scenario.description
    return tags


def _record_inputs(recorder: RunRecorder, scenario: BaseScenario, path: Path) -> None:
    recorder.log_text(scenario_yaml(scenario), "scenario.yaml")
    recorder.log_artifact(path, "scenario_source")
    dataset = scenario.dataset
    recorder.log_dataset(name=f"{scenario.task.type}-{dataset.version}", digest=dataset.dvc_hash,
                         source=str(dataset.path), context=scenario.experiment_type)


def _record_failure(recorder: RunRecorder, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    try:
        recorder.log_text(text, "error.txt")
        recorder.set_tags({"siteml.error": f"{type(exc).__name__}: {exc}"[:5000]})
    finally:
        recorder.finish("FAILED")


def _register(client: Any, recorder: RunRecorder, scenario: BaseScenario, result: Any,
              source: Any) -> Any:
    model = result.model
    name = scenario.get_registered_model_name(model.variant)
    leaf = name.rsplit(".", 1)[1]
    version_tags = {
        "siteml.run_id": recorder.run_id,
        "siteml.scenario": f"{scenario.name}:{scenario.version}",
        "data.dvc_hash": scenario.dataset.dvc_hash,
        "data.version": scenario.dataset.version,
        "model.architecture": scenario.model.architecture,
        "model.input_size": str(scenario.model.input_size),
        "model.format": model.format,
        "model.backend": model.backend,
        "model.precision": model.precision,
        **_model_tags("source", source),
        **model.tags,
        **{f"{registry.METRIC_TAG_PREFIX}{k}": f"{result.metrics[k]:.6g}"
           for k in result.headline if k in result.metrics},
    }
    model_tags = {**scenario.site.to_tags(), "task.type": scenario.task.type,
                  "siteml.variant": model.variant or "base"}
    what = f"{model.variant} variant of the " if model.variant else ""
    description = (f"{what}{scenario.task.type} detector for site {scenario.get_experiment_name()} "
                   f"(classes: {', '.join(scenario.task.classes)})")
    version = registry.register(client, experiment_id=recorder.experiment_id,
                                run_id=recorder.run_id, model=model, name=name, logged_name=leaf,
                                model_tags=model_tags, version_tags=version_tags,
                                description=description,
                                model_config={"imgsz": scenario.model.input_size})
    recorder.set_tags({"siteml.model_version": f"{name}/{version.version}"})
    return version


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into an exception in the main thread, so the run can be marked KILLED."""
    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
