"""Commands that read and move the registry and the runs: ``models``, ``promote``, ``runs``,
``best``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from siteml.cli.app import (
    JsonOption,
    RequiredTaskOption,
    SiteArgument,
    SiteOption,
    TaskOption,
    app,
    choice,
    print_json,
    read_client,
    reporting_errors,
    site_option,
    task_option,
)
from siteml.cli.render import (
    HISTORY_COLUMNS,
    RUNS_COLUMNS,
    STALE_COLUMNS,
    print_model_tree,
    print_table,
)
from siteml.core import keys
from siteml.core.errors import InvalidInputError
from siteml.core.naming import customer_of
from siteml.scenario.types import EXPERIMENT_TYPES

RUN_TYPES = (*EXPERIMENT_TYPES, "compare")
RUN_STATES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


@app.command()
def models(site: SiteOption = None, task: TaskOption = None,
           history: Annotated[bool, typer.Option(
               "--history", help="Who moved which alias from which version to which, "
               "and when.")] = False,
           as_json: JsonOption = False) -> None:
    """Registered models as a tree: site, task, variants, versions with aliases, metrics, gate,
    worst class and parent; or, with --history, every alias move."""
    site, task = site_option(site), task_option(task)
    store, client = read_client(as_json, [], site)
    from siteml.tracking.model_listing import model_tree
    from siteml.tracking.promotion import promotion_history
    from siteml.tracking.workspaces import across_customers

    with reporting_errors():
        found = across_customers(store, lambda: (promotion_history if history else model_tree)(
            client, site, task))
    if as_json:
        print_json(found)
    elif history:
        print_table([{**move, "at": _when(move["at"])} for move in found], HISTORY_COLUMNS)
    elif not found:
        typer.echo("no registered models" + (f" for site {site}" if site else ""))
    else:
        print_model_tree(found)


def _when(stamp_ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(stamp_ms / 1000).isoformat(sep=" ", timespec="seconds")


@app.command()
def promote(
    model_ref: Annotated[str, typer.Argument(help="Model reference, e.g. "
                                             "customer/region-plant/zone/ppe/3 or ...@candidate.")],
    alias: Annotated[str, typer.Argument(help="Alias to set, e.g. champion.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Make a version champion although its gate refused it, never scored "
        "it, or it carries a warning; recorded on the version with your user name.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Point an alias (e.g. champion) at a registered model version; champion only for a
    version whose training gate passed, unless --force."""
    import getpass

    from siteml.core.naming import ALIAS_RE, registry_path
    from siteml.tracking.model_access import open_registry, parse_reference
    from siteml.tracking.promotion import promote as promote_version

    with reporting_errors():
        ref = parse_reference(model_ref)
        if not ALIAS_RE.fullmatch(alias):
            raise InvalidInputError(f"alias {alias!r}: use lowercase letters, digits, '_', '-'")
        _, client = open_registry(ref, "manage")
        moved = promote_version(client, ref, alias, getpass.getuser(), force)
    version = moved.version
    result = {"name": version.name, "path": registry_path(version.name),
              "version": int(version.version), "alias": alias, "previous": moved.previous,
              "forced_past": moved.forced_past}
    if as_json:
        print_json(result)
        return
    typer.echo(f"{result['path']}@{alias} -> version {result['version']}"
               + (f" (was {moved.previous})" if moved.previous else ""))
    if moved.forced_past:
        typer.echo(f"forced past its gate: {moved.forced_past}", err=True)


@app.command()
def runs(
    site: SiteOption = None,
    task: TaskOption = None,
    kind: Annotated[str | None, typer.Option(
        "--type", help=f"Only this run type: {', '.join(RUN_TYPES)}.")] = None,
    status: Annotated[str | None, typer.Option(
        help=f"Only runs in this state: {', '.join(RUN_STATES)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many runs.")] = 50,
    stale: Annotated[bool, typer.Option(
        "--stale", help="Only RUNNING runs whose process is gone: no heartbeat for --older-than "
        "seconds, or a process of this host that ended; with host and pid.")] = False,
    older_than: Annotated[float | None, typer.Option(
        min=1, help="Seconds without a heartbeat before a RUNNING run counts as stale "
        "(default SITEML_STALE_AFTER_S, 90).")] = None,
    reap: Annotated[bool, typer.Option(
        "--reap", help="Mark the stale runs KILLED, with the reason as a tag.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Runs of a site (or of every site), newest first, with status and key metrics; or, with
    --stale, the crashed ones (and --reap ends them KILLED)."""
    site, task = site_option(site), task_option(task)
    kind, status = choice("--type", kind, RUN_TYPES), choice("--status", status, RUN_STATES)
    store, client = read_client(as_json, [], site)
    if stale or reap:
        _stale_runs(store, client, site, older_than, reap, as_json)
        return
    from siteml.tracking.queries import site_runs
    from siteml.tracking.workspaces import across_customers

    with reporting_errors():
        rows = across_customers(store, lambda: site_runs(client, site, limit, task=task,
                                                          kind=kind, status=status))
        rows = sorted(rows, key=lambda row: row["start_time"], reverse=True)[:limit]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, RUNS_COLUMNS)


def _stale_runs(store: Any, client: Any, site: str | None, older_than: float | None,
                reap: bool, as_json: bool) -> None:
    from siteml.tracking.heartbeat import reap as reap_run
    from siteml.tracking.heartbeat import stale_after_s
    from siteml.tracking.queries import stale_runs
    from siteml.tracking.workspaces import Customer, across_customers

    def found() -> list[dict[str, Any]]:
        rows = []
        for run in stale_runs(client, site, older_than or stale_after_s()):
            if reap:
                Customer.name, Customer.action = customer_of(run.site), "write"
                reap_run(client, run)
            rows.append({**run.to_dict(), "reaped": reap})
        return rows

    with reporting_errors():
        rows = across_customers(store, found)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, STALE_COLUMNS)


@app.command()
def best(
    site: SiteArgument,
    task: RequiredTaskOption,
    metric: Annotated[str, typer.Option(help="Metric to maximise.")] = keys.VAL_MAP50_95,
    as_json: JsonOption = False,
) -> None:
    """The finished training run of a task at a site with the best metric, and its model."""
    site, task = site_option(site), task_option(task)
    _, client = read_client(as_json, None, site)
    from siteml.tracking.queries import best_run

    with reporting_errors():
        found = best_run(client, site, task, metric)
    if as_json:
        print_json(found)
    elif found is None:
        typer.echo(f"no finished {task} training run with {metric} at {site}")
    else:
        typer.echo(f"{found['run_name']}  {metric}={found['value']:.4g}  "
                   f"model {found['model_version'] or '-'}  (run {found['run_id']})")
