"""The ``siteml`` command line: parses arguments, calls the factory and runner, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from siteml import __version__
from siteml.errors import EXIT_INVALID_INPUT, ScenarioError, SitemlError

app = typer.Typer(
    name="siteml",
    help="Site-aware training, quantization and benchmarking of YOLO detectors, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a scenario value: KEY.PATH=VALUE (VALUE is YAML). Repeatable.")]
SitesDirOption = Annotated[Path | None, typer.Option(
    "--sites-dir", help="Folder of <site-id>.yaml files (default: configs/sites found upward).")]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _fail(exc: SitemlError) -> typer.Exit:
    _console(stderr=True).print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    return typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"siteml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
          ) -> None:
    """Site-aware training, quantization and benchmarking of YOLO detectors, tracked in MLflow."""


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
        raise _fail(exc) from None
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
    _print_plan(result)


def _print_plan(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"[bold]experiment[/bold]        {result['experiment_name']}")
    console.print(f"[bold]run[/bold]               {result['run_name']}")
    console.print(f"[bold]registered model[/bold]  {result['registered_model_name'] or '-'}")
    for title in ("tags", "params"):
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column(style="cyan", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in result[title].items():
            table.add_row(key, value)
        console.print(table)


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


def main() -> None:
    """Console-script entry point."""
    app()
