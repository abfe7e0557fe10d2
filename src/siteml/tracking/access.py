"""Who may do what for which customer, on a team server: siteml's three roles as MLflow roles.

siteml keeps nothing of its own about access. A grant of ``viewer``, ``editor`` or ``manager``
on a customer is MLflow's role ``siteml-<role>`` in the customer's workspace (created with its
permissions the first time it is granted there) assigned to the user; ``list`` reads MLflow's
users and their roles back. The permissions behind each role, as MLflow 3.17 checks them:

- ``viewer``: READ on every experiment (runs, metrics, artifacts) and registered model.
- ``editor``: also USE of the workspace (create experiments and models: MLflow then gives the
  creator MANAGE on them) and EDIT on every experiment and model (runs and versions in the
  site experiments and models colleagues created). MLflow checks an alias move as an EDIT of
  the model: an editor could set one through MLflow's API; ``siteml promote`` asks for manager.
- ``manager``: MANAGE of the workspace (everything above, deleting, and roles in it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from siteml.core.errors import InvalidInputError

ROLES = ("viewer", "editor", "manager")
ROLE_PREFIX = "siteml-"
PERMISSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "viewer": (("experiment", "READ"), ("registered_model", "READ")),
    "editor": (("workspace", "USE"), ("experiment", "EDIT"), ("registered_model", "EDIT")),
    "manager": (("workspace", "MANAGE"),),
}
"""(resource type, permission) pairs of each role, on every resource (pattern ``*``)."""
CREATOR_ROLE = re.compile(r"__user_\d+__")
"""MLflow's hidden per-user role in a workspace: MANAGE on what the user created there."""


@dataclass(frozen=True, order=True)
class Grant:
    """One role a user holds on a customer."""

    user: str
    customer: str
    role: str

    def to_dict(self) -> dict[str, str]:
        return {"user": self.user, "customer": self.customer, "role": self.role}


class Access:
    """siteml's access commands on the team server at ``uri``, as the user in the
    environment (an MLflow admin, or the customer's manager)."""

    def __init__(self, uri: str) -> None:
        import warnings

        from mlflow.tracking import MlflowClient

        with warnings.catch_warnings():  # mlflow.server's imports warn about Starlette's
            warnings.simplefilter("ignore")
            from mlflow.server.auth.client import AuthServiceClient

        self.uri = uri
        self.auth = AuthServiceClient(uri)
        self.mlflow = MlflowClient(uri, uri)

    def add_user(self, user: str, password: str) -> None:
        self.auth.create_user(user, password)

    def grant(self, user: str, role: str, customer: str) -> bool:
        """Give ``user`` the role on ``customer`` (its workspace made first if it has none);
        False when the user already held it."""
        self._known_user(user)
        if customer not in self._workspaces():
            self.mlflow.create_workspace(customer, description=f"siteml customer {customer}")
        found = self._role(customer, role) or self._create_role(customer, role)
        if any(r.id == found.id for r in self.auth.list_user_roles(user)):
            return False
        self.auth.assign_role(user, found.id)
        return True

    def revoke(self, user: str, role: str, customer: str) -> bool:
        """Take the role on ``customer`` from ``user``, and with it what MLflow gave the user as
        the creator of experiments and models there (a hidden per-user role that would
        otherwise outlive every grant); False when the user held neither."""
        self._known_user(user)
        if customer not in self._workspaces():
            raise InvalidInputError(f"customer {customer!r} has no workspace on {self.uri}")
        name = ROLE_PREFIX + role
        held = [r for r in self.auth.list_user_roles(user) if r.workspace == customer
                and (r.name == name or CREATOR_ROLE.fullmatch(r.name))]
        for found in held:
            self.auth.unassign_role(user, found.id)
        return any(r.name == name for r in held)

    def grants(self) -> list[Grant]:
        """Every siteml role every user holds, by user and customer."""
        from mlflow.server.auth.routes import LIST_USERS

        users = self.auth._request(LIST_USERS, "GET")["users"]  # no public client call yet
        ours = {ROLE_PREFIX + role: role for role in ROLES}
        return sorted(Grant(u["username"], r["workspace"], ours[r["name"]])
                      for u in users for r in u["roles"] if r["name"] in ours)

    def _workspaces(self) -> set[str]:
        return {w.name for w in self.mlflow.list_workspaces()}

    def _known_user(self, user: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.auth.get_user(user)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise InvalidInputError(f"no user {user!r} on {self.uri}: add it first "
                                        f"(siteml access add-user {user})") from None
            raise

    def _role(self, customer: str, role: str) -> Any:
        name = ROLE_PREFIX + role
        return next((r for r in self.auth.list_roles(customer) if r.name == name), None)

    def _create_role(self, customer: str, role: str) -> Any:
        created = self.auth.create_role(customer, ROLE_PREFIX + role,
                                        description=f"siteml {role} of customer {customer}")
        for resource, permission in PERMISSIONS[role]:
            self.auth.add_role_permission(created.id, resource, "*", permission)
        return created
