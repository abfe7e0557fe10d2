"""What a client sees of a tracking server (``siteml server check``): whether it answers, its
MLflow version, whether it asks for a login, and whether it has workspaces on.

Plain HTTP against MLflow's own endpoints: ``/health``, ``/version``, ``/api/3.0/mlflow/
server-info`` (served without a login, even with basic-auth on) and one search without
credentials, which a server with auth on answers 401.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from siteml.core.secrets import redact
from siteml.tracking.store import HEALTH_TIMEOUT_S, server_request
from siteml.tracking.workspaces import server_info

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def _get(uri: str, path: str, credentials: bool = True) -> tuple[int, bytes]:
    """The status and body of a GET (an HTTP error's status too)."""
    try:
        with urllib.request.urlopen(server_request(uri, path, credentials),
                                    timeout=HEALTH_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def server_facts(uri: str) -> dict[str, Any]:
    """``reachable``, ``mlflow_version``, ``auth`` (a request without credentials is refused),
    ``workspaces``, ``store_type`` and ``credentials_accepted`` (None without auth) of the
    server at ``uri``; only ``uri`` (redacted), ``reachable`` and ``error`` when it does not
    answer."""
    facts: dict[str, Any] = {"uri": redact(uri.rstrip("/"))}
    try:
        health, _ = _get(uri, "/health", credentials=False)
    except (urllib.error.URLError, OSError) as exc:
        return {**facts, "reachable": False,
                "error": redact(str(getattr(exc, "reason", exc)))}
    facts["reachable"] = health == 200
    status, body = _get(uri, "/version", credentials=False)
    if status in (401, 403):  # basic-auth guards /version
        status, body = _get(uri, "/version")
    facts["mlflow_version"] = body.decode().strip() if status == 200 else None
    info = server_info(uri)
    facts["workspaces"] = bool(info.get("workspaces_enabled"))
    facts["store_type"] = info.get("store_type")
    anonymous, _ = _get(uri, SEARCH, credentials=False)
    facts["auth"] = anonymous in (401, 403)
    facts["credentials_accepted"] = _get(uri, SEARCH)[0] == 200 if facts["auth"] else None
    return facts
