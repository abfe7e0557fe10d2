"""Commands on scenario files: ``validate``, ``plan``, ``schema`` and ``run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

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
from siteml.cli.render import print_plan
from siteml.core.errors import EXIT_INVALID_INPUT, ScenarioError


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


@app.command()
def plan(
    file: Annotated[Path, typer.Argument(help="Scenario file.")],
    overrides: SetOption = None,
    sites_dir: SitesDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the MLflow names, tags and params a scenario would produce, without running it."""
    from siteml.scenario.factory import load_scenario

    try:
        scenario = load_scenario(file, overrides or (), sites_dir)
    except ScenarioError as exc:
        raise fail(exc) from None
    result = {
        "experiment_name": scenario.get_experiment_name(),
        "run_name": scenario.get_run_name(),
        "registered_model_name": scenario.output_model_name(),
        "tags": scenario.to_all_tags(),
        "params": scenario.to_all_params(),
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    print_plan(result)


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
    file: Annotated[Path, typer.Argument(help="Scenario file.")],
    overrides: SetOption = None,
    sites_dir: SitesDirOption = None,
    rerun: Annotated[bool, typer.Option(
        help="Run again although a FINISHED run of this name exists (tags the attempt).")] = False,
    skip_data_check: Annotated[bool, typer.Option(
        help="Skip the dataset check (for huge datasets); recorded as a run tag.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate a scenario, run its pipeline and record everything in MLflow.

    Exit codes: 0 finished, 1 pipeline failure or tracking unavailable, 2 invalid input,
    130/143 interrupted.
    """
    from siteml.lifecycle.run import run_scenario

    with reporting_errors():
        outcome = run_scenario(file, overrides or (), sites_dir=sites_dir, rerun=rerun,
                               skip_data_check=skip_data_check)
    if as_json:
        print_json(outcome.to_dict())
        return
    out = console()
    out.print(f"[green]{outcome.status}[/green] {outcome.experiment_name} / "
              f"{outcome.run_name}  (run {outcome.run_id})")
    for key, value in sorted(outcome.metrics.items()):
        out.print(f"  {key:<28} {value:.4g}")
    if outcome.registered_path:
        out.print(f"registered {outcome.registered_path}")
