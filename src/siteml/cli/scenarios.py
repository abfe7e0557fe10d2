"""Commands on scenario files: ``validate``, ``plan``, ``schema`` and ``run``."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from siteml.cli.app import (
    JsonOption,
    SetOption,
    SitesDirOption,
    app,
    console,
    fail,
    print_json,
    reporting_errors,
)
from siteml.cli.render import BATCH_COLUMNS, PLAN_COLUMNS, print_plan, print_table
from siteml.core.errors import EXIT_INVALID_INPUT, InvalidInputError, ScenarioError

if TYPE_CHECKING:
    from siteml.lifecycle.options import RunOptions


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario or site files, or folders "
                                                "(searched recursively).")],
    as_json: JsonOption = False,
) -> None:
    """Check scenario and site files without running anything. Exit 0 if all are valid, else 2."""
    from siteml.scenario.factory import find_yaml_files, load_any

    files = find_yaml_files(paths)
    results: list[dict[str, Any]] = []
    for file in files:
        try:
            load_any(file)
            results.append({"file": str(file), "valid": True, "problems": []})
        except ScenarioError as exc:
            results.append({"file": str(file), "valid": False,
                            "problems": [p.to_dict() for p in exc.problems]})
            if not as_json:
                for problem in exc.problems:
                    typer.echo(str(problem), err=True)
    invalid = sum(not r["valid"] for r in results)
    if as_json:
        typer.echo(json.dumps({"files": results, "valid": len(files) - invalid,
                               "invalid": invalid}, indent=2))
    elif not files:
        typer.echo("no YAML files found", err=True)
    else:
        typer.echo(f"{len(files) - invalid} valid, {invalid} invalid "
                   f"({len(files)} file{'s' if len(files) != 1 else ''})")
    if invalid or not files:
        raise typer.Exit(EXIT_INVALID_INPUT)


PathsArgument = Annotated[list[Path], typer.Argument(
    help="Scenario files or folders (a folder: every scenario in it, bases '_*.yaml' aside).")]


def _one_file(paths: list[Path]) -> bool:
    return len(paths) == 1 and not paths[0].is_dir()


@app.command()
def plan(
    paths: PathsArgument,
    overrides: SetOption = None,
    sites_dir: SitesDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what scenarios would do, without running them. One file: its resolved scenario
    (bases merged) and the MLflow names, tags and params it produces. Several, or a folder:
    the batch's dependency graph in run order, marking what would be skipped."""
    if not _one_file(paths):
        _plan_batch(paths, overrides or (), sites_dir, as_json)
        return
    from siteml.scenario.factory import load_scenario

    try:
        scenario = load_scenario(paths[0], overrides or (), sites_dir)
    except ScenarioError as exc:
        raise fail(exc) from None
    result = {
        "experiment_name": scenario.get_experiment_name(),
        "run_name": scenario.get_run_name(),
        "registered_model_name": scenario.get_output_model_name(),
        "files": [str(f) for f in scenario.source_files],
        "scenario": scenario.model_dump(mode="json"),
        "tags": scenario.to_all_tags(),
        "params": scenario.to_all_params(),
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    print_plan({**result, "scenario_yaml": scenario.resolved_yaml()})


def _plan_batch(paths: list[Path], overrides: list[str], sites_dir: Path | None,
                as_json: bool) -> None:
    from siteml.lifecycle.batch import plan_batch, survey
    from siteml.lifecycle.options import RunOptions
    from siteml.tracking.store import resolve_store

    options = RunOptions(tuple(overrides), sites_dir)
    with reporting_errors():
        steps = plan_batch(paths, options)
        done = survey(steps, resolve_store(), options)
    rows = [{"order": i + 1, "file": str(step.path), "run_name": step.scenario.get_run_name(),
             "experiment_name": step.scenario.get_experiment_name(),
             "action": "run" if skipped is None else "skipped", "produces": step.produces,
             "needs": [n + 1 for n in step.needs]}
            for i, (step, skipped) in enumerate(zip(steps, done, strict=True))]
    if as_json:
        print_json(rows)
        return
    print_table(rows, PLAN_COLUMNS)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print the JSON Schema of scenario files (for editor validation of YAML)."""
    from siteml.scenario.json_schema import scenario_json_schema

    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@app.command()
def run(
    paths: PathsArgument,
    overrides: SetOption = None,
    sites_dir: SitesDirOption = None,
    rerun: Annotated[bool, typer.Option(
        help="Run again although this run name FINISHED, even with the same run key (tags "
             "the attempt; registers a new version).")] = False,
    skip_data_check: Annotated[bool, typer.Option(
        help="Skip the dataset check (for huge datasets); recorded as a run tag.")] = False,
    ray: Annotated[bool, typer.Option(
        "--ray", help="Run the batch on a Ray cluster (needs a tracking server): each "
        "scenario a Ray task, on the node its environment.host names.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        help="The Ray cluster (default RAY_ADDRESS, else the one started on this machine).")
    ] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", help="Run up to N independent scenarios at once here, each in its own "
        "process pinned to its share of the cores.")] = 1,
    share_cores: Annotated[bool, typer.Option(
        help="Let --jobs exceed the cores (the jobs then time each other).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate scenarios, run their pipelines and record everything in MLflow. Several files
    or a folder run as one batch in dependency order (see 'siteml plan'); a scenario whose
    run key already FINISHED is skipped.

    Exit codes: 0 finished (or skipped), 1 a pipeline failed (or, in a batch, a scenario
    failed or was blocked) or tracking unavailable, 2 invalid input (nothing written),
    130/143 interrupted.
    """
    from siteml.lifecycle.options import RunOptions

    options = RunOptions(tuple(overrides or ()), sites_dir, rerun, skip_data_check)
    if ray or jobs != 1 or not _one_file(paths):
        _run_batch(paths, options, as_json, (ray_address or "") if ray else None, jobs,
                   share_cores)
        return
    from siteml.lifecycle.outcomes import SKIPPED
    from siteml.lifecycle.run import run_scenario

    with reporting_errors():
        outcome = run_scenario(paths[0], options)
    if as_json:
        print_json(outcome.to_dict())
        return
    out = console()
    why = "  (this run key already FINISHED)" if outcome.status == SKIPPED else ""
    out.print(f"[green]{outcome.status}[/green] {outcome.experiment_name} / "
              f"{outcome.run_name}  (run {outcome.run_id}){why}")
    for key, value in sorted(outcome.metrics.items()):
        out.print(f"  {key:<28} {value:.4g}")
    if outcome.registered_path:
        out.print(f"registered {outcome.registered_path}")


def _run_batch(paths: list[Path], options: RunOptions, as_json: bool, ray_address: str | None,
               jobs: int, share_cores: bool) -> None:
    from siteml.core.cores import core_shares
    from siteml.lifecycle.batch import BatchInterruptedError, plan_batch, run_batch
    from siteml.lifecycle.outcomes import DONE
    from siteml.tracking.store import resolve_store

    err = console(stderr=True)

    def report(row: Any) -> None:
        err.print(f"{row.status:>9}  {row.file}  {row.detail or ''}", markup=False,
                  highlight=False)

    interrupted = None
    with reporting_errors():
        if ray_address is not None and jobs != 1:
            raise InvalidInputError("--jobs is for this machine; on --ray the cluster's "
                                    "resources decide how many scenarios run at once")
        shares = core_shares(jobs, share_cores)
        steps = plan_batch(paths, options)
        store = resolve_store()
        executor = None
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for --json (Ray prints too)
            if ray_address is not None:  # "": RAY_ADDRESS, else this machine's cluster
                from siteml.lifecycle.ray_batch import RayExecutor

                executor = RayExecutor(steps, store, options, ray_address)
            elif jobs != 1:
                from siteml.lifecycle.local_jobs import LocalJobs

                executor = LocalJobs(steps, options, shares)
            try:
                outcomes = run_batch(steps, store, options, report, executor)
            except BatchInterruptedError as exc:
                interrupted, outcomes = exc, exc.outcomes
    rows = [o.to_dict() for o in outcomes]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, BATCH_COLUMNS)
    if interrupted is not None:
        err.print(f"error: {interrupted}", markup=False, highlight=False)
        raise typer.Exit(interrupted.exit_code)
    if any(o.status not in DONE for o in outcomes):
        raise typer.Exit(1)
