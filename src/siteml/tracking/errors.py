"""Telling MLflow's errors apart from others, and saying a server's refusal in siteml's words,
for the CLI's error reporting."""

from __future__ import annotations

import os

from mlflow.exceptions import MlflowException

from siteml.core.errors import SitemlError
from siteml.tracking.store import credentials_of
from siteml.tracking.workspaces import ROLE_OF_ACTION, Customer

CREDENTIALS = "MLFLOW_TRACKING_USERNAME / _PASSWORD or MLFLOW_TRACKING_TOKEN"


class AccessDeniedError(SitemlError):
    """The server refused the user's credentials or the action (exit code 1)."""


def is_mlflow_error(exc: BaseException) -> bool:
    """An ``MlflowException``, including a tracking server's ``RestException``."""
    return isinstance(exc, MlflowException)


def access_error(exc: BaseException) -> AccessDeniedError | None:
    """A server's 401 or 403 as one line naming the user, the customer and the role it takes;
    None for any other error. MLflow does not retry either."""
    code = getattr(exc, "error_code", None)
    user = credentials_of(os.environ.get("MLFLOW_TRACKING_URI", ""))[0] or "(no user)"
    if code == "UNAUTHENTICATED":
        return AccessDeniedError(f"the tracking server refused the credentials of {user!r}: "
                                 f"check {CREDENTIALS}")
    if code != "PERMISSION_DENIED":
        return None
    role = ROLE_OF_ACTION[Customer.action]
    where = f"customer {Customer.name!r}" if Customer.name else "this server"
    verb = {"read": "read", "write": "write to", "manage": "manage"}[Customer.action]
    return AccessDeniedError(
        f"user {user!r} may not {verb} {where}: that takes the {role} role "
        f"(a manager grants it: siteml access grant {user} {role} {Customer.name or 'CUSTOMER'})")
