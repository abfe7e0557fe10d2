"""``siteml run --ray``: a site's whole chain as one batch on a real two-node Ray cluster (CI's,
or one started here), logging to a real team server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import TINY_DEMO, free_port, needs, stop_process_group
from tests.ray_cluster import local_cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    """CI's cluster (SITEML_TEST_RAY_ADDRESS), else two nodes started here."""
    needs("ray", "cluster")
    given = os.environ.get("SITEML_TEST_RAY_ADDRESS")
    if given:
        yield given
        return
    with local_cluster(free_port(), stop_process_group) as address:
        yield address


@dataclass
class Chain:
    folder: Path
    customer: str
    user: str
    password: str


@pytest.fixture
def chain(tmp_path, team_server):
    """The demo site's train, quant and two benchmarks (pinned to box-a and box-b), tiny, for a
    customer no other test uses, and an editor of that customer."""
    from siteml.lifecycle.demo import DemoSize, prepare

    customer = f"ray-{uuid.uuid4().hex[:8]}"
    user, password = f"editor-{customer}", f"pw-{uuid.uuid4().hex}"
    admin = {**os.environ, "MLFLOW_TRACKING_URI": team_server.url,
             "MLFLOW_TRACKING_USERNAME": team_server.admin,
             "MLFLOW_TRACKING_PASSWORD": team_server.admin_password}
    for args, given in ((("add-user", user, "--password-stdin"), password),
                        (("grant", user, "editor", customer), None)):
        subprocess.run([sys.executable, "-m", "siteml", "access", *args], input=given,
                       env=admin, text=True, check=True, capture_output=True)
    paths = prepare(tmp_path / "demo", DemoSize(**{**TINY_DEMO, "epochs": 2}))
    for path in paths:
        data = yaml.safe_load(path.read_text().replace("acme-steel/", f"{customer}/"))
        data["site"] = {"customer": customer, "region": "ulsan", "plant": "plant1",
                        "zone": "welding"}
        if data["experiment_type"] == "infer":
            data["environment"]["host"] = "box-a" if data["version"] == "v1" else "box-b"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Chain(paths[0].parent, customer, user, password)


def siteml_on_ray(team_server, address: str, chain: Chain, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": team_server.url, "RAY_ADDRESS": address,
           "MLFLOW_TRACKING_USERNAME": chain.user, "MLFLOW_TRACKING_PASSWORD": chain.password}
    return subprocess.Popen([sys.executable, "-m", "siteml", "run", *args, "--ray", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def client_in(team_server, customer: str, monkeypatch) -> MlflowClient:
    """The admin's client in the customer's workspace (the registry named too: an earlier test
    of this process may have set MLflow's global registry URI)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", team_server.admin)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin_password)
    mlflow.set_workspace(customer)
    return MlflowClient(team_server.url, registry_uri=team_server.url)


def node_of_resource(address: str) -> dict[str, str]:
    """host:NAME -> the id of the node that holds it."""
    code = ("import json, ray; ray.init(logging_level='ERROR'); print(json.dumps({k: "
            "n['NodeID'] for n in ray.nodes() if n['Alive'] for k in n['Resources'] "
            "if k.startswith('host:')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "RAY_ADDRESS": address}).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_demo_site_as_one_batch_on_the_cluster(team_server, ray_cluster, chain,
                                                   monkeypatch):
    folder, customer = chain.folder, chain.customer
    proc = siteml_on_ray(team_server, ray_cluster, chain, str(folder))
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    rows = json.loads(out)
    names = [r["run_name"] for r in rows]
    assert names[0] == "ppe-yolov11n-train-v1"
    assert names.index("ppe-yolov11n-quant-v1") < names.index("ppe-yolov11n-infer-v2")
    assert all(r["status"] == "FINISHED" for r in rows), rows
    for secret in (chain.password,):
        assert secret not in out + err
        for log in Path("/tmp/ray").glob("session_*/logs/**/*"):
            assert not log.is_file() or secret not in log.read_text(errors="replace"), log

    client = client_in(team_server, customer, monkeypatch)
    try:
        experiment = client.get_experiment_by_name(f"{customer}/ulsan-plant1/welding")
        runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
        assert set(runs) == set(names)
        nodes = node_of_resource(ray_cluster)
        assert runs["ppe-yolov11n-infer-v1"].data.tags["ray.node_id"] == nodes["host:box-a"]
        assert runs["ppe-yolov11n-infer-v2"].data.tags["ray.node_id"] == nodes["host:box-b"]
        assert all(r.data.tags["ray.job_id"] and r.data.tags["ray.task_id"]
                   for r in runs.values())
        train, quant = runs["ppe-yolov11n-train-v1"], runs["ppe-yolov11n-quant-v1"]
        assert quant.data.tags["source.run_id"] == train.info.run_id
        assert runs["ppe-yolov11n-infer-v2"].data.tags["source.run_id"] == quant.info.run_id
        assert train.info.end_time <= quant.info.start_time
        assert quant.info.end_time <= runs["ppe-yolov11n-infer-v2"].info.start_time

        proc = siteml_on_ray(team_server, ray_cluster, chain, str(folder))
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert [r["status"] for r in json.loads(out)] == ["SKIPPED"] * len(rows)
        assert len(client.search_runs([experiment.experiment_id])) == len(rows)
        model = f"{customer}.ulsan-plant1.welding.ppe"
        assert len(client.search_model_versions(f"name = '{model}'")) == 1
    finally:
        import mlflow

        mlflow.set_workspace(None)


def test_a_killed_worker_is_retried_and_its_run_reaped(team_server, ray_cluster, chain,
                                                       monkeypatch):
    folder, customer = chain.folder, chain.customer
    train = folder / "ppe-yolov11n-train-v1.yaml"
    data = yaml.safe_load(train.read_text())
    data["training"]["epochs"] = 6
    train.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = siteml_on_ray(team_server, ray_cluster, chain, str(train))
    client = client_in(team_server, customer, monkeypatch)
    try:
        site = f"{customer}/ulsan-plant1/welding"
        deadline, victim = time.monotonic() + 300, None
        while victim is None and time.monotonic() < deadline:
            experiment = client.get_experiment_by_name(site)
            running = client.search_runs([experiment.experiment_id],
                                         "attributes.status = 'RUNNING'") if experiment else []
            if running and "time/epoch_s" in running[0].data.metrics:
                victim = running[0]
            time.sleep(1)
        assert victim is not None, "the training never logged an epoch"
        os.kill(int(victim.data.tags["siteml.pid"]), signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        assert [r["status"] for r in json.loads(out)] == ["FINISHED"]
        runs = client.search_runs([experiment.experiment_id])
        assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
        dead = client.get_run(victim.info.run_id)
        assert dead.info.status == "KILLED"
        assert "worker died" in dead.data.tags["siteml.reaped"]
        model = f"{customer}.ulsan-plant1.welding.ppe"
        assert len(client.search_model_versions(f"name = '{model}'")) == 1
    finally:
        import mlflow

        mlflow.set_workspace(None)
        if proc.poll() is None:
            proc.kill()
