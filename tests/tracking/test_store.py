"""Where runs are stored, a dead server, credentials, SIGTERM, and `siteml ui`."""

import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

import siteml.pipelines.train
from siteml.core.secrets import redact
from siteml.tracking.store import resolve_store
from tests.conftest import free_port, stop_process_group, wait_healthy
from tests.scenario.test_runner import fake_train

HERE = Path(__file__).parent


def test_default_store_is_sqlite_in_cwd_with_artifacts_beside_it(cli, site_scenario, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert resolve_store().tracking_uri == f"sqlite:///{work}/mlflow.db"
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert (work / "mlflow.db").is_file()
    assert list((work / "mlartifacts").rglob(f"{run_id}/artifacts/scenario.yaml"))
    assert not (work / "mlruns").exists()
    # from another folder, the same store (named by path) still finds its artifacts
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work}/mlflow.db")
    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    assert Path(client.download_artifacts(run_id, "scenario.yaml")).is_file()


def test_dead_server_fails_fast_and_writes_nothing(cli, site_scenario, tmp_path, monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    code, _, err = cli("run", str(site_scenario.path))
    assert code == 1, err
    assert "is not reachable" in err and "nothing was recorded" in err
    assert "Traceback" not in err
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("command", [
    ["models"], ["models", "--history", "--json"], ["runs"], ["best", "ab/b-c/d", "--task", "ppe"],
    ["compare", "ab/b-c/d", "--task", "ppe", "--json"], ["promote", "ab/b-c/d/ppe/1", "champion"],
    ["ui", "--json"], ["access", "list"], ["access", "grant", "bob", "viewer", "acme"]])
def test_every_command_keeps_credentials_out_of_its_errors(cli, monkeypatch, command):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:s3cret-pw@127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-probe")
    code, out, err = cli(*command)
    assert code == 1
    assert "is not reachable" in err and "http://***@127.0.0.1:" in err
    assert not any(secret in out + err for secret in ("s3cret-pw", "hunter2-probe", "alice"))


def test_redaction_masks_uri_credentials_and_secret_variables(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123456")
    text = "request to https://bob:p%40ss@host:5000/api failed; token tok-123456; mail a@b.c"
    assert redact(text) == "request to https://***@host:5000/api failed; token ***; mail a@b.c"


@pytest.mark.slow
def test_credentials_and_environment_never_reach_the_store(cli, mlflow_server, site_scenario,
                                                           monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    parts = urllib.parse.urlsplit(mlflow_server)
    secret_uri = f"{parts.scheme}://alice:s3cret-pw@{parts.netloc}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", secret_uri)
    monkeypatch.setenv("SITEML_PROBE_TOKEN", "hunter2-probe")
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    secrets = ("s3cret-pw", "hunter2-probe", "SITEML_PROBE_TOKEN")
    assert not any(s in out + err for s in secrets)
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(json.loads(out)["run_id"])
    version = client.get_model_version_by_alias(site_scenario.model_name, "candidate")
    texts = [*run.data.tags.items(), *run.data.params.items(), *version.tags.items()]
    local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "a")))
    texts += [p.read_text(errors="replace") for p in local.rglob("*") if p.is_file()]
    assert not [t for t in map(str, texts) if any(s in t for s in secrets)]
    assert redact(secret_uri) == f"http://***@{parts.netloc}"


@pytest.mark.slow
def test_sigterm_marks_the_run_killed(store_uri, site_scenario):
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "tests.standins", "until-killed",
                             str(site_scenario.path)], env=env, cwd=HERE.parents[1],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "pipeline started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "marked KILLED" in err
    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name(site_scenario.site)
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED"


@pytest.mark.slow
@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_ui_serves_the_store_and_its_artifacts(cli, store_uri, site_scenario, monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "siteml", "ui", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        query = urllib.parse.urlencode({"experiment_name": site_scenario.site})
        with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get-by-name?{query}") as r:
            assert json.load(r)["experiment"]["name"] == site_scenario.site
        query = urllib.parse.urlencode({"path": "scenario.yaml", "run_uuid": run_id})
        with urllib.request.urlopen(f"{url}/get-artifact?{query}") as r:
            assert b"customer: " + site_scenario.customer.encode() in r.read()
    finally:
        stop_process_group(proc)
