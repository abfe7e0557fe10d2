"""`siteml server migrate` on a real store from before workspaces (sqlite): a dry run changes
nothing, --apply moves each customer's experiments and models into its workspace with MLflow's
own move, a second run finds nothing left, and a tag that cannot name a workspace moves
nothing."""

import json
import sqlite3

import pytest
from mlflow import MlflowClient


def workspaces_of(uri: str) -> dict[str, str]:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as db:
        return dict(db.execute("select name, workspace from experiments union all "
                               "select name, workspace from registered_models").fetchall())


@pytest.fixture
def old_store(sqlite_uri) -> str:
    """Two customers' site experiments (with a run) and models, and an untagged experiment."""
    client = MlflowClient(sqlite_uri, sqlite_uri)
    for customer in ("acme-steel", "donghwa-entec"):
        experiment = client.create_experiment(f"{customer}/ulsan-plant1/welding",
                                              tags={"site.customer": customer})
        client.set_terminated(client.create_run(experiment).info.run_id)
        client.create_registered_model(f"{customer}.ulsan-plant1.welding.ppe",
                                       tags={"site.customer": customer})
    client.create_experiment("scratch")
    return sqlite_uri


def test_a_dry_run_then_apply_moves_each_customer_into_its_workspace(cli, old_store):
    before = workspaces_of(old_store)
    code, out, err = cli("server", "migrate", old_store, "--json")
    assert code == 0, err
    planned = json.loads(out)
    assert planned["applied"] is False
    assert [(c["customer"], c["experiments"], c["registered_models"], c["created_workspace"])
            for c in planned["customers"]] == [
        ("acme-steel", ["acme-steel/ulsan-plant1/welding"],
         ["acme-steel.ulsan-plant1.welding.ppe"], True),
        ("donghwa-entec", ["donghwa-entec/ulsan-plant1/welding"],
         ["donghwa-entec.ulsan-plant1.welding.ppe"], True)]
    assert workspaces_of(old_store) == before, "a dry run changes nothing"
    code, out, err = cli("server", "migrate", old_store, "--apply", "--json")
    assert code == 0, err
    assert [c["customer"] for c in json.loads(out)["customers"]] == ["acme-steel",
                                                                     "donghwa-entec"]
    assert workspaces_of(old_store) == {
        "Default": "default", "scratch": "default",
        "acme-steel/ulsan-plant1/welding": "acme-steel",
        "acme-steel.ulsan-plant1.welding.ppe": "acme-steel",
        "donghwa-entec/ulsan-plant1/welding": "donghwa-entec",
        "donghwa-entec.ulsan-plant1.welding.ppe": "donghwa-entec"}
    code, out, err = cli("server", "migrate", old_store, "--apply", "--json")
    assert code == 0 and json.loads(out)["customers"] == [], err


def test_a_customer_tag_that_cannot_name_a_workspace_moves_nothing(cli, old_store):
    MlflowClient(old_store).create_experiment("x/y-z/w", tags={"site.customer": "api"})
    before = workspaces_of(old_store)
    code, _, err = cli("server", "migrate", old_store, "--apply")
    assert code == 2 and "'api' is a name MLflow reserves" in err and "nothing was moved" in err
    assert workspaces_of(old_store) == before
