"""The team's tracking server as ``siteml server start`` runs it: MLflow's own ``mlflow server``
with basic-auth and workspaces on, configured so that nobody sees anything without a role.

siteml writes the auth configuration (``default_permission = NO_PERMISSIONS``, no access to the
``default`` workspace) and the Flask secret into a state folder, checks the admin password and
the store URIs before anything starts, and hands the password to the server in its environment
only. Nothing about users or access is kept by siteml: that is MLflow's auth database.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from siteml.core.errors import InvalidInputError
from siteml.core.secrets import redact

ADMIN_USER = "admin"
MIN_PASSWORD = 12
"""MLflow's own minimum for every password (``mlflow.utils.validation._validate_password``)."""
KNOWN_DEFAULTS = frozenset({"password1234", "password12345", "adminadmin12", "changeme1234",
                            "mlflowmlflow", "123456789012", "passwordpassword",
                            "administrator"})
"""Passwords a scanner tries first: MLflow's old shipped default (GHSA-gq3w-7jj3-x7gr) and its
kin. Refused for the admin whatever their length."""
SQL_SCHEMES = ("postgresql", "mysql", "mssql", "sqlite")
"""Workspaces need a SQL store (MLflow refuses the file store)."""
AUTH_CACHE_TTL_S = 60
"""MLflow checks the password of every request with PBKDF2 unless it caches the check: measured,
`siteml run` took 1.77x as long on the team server without the cache. A password changed
through the API may still be accepted by another worker for up to this long."""
AUTH_INI = "basic_auth.ini"
SECRET_FILE = "flask_secret_key"
AUTH_DB = "auth.db"


@dataclass(frozen=True)
class TeamServer:
    """What ``siteml server start`` starts.

    Attributes:
        backend_store_uri: Runs, experiments, models (PostgreSQL in production, sqlite for a
            trial).
        artifacts_destination: Where the server keeps the artifacts it proxies: a folder or an
            object-store URI (``s3://…``).
        state_dir: siteml's files for the server: the auth configuration and the Flask secret.
        auth_db_uri: MLflow's users and roles (default: sqlite in ``state_dir``).
    """

    backend_store_uri: str
    artifacts_destination: str
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    auth_db_uri: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def auth_database(self) -> str:
        return self.auth_db_uri or f"sqlite:///{self.state_dir.absolute() / AUTH_DB}"

    def needs_admin_password(self) -> bool:
        """MLflow creates the admin from the password only on first start; an auth database
        that siteml cannot look into (not a local sqlite file) may be a first start."""
        database = self.auth_database
        return not (database.startswith("sqlite:///")
                    and Path(database.removeprefix("sqlite:///")).exists())

    def check(self) -> None:
        """Refuse what MLflow would fail on later, or what would open the server: exit 2."""
        for option, uri in (("--backend-store-uri", self.backend_store_uri),
                            ("--auth-db", self.auth_database)):
            scheme = uri.split(":", 1)[0].split("+", 1)[0]
            if scheme not in SQL_SCHEMES:
                raise InvalidInputError(
                    f"{option} {redact(uri)!r}: workspaces and auth need a SQL database "
                    "(postgresql://… in production, sqlite:///… for a trial)")
        if self.workers < 1:
            raise InvalidInputError(f"--workers {self.workers}: at least 1")

    def command(self) -> list[str]:
        """The ``mlflow server`` command line."""
        return [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
                "--enable-workspaces", "--backend-store-uri", self.backend_store_uri,
                "--artifacts-destination", self.artifacts_destination,
                "--host", self.host, "--port", str(self.port), "--workers", str(self.workers)]

    def environment(self, admin_password: str | None) -> dict[str, str]:
        """The server's environment: siteml's auth configuration, the kept Flask secret and,
        on a first start, the admin password (never on a command line or in a file)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        secret = self._secret_key()
        env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(self._write_config()),
               "MLFLOW_FLASK_SERVER_SECRET_KEY": secret}
        env.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)
        if admin_password is not None:
            env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin_password
        return env

    def _write_config(self) -> Path:
        path = self.state_dir / AUTH_INI
        path.write_text("\n".join([
            "[mlflow]",
            "# written by siteml server start: nobody sees anything without a role",
            "default_permission = NO_PERMISSIONS",
            "grant_default_workspace_access = false",
            f"database_uri = {self.auth_database}",
            f"admin_username = {ADMIN_USER}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            "# a password is checked (PBKDF2) once per minute per worker, not at every request;",
            "# role changes still count at the next request",
            f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}",
            ""]))
        return path

    def _secret_key(self) -> str:
        """The Flask secret (it signs the UI's sessions and CSRF tokens): generated on the first
        start into a file only its owner may read, and reused after, so that a restart does
        not log everyone out. A file others can read is refused."""
        path = self.state_dir / SECRET_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InvalidInputError(f"{path} is readable by others (mode {mode:o}): "
                                    f"chmod 600 {path}, or delete it for a new one")
        return path.read_text().strip()


def admin_password_problem(password: str | None) -> str | None:
    """Why ``password`` may not be the admin's first password, or None."""
    if not password:
        return ("no admin password: set MLFLOW_AUTH_ADMIN_PASSWORD or type one at the prompt "
                "(MLflow ships no default)")
    if len(password) < MIN_PASSWORD:
        return f"the admin password is shorter than {MIN_PASSWORD} characters"
    if password.lower() in KNOWN_DEFAULTS or password.lower() == ADMIN_USER:
        return "the admin password is a known default; choose another"
    return None
