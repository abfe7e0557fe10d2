"""Moving a store from before workspaces into one workspace per customer (``siteml server
migrate``): the customers come from the ``site.customer`` tag siteml puts on every site
experiment and registered model; the move is MLflow's own (``mlflow db move-resources``, called
through its Python function for a structured result), a dry run unless asked otherwise.

Run it against the store's database with the server stopped, after a backup, as MLflow asks.
Access is not moved: grant roles on each customer afterwards (``siteml access grant``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from siteml.core import keys
from siteml.core.errors import InvalidInputError
from siteml.core.naming import customer_problem

CUSTOMER_TAG = f"{keys.SITE_PREFIX}customer"
SOURCE = "default"
RESOURCE_TYPES = ("experiments", "registered_models")


@dataclass
class CustomerMove:
    """What moves (or would move) into one customer's workspace."""

    customer: str
    experiments: list[str] = field(default_factory=list)
    registered_models: list[str] = field(default_factory=list)
    created_workspace: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"customer": self.customer, "experiments": self.experiments,
                "registered_models": self.registered_models,
                "created_workspace": self.created_workspace}


def _unmoved(store_uri: str) -> list[Any]:
    """The experiments and registered models still in the ``default`` workspace (all of them
    on a store from before workspaces)."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType
    from mlflow.utils.workspace_context import WorkspaceContext

    previous = os.environ.get("MLFLOW_ENABLE_WORKSPACES")
    os.environ["MLFLOW_ENABLE_WORKSPACES"] = "true"  # a store with moved resources needs it
    try:
        with WorkspaceContext(SOURCE):
            client = MlflowClient(store_uri, store_uri)
            found = [*client.search_experiments(view_type=ViewType.ALL),
                     *client.search_registered_models()]
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_ENABLE_WORKSPACES")
        else:
            os.environ["MLFLOW_ENABLE_WORKSPACES"] = previous
    # a store MLflow opened earlier in this process without workspaces lists every workspace
    return [r for r in found if getattr(r, "workspace", None) in (None, SOURCE)]


def customers_in(store_uri: str) -> list[str]:
    """The customers tagged on the experiments and registered models outside any workspace.

    Raises:
        InvalidInputError: a customer tag that cannot name a workspace.
    """
    found = sorted({c for r in _unmoved(store_uri) if (c := r.tags.get(CUSTOMER_TAG))})
    bad = [f"{c!r} {problem}" for c in found if (problem := customer_problem(c))]
    if bad:
        raise InvalidInputError(f"{store_uri}: site.customer tags that cannot name a "
                                f"workspace: {'; '.join(bad)}; nothing was moved")
    return found


def move_customers(store_uri: str, apply: bool) -> list[CustomerMove]:
    """Each customer's experiments and registered models into its workspace (made if missing);
    with ``apply`` false, what would move, changing nothing."""
    import sqlalchemy as sa
    from mlflow.entities.workspace import Workspace
    from mlflow.store.db.utils import create_sqlalchemy_engine_with_retry
    from mlflow.store.db.workspace_move import move_resources
    from mlflow.tracking._workspace.registry import get_workspace_store
    from mlflow.utils.workspace_utils import resolve_workspace_store_uri

    customers = customers_in(store_uri)
    engine = create_sqlalchemy_engine_with_retry(store_uri)
    if not sa.inspect(engine).has_table("workspaces"):
        raise InvalidInputError(f"{store_uri} has no workspaces table: upgrade it first "
                                f"(mlflow db upgrade {store_uri})")
    workspaces = get_workspace_store(resolve_workspace_store_uri(None, tracking_uri=store_uri))
    existing = {w.name for w in workspaces.list_workspaces()}
    moves = []
    for customer in customers:
        move = CustomerMove(customer)
        if customer not in existing:
            move.created_workspace = True
            if apply:
                workspaces.create_workspace(Workspace(
                    name=customer, description=f"siteml customer {customer}"))
        for resource in RESOURCE_TYPES:
            if not apply and customer not in existing:  # MLflow checks the target exists
                names = _tagged(store_uri, resource, customer)
            else:
                names = move_resources(engine, workspaces, source_workspace=SOURCE,
                                       target_workspace=customer, resource_type=resource,
                                       tags=[(CUSTOMER_TAG, customer)],
                                       dry_run=not apply).names
            setattr(move, resource, names)
        moves.append(move)
    return moves


def _tagged(store_uri: str, resource: str, customer: str) -> list[str]:
    """Names of the resources tagged for ``customer`` outside any workspace (a dry run for a
    workspace that does not exist yet, which MLflow's move refuses to preview)."""
    from mlflow.entities import Experiment

    return sorted(r.name for r in _unmoved(store_uri)
                  if isinstance(r, Experiment) == (resource == "experiments")
                  and r.tags.get(CUSTOMER_TAG) == customer)
