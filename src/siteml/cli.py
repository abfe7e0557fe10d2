"""The ``siteml`` command line: parses arguments, calls the factory and runner, prints."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from siteml import __version__
from siteml.errors import EXIT_INVALID_INPUT, InvalidInputError, ScenarioError, SitemlError
from siteml.scenario.naming import TASK_TYPES

app = typer.Typer(
    name="siteml",
    help="Site-aware training, quantization and benchmarking of YOLO detectors, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RUN_TYPES = ("train", "quant", "infer", "compare")
RUN_STATES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a scenario value: KEY.PATH=VALUE (VALUE is YAML). Repeatable.")]
SitesDirOption = Annotated[Path | None, typer.Option(
    "--sites-dir", help="Folder of <site-id>.yaml files (default: configs/sites found upward).")]


UNBOUNDED_WIDTH = 1000
"""Columns for output that is not a terminal (a file, a pipe, a CI log): wide enough that no
table cell is cut short; a terminal keeps its own width."""


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = UNBOUNDED_WIDTH
    return console


def _fail(exc: SitemlError) -> typer.Exit:
    console = _console(stderr=True)
    lines = [str(p) for p in exc.problems] if isinstance(exc, ScenarioError) else [str(exc)]
    for line in lines:
        console.print("[red]error:[/red] ", end="")
        console.print(line, markup=False)
    return typer.Exit(exc.exit_code)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _site_option(site: str | None) -> str | None:
    """Check a ``--site customer/region-plant/zone`` value; exit 2 with the reason if bad."""
    if site is None:
        return None
    from siteml.scenario.naming import slug_problem

    parts = site.strip("/").split("/")
    problems = [slug_problem(p) for p in parts] if len(parts) == 3 else ["needs 3 parts"]
    bad = next((p for p in problems if p), None)
    if bad:
        raise _fail(InvalidInputError(f"--site {site!r}: expected customer/region-plant/zone "
                                      f"of lowercase slugs ({bad})"))
    return "/".join(parts)


def _choice(option: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    """Check an option against its allowed values; exit 2 naming them if it is not one."""
    if value is not None and value not in allowed:
        raise _fail(InvalidInputError(f"{option} {value!r}: use one of {', '.join(allowed)}"))
    return value


def _read_client(as_json: bool, empty: Any) -> Any:
    """An MLflow client for a read-only command, or exit 0 with ``empty`` when the embedded
    database does not exist yet (a read-only command must not create one)."""
    from siteml.tracking.runs import open_client
    from siteml.tracking.store import resolve_store

    try:
        store = resolve_store()
    except SitemlError as exc:
        raise _fail(exc) from None
    if not store.exists():
        if as_json:
            _print_json(empty)
        else:
            typer.echo(f"no MLflow store yet at {store.display}", err=True)
        raise typer.Exit(0)
    return open_client(store)


@contextmanager
def _reporting_errors() -> Iterator[None]:
    """Print siteml errors (and MLflow's) as one clear message with the right exit code."""
    try:
        yield
    except SitemlError as exc:
        raise _fail(exc) from None
    except Exception as exc:
        if type(exc).__name__ != "MlflowException":
            raise
        raise _fail(SitemlError(f"MLflow: {exc}")) from None


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
    from siteml.scenario.runner import run_scenario

    with _reporting_errors():
        outcome = run_scenario(file, overrides or (), sites_dir=sites_dir, rerun=rerun,
                               skip_data_check=skip_data_check)
    if as_json:
        _print_json(outcome.to_dict())
        return
    console = _console()
    console.print(f"[green]{outcome.status}[/green] {outcome.experiment_name} / "
                  f"{outcome.run_name}  (run {outcome.run_id})")
    for key, value in sorted(outcome.metrics.items()):
        console.print(f"  {key:<28} {value:.4g}")
    if outcome.registered_model:
        from siteml.scenario.naming import registry_path

        console.print(f"registered {registry_path(outcome.registered_model)}/"
                      f"{outcome.model_version} @{outcome.alias}")


@app.command()
def models(
    site: Annotated[str | None, typer.Option(help="Site path customer/region-plant/zone.")] = None,
    task: Annotated[str | None, typer.Option(help="Task type (ppe, fall, ...).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Registered models as a tree: site, task, variants, versions with aliases and metrics."""
    site, task = _site_option(site), _choice("--task", task, TASK_TYPES)
    client = _read_client(as_json, [])
    from siteml.tracking.registry import model_tree

    with _reporting_errors():
        tree = model_tree(client, site, task)
    if as_json:
        _print_json(tree)
        return
    if not tree:
        typer.echo("no registered models" + (f" for site {site}" if site else ""))
        return
    _print_model_tree(tree)


def _print_model_tree(entries: list[dict[str, Any]]) -> None:
    from rich.tree import Tree

    root = Tree("registered models")
    sites: dict[str, Any] = {}
    tasks: dict[tuple[str, str], Any] = {}
    for entry in entries:
        site_node = sites.get(entry["site"]) or sites.setdefault(
            entry["site"], root.add(f"[bold]{entry['site']}[/bold]"))
        key = (entry["site"], entry["task"])
        task_node = tasks.get(key) or tasks.setdefault(key, site_node.add(entry["task"]))
        model_node = task_node.add(f"{entry['variant'] or 'base'}  [dim]{entry['name']}[/dim]")
        for version in entry["versions"]:
            aliases = " ".join(f"[cyan]@{a}[/cyan]" for a in version["aliases"])
            model_node.add(f"v{version['version']} {aliases} "
                           f"{_headline(version['metrics'])}".rstrip())
    _console().print(root)


HEADLINE_FORMATS: dict[str, Callable[[float], str]] = {
    "val/map50": "mAP50 {:.3f}".format, "val/map50_95": "mAP50-95 {:.3f}".format,
    "variant/map50_95": "mAP50-95 {:.3f}".format,
    "delta/map50_95": lambda delta: f"({delta * 100:+.2f} pt)",
    "source/map50_95": "vs source {:.3f}".format,
    "speedup": "{:.2f}x vs PyTorch".format, "b1/latency_p50_ms": "p50 {:.2f} ms".format,
    "b1/fps": "{:.0f} FPS".format, "accuracy/map50_95": "mAP50-95 {:.3f}".format,
    "b1/speedup_vs_baseline": "{:.2f}x vs baseline".format}


def _headline(metrics: dict[str, str]) -> str:
    """A version's headline metrics, e.g.
    ``mAP50-95 0.730  (-0.10 pt)  vs source 0.731  4.85x vs PyTorch``."""
    shown = [show(float(metrics[k])) for k, show in HEADLINE_FORMATS.items() if k in metrics]
    shown += [f"{k}={v}" for k, v in sorted(metrics.items()) if k not in HEADLINE_FORMATS]
    return "  ".join(shown)


@app.command()
def promote(
    model_ref: Annotated[str, typer.Argument(help="Model reference, e.g. "
                                             "customer/region-plant/zone/ppe/3 or ...@candidate.")],
    alias: Annotated[str, typer.Argument(help="Alias to set, e.g. champion.")],
    as_json: JsonOption = False,
) -> None:
    """Point an alias (e.g. champion) at a registered model version."""
    from siteml.scenario.naming import ALIAS_RE, ModelRef, registry_path

    try:
        ref = ModelRef.parse(model_ref)
    except ValueError as exc:
        raise _fail(InvalidInputError(f"model reference: {exc}")) from None
    if not ALIAS_RE.fullmatch(alias):
        raise _fail(InvalidInputError(f"alias {alias!r}: use lowercase letters, digits, '_', '-'"))
    from siteml.tracking.registry import ModelNotFoundError
    from siteml.tracking.registry import promote as promote_version
    from siteml.tracking.runs import open_client
    from siteml.tracking.store import resolve_store

    with _reporting_errors():
        store = resolve_store()
        if not store.exists():
            raise ModelNotFoundError(f"no registered models yet in {store.display}")
        version = promote_version(open_client(store), ref, alias)
    result = {"name": version.name, "path": registry_path(version.name),
              "version": int(version.version), "alias": alias}
    if as_json:
        _print_json(result)
    else:
        typer.echo(f"{result['path']}@{alias} -> version {result['version']}")


@app.command()
def runs(
    site: Annotated[str | None, typer.Option(help="Site path customer/region-plant/zone.")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task type (ppe, fall, ...).")] = None,
    kind: Annotated[str | None, typer.Option(
        "--type", help=f"Only this run type: {', '.join(RUN_TYPES)}.")] = None,
    status: Annotated[str | None, typer.Option(
        help=f"Only runs in this state: {', '.join(RUN_STATES)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many runs.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Runs of a site (or of every site), newest first, with status and key metrics."""
    site, task = _site_option(site), _choice("--task", task, TASK_TYPES)
    kind, status = _choice("--type", kind, RUN_TYPES), _choice("--status", status, RUN_STATES)
    client = _read_client(as_json, [])
    from siteml.tracking.queries import site_runs

    with _reporting_errors():
        rows = site_runs(client, site, limit, task=task, kind=kind, status=status)
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    table = Table("site", "run", "type", "status", "key metrics", "source model",
                  "model version", box=None)
    for row in rows:
        metrics = "  ".join(f"{k}={v:.4g}" for k, v in sorted(row["metrics"].items()))
        table.add_row(row["site"], row["run_name"], row["type"], row["status"], metrics,
                      row["source_model"] or "", row["model_version"] or "")
    _console().print(table)


@app.command()
def best(
    site: Annotated[str, typer.Argument(help="Site path customer/region-plant/zone.")],
    task: Annotated[str, typer.Option(help="Task type (ppe, fall, ...).")],
    metric: Annotated[str, typer.Option(help="Metric to maximise.")] = "val/map50_95",
    as_json: JsonOption = False,
) -> None:
    """The finished training run of a task at a site with the best metric, and its model."""
    site, task = _site_option(site), _choice("--task", task, TASK_TYPES)
    client = _read_client(as_json, None)
    from siteml.tracking.queries import best_run

    with _reporting_errors():
        found = best_run(client, site, task, metric)
    if as_json:
        _print_json(found)
    elif found is None:
        typer.echo(f"no finished {task} training run with {metric} at {site}")
    else:
        typer.echo(f"{found['run_name']}  {metric}={found['value']:.4g}  "
                   f"model {found['model_version'] or '-'}  (run {found['run_id']})")


@app.command()
def compare(
    site: Annotated[str, typer.Argument(help="Site path customer/region-plant/zone.")],
    task: Annotated[str, typer.Option(help="Task type (ppe, fall, ...).")],
    as_json: JsonOption = False,
    as_md: Annotated[bool, typer.Option("--md", help="Print a Markdown table.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    plot: Annotated[Path | None, typer.Option(
        help="Write the latency / mAP Pareto plot here (PNG) and log it to MLflow.")] = None,
) -> None:
    """Every variant of a task at a site with its latest benchmark per device and host, side by
    side (speedups and the Pareto front are taken within one device of one host)."""
    if as_json + as_md + as_csv > 1:
        raise _fail(InvalidInputError("choose one of --json, --md, --csv"))
    site, task = _site_option(site), _choice("--task", task, TASK_TYPES)
    client = _read_client(as_json, [])
    from siteml.tables import to_csv, to_markdown
    from siteml.tracking.compare import COLUMNS, compare_rows, log_comparison

    with _reporting_errors():
        rows = compare_rows(client, site, task)
        if plot is not None and rows:
            from siteml.pareto import plot_pareto

            plot_pareto(rows, plot, f"{site} / {task}")
            log_comparison(client, site, task, plot, to_csv(rows, COLUMNS))
    if as_json:
        _print_json(rows)
    elif as_md or as_csv:
        typer.echo((to_markdown if as_md else to_csv)(rows, COLUMNS), nl=False)
    elif not rows:
        typer.echo(f"no benchmarked {task} models at {site}: run an infer scenario first")
    else:
        from rich.table import Table

        from siteml.tables import cell

        table = Table(*COMPARE_HEADERS, box=None)
        table.columns[0].no_wrap = True
        for row in rows:
            delta = row["delta_map50_95"]
            shown = {**row, "delta_map50_95": None if delta is None else f"{delta * 100:+.2f}",
                     "speedup": None if row["speedup"] is None else f"{row['speedup']:.2f}x",
                     "speedup_paired": "yes" if row["speedup_paired"] else "",
                     "pareto": "yes" if row["pareto"] else "",
                     "steady": {True: "yes", False: "NO"}.get(row["steady"])}
            table.add_row(*(cell(shown[c]) for c in COLUMNS[:-1]))
        console = _console()
        console.print(table)
        if any(row["steady"] is False for row in rows):
            console.print("steady NO: the host changed speed during that benchmark (see its "
                          "latency_drift); repeat it before trusting its latency")


COMPARE_HEADERS = ("variant", "v", "device", "host", "batch", "MB", "mAP50-95", "Δ pt",
                   "p50 ms", "p95 ms", "FPS", "speedup", "paired", "Pareto", "steady")


@app.command()
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on siteml's store (the embedded database and its artifacts)."""
    from siteml.tracking.store import resolve_store, ui_command

    with _reporting_errors():
        store = resolve_store()
    if store.is_server:
        typer.echo(f"the store is the tracking server {store.display}: open it in a browser")
        return
    command = ui_command(store, host, port)
    typer.echo(f"MLflow UI on http://{host}:{port} (store {store.display}); Ctrl-C stops it",
               err=True)
    os.execvp(command[0], command)


data_app = typer.Typer(help="Dataset folders: DVC hashes and synthetic site data.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("hash")
def data_hash(
    folder: Annotated[Path, typer.Argument(help="Dataset folder.")],
    write: Annotated[bool, typer.Option(help="Also write FOLDER.dvc as `dvc add` would.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the hash `dvc add FOLDER` records (md5 with .dir), and check FOLDER.dvc if present."""
    from siteml.data.dvc_hash import dir_hash, dvc_file, list_files, read_dvc_file, write_dvc_file
    from siteml.progress import progress_bar

    if not folder.is_dir():
        raise _fail(InvalidInputError(f"{folder}: not a folder"))
    files = list_files(folder)
    with progress_bar(f"hashing {folder.name}", len(files)) as advance:
        found = dir_hash(folder, files, advance)
    recorded_file = dvc_file(folder)
    recorded = read_dvc_file(recorded_file) if recorded_file.is_file() else None
    if write:
        write_dvc_file(folder, found)
    if as_json:
        _print_json({"md5": found.md5, "size": found.size, "nfiles": found.nfiles,
                     "dvc_file": str(recorded_file) if recorded else None, "recorded": recorded})
    else:
        typer.echo(found.md5)
    if recorded and recorded != found.md5 and not write:
        typer.echo(f"{recorded_file} records {recorded}: the folder changed since it was "
                   "written", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT)


@data_app.command("synth")
def data_synth(
    folder: Annotated[Path, typer.Argument(help="Folder to create.")],
    task: Annotated[str, typer.Option(help="Task type: picks the classes and their look.")] = "ppe",
    classes: Annotated[str | None, typer.Option(
        help="Comma-separated class names (default: the task's).")] = None,
    train: Annotated[int, typer.Option(min=1, help="Training images.")] = 200,
    val: Annotated[int, typer.Option(min=1, help="Validation images.")] = 50,
    imgsz: Annotated[int, typer.Option(min=32, max=4096, help="Image size in pixels.")] = 320,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same dataset.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Generate a deterministic synthetic detection dataset (YOLO layout) and FOLDER.dvc."""
    from siteml.data.synth import TASK_CLASSES, synthesize
    from siteml.progress import progress_bar

    if task not in TASK_CLASSES:
        raise _fail(InvalidInputError(f"unknown task {task!r}; valid: {', '.join(TASK_CLASSES)}"))
    names = [c.strip() for c in classes.split(",")] if classes else list(TASK_CLASSES[task])
    try:
        with progress_bar(f"generating {folder.name}", train + val) as advance:
            found = synthesize(folder, names, {"train": train, "val": val}, imgsz, seed,
                               progress=lambda _: advance(""))
    except FileExistsError as exc:
        raise _fail(InvalidInputError(str(exc))) from None
    result = {"path": str(folder), "classes": names, "images": train + val, "md5": found.md5,
              "nfiles": found.nfiles, "size": found.size}
    if as_json:
        _print_json(result)
    else:
        typer.echo(f"{folder}: {train} train + {val} val images of {', '.join(names)}; "
                   f"dvc hash {found.md5}")


@app.command()
def demo(
    folder: Annotated[Path, typer.Argument(help="Empty or new folder for the demo.")] = Path(
        "siteml-demo"),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 15,
    as_json: JsonOption = False,
) -> None:
    """Run the whole lifecycle for one demo site on an embedded store in FOLDER."""
    from siteml.demo import TASK, run_demo

    with _reporting_errors():
        steps = run_demo(folder, epochs)
    if as_json:
        _print_json([{"scenario": str(s.scenario), **s.outcome.to_dict()} for s in steps])
        return
    from rich.table import Table

    table = Table("run", "status", "result", box=None)
    table.add_column("registered", overflow="fold")
    for step in steps:
        o = step.outcome
        model = f"{o.registered_model}/{o.model_version} @{o.alias}" if o.registered_model else "-"
        headline = {k: v for k, v in o.metrics.items() if k in HEADLINE_FORMATS}
        table.add_row(o.run_name, o.status, _headline(headline), model)
    console = _console()
    console.print(table)
    console.print(f"compare the variants: cd {folder} && siteml compare "
                  f"{steps[0].outcome.experiment_name} --task {TASK} --plot pareto.png")
    console.print(f"browse it: cd {folder} && siteml ui")


def main() -> None:
    """Console-script entry point."""
    app()
