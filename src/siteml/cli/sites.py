"""Commands about one site's models side by side and the whole lifecycle: ``compare``, ``ui``,
``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from siteml.cli.app import (
    JsonOption,
    RequiredTaskOption,
    SiteArgument,
    SiteOption,
    app,
    console,
    fail,
    print_json,
    read_client,
    reporting_errors,
    site_option,
    task_option,
)
from siteml.cli.render import COMPARE_COLUMNS, COMPARE_EXPORT, headline, print_table
from siteml.cli.serving import answers, serve
from siteml.core.errors import InvalidInputError
from siteml.core.naming import customer_of

if TYPE_CHECKING:
    from siteml.tracking.store import Store


@app.command()
def compare(
    site: SiteArgument,
    task: RequiredTaskOption,
    as_json: JsonOption = False,
    as_md: Annotated[bool, typer.Option("--md", help="Print a Markdown table.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    plot: Annotated[Path | None, typer.Option(
        help="Write the latency / mAP Pareto plot here (PNG) and log it to MLflow.")] = None,
) -> None:
    """Every variant of a task at a site with its latest benchmark per device and host, side by
    side (speedups and the Pareto front are taken within one device of one host)."""
    if as_json + as_md + as_csv > 1:
        raise fail(InvalidInputError("choose one of --json, --md, --csv"))
    site, task = site_option(site), task_option(task)
    _, client = read_client(as_json, [], site)
    from siteml.core.tables import to_csv, to_markdown
    from siteml.tracking.compare import compare_rows, log_comparison

    export = [column.key for column in COMPARE_EXPORT]
    with reporting_errors():
        rows = compare_rows(client, site, task)
        if plot is not None and rows:
            from siteml.core.pareto import plot_pareto

            plot_pareto(rows, plot, f"{site} / {task}")
            log_comparison(client, site, task, plot, to_csv(rows, export))
    if as_json:
        print_json(rows)
    elif as_md or as_csv:
        typer.echo((to_markdown if as_md else to_csv)(rows, export), nl=False)
    elif not rows:
        typer.echo(f"no benchmarked {task} models at {site}: run an infer scenario first")
    else:
        print_table(rows, COMPARE_COLUMNS)
        if any(row["steady"] is False for row in rows):
            console().print("steady NO: the host changed speed during that benchmark (see its "
                            "latency_drift); repeat it before trusting its latency")
        for row in rows:
            if row["warning"]:
                console().print(f"[bold red]WARNING[/bold red] {row['variant']} "
                                f"v{row['version']}: {row['warning']}")


@app.command()
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    site: SiteOption = None,
    open_browser: Annotated[bool, typer.Option(
        "--open", help="Open the site's runs (else the experiments) in a browser.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start the MLflow UI on siteml's store (the embedded database and its artifacts) and print
    links into its machine-learning view: the experiments, the model registry and, with --site,
    that site's runs. For a tracking server, print the links on it instead."""
    from siteml.tracking.store import (
        browser_url,
        check_reachable,
        resolve_store,
        ui_command,
        ui_links,
    )
    from siteml.tracking.workspaces import Customer

    site = site_option(site)
    with reporting_errors():
        store = resolve_store()
        if store.is_server:
            check_reachable(store)
        experiment_id = _experiment_of(store, site) if site else None
    if store.is_server:
        typer.echo(f"the store is the tracking server {store.display}", err=True)
        url = browser_url(store.tracking_uri)
        links = ui_links(url, experiment_id, Customer.workspace)
        _show_links(url, links, site, as_json, open_browser)
        return
    browse = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # a browser needs an address
    url = f"http://[{browse}]:{port}" if ":" in browse else f"http://{browse}:{port}"
    if answers(browse, port):
        raise fail(InvalidInputError(f"--port {port}: something already listens on {url}"))
    typer.echo(f"starting the MLflow UI on {url} (store {store.display}); Ctrl-C stops it",
               err=True)
    code = serve(ui_command(store, host, port), url, lambda: _show_links(
        url, ui_links(url, experiment_id), site, as_json, open_browser))
    raise typer.Exit(code if code >= 0 else 128 - code)


def _experiment_of(store: Store, site: str) -> str:
    """The experiment id of a site; looking must not create the embedded database."""
    from siteml.tracking.runs import find_experiment_id, open_client
    from siteml.tracking.workspaces import enter_customer

    enter_customer(store, customer_of(site))
    found = find_experiment_id(open_client(store), site) if store.exists() else None
    if found is None:
        raise InvalidInputError(f"--site {site!r}: no such site in the store {store.display}")
    return found


def _show_links(url: str, links: dict[str, str], site: str | None, as_json: bool,
                open_browser: bool) -> None:
    if as_json:
        print_json({"url": url, "links": links})
    else:
        labels = {"experiments": "experiments", "runs": f"{site} runs",
                  "models": "model registry"}
        width = max(len(labels[k]) for k in links)
        for key, link in links.items():
            typer.echo(f"{labels[key]:<{width}}  {link}")
    if open_browser:
        import webbrowser

        if not webbrowser.open(links.get("runs", links["experiments"])):
            typer.echo("no browser found: open a link above", err=True)


@app.command()
def demo(
    folder: Annotated[Path, typer.Argument(help="Empty or new folder for the demo.")] = Path(
        "siteml-demo"),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 15,
    train_images: Annotated[int, typer.Option(min=8, help="Synthetic training images.")] = 200,
    val_images: Annotated[int, typer.Option(min=4, help="Synthetic val images.")] = 50,
    imgsz: Annotated[int, typer.Option(min=32, help="Image and input size, a multiple of 32.")
                     ] = 320,
    iterations: Annotated[int, typer.Option(min=1, help="Timed iterations per benchmark.")
                          ] = 300,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed iterations first.")] = 20,
    cameras: Annotated[int, typer.Option(min=1, max=256, help=(
        "The most cameras the INT8 benchmark tries at 10 FPS each."))] = 32,
    stream_seconds: Annotated[float, typer.Option(min=0.1, help=(
        "Seconds each camera count is measured."))] = 2.0,
    as_json: JsonOption = False,
) -> None:
    """Run the whole lifecycle for one demo site on an embedded store in FOLDER (smaller sizes
    make a quick look; the README's figures are measured at the defaults)."""
    from siteml.cli.render import HEADLINE_FORMATS
    from siteml.lifecycle.demo import TASK, DemoSize, run_demo

    if imgsz % 32:
        raise fail(InvalidInputError(f"--imgsz {imgsz}: not a multiple of 32"))
    with reporting_errors():
        steps = run_demo(folder, DemoSize(epochs, train_images, val_images, imgsz, iterations,
                                          warmup, cameras, stream_seconds))
    if as_json:
        print_json([{"scenario": str(s.scenario), **s.outcome.to_dict()} for s in steps])
        return
    from rich.table import Table

    table = Table("run", "status", "result", box=None)
    table.add_column("registered", overflow="fold")
    for step in steps:
        o = step.outcome
        shown = {k: v for k, v in o.metrics.items() if k in HEADLINE_FORMATS}
        table.add_row(o.run_name, o.status, headline(shown), o.registered_path or "-")
    out = console()
    out.print(table)
    out.print(f"compare the variants: cd {folder} && siteml compare "
              f"{steps[0].outcome.experiment_name} --task {TASK} --plot pareto.png")
    out.print(f"browse it: cd {folder} && siteml ui")
