"""The fleet end to end, with real `siteml box run` agents serving the tiny store's INT8
variant (a model that finds objects, so its canary has detections to compare) from their own
repository folders: a staged rollout, a broken variant refused at its first ring and
rolled back, `kill -9` of a box mid-switch (the repository is the old or the new version,
never mixed, and the next start finishes the switch), flipped bytes in the registry's copy and
in the box's, and a box moved to another variant."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from siteml.core import keys
from siteml.lifecycle.repository import foreign_files, served_version, verify
from tests.pipelines.conftest import SITE_PATH, candidate
from tests.pipelines.test_canary_real import damage_weights

pytestmark = pytest.mark.slow  # the tiny store's INT8 variant, agent processes

SITE = SITE_PATH
INT8 = f"{SITE}/ppe__openvino_int8"
NAME = INT8.replace("/", ".")
REPO_NAME = NAME.replace(".", "_")
BOXES = ("bay-01", "bay-02")


def republish(client: MlflowClient, uri: str, tmp: Path, first: int, damage: bool = False,
              target: MlflowClient | None = None) -> int:
    """Register the files of the INT8 variant's version ``first`` again as a new version, on
    the same store or on ``target`` (its IR's weights damaged when asked: the canary it
    carries no longer matches what it detects)."""
    from siteml.backends.registry import find_model, get
    from siteml.core.models import CANARY_DIR, ProducedModel
    from siteml.tracking.model_register import register
    from siteml.tracking.model_resolve import download_version

    original = client.get_model_version(NAME, str(first))
    files = download_version(original, tmp / f"v{first}-{time.monotonic_ns()}", uri).path
    model = find_model(files)
    if damage:
        damage_weights(next(model.glob("*.xml")))
    target = target or client
    found = target.get_experiment_by_name(SITE)
    experiment = found.experiment_id if found else target.create_experiment(
        SITE, tags={keys.SITE_PATH: SITE})  # as siteml makes a site's experiment
    run = target.create_run(experiment, run_name="republished")
    target.set_terminated(run.info.run_id)
    produced = ProducedModel(model, format=get("openvino").model_format, backend="openvino",
                             precision="int8", variant="openvino_int8",
                             canary=files / CANARY_DIR)
    tags = {k: v for k, v in original.tags.items() if k != keys.RUN_KEY}
    version = register(target, experiment_id=experiment, run_id=run.info.run_id,
                       model=produced, name=NAME, logged_name="ppe__openvino_int8",
                       model_tags={}, version_tags=tags, description="republished")
    return int(version.version)


@dataclass
class Fleet:
    """A copy of the tiny store with a box agent per box, each in its own process group, and
    the site file listing the boxes; ``first``: the INT8 variant's version."""

    folder: Path
    env: dict[str, str]
    first: int
    repos: dict[str, Path]
    agents: dict[str, subprocess.Popen]
    agent_env: dict[str, str] | None = None
    """The boxes' own login, where it is not the user's."""
    onnx: int = 0
    """The ONNX Runtime INT8 variant's version, where the store has it."""

    def start(self, box: str) -> None:
        log = (self.folder / f"{box}.log").open("a")
        self.agents[box] = subprocess.Popen(
            [sys.executable, "-m", "siteml", "box", "run", "--box", box, "--site", SITE,
             "--repo", str(self.repos[box]), "--interval", "1", "--cameras", "6", "--fps", "10"],
            env=self.agent_env or self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def kill(self, box: str) -> None:
        """``kill -9`` of the agent and its switch: a power cut, as far as the box knows."""
        os.killpg(self.agents[box].pid, signal.SIGKILL)
        self.agents[box].wait()

    def siteml(self, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "siteml", *args], env=env or self.env,
                              cwd=self.folder, capture_output=True, text=True, timeout=300)

    def fleet(self, env: dict[str, str] | None = None) -> dict[str, dict]:
        done = self.siteml("fleet", "--json", env=env)
        assert done.returncode == 0, done.stderr
        return {row["box"]: row for row in json.loads(done.stdout)}

    def stop(self) -> None:
        for process in self.agents.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def deploy(self, ref: str, box: str = "bay-01") -> None:
        done = self.siteml("deploy", ref, "--box", box, "--sites-dir",
                           str(self.folder / "configs" / "sites"))
        assert done.returncode == 0, done.stderr

    def wait_serving(self, box: str, version: int, timeout: float = 90,
                     name: str = REPO_NAME) -> None:
        deadline = time.monotonic() + timeout
        while served_version(self.repos[box], name, "ovms") != version:
            assert time.monotonic() < deadline, (self.folder / f"{box}.log").read_text()
            time.sleep(0.3)


def site_file(tiny_store, folder: Path) -> Path:
    """``configs/sites/quant-bays.yaml`` under ``folder``: the tiny store's site, its boxes."""
    sites = folder / "configs" / "sites"
    sites.mkdir(parents=True)
    (sites / "quant-bays.yaml").write_text(yaml.safe_dump({
        **tiny_store.site, "boxes": [{"name": box, "layout": "ovms"} for box in BOXES]}))
    return sites / "quant-bays.yaml"


@pytest.fixture
def fleet(tiny_store, tmp_path):
    first = int(candidate(tiny_store, "openvino", "int8").version)
    onnx = int(candidate(tiny_store, "onnxruntime", "int8").version)
    database = tmp_path / "store" / "mlflow.db"  # artifacts stay beside the original's
    database.parent.mkdir()
    shutil.copyfile(tiny_store.uri.removeprefix("sqlite:///"), database)
    site_file(tiny_store, tmp_path)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{database}",
           "PYTHONPATH": str(Path(__file__).parents[2])}
    found = Fleet(tmp_path, env, first, {box: tmp_path / "boxes" / box for box in BOXES}, {},
                  onnx=onnx)
    for box in BOXES:
        found.start(box)
    yield found
    found.stop()


def test_a_box_killed_mid_switch_serves_the_old_or_the_new_version_then_the_new(fleet, tmp_path):
    uri = fleet.env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(uri, uri)
    first = fleet.first
    fleet.deploy(f"{INT8}/{first}")
    fleet.wait_serving("bay-01", first)
    newer = republish(client, uri, tmp_path, first)
    fleet.deploy(f"{INT8}/{newer}")
    repo = fleet.repos["bay-01"]
    for delay in (1.2, 2.6):  # cut at two points of the switch (download, runtime)
        time.sleep(delay)
        fleet.kill("bay-01")
        served = served_version(repo, REPO_NAME, "ovms")
        assert served in (first, newer)
        count, problems = verify(repo)
        assert problems == [] and count >= 1
        assert foreign_files(repo) == []
        fleet.start("bay-01")
    fleet.wait_serving("bay-01", newer)
    box_runs(client, "attributes.status = 'RUNNING'",
             lambda runs: [r.data.tags[keys.SERVE_VERSION] for r in runs] == [str(newer)])
    assert fleet.fleet()["bay-01"]["health"] == "ok"


def box_runs(client: MlflowClient, where: str, done, box: str = "bay-01") -> list:
    """The box's deployment runs that match ``where`` once ``done(runs)`` holds."""
    deadline = time.monotonic() + 60
    while True:
        runs = client.search_runs([client.get_experiment_by_name(SITE).experiment_id],
                                  f"tags.`{keys.BOX}` = '{box}' and {where}")
        if done(runs):
            return runs
        assert time.monotonic() < deadline, [r.data.tags for r in runs]
        time.sleep(0.5)


def flip_a_byte(folder: Path) -> Path:
    """Flip one byte of the IR's weights under ``folder``."""
    [weights] = folder.rglob("*.bin")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    return weights


def test_a_box_refuses_a_damaged_registry_copy_repairs_its_own_and_moves_to_another_variant(
        fleet, tmp_path):
    uri = fleet.env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(uri, uri)
    first, repo = fleet.first, fleet.repos["bay-01"]
    fleet.deploy(f"{INT8}/{first}")
    fleet.wait_serving("bay-01", first)
    # a byte flipped in the registry's own copy: every download differs from the sha256s
    # registered with the version, so the box refuses it and serves on
    damaged = republish(client, uri, tmp_path, first)
    source = client.get_model_version(NAME, str(damaged)).source  # models:/m-<id>
    logged = client.get_logged_model(source.removeprefix("models:/"))
    flip_a_byte(Path(logged.artifact_location.removeprefix("file://")))
    fleet.deploy(f"{INT8}/{damaged}")
    [refusal] = box_runs(client, f"tags.`{keys.SERVE_VERSION}` = '{damaged}'", bool)
    assert refusal.info.status == "FAILED"
    assert "differ from the ones registered" in refusal.data.tags[keys.SERVE_REFUSED]
    assert served_version(repo, REPO_NAME, "ovms") == first
    # a byte flipped in the box's copy of a version it served before: downloaded again
    third = republish(client, uri, tmp_path, first)
    fleet.deploy(f"{INT8}/{third}")
    fleet.wait_serving("bay-01", third)
    flip_a_byte(repo / REPO_NAME / str(first))
    assert verify(repo)[1]
    fleet.deploy(f"{INT8}/{first}")  # a rollback to it
    fleet.wait_serving("bay-01", first)
    assert verify(repo) == (2, [])  # the versions beside the served one pruned but the last
    [back] = box_runs(client, f"tags.`{keys.SERVE_VERSION}` = '{first}' and "
                      "attributes.status = 'RUNNING'", bool)
    assert back.data.metrics[keys.CANARY_MATCHED] == 1.0
    assert back.data.metrics[keys.CANARY_SLOWDOWN] > 0  # timed against the one it replaced
    # moved to the ONNX variant: it serves before the OpenVINO one is unserved
    onnx_name = NAME.replace("openvino_int8", "onnxruntime_int8")
    fleet.deploy(f"{INT8.replace('openvino_int8', 'onnxruntime_int8')}/{fleet.onnx}")
    fleet.wait_serving("bay-01", fleet.onnx, name=onnx_name.replace(".", "_"))
    box_runs(client, f"tags.`{keys.SERVE_VERSION}` = '{first}' and "
             f"tags.`{keys.SERVE_MODEL}` = '{NAME}' and attributes.status = 'FINISHED'", bool)
    [ended] = box_runs(client, f"tags.`{keys.SERVE_MODEL}` = '{NAME}' and "
                       f"tags.`{keys.SERVE_REPLACED_BY}` LIKE '%onnxruntime_int8%'", bool)
    assert ended.data.tags[keys.SERVE_REPLACED_BY] == (
        f"{INT8.replace('openvino_int8', 'onnxruntime_int8')}/{fleet.onnx}")
    assert served_version(repo, REPO_NAME, "ovms") is None
    assert not (repo / REPO_NAME).exists()
    assert verify(repo) == (1, []) and foreign_files(repo) == []
    assert fleet.fleet()["bay-01"]["health"] == "ok"


def login(url: str, user: str, password: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    return {**base, "MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password, "PYTHONPATH": str(Path(__file__).parents[2])}


class Cuttable:
    """A TCP proxy on loopback to ``port``: the boxes' way to the server, which the test cuts
    (connections refused, open ones dropped) and restores, as a site's uplink goes away."""

    def __init__(self, port: int) -> None:
        self.port, self.up, self.open = port, threading.Event(), []
        self.up.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if not self.up.is_set():
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.port))
            self.open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.up.clear()
        for connection in self.open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.open.clear()


def test_on_a_team_server_the_fleet_rolls_out_rolls_back_is_walled_off_and_waits_out_an_outage(
        tiny_store, team_server, tmp_path, monkeypatch):
    from mlflow.utils.workspace_context import WorkspaceContext

    from tests.conftest import invoke

    first = int(candidate(tiny_store, "openvino", "int8").version)
    url, customer, tag = team_server.url, tiny_store.site["customer"], os.urandom(4).hex()
    people = {f"{role}-{tag}": f"{role}-pw-{os.urandom(6).hex()}"
              for role in ("mgr", "box", "eve")}
    mgr, box, eve = people
    uplink = Cuttable(int(url.rsplit(":", 1)[1]))
    fleet = Fleet(tmp_path, login(url, mgr, people[mgr]), first,
                  {name: tmp_path / "boxes" / name for name in BOXES}, {},
                  login(uplink.url, box, people[box]))
    try:
        admin = login(url, team_server.admin, team_server.admin_password)
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.setenv(key, admin[key])
        for name, password in people.items():
            monkeypatch.setenv("SITEML_NEW_USER_PASSWORD", password)
            assert invoke("access", "add-user", name)[0] == 0
        for name, role, where in ((mgr, "manager", customer), (box, "editor", customer),
                                  (eve, "manager", f"other-{tag}")):
            assert invoke("access", "grant", name, role, where)[0] == 0
        with WorkspaceContext(customer):
            target = MlflowClient(url, url)
            good = republish(tiny_store.client(), tiny_store.uri, tmp_path, first, target=target)
            broken = republish(tiny_store.client(), tiny_store.uri, tmp_path, first,
                               damage=True, target=target)
        path = str(site_file(tiny_store, tmp_path))
        for name in BOXES:
            fleet.start(name)
        done = fleet.siteml("rollout", f"{INT8}/{good}", "--site", path, "--rings", "1,100%",
                            "--poll", "0.5", "--ring-timeout", "120", "--json")
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout)
        assert (outcome["status"], outcome["rings"], outcome["moved"]) == (
            "finished", [1, 2], list(BOXES))
        for repo in fleet.repos.values():
            assert served_version(repo, REPO_NAME, "ovms") == good
            assert verify(repo) == (1, [])
            assert foreign_files(repo) == []
        rows = fleet.fleet()
        assert {name: (row["health"], row["serving"], row["desired"]) for name, row in
                rows.items()} == {name: ("ok", good, good) for name in BOXES}
        assert rows["bay-01"]["cameras"] == 6 and rows["bay-01"]["fps"] == 10
        # a variant whose weights detect otherwise than its canary: refused at the first ring
        done = fleet.siteml("rollout", f"{INT8}/{broken}", "--site", path, "--rings",
                            "1,100%", "--poll", "0.5", "--ring-timeout", "120", "--json")
        assert done.returncode == 1, done.stderr
        outcome = json.loads(done.stdout)
        assert outcome["status"] == "rolled_back" and outcome["moved"] == ["bay-01"]
        assert list(outcome["failed"]) == ["bay-01"]
        assert "refused it (canary:" in outcome["failed"]["bay-01"]
        assert {name: (row["health"], row["serving"], row["desired"]) for name, row in
                fleet.fleet().items()} == {name: ("ok", good, good) for name in BOXES}
        with WorkspaceContext(customer):
            [refusal] = target.search_runs(
                [target.get_experiment_by_name(SITE).experiment_id],
                f"tags.`{keys.SERVE_REFUSED}` LIKE 'canary:%' and "
                f"tags.`{keys.SERVE_VERSION}` = '{broken}'")
        assert (refusal.info.status, refusal.data.tags[keys.BOX]) == ("FAILED", "bay-01")
        assert refusal.data.metrics[keys.CANARY_MATCHED] < 1
        # another customer's manager sees none of these boxes and cannot move them
        assert fleet.fleet(env=login(url, eve, people[eve])) == {}
        done = fleet.siteml("deploy", f"{INT8}/{first}", "--box", "bay-01",
                            env=login(url, eve, people[eve]))
        assert done.returncode == 1, done.stderr
        assert f"user '{eve}' may not manage customer '{customer}'" in done.stderr
        # the boxes' uplink away for four intervals: they serve on, and report again after
        uplink.cut()
        time.sleep(4)
        assert all(process.poll() is None for process in fleet.agents.values())
        assert {row["health"] for row in fleet.fleet().values()} == {"stale"}
        uplink.up.set()
        deadline = time.monotonic() + 60
        while {row["health"] for row in fleet.fleet().values()} != {"ok"}:
            assert time.monotonic() < deadline, fleet.fleet()
            time.sleep(0.5)
        logs = "".join((tmp_path / f"{name}.log").read_text() for name in BOXES)
        assert "cycle failed, retrying" in logs
        assert not [p for p in people.values() if p in logs]
    finally:
        fleet.stop()
