"""``siteml server``: the team's tracking server (``check`` now; ``start`` to come)."""

from __future__ import annotations

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
