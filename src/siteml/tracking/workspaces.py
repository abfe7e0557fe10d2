"""Workspace = customer: on a tracking server with workspaces on, everything siteml writes or
reads for a site happens in the workspace named by the site's customer.

Names do not change between modes: the experiment is still the site path, the registered model
still its dotted name; the workspace is chosen beside them (MLflow's ``set_workspace``, sent as
the ``X-MLFLOW-WORKSPACE`` header). An embedded store and a server without workspaces keep one
namespace, as before. Whether a server has workspaces is read once from its public
``/api/3.0/mlflow/server-info``.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from siteml.core.errors import InvalidInputError
from siteml.tracking.store import HEALTH_TIMEOUT_S, Store, server_request

T = TypeVar("T")
SERVER_INFO = "/api/3.0/mlflow/server-info"
ROLE_OF_ACTION = {"read": "viewer", "write": "editor", "manage": "manager"}
"""The siteml role an action on a customer's data needs (``siteml access``)."""


@functools.cache
def server_info(uri: str) -> dict[str, Any]:
    """What the server at ``uri`` says of itself without a login (``workspaces_enabled``,
    ``store_type``); empty when it cannot say. Asked once per process."""
    try:
        with urllib.request.urlopen(server_request(uri, SERVER_INFO, credentials=False),
                                    timeout=HEALTH_TIMEOUT_S) as response:
            return json.loads(response.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return {}


def workspaces_on(uri: str) -> bool:
    """Whether the tracking server at ``uri`` has workspaces on (False when it cannot say)."""
    return bool(server_info(uri).get("workspaces_enabled"))


class Customer:
    """The customer this process works for, what it does there (both named in a refusal:
    ``access_error``), and the workspace siteml itself chose (MLflow keeps it in
    ``MLFLOW_WORKSPACE``, which a user may also set)."""

    name: str | None = None
    action: str = "read"
    workspace: str | None = None


def _asked() -> str:
    """The workspace the user asked for in ``MLFLOW_WORKSPACE`` (not one siteml chose)."""
    asked = os.environ.get("MLFLOW_WORKSPACE", "").strip()
    return "" if asked == Customer.workspace else asked


def _choose(workspace: str | None) -> None:
    import mlflow

    mlflow.set_workspace(workspace)
    Customer.workspace = workspace


def enter_customer(store: Store, customer: str, action: str = "read") -> str | None:
    """Send every MLflow call of this process to ``customer``'s workspace, when the store has
    workspaces; the workspace, or None.

    Raises:
        InvalidInputError: ``MLFLOW_WORKSPACE`` names a workspace that the store does not have
            or that is not the customer's.
    """
    Customer.name, Customer.action = customer, action
    asked = _asked()
    if not (store.is_server and workspaces_on(store.tracking_uri)):
        if asked:
            raise InvalidInputError(f"MLFLOW_WORKSPACE={asked}: the store {store.display} has "
                                    "no workspaces (unset it)")
        if Customer.workspace:
            _choose(None)
        return None
    if asked and asked != customer:
        raise InvalidInputError(f"MLFLOW_WORKSPACE={asked}, but this is customer {customer!r}, "
                                "whose workspace has its name (unset MLFLOW_WORKSPACE)")
    _choose(customer)
    return customer


def across_customers(store: Store, query: Callable[[], list[T]]) -> list[T]:
    """``query`` in every workspace the user may see, results joined in that order, on a
    server with workspaces where no customer was entered; else ``query()``."""
    if Customer.workspace or not (store.is_server and workspaces_on(store.tracking_uri)):
        return query()
    from mlflow.utils.workspace_context import WorkspaceContext

    from siteml.tracking.runs import open_client

    Customer.name, Customer.action = None, "read"
    found: list[T] = []
    for name in sorted(w.name for w in open_client(store).list_workspaces()):
        with WorkspaceContext(name):
            found.extend(query())
    return found
