"""``siteml access``: users, and who holds which role on which customer, on a team server."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from siteml.cli.app import JsonOption, app, fail, print_json, reporting_errors
from siteml.core.errors import InvalidInputError

access_app = typer.Typer(help="Users and their roles on customers (a team server's admin or "
                         "a customer's manager).", no_args_is_help=True)
app.add_typer(access_app, name="access")

PASSWORD_VARIABLE = "SITEML_NEW_USER_PASSWORD"
UserArgument = Annotated[str, typer.Argument(help="User name.")]
RoleArgument = Annotated[str, typer.Argument(
    help="viewer (read runs, models, artifacts), editor (also run scenarios and register "
         "versions) or manager (also promote and manage access).")]
CustomerArgument = Annotated[str, typer.Argument(help="Customer slug (its workspace).")]


def _access(customer: str | None = None):
    """siteml's access client on the team server in MLFLOW_TRACKING_URI, managing
    ``customer`` (or every customer)."""
    from siteml.tracking.access import Access
    from siteml.tracking.store import check_reachable, resolve_store
    from siteml.tracking.workspaces import Customer, workspaces_on

    Customer.name, Customer.action = customer, "manage"
    store = resolve_store()
    check_reachable(store)
    if not store.is_server or not workspaces_on(store.tracking_uri):
        raise InvalidInputError(f"{store.display} is not a team server (workspaces and auth "
                                "on): set MLFLOW_TRACKING_URI to one (siteml server start)")
    return Access(store.tracking_uri)


def _checked(role: str, customer: str) -> None:
    from siteml.core.naming import customer_problem
    from siteml.tracking.access import ROLES

    if role not in ROLES:
        raise fail(InvalidInputError(f"role {role!r}: use one of {', '.join(ROLES)}"))
    if problem := customer_problem(customer):
        raise fail(InvalidInputError(f"customer {customer!r} {problem}"))


@access_app.command("add-user")
def add_user(
    user: UserArgument,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin.")] = False,
) -> None:
    """Add a user. The password comes from stdin (--password-stdin), else
    SITEML_NEW_USER_PASSWORD, else a prompt; never from the command line."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = os.environ.get(PASSWORD_VARIABLE) or _prompt()
    if not password or len(password) < 12:
        raise fail(InvalidInputError(f"the password for {user!r} must have at least 12 "
                                     f"characters (from --password-stdin, {PASSWORD_VARIABLE} "
                                     "or the prompt)"))
    with reporting_errors():
        _access().add_user(user, password)
    typer.echo(f"added user {user}")


def _prompt() -> str | None:
    if not sys.stdin.isatty():
        return None
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@access_app.command()
def grant(user: UserArgument, role: RoleArgument, customer: CustomerArgument,
          as_json: JsonOption = False) -> None:
    """Give USER the ROLE on CUSTOMER (whose workspace is made if it has none)."""
    _change("grant", user, role, customer, as_json)


@access_app.command()
def revoke(user: UserArgument, role: RoleArgument, customer: CustomerArgument,
           as_json: JsonOption = False) -> None:
    """Take the ROLE on CUSTOMER from USER; it takes effect on the user's next call."""
    _change("revoke", user, role, customer, as_json)


def _change(action: str, user: str, role: str, customer: str, as_json: bool) -> None:
    """Grant or revoke, and say what changed."""
    _checked(role, customer)
    with reporting_errors():
        access = _access(customer)
        changed = (access.grant if action == "grant" else access.revoke)(user, role, customer)
    outcome = {("grant", True): "granted", ("grant", False): "already held",
               ("revoke", True): "revoked", ("revoke", False): "not held"}[action, changed]
    if as_json:
        print_json({"user": user, "role": role, "customer": customer, "outcome": outcome})
    else:
        typer.echo(f"{user} {role} of {customer}: {outcome}")


@access_app.command("list")
def list_grants(
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Who holds which role on which customer."""
    with reporting_errors():
        rows = [g.to_dict() for g in _access().grants()
                if customer in (None, g.customer) and user in (None, g.user)]
    if as_json:
        print_json(rows)
    elif not rows:
        typer.echo("no roles held")
    else:
        from siteml.cli.render import ACCESS_COLUMNS, print_table

        print_table(rows, ACCESS_COLUMNS)
