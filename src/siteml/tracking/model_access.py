"""A registered model named on the command line: its reference parsed, and a client on the
store it lives in, inside its customer's workspace (``siteml promote``, ``siteml export``)."""

from __future__ import annotations

from mlflow import MlflowClient

from siteml.core.errors import InvalidInputError
from siteml.core.naming import ModelRef, customer_of
from siteml.tracking.model_resolve import ModelNotFoundError
from siteml.tracking.runs import open_client
from siteml.tracking.store import Store, check_reachable, resolve_store
from siteml.tracking.workspaces import enter_customer


def parse_reference(text: str) -> ModelRef:
    """``text`` as a model reference.

    Raises:
        InvalidInputError: ``model reference: …`` saying what is wrong with it.
    """
    try:
        return ModelRef.parse(text)
    except ValueError as exc:
        raise InvalidInputError(f"model reference: {exc}") from None


def open_registry(ref: ModelRef, action: str = "read",
                  store: Store | None = None) -> tuple[Store, MlflowClient]:
    """The store (default: the environment's) and a client on it, in the workspace of
    ``ref``'s customer, entered to ``action`` (``read``, ``manage``).

    Raises:
        TrackingUnavailableError: the server does not answer.
        ModelNotFoundError: the store holds no models yet (it is not created).
    """
    store = store or resolve_store()
    check_reachable(store)
    if not store.exists():
        raise ModelNotFoundError(f"no registered models yet in {store.display}")
    enter_customer(store, customer_of(ref.site), action)
    return store, open_client(store)
