"""The ``siteml`` Typer application and what every command shares: options, the console,
error reporting with the right exit code, JSON output, and checks of common options."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from siteml import __version__
from siteml.core.errors import InvalidInputError, ScenarioError, SitemlError
from siteml.core.naming import customer_of
from siteml.core.secrets import redact
from siteml.core.tasks import TASK_TYPES

if TYPE_CHECKING:
    from siteml.tracking.store import Store

app = typer.Typer(
    name="siteml",
    help="Site-aware training, quantization and benchmarking of YOLO detectors, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: import from labelling tools, profiles, DVC hashes, "
                       "synthetic data.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a scenario value: KEY.PATH=VALUE (VALUE is YAML). Repeatable.")]
SitesDirOption = Annotated[Path | None, typer.Option(
    "--sites-dir", help="Folder of <site-id>.yaml files (default: configs/sites found upward).")]
SiteOption = Annotated[str | None, typer.Option(help="Site path customer/region-plant/zone.")]
SiteArgument = Annotated[str, typer.Argument(help="Site path customer/region-plant/zone.")]
TaskOption = Annotated[str | None, typer.Option(help="Task type (ppe, fall, ...).")]
RequiredTaskOption = Annotated[str, typer.Option(help="Task type (ppe, fall, ...).")]

UNBOUNDED_WIDTH = 1000
"""Columns for output that is not a terminal (a file, a pipe, a CI log): wide enough that no
table cell is cut short; a terminal keeps its own width."""


def console(stderr: bool = False) -> Any:
    """A rich console; unbounded width when not a terminal (``COLUMNS`` still wins)."""
    from rich.console import Console

    found = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not found.is_terminal and "COLUMNS" not in os.environ:
        found.width = UNBOUNDED_WIDTH
    return found


def fail(exc: SitemlError) -> typer.Exit:
    """Print ``exc`` (every problem of a file, one per line) and return the exit to raise."""
    err = console(stderr=True)
    lines = [str(p) for p in exc.problems] if isinstance(exc, ScenarioError) else [str(exc)]
    for line in lines:
        err.print("[red]error:[/red] ", end="")
        err.print(redact(line), markup=False)
    return typer.Exit(exc.exit_code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def site_option(site: str | None) -> str | None:
    """Check a ``customer/region-plant/zone`` value; exit 2 with the reason if bad."""
    if site is None:
        return None
    from siteml.core.naming import customer_problem, slug_problem

    parts = site.strip("/").split("/")
    problems = ([customer_problem(parts[0]), *map(slug_problem, parts[1:])] if len(parts) == 3
                else ["needs 3 parts"])
    bad = next((p for p in problems if p), None)
    if bad:
        raise fail(InvalidInputError(f"--site {site!r}: expected customer/region-plant/zone "
                                     f"of lowercase slugs ({bad})"))
    return "/".join(parts)


def choice(option: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    """Check an option against its allowed values; exit 2 naming them if it is not one."""
    if value is not None and value not in allowed:
        raise fail(InvalidInputError(f"{option} {value!r}: use one of {', '.join(allowed)}"))
    return value


def task_option(task: str | None) -> str | None:
    """Check a ``--task`` value against the task types."""
    return choice("--task", task, TASK_TYPES)


def read_client(as_json: bool, empty: Any, site: str | None = None) -> tuple[Store, Any]:
    """The store and an MLflow client for a read-only command (a tracking server that does not
    answer fails fast), in the workspace of the site's customer if given; or exit 0 with
    ``empty`` when the embedded database does not exist yet (a read-only command must not
    create one)."""
    from siteml.tracking.store import check_reachable, resolve_store
    from siteml.tracking.workspaces import enter_customer

    try:
        store = resolve_store()
        check_reachable(store)
        if site is not None:
            enter_customer(store, customer_of(site))
    except SitemlError as exc:
        raise fail(exc) from None
    if not store.exists():
        if as_json:
            print_json(empty)
        else:
            typer.echo(f"no MLflow store yet at {store.display}", err=True)
        raise typer.Exit(0)
    from siteml.tracking.runs import open_client

    return store, open_client(store)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Print siteml errors, and MLflow's (a server's ``RestException`` included), as one clear
    message with the right exit code."""
    try:
        yield
    except SitemlError as exc:
        raise fail(exc) from None
    except Exception as exc:
        if not _is_mlflow_error(exc):
            raise
        from siteml.tracking.errors import access_error

        raise fail(access_error(exc) or SitemlError(f"MLflow: {exc}")) from None


def _is_mlflow_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``MlflowException`` or one of its subclasses; MLflow is imported
    only if it already is (a command that never touched it raised something else)."""
    import sys

    if "mlflow.exceptions" not in sys.modules:
        return False
    from siteml.tracking.errors import is_mlflow_error

    return is_mlflow_error(exc)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"siteml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
          ) -> None:
    """Site-aware training, quantization and benchmarking of YOLO detectors, tracked in MLflow."""
