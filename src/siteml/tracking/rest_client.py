"""The few MLflow calls a box agent makes between switches, over MLflow's REST API with the
standard library alone.

Importing MLflow's client costs about 200 MB resident and 2 s on this kind of machine; an
agent that only reads aliases and sets a heartbeat every 30 s needs none of it (Python and
this module: about 25 MB). The class answers the way ``MlflowClient`` does for the calls the
agent makes (and ``log_report``, which ``ReportingClient`` adds to MLflow's), so an embedded
store (no server to talk to) uses MLflow's client itself.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace
from typing import Any

from siteml.tracking.store import HEALTH_TIMEOUT_S, server_request

API = "/api/2.0/mlflow"
WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"


class RestError(RuntimeError):
    """The server refused a call or did not answer (the message holds no credentials)."""


class Page(list[Any]):
    """One page of a search, with the token of the next (None on the last)."""

    token: str | None = None


class RestClient:
    """``MlflowClient``'s calls of a box agent, on the server at ``uri``, in ``workspace``."""

    def __init__(self, uri: str, workspace: str | None = None,
                 timeout: float = 4 * HEALTH_TIMEOUT_S) -> None:
        self.tracking_uri, self.workspace, self.timeout = uri, workspace, timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = server_request(self.tracking_uri, f"{API}/{path}")
        request.method = method
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        if self.workspace:
            request.add_header(WORKSPACE_HEADER, self.workspace)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise RestError(f"{path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RestError(f"{path}: {getattr(exc, 'reason', exc)}") from None

    def get_experiment_by_name(self, name: str) -> Any:
        try:
            found = self._call("GET", "experiments/get-by-name?"
                               + urllib.parse.urlencode({"experiment_name": name}))
        except RestError as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return None
            raise
        return SimpleNamespace(experiment_id=found["experiment"]["experiment_id"])

    def search_registered_models(self, filter_string: str, max_results: int = 1000,
                                 page_token: str | None = None) -> Page:
        query = {"filter": filter_string, "max_results": max_results,
                 **({"page_token": page_token} if page_token else {})}
        found = self._call("GET", "registered-models/search?" + urllib.parse.urlencode(query))
        page = Page(SimpleNamespace(name=m["name"], aliases={
            a["alias"]: a["version"] for a in m.get("aliases", [])})
            for m in found.get("registered_models", []))
        page.token = found.get("next_page_token") or None
        return page

    def search_runs(self, experiment_ids: list[str], filter_string: str,
                    max_results: int = 1000) -> list[Any]:
        found = self._call("POST", "runs/search", {
            "experiment_ids": experiment_ids, "filter": filter_string,
            "max_results": max_results})
        return [_run(run) for run in found.get("runs", [])]

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> Any:
        found = self._call("POST", "runs/create", {
            "experiment_id": experiment_id, "run_name": run_name,
            "start_time": _now_ms(), "tags": [{"key": k, "value": v} for k, v in tags.items()]})
        return _run(found["run"])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("POST", "runs/set-tag", {"run_id": run_id, "key": key, "value": value})

    def set_terminated(self, run_id: str, status: str) -> None:
        self._call("POST", "runs/update", {"run_id": run_id, "status": status,
                                           "end_time": _now_ms()})

    def log_report(self, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
        """Tags and metrics of a run in one call (a box's heartbeat is one request)."""
        now = _now_ms()
        self._call("POST", "runs/log-batch", {
            "run_id": run_id, "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "metrics": [{"key": k, "value": v, "timestamp": now, "step": 0}
                        for k, v in metrics.items()]})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _run(run: dict[str, Any]) -> Any:
    """A run of the REST API as ``MlflowClient`` shows it: ``info`` and ``data``."""
    data = run.get("data", {})
    return SimpleNamespace(
        info=SimpleNamespace(**{k: run["info"].get(k) for k in (
            "run_id", "status", "start_time", "experiment_id")}),
        data=SimpleNamespace(tags={t["key"]: t["value"] for t in data.get("tags", [])},
                             metrics={m["key"]: m["value"] for m in data.get("metrics", [])}))
