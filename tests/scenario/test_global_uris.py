"""siteml names its store on every MLflow call: registering, resolving and downloading models
leave MLflow's process-wide tracking and registry URIs (and their environment variables) as
they were, and reach the named store even where MLflow itself reads those URIs."""

import os

import mlflow

from siteml.lifecycle.options import RunOptions
from siteml.lifecycle.run import run_scenario
from siteml.tracking.store import resolve_store
from tests.scenario.test_runner import as_quant, client_for


def test_runs_leave_mlflow_global_uris_as_they_were(cli, site_scenario, sqlite_uri, pipelines,
                                                    monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    elsewhere = tmp_path / "elsewhere"  # MLflow's default store would be here
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    defaults = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    assert sqlite_uri not in defaults

    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)  # store A, as a user names it
    code, _, err = cli("run", str(site_scenario.path))  # registers
    assert code == 0, err
    assert os.environ["MLFLOW_TRACKING_URI"] == sqlite_uri
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == defaults

    # store A named only by the caller: resolves, downloads and registers there all the same
    quant = site_scenario.path.with_name("quant.yaml")
    quant.write_text(as_quant(site_scenario.path.read_text()))
    store = resolve_store({"MLFLOW_TRACKING_URI": sqlite_uri})
    assert run_scenario(quant, RunOptions(store=store)).status == "FINISHED"
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == defaults
    assert not {"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"} & set(os.environ)
    assert list(elsewhere.iterdir()) == []
    client = client_for(sqlite_uri)
    for name in (site_scenario.model_name, f"{site_scenario.model_name}__openvino_int8"):
        assert int(client.get_model_version_by_alias(name, "candidate").version) == 1
