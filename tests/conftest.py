"""Shared fixtures: a valid scenario text to mutate, and a CLI runner."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siteml.cli.serving import SERVER_DEFAULTS

REPO = Path(__file__).resolve().parents[1]

VALID_SCENARIO = """\
name: welding-ppe
version: v2
experiment_type: train
site:
  customer: donghwa-entec
  region: busan
  plant: plant1
  zone: welding
task:
  type: ppe
  classes: [helmet, vest, person]
model:
  architecture: yolov11l
  input_size: 640
  num_classes: 3
environment:
  device: cpu
  seed: 42
dataset:
  version: v3
  dvc_hash: 3f2a9c4e1b7d8a6f5e4c3b2a1d0e9f8c.dir
  path: data/welding-ppe
  image_count: 120
training:
  epochs: 5
  batch: 8
"""


DVC_HASH = "3f2a9c4e1b7d8a6f5e4c3b2a1d0e9f8c.dir"


def with_site(text: str, site: str) -> str:
    """Replace the inline ``site:`` mapping of a scenario text by ``site: <site>``."""
    return text[: text.index("site:")] + f"site: {site}\n" + text[text.index("task:"):]


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in ``text``."""
    return text[: text.index(needle)].count("\n") + 1


@pytest.fixture(autouse=True)
def _no_workspace_left_behind():
    """A command that chose a customer's workspace leaves it in MLflow's context (one command
    per process in real use); the next test starts without it."""
    yield
    if "siteml.tracking.workspaces" in sys.modules:
        from siteml.tracking.workspaces import Customer

        Customer.name, Customer.action = None, "read"
        if Customer.workspace is not None:
            import mlflow

            mlflow.set_workspace(None)
            Customer.workspace = None


@pytest.fixture(autouse=True, scope="session")
def _own_file_state(tmp_path_factory):
    """The file state (the hashes siteml keeps by inode) of this session, never the user's."""
    from siteml.data.file_state import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("siteml-cache"))


def invoke(*args: str) -> tuple[int, str, str]:
    """The siteml CLI in-process: (exit code, stdout, stderr)."""
    from siteml.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli():
    """Invoke the siteml CLI in-process; returns (exit code, stdout, stderr)."""
    return invoke


@pytest.fixture
def write(tmp_path):
    """Write text to a file under tmp_path and return its path."""

    def _write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {timeout} s")


def start_mlflow_server(folder: Path, *extra: str,
                        port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A real ``mlflow server`` on 127.0.0.1 (on ``port``, else a free one), backed by sqlite in
    ``folder`` (the same store again when started again there), in its own process group."""
    port = port or free_port()
    log = open(folder / "server.log", "a")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{folder}/server.db", "--artifacts-destination", str(folder / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), *extra],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **SERVER_DEFAULTS})
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it lingers; a group already gone is fine."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class TeamServer:
    """A tracking server as ``siteml server start`` runs it (auth and workspaces on)."""

    url: str
    admin_password: str
    admin: str = "admin"


def start_team_server(folder: Path, admin_password: str | None, *extra: str,
                      port: int | None = None) -> tuple[subprocess.Popen, str]:
    """``siteml server start`` on a sqlite store in ``folder`` (the admin password in its
    environment unless None; on ``port``, else a free one), in its own process group; the
    process and the URL it printed once healthy."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_AUTH_ADMIN_PASSWORD"}
    if admin_password is not None:
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin_password
    log = open(folder / "team-server.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "siteml", "server", "start", "--backend-store-uri",
         f"sqlite:///{folder}/team.db", "--artifacts-destination", str(folder / "artifacts"),
         "--state-dir", str(folder / "state"), "--port", str(port), "--workers", "1", *extra],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True, env=env,
        start_new_session=True)
    url = proc.stdout.readline().strip()  # printed once it answers
    if not url:
        raise RuntimeError(f"siteml server start exited with {proc.wait()}: "
                           f"{(folder / 'team-server.log').read_text()[-2000:]}")
    return proc, url


@pytest.fixture(scope="session")
def team_server(tmp_path_factory):
    """CI's team server (SITEML_TEST_TEAM_URI, started by ``siteml server start`` on its
    PostgreSQL, admin password in SITEML_TEST_TEAM_ADMIN_PASSWORD), else one started here on
    sqlite."""
    given = os.environ.get("SITEML_TEST_TEAM_URI")
    if given:
        yield TeamServer(given, os.environ["SITEML_TEST_TEAM_ADMIN_PASSWORD"])
        return
    password = f"admin-{uuid.uuid4().hex[:12]}"
    proc, url = start_team_server(tmp_path_factory.mktemp("team-server"), password)
    yield TeamServer(url, password)
    stop_process_group(proc)


def pytest_configure(config):
    """An xdist worker's environment says ``COLUMNS=80`` (its pseudo-terminal's); the tests read
    siteml's output as a pipe would, whichever way they run."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)


SLOW_FIXTURES = {"mlflow_server", "team_server", "tiny_store", "variants", "trained_model",
                 "demo_store", "demo_copy"}
"""Fixtures that train a model or start a server: a test using one belongs to the slow tier."""
HEAVY_MODULES = ("torch", "ultralytics")
"""What a quick test may not import (about 3 s, and a sign that it trains or predicts)."""


def pytest_collection_modifyitems(items):
    """Refuse a test that uses a slow fixture without the ``slow`` mark, and a test module
    that imports torch or Ultralytics when collected: the quick tier (``-m "not slow"``) must
    stay quick."""
    unmarked = [item.nodeid for item in items if SLOW_FIXTURES & set(item.fixturenames)
                and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("mark these tests slow (they use a slow fixture): "
                                + ", ".join(unmarked))
    imported = heavy_imported()
    if imported:
        raise pytest.UsageError(f"collecting the tests imported {', '.join(sorted(imported))}: "
                                "import it inside the slow tests that need it")


def heavy_imported() -> set[str]:
    """The ``HEAVY_MODULES`` imported in this process (a test may block one by setting it to
    None in ``sys.modules``)."""
    return {name for name in HEAVY_MODULES if sys.modules.get(name) is not None}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail a quick test that imports torch or Ultralytics (its own code or what it calls)."""
    before = heavy_imported()
    result = yield
    if item.get_closest_marker("slow") is None:
        new = sorted(heavy_imported() - before)
        if new:
            raise AssertionError(f"a quick test imported {', '.join(new)}: mark it slow, or "
                                 "keep the import out of the code it calls")
    return result


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """URL of a tracking server: CI's PostgreSQL-backed one (SITEML_TEST_TRACKING_URI), else
    one started here with a sqlite backend."""
    given = os.environ.get("SITEML_TEST_TRACKING_URI")
    if given:
        yield given
        return
    proc, url = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), "--workers", "2")
    yield url
    stop_process_group(proc)


TINY_DEMO = {"epochs": 1, "train_images": 16, "val_images": 8, "imgsz": 64, "iterations": 20,
             "warmup": 2, "cameras": 6, "stream_seconds": 0.5}
"""The smallest `siteml demo` that runs every step (the README's is 15 epochs, 200 + 50 images
of 320 px, 300 iterations, up to 32 cameras for 2 s each)."""


def demo_options(prefix: str = "") -> list[str]:
    """``TINY_DEMO`` as options of `siteml demo` (``prefix`` ""), or of the benchmark scripts
    (``prefix`` "demo-")."""
    return [word for key, value in TINY_DEMO.items()
            for word in (f"--{prefix}{key.replace('_', '-')}", str(value))]


@dataclass(frozen=True)
class DemoStore:
    """A finished tiny `siteml demo`: its folder and the steps it printed (``--json``)."""

    folder: Path
    steps: list[dict]
    elsewhere: Path
    """The store ``MLFLOW_TRACKING_URI`` named while it ran (the demo must not use it)."""


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> DemoStore:
    """`siteml demo` at ``TINY_DEMO``, built once per session: read it, never write to it
    (``demo_copy`` is a copy to write to)."""
    needs("ultralytics", "train")
    needs("nncf", "quantize")
    root = tmp_path_factory.mktemp("demo-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/elsewhere.db")
        code, out, err = invoke("demo", str(root / "demo"), *demo_options(), "--json")
    assert code == 0, err
    return DemoStore(root / "demo", json.loads(out), root / "elsewhere.db")


@pytest.fixture
def demo_copy(demo_store, tmp_path) -> Path:
    """A copy of the session's tiny demo folder, for a test that runs more into it (its runs'
    artifacts land beside the original's, under their own run ids)."""
    return Path(shutil.copytree(demo_store.folder, tmp_path / "demo", symlinks=True))


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An embedded store as MLflow creates it (its schema migrated, nothing in it), made once:
    creating one takes MLflow about 2.5 s, a copy 5 ms."""
    from mlflow import MlflowClient

    database = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{database}").search_experiments()
    return database


@pytest.fixture
def sqlite_uri(empty_store, tmp_path) -> str:
    """A fresh embedded store under ``tmp_path/store`` (a copy of ``empty_store``)."""
    database = tmp_path / "store" / "mlflow.db"
    database.parent.mkdir()
    shutil.copyfile(empty_store, database)
    return f"sqlite:///{database}"


@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.slow)])
def store_uri(request, tmp_path, monkeypatch):
    """Each lifecycle test runs on an embedded sqlite store and (slow tier: it starts a server
    unless CI gives one) on a tracking server."""
    if request.param == "sqlite":
        uri = request.getfixturevalue("sqlite_uri")
    else:
        uri = request.getfixturevalue("mlflow_server")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@dataclass
class SiteScenario:
    """A scenario file for a site no other test uses, with a dataset folder beside it."""

    path: Path
    site: str
    customer: str

    @property
    def model_name(self) -> str:
        return f"{self.site.replace('/', '.')}.ppe"


@pytest.fixture
def site_scenario(tmp_path) -> SiteScenario:
    return make_site_scenario(tmp_path)


def make_site_scenario(tmp_path: Path) -> SiteScenario:
    """A scenario file in ``tmp_path`` for a new customer, with a dataset folder beside it."""
    customer = f"t{uuid.uuid4().hex[:10]}"
    images = tmp_path / "data" / "images" / "train"
    images.mkdir(parents=True)
    for i in range(3):
        (images / f"{i}.jpg").write_bytes(b"not really a jpeg")
    from siteml.data.dvc_hash import dir_hash

    text = (VALID_SCENARIO.replace("customer: donghwa-entec", f"customer: {customer}")
            .replace("path: data/welding-ppe", "path: data")
            .replace("image_count: 120", "image_count: 3")
            .replace(DVC_HASH, dir_hash(tmp_path / "data").md5))
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return SiteScenario(path, f"{customer}/busan-plant1/welding", customer)


def needs(module: str, extra: str) -> None:
    """Skip this test module when ``module`` is missing (a user's partial install), but fail
    when SITEML_REQUIRE_ALL_EXTRAS is set, as CI sets it: CI installs every extra."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"needs {module}: pip install 'siteml[{extra}]'"
    if os.environ.get("SITEML_REQUIRE_ALL_EXTRAS"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


@pytest.fixture(scope="session")
def studio() -> tuple[str, str]:
    """The Label Studio server CI starts (its URL and token); else skip, or fail under
    SITEML_REQUIRE_ALL_EXTRAS."""
    url, key = (os.environ.get(f"SITEML_TEST_LABEL_STUDIO_{k}") for k in ("URL", "KEY"))
    if not (url and key):
        message = "needs a Label Studio server: SITEML_TEST_LABEL_STUDIO_URL and _KEY"
        if os.environ.get("SITEML_REQUIRE_ALL_EXTRAS"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url, key


def needs_program(path: str, package: str) -> str:
    """``path`` when that program is installed; else skip, or fail under
    SITEML_REQUIRE_ALL_EXTRAS, as ``needs`` does (CI installs Debian's ``package``)."""
    if os.access(path, os.X_OK):
        return path
    message = f"needs {path}: apt-get install {package}"
    if os.environ.get("SITEML_REQUIRE_ALL_EXTRAS"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


class NetworkBlocked:
    """Records every attempt to open a non-local connection or resolve a name, and refuses it."""

    def __init__(self, monkeypatch):
        self.attempts: list[str] = []
        real_connect = socket.socket.connect
        real_getaddrinfo = socket.getaddrinfo

        def local(host) -> bool:
            return host in ("127.0.0.1", "::1", "localhost", "") or str(host).startswith("/")

        def connect(sock, address):
            host = address[0] if isinstance(address, tuple) else address
            if sock.family == socket.AF_UNIX or local(host):
                return real_connect(sock, address)
            self.attempts.append(f"connect {address}")
            raise OSError("network blocked by test")

        def getaddrinfo(host, *args, **kwargs):
            if local(host):
                return real_getaddrinfo(host, *args, **kwargs)
            self.attempts.append(f"resolve {host}")
            raise socket.gaierror("network blocked by test")

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def no_network(monkeypatch) -> NetworkBlocked:
    return NetworkBlocked(monkeypatch)
