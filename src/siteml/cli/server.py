"""``siteml server``: start the team's tracking server, and check what a client sees of one."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from siteml.cli.app import JsonOption, app, fail, print_json
from siteml.core.errors import InvalidInputError

server_app = typer.Typer(help="The team's MLflow tracking server.", no_args_is_help=True)
app.add_typer(server_app, name="server")


@server_app.command()
def check(
    uri: Annotated[str | None, typer.Argument(
        help="Server URL (default: MLFLOW_TRACKING_URI).")] = None,
    as_json: JsonOption = False,
) -> None:
    """What a client sees of a tracking server: reachable, MLflow version, login required,
    credentials accepted, workspaces on. Exit 1 when it does not answer."""
    import os

    from siteml.tracking.server_check import server_facts

    target = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not target.startswith(("http://", "https://")):
        raise fail(InvalidInputError("give the server's http(s):// URL (or set "
                                     "MLFLOW_TRACKING_URI to it)"))
    facts = server_facts(target)
    if as_json:
        print_json(facts)
    else:
        for key, value in facts.items():
            typer.echo(f"{key:21s} {value}")
    if not facts["reachable"]:
        raise typer.Exit(1)


@server_app.command()
def start(
    backend_store_uri: Annotated[str, typer.Option(
        help="Runs and models: postgresql://… in production, sqlite:///… for a trial.")],
    artifacts_destination: Annotated[str, typer.Option(
        help="Where the server keeps the artifacts it serves: a folder or s3://… etc.")],
    state_dir: Annotated[Path, typer.Option(
        help="siteml's files for the server (auth configuration, Flask secret, the auth "
             "database unless --auth-db).")] = Path("siteml-server"),
    auth_db: Annotated[str | None, typer.Option(
        help="MLflow's users and roles (default: sqlite in --state-dir).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes.")] = 2,
    as_json: JsonOption = False,
) -> None:
    """Run MLflow's tracking server for a team, in the foreground: workspaces on (one per
    customer), basic-auth on with no access for anyone without a role, artifacts proxied.
    The admin password comes from MLFLOW_AUTH_ADMIN_PASSWORD or a prompt (first start only).
    Prints the URL once it answers; SIGTERM or Ctrl-C stops it."""
    from siteml.cli.serving import answers, serve
    from siteml.tracking.team_server import TeamServer, admin_password_problem

    server = TeamServer(backend_store_uri, artifacts_destination, state_dir, host, port,
                        workers, auth_db)
    password = None
    try:
        server.check()
        if server.needs_admin_password():
            password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD") or _prompt_password()
            if problem := admin_password_problem(password):
                raise InvalidInputError(problem)
        if answers(host, port):
            raise InvalidInputError(f"--port {port}: something already listens on {server.url}")
        env = server.environment(password)
    except InvalidInputError as exc:
        raise fail(exc) from None
    typer.echo(f"starting the team server on {server.url} (state in {state_dir}); "
               "SIGTERM or Ctrl-C stops it", err=True)
    code = serve(server.command(), server.url, lambda: _ready(server.url, as_json), env)
    raise typer.Exit(code if code >= 0 else 128 - code)


def _prompt_password() -> str | None:
    """The admin password typed twice, when someone is at a terminal."""
    if not sys.stdin.isatty():
        return None
    return typer.prompt("admin password (first start)", hide_input=True,
                        confirmation_prompt=True, default="", show_default=False)


def _ready(url: str, as_json: bool) -> None:
    if as_json:
        print_json({"url": url, "pid": os.getpid()})
    else:
        typer.echo(url)
    sys.stdout.flush()


@server_app.command()
def migrate(
    store_uri: Annotated[str, typer.Argument(
        help="The store's database (postgresql://…, sqlite:///…), its server stopped.")],
    apply: Annotated[bool, typer.Option(
        "--apply", help="Move (after a backup); without it, only show what would move.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Move a store from before workspaces into one workspace per customer (by the
    site.customer tag of experiments and registered models), with MLflow's own move; a dry run
    unless --apply. Grant roles on each customer afterwards (siteml access grant)."""
    from siteml.cli.app import reporting_errors
    from siteml.tracking.migrate import move_customers

    with reporting_errors():
        moves = move_customers(store_uri, apply)
    if as_json:
        print_json({"applied": apply, "customers": [m.to_dict() for m in moves]})
        return
    verb = "moved" if apply else "would move"
    for move in moves:
        made = " (new workspace)" if move.created_workspace else ""
        typer.echo(f"{move.customer}{made}: {verb} {len(move.experiments)} experiment(s), "
                   f"{len(move.registered_models)} registered model(s)")
    if not moves:
        typer.echo("nothing to move: no experiment or registered model outside a workspace "
                   "carries a site.customer tag")
    elif not apply:
        typer.echo("dry run: nothing changed; back the database up, stop the server, then "
                   "run again with --apply")
