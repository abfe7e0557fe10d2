"""Which MLflow store siteml talks to, and making sure it is there before anything is written.

With no ``MLFLOW_TRACKING_URI`` the store is MLflow's own default, ``sqlite:///mlflow.db`` in the
working directory, with artifacts kept beside the database in ``mlartifacts/`` (not wherever the
next command happens to run). With ``MLFLOW_TRACKING_URI=http(s)://…`` it is a tracking server that
proxies artifacts.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from siteml.core.errors import SitemlError
from siteml.core.secrets import redact

DEFAULT_DB = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
HEALTH_TIMEOUT_S = 5.0

# MLflow's defaults retry a dead server for minutes; a user should hear within seconds.
_MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # stdout carries --json; URLs may hold creds
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class TrackingUnavailableError(SitemlError):
    """The tracking store cannot be reached (exit code 1)."""


@dataclass(frozen=True)
class Store:
    """A resolved MLflow store.

    Attributes:
        tracking_uri: What MLflow is given.
        database: The sqlite file of an embedded store; None for a tracking server.
    """

    tracking_uri: str
    database: Path | None = None

    @property
    def is_server(self) -> bool:
        return self.database is None

    @property
    def artifact_root(self) -> Path | None:
        """Where an embedded store keeps artifacts: beside its database."""
        return self.database.parent / ARTIFACTS_DIR if self.database else None

    @property
    def display(self) -> str:
        """The URI with any password removed, safe to print or log."""
        return redact(self.tracking_uri)

    def exists(self) -> bool:
        """False for an embedded store whose database was never created."""
        return self.database is None or self.database.exists()


def resolve_store(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Store:
    """The store named by ``MLFLOW_TRACKING_URI``, or the embedded sqlite store in ``cwd``."""
    env = os.environ if environ is None else environ
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        database = (cwd or Path.cwd()).absolute() / DEFAULT_DB
        uri = f"sqlite:///{database}"
    elif uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
        if not database.is_absolute():
            database = (cwd or Path.cwd()).absolute() / database
        uri = f"sqlite:///{database}"
    elif uri.startswith(("http://", "https://")):
        return Store(uri.rstrip("/"))
    else:
        raise TrackingUnavailableError(
            f"MLFLOW_TRACKING_URI {redact(uri)!r} is not supported: use http(s)://host:port for a "
            "tracking server or sqlite:///path/to/mlflow.db (the file store is deprecated)")
    return Store(uri, database)


def _host_port(parts: urllib.parse.SplitResult) -> str:
    """``host`` or ``host:port`` of a URI, without any user or password."""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    return f"{host}:{parts.port}" if parts.port else host


def configure_environment() -> None:
    """Bounded retries and no telemetry for MLflow, unless the user set them."""
    for key, value in _MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def check_reachable(store: Store, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Fail fast, before anything is written, when a tracking server does not answer."""
    if not store.is_server:
        return
    try:
        with urllib.request.urlopen(server_request(store.tracking_uri, "/health"),
                                    timeout=timeout) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise TrackingUnavailableError(
        f"tracking server {store.display} is not reachable ({reason}); nothing was recorded")


def credentials_of(uri: str) -> tuple[str, str]:
    """The user and password for the server at ``uri``: from the URI, else
    ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` (empty when neither says)."""
    parts = urllib.parse.urlsplit(uri)
    return (urllib.parse.unquote(parts.username or "")
            or os.environ.get("MLFLOW_TRACKING_USERNAME", ""),
            urllib.parse.unquote(parts.password or "")
            or os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))


def server_request(uri: str, path: str, credentials: bool = True) -> urllib.request.Request:
    """A GET of ``path`` on the server at ``uri``, with the user's credentials (from the URI,
    else ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``) unless
    ``credentials`` is false."""
    parts = urllib.parse.urlsplit(uri)
    url = urllib.parse.urlunsplit(parts._replace(netloc=_host_port(parts),
                                                 path=parts.path.rstrip("/") + path))
    request = urllib.request.Request(url)
    user, password = credentials_of(uri)
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if credentials and (user or password):
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    elif credentials and token:
        request.add_header("Authorization", f"Bearer {token}")
    return request


def ui_command(store: Store, host: str, port: int) -> list[str]:
    """The ``mlflow server`` command line that serves an embedded store's UI and artifacts."""
    import sys

    assert store.database is not None and store.artifact_root is not None
    return [sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", store.tracking_uri,
            "--default-artifact-root", store.artifact_root.as_uri(),
            "--host", host, "--port", str(port), "--workers", "1"]


def browser_url(url: str) -> str:
    """A server's URL without credentials, query or trailing slash: it is printed, and a
    browser asks for the credentials itself."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(
        parts._replace(netloc=_host_port(parts), query="", fragment="")).rstrip("/")


ML_VIEW = "workflowType=machine_learning"
"""The query that puts MLflow's UI in its machine-learning view. MLflow 3.17 opens in its GenAI
view (traces, latency, "Detect issues in your traces") unless the URL (or a choice the browser
remembers) says otherwise, whatever an experiment's ``mlflow.experimentKind`` tag says."""


def ui_links(base_url: str, experiment_id: str | None = None,
             workspace: str | None = None) -> dict[str, str]:
    """Links into MLflow's UI in its machine-learning view: the store's experiments, one
    experiment's runs table (datasets, durations) when ``experiment_id`` is given, and the model
    registry; in ``workspace`` (the UI's ``workspace`` query parameter) on a team server.

    The UI routes with the URL fragment (``#/experiments/1/runs?…``), so the view goes after the
    route. The registry page rewrites its own query and so keeps the view the browser last
    chose; it lists the registered models in either.
    """
    base = browser_url(base_url)
    view = ML_VIEW + (f"&workspace={urllib.parse.quote(workspace)}" if workspace else "")
    links = {"experiments": f"{base}/#/experiments?{view}"}
    if experiment_id is not None:
        links["runs"] = f"{base}/#/experiments/{experiment_id}/runs?{view}"
    links["models"] = f"{base}/#/models?{view}"
    return links
