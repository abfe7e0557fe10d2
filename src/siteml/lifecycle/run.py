"""The run lifecycle of one scenario: preflight -> start -> execute -> register.

Everything that can reject a scenario (schema, dataset, a missing package or device, an existing
finished run, a missing source model or one the pipeline cannot use, an unreachable server) is
checked in ``preflight``, before the first write, so a rejected scenario leaves nothing behind.
A pipeline exception ends the run FAILED with ``error.txt``; Ctrl-C or SIGTERM ends it KILLED;
in both cases nothing is registered.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import importlib
import json
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from siteml import __version__
from siteml.backends import registry as backends
from siteml.core import interrupts, keys
from siteml.core.errors import Problem, ScenarioError, SitemlError
from siteml.core.interrupts import Terminated
from siteml.core.models import PipelineResult
from siteml.core.naming import CANDIDATE, ModelRef, registered_model_name, registry_path
from siteml.core.progress import note
from siteml.core.provenance import git_tags, host_tags
from siteml.core.secrets import redact
from siteml.lifecycle.repository import (
    ExportFolderError,
    exported_manifest,
    exported_version,
    sha256,
)
from siteml.scenario.factory import load_scenario, scenario_problem
from siteml.scenario.schema import BaseScenario
from siteml.scenario.types import EXPERIMENT_TYPES, ExperimentType
from siteml.tracking import registry
from siteml.tracking.heartbeat import StaleRun, reap, stale, stale_after_s, staleness
from siteml.tracking.runs import (
    RunRecorder,
    ensure_experiment,
    find_experiment_id,
    open_client,
    runs_named,
)
from siteml.tracking.store import (
    Store,
    TrackingUnavailableError,
    check_reachable,
    resolve_store,
)
from siteml.tracking.workspaces import enter_customer


class PipelineFailedError(SitemlError):
    """The pipeline raised; the run is FAILED with the traceback in ``error.txt`` (exit 1)."""


class RunInterruptedError(SitemlError):
    """Ctrl-C or SIGTERM during a run; the run is KILLED (exit 130 or 143)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


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

    @property
    def registered_path(self) -> str | None:
        """``site/task/version @alias`` as people write it (the slash spelling)."""
        if not self.registered_model:
            return None
        return f"{registry_path(self.registered_model)}/{self.model_version} @{self.alias}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Preflight:
    """A scenario that passed every check, with what running it needs."""

    path: Path
    scenario: BaseScenario
    kind: ExperimentType
    pipeline: ModuleType
    store: Store
    client: Any
    attempt: int
    models: dict[str, Any]
    """Registered versions the scenario reads, by role (``source``, ``baseline``)."""
    local: dict[str, Path]
    """Roles whose files are on disk already (an export folder), instead of downloaded."""
    skip_data_check: bool
    run_key: str | None
    """None while a model it reads is still to be produced (``pending``)."""
    done: Any = None
    """The FINISHED run with the same run key, when there is one: nothing to do."""
    dead: list[StaleRun] = field(default_factory=list)
    """Earlier attempts still RUNNING whose process is gone: reaped (KILLED) at start."""
    executor_tags: dict[str, str] = field(default_factory=dict)


def run_scenario(path: str | Path, overrides: Sequence[str] = (), *,
                 sites_dir: str | Path | None = None, rerun: bool = False,
                 skip_data_check: bool = False, store: Store | None = None,
                 pinned: dict[str, int] | None = None,
                 executor_tags: dict[str, str] | None = None) -> RunOutcome:
    """Validate and run one scenario file, recording everything in MLflow; a scenario whose
    run key already FINISHED is skipped (status SKIPPED, that run's id and version) unless
    ``rerun``.

    ``pinned`` maps registered model names to the version a batch produced: a source left
    unset reads that version instead of @champion / @candidate. ``executor_tags`` say where a
    batch ran it (``ray.task_id`` ...); an earlier RUNNING attempt of the same Ray task died.

    Raises:
        InvalidInputError: the scenario, its data or its source model is invalid (nothing written).
        TrackingUnavailableError: the tracking server is down (nothing written).
        MissingExtraError: a package the pipeline needs is not installed (nothing written).
        PipelineFailedError: the pipeline raised (run FAILED).
        RunInterruptedError: Ctrl-C or SIGTERM (run KILLED).
    """
    with interrupts.handled():
        try:
            checked = preflight(Path(path), overrides, sites_dir=sites_dir, rerun=rerun,
                                skip_data_check=skip_data_check, store=store, pinned=pinned,
                                executor_tags=executor_tags)
            return skipped(checked) if checked.done is not None else execute(checked)
        except (KeyboardInterrupt, Terminated) as exc:  # before a run was started
            raise _killed(None, exc) from None


def skipped(checked: Preflight) -> RunOutcome:
    """The outcome of a scenario whose run key already FINISHED: that run and its version."""
    scenario, run = checked.scenario, checked.done
    outcome = RunOutcome(scenario.get_experiment_name(), run.info.experiment_id,
                         scenario.get_run_name(), run.info.run_id, "SKIPPED",
                         dict(run.data.metrics))
    registered = run.data.tags.get(keys.MODEL_VERSION)
    if registered:
        name, version = registered.rsplit("/", 1)
        outcome.registered_model, outcome.model_version = name, int(version)
        outcome.alias = CANDIDATE
    return outcome


def preflight(path: Path, overrides: Sequence[str] = (), *, sites_dir: str | Path | None = None,
              rerun: bool = False, skip_data_check: bool = False,
              store: Store | None = None, pinned: dict[str, int] | None = None,
              pending: frozenset[str] = frozenset(),
              executor_tags: dict[str, str] | None = None) -> Preflight:
    """Every check, in the order of their cost; nothing is written. Roles that read a model
    in ``pending`` (one a batch will produce first) are not checked, and leave the run key
    open."""
    scenario = load_scenario(path, overrides, sites_dir, check_data=not skip_data_check)
    kind = EXPERIMENT_TYPES[scenario.experiment_type]
    pipeline = importlib.import_module(kind.pipeline)
    _refuse(path, overrides, pipeline.check(scenario))
    store = store or resolve_store()
    check_reachable(store)
    enter_customer(store, scenario.site.customer, "write")
    locator = _Locator(path, overrides)
    exports = _exports(scenario, kind, locator)
    reads = {role: exports[role][1]["registered_model"] if role in exports
             else model_read(scenario, role) for role in kind.roles}
    roles = [role for role, name in reads.items() if name not in (None, *pending)]
    needed = [role for role in roles if role not in kind.optional]
    if needed and not store.exists():  # refused before opening it, which would create it
        _refuse_missing(scenario, needed[0], store, locator)
    client = open_client(store)
    previous = _previous_runs(client, store, scenario)
    models = {role: version for role in roles if (version := _resolve(
        client, scenario, role, locator, kind, pinned or {}, exports.get(role))) is not None}
    key = None if pending & set(reads.values()) else run_key(scenario, models)
    done = next((r for r in previous if r.info.status == "FINISHED"
                 and r.data.tags.get(keys.RUN_KEY) == key), None) if key and not rerun else None
    if done is None and key:
        _refuse_finished(path, overrides, scenario, previous, rerun)
    task = (executor_tags or {}).get(keys.RAY_TASK)
    dead = [] if done else _dead_attempts(path, scenario, previous, task)
    read = {role: dict(version.tags) for role, version in models.items()}
    _refuse(path, overrides, pipeline.check_models(scenario, read))
    return Preflight(path, scenario, kind, pipeline, store, client, len(previous) + 1, models,
                     {role: folder for role, (folder, _) in exports.items()}, skip_data_check,
                     key, done, dead, executor_tags or {})


def _dead_attempts(path: Path, scenario: BaseScenario, previous: list[Any],
                   ray_task: str | None) -> list[StaleRun]:
    """Earlier attempts still RUNNING: stale ones and earlier attempts of this Ray task (Ray
    retries a task only when its worker died), to reap; a live one refuses a second."""
    dead = []
    for run in (r for r in previous if r.info.status == "RUNNING"):
        same_task = ray_task is not None and run.data.tags.get(keys.RAY_TASK) == ray_task
        reason = (f"an earlier attempt of Ray task {ray_task}, whose worker died" if same_task
                  else staleness(run, stale_after_s()))
        if reason is None:
            tags = run.data.tags
            raise ScenarioError([Problem(str(path), None, "", (
                f"run {scenario.get_run_name()!r} is RUNNING in experiment "
                f"{scenario.get_experiment_name()!r} (run id {run.info.run_id}, host "
                f"{tags.get(keys.ENV_HOSTNAME, '?')}, pid {tags.get(keys.PID, '?')}, heartbeat "
                f"{tags.get(keys.HEARTBEAT, 'none')}); wait for it to end (it counts as "
                f"crashed after {stale_after_s():.0f} s without a heartbeat: siteml runs --stale)"
            ))])
        dead.append(stale(run, scenario.get_experiment_name(), reason))
    return dead


def model_read(scenario: BaseScenario, role: str) -> str | None:
    """The registered model the scenario reads as ``role``, by name (a source left unset
    reads its site/task model, an export folder the one its manifest names); None for a role
    it does not have (or an export folder that names none, refused by ``preflight``)."""
    folder = scenario.model_folder(role)
    if folder is not None:
        with contextlib.suppress(ExportFolderError):
            return exported_manifest(folder)[1]["registered_model"]
        return None
    ref = scenario.model_reference(role)
    if ref is not None:
        return ref.name
    if role == "source" and role in EXPERIMENT_TYPES[scenario.experiment_type].roles:
        return registered_model_name(scenario.get_experiment_name(), scenario.task.type)
    return None


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
    versions read)."""
    content = scenario.model_dump(mode="json", exclude_defaults=True)
    del content["dataset"]["path"]
    weights = scenario.model.weights_path
    if isinstance(weights, Path):
        content["model"]["weights_path"] = f"sha256:{sha256(weights)}"
    for role in EXPERIMENT_TYPES[scenario.experiment_type].roles:
        if scenario.model_folder(role) is not None:
            del content[scenario.params_key][role]
    return content


def start(checked: Preflight) -> RunRecorder:
    """Reap the dead attempts; create the site's experiment if needed, and the run with every
    tag and param."""
    scenario, path = checked.scenario, checked.path
    for dead in checked.dead:
        reap(checked.client, dead)
        note(f"reaped run {dead.run_id} (KILLED): {dead.reason}")
    experiment_id = ensure_experiment(
        checked.client, checked.store, scenario.get_experiment_name(), scenario.site.to_tags(),
        scenario.site.description or f"Runs for site {scenario.get_experiment_name()}")
    tags = {**scenario.to_all_tags(), **host_tags(backends.packages()),
            **git_tags(path.absolute()), keys.USER: getpass.getuser(),
            keys.SOURCE_TYPE: "LOCAL", keys.SOURCE_NAME: str(path.absolute()),
            **_bookkeeping_tags(scenario, checked.attempt, checked.skip_data_check),
            keys.RUN_KEY: checked.run_key, **checked.executor_tags,
            **{k: v for role, version in checked.models.items()
               for k, v in _model_tags(role, version).items()}}
    tags.update({keys.role_tag(role, "model_folder"): str(folder)
                 for role, folder in checked.local.items()})
    return RunRecorder.start(checked.client, checked.store, experiment_id,
                             scenario.get_run_name(), tags, scenario.to_all_params(),
                             checked.models, checked.local)


def execute(checked: Preflight) -> RunOutcome:
    """Start the run, record the scenario and its dataset, run the pipeline, log its final
    metrics once, register its model; end the run FINISHED, FAILED (with ``error.txt``) or
    KILLED. An interrupt received at any point, even one whose exception was lost, ends it
    KILLED with nothing registered."""
    scenario = checked.scenario
    recorder = None
    try:
        with interrupts.deferred():  # until it exists, a run cannot be marked KILLED
            recorder = start(checked)
        outcome = RunOutcome(scenario.get_experiment_name(), recorder.experiment_id,
                             scenario.get_run_name(), recorder.run_id, "RUNNING")
        _record_inputs(recorder, scenario, checked.path, profile=not checked.skip_data_check)
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for siteml's --json
            result = checked.pipeline.run(scenario, recorder)
        recorder.log_metrics(result.metrics)
        recorder.settle()  # every metric recorded before anything is registered
        outcome.metrics = result.metrics
        interrupts.raise_if_requested()
        if result.model is not None and scenario.registers_model:
            version = register(checked, recorder, result)
            outcome.registered_model = version.name
            outcome.model_version = int(version.version)
            outcome.alias = CANDIDATE
        interrupts.raise_if_requested()
        recorder.finish("FINISHED")
        outcome.status = "FINISHED"
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
    return outcome


def _killed(recorder: RunRecorder | None, exc: BaseException) -> RunInterruptedError:
    """End an interrupted run KILLED (when it was created); the error that says so."""
    code = interrupts.exit_code(exc)
    what = "terminated" if code == interrupts.EXIT_SIGTERM else "interrupted"
    if recorder is None:
        return RunInterruptedError(what, code)
    recorder.finish("KILLED")
    return RunInterruptedError(f"{what}; run {recorder.run_id} marked KILLED", code)


def register(checked: Preflight, recorder: RunRecorder, result: PipelineResult) -> Any:
    """Register the run's model as a new version of its site/task (or variant) model, with
    lineage and headline metrics as version tags, and point ``@candidate`` at it."""
    scenario, model = checked.scenario, result.model
    assert model is not None
    name = scenario.get_registered_model_name(model.variant)
    earlier = registry.version_with_key(checked.client, name, checked.run_key)
    if earlier is not None and checked.client.get_run(earlier.run_id).info.status != "FINISHED":
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
        **{k: v for role, version in checked.models.items()
           for k, v in _model_tags(role, version).items()},
        **model.tags,
        **{f"{keys.METRIC_TAG_PREFIX}{k}": f"{result.metrics[k]:.6g}"
           for k in result.headline if k in result.metrics},
    }
    model_tags = {**scenario.site.to_tags(), keys.TASK_TYPE: scenario.task.type,
                  keys.VARIANT: model.variant or "base"}
    what = f"{model.variant} variant of the " if model.variant else ""
    description = (f"{what}{scenario.task.type} detector for site {scenario.get_experiment_name()} "
                   f"(classes: {', '.join(scenario.task.classes)})")
    version = registry.register(checked.client, experiment_id=recorder.experiment_id,
                                run_id=recorder.run_id, model=model, name=name,
                                logged_name=name.rsplit(".", 1)[1], model_tags=model_tags,
                                version_tags=version_tags, description=description,
                                model_config={"imgsz": scenario.model.input_size})
    recorder.set_tags({keys.MODEL_VERSION: f"{name}/{version.version}"})
    return version


@dataclass(frozen=True)
class _Locator:
    """Turns a missing registered model into an error at a YAML path of the scenario file."""

    path: Path
    overrides: Sequence[str]

    @contextlib.contextmanager
    def at(self, yaml_path: str) -> Iterator[None]:
        try:
            yield
        except (registry.ModelNotFoundError, ExportFolderError) as exc:
            raise scenario_problem(self.path, self.overrides, yaml_path, str(exc)) from None


def _refuse_missing(scenario: BaseScenario, role: str, store: Store, locator: _Locator) -> None:
    """A store that does not exist yet holds no model to read as ``role``."""
    ref = scenario.model_reference(role)
    task_model = registered_model_name(scenario.get_experiment_name(), scenario.task.type)
    wanted = ref.path if ref else f"{registry_path(task_model)}@champion or @candidate"
    with locator.at(EXPERIMENT_TYPES[scenario.experiment_type].roles[role]):
        raise registry.ModelNotFoundError(f"no registered model {wanted}: the store "
                                          f"{store.display} has no models yet")


def _refuse_finished(path: Path, overrides: Sequence[str], scenario: BaseScenario,
                     previous: list[Any], rerun: bool) -> None:
    """A run name that already FINISHED runs again only when asked."""
    finished = [r for r in previous if r.info.status == "FINISHED"]
    if finished and not rerun:
        _refuse(path, overrides, ("version", (
            f"run {scenario.get_run_name()!r} already FINISHED in experiment "
            f"{scenario.get_experiment_name()!r} (run id {finished[0].info.run_id}); bump "
            "'version' for a new run, or pass --rerun")))


def _exports(scenario: BaseScenario, kind: ExperimentType,
             locator: _Locator) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The export folders the scenario reads models from, by role: each version folder and
    its manifest, its files checked against it."""
    found = {}
    for role, yaml_path in kind.roles.items():
        folder = scenario.model_folder(role)
        if folder is not None:
            with locator.at(yaml_path):
                found[role] = exported_version(folder)
    return found


def _resolve(client: Any, scenario: BaseScenario, role: str, locator: _Locator,
             kind: ExperimentType, pinned: dict[str, int],
             exported: tuple[Path, dict[str, Any]] | None = None) -> Any:
    """The registered version the scenario reads as ``role`` (a source defaults to the
    version ``pinned`` for the site/task model, else its @champion, else @candidate; an
    ``exported`` one is the version its manifest names, from the run it names); a missing
    one is an error located in the file, or None for an optional role."""
    if exported is not None:
        folder, manifest = exported
        with locator.at(kind.roles[role]):
            version = registry.resolve(client, ModelRef(name=manifest["registered_model"],
                                                        version=int(manifest["version"])))
            if version.run_id != manifest["lineage"]["run_id"]:
                raise ExportFolderError(
                    f"{folder} was exported from run {manifest['lineage']['run_id']}, but "
                    f"this store's {registry_path(version.name)}/{version.version} comes from "
                    f"run {version.run_id}: it is another store's model")
        return version
    ref = scenario.model_reference(role)
    read = model_read(scenario, role)  # an unset source: the site/task model
    if ref is None and read in pinned:
        ref = ModelRef(name=read, version=pinned[read])
    if role in kind.optional:
        with contextlib.suppress(registry.ModelNotFoundError):
            return registry.resolve(client, ref)
        return None
    with locator.at(kind.roles[role]):
        return registry.resolve(client, ref or registry.default_source(
            client, scenario.get_experiment_name(), scenario.task.type))


def _previous_runs(client: Any, store: Store, scenario: BaseScenario) -> list[Any]:
    """Earlier runs of this scenario's run name at its site, newest first."""
    experiment_id = (find_experiment_id(client, scenario.get_experiment_name())
                     if store.exists() else None)
    return runs_named(client, experiment_id, scenario.get_run_name()) if experiment_id else []


def _refuse(path: Path, overrides: Sequence[str], problem: tuple[str, str] | None) -> None:
    """Raise ``problem`` (YAML path, message) as an invalid-input error located in the file."""
    if problem:
        raise scenario_problem(path, overrides, *problem)


def _model_tags(role: str, version: Any) -> dict[str, str]:
    """``{role}.model_name``, ``.model_version``, ``.model_path``, ``.run_id`` of a version read."""
    if version is None:
        return {}
    values = (version.name, str(version.version), f"{registry_path(version.name)}/"
              f"{version.version}", version.run_id or "")
    return {keys.role_tag(role, name): value
            for name, value in zip(keys.ROLE_FIELDS, values, strict=True)}


def _bookkeeping_tags(scenario: BaseScenario, attempt: int,
                      skip_data_check: bool) -> dict[str, str]:
    tags = {keys.SITEML_VERSION: __version__, keys.ATTEMPT: str(attempt),
            keys.SCENARIO_SHA256: hashlib.sha256(scenario.resolved_yaml().encode()).hexdigest()}
    if skip_data_check:
        tags[keys.DATA_CHECK] = "skipped"
    if scenario.description:
        tags[keys.NOTE] = scenario.description
    return tags


def _record_inputs(recorder: RunRecorder, scenario: BaseScenario, path: Path,
                   profile: bool) -> None:
    """The scenario, its files (its own and the bases it extends) and its dataset; the
    dataset's profile too when the type asks for one and the data check was not skipped (a
    huge dataset)."""
    recorder.log_text(scenario.resolved_yaml(), "scenario.yaml")
    for source in scenario.source_files or [path]:
        recorder.log_artifact(source, "scenario_source")
    dataset = scenario.dataset
    found = None
    if profile and EXPERIMENT_TYPES[scenario.experiment_type].profiles_dataset:
        found = _dataset_profile(recorder, dataset.path, scenario.task.classes)
    recorder.log_dataset(name=f"{scenario.task.type}-{dataset.version}", digest=dataset.dvc_hash,
                         source=str(dataset.path), context=scenario.experiment_type,
                         profile=found)


def _dataset_profile(recorder: RunRecorder, root: Path, classes: list[str]) -> dict[str, Any]:
    """Profile the dataset (as ``siteml data stats``), keep it as an artifact, and warn when
    val holds near-duplicates of train."""
    from siteml.core.progress import note
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
        recorder.finish("FAILED")
