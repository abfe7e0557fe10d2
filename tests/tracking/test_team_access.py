"""Customers walled off on a real team server (`siteml server start`: basic-auth, workspaces):
alice, editor of customer A, trains and registers there; bob, viewer of customer B, sees none
of it through siteml or through MLflow's REST API and artifact proxy with his own credentials;
the admin sees both; a revoked role ends on the next call; no password is recorded."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.utils.workspace_context import WorkspaceContext

import siteml.pipelines.train
from siteml.data.synth import synthesize
from tests.conftest import TeamServer
from tests.scenario.test_runner import fake_train

pytestmark = pytest.mark.slow  # starts a server


@dataclass
class Person:
    name: str
    password: str

    def env(self, monkeypatch, url: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", self.name)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", self.password)


@dataclass
class Customers:
    """Customer A with alice's registered training run; customer B where bob is viewer."""

    server: TeamServer
    admin: Person
    alice: Person
    bob: Person
    a: str
    b: str
    run_id: str
    experiment_id: str
    model: str
    scenario_b: Path
    outputs: str
    """Everything the set-up commands printed."""


def site(customer: str) -> dict:
    return {"customer": customer, "region": "ulsan", "plant": "plant1", "zone": "welding"}


def scenario(root: Path, customer: str, data: Path, md5: str) -> Path:
    path = root / f"train-{customer}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "version": "v1", "experiment_type": "train", "site": site(customer),
        "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
        "model": {"architecture": "yolov11n", "input_size": 64, "num_classes": 3},
        "environment": {"device": "cpu", "seed": 0},
        "dataset": {"version": "tiny", "dvc_hash": md5, "path": str(data), "image_count": 24},
        "training": {"epochs": 1, "batch": 8, "workers": 0}}))
    return path


def as_person(person: Person, url: str, *args: str) -> tuple[int, str, str]:
    from tests.conftest import invoke

    with pytest.MonkeyPatch.context() as mp:
        person.env(mp, url)
        return invoke(*args)


@pytest.fixture(scope="module")
def customers(team_server, tmp_path_factory) -> Customers:
    tag = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("customers")
    admin = Person(team_server.admin, team_server.admin_password)
    alice, bob = Person(f"alice-{tag}", f"alice-pw-{tag}!"), Person(f"bob-{tag}", f"bob-pw-{tag}!!")
    a, b = f"cust-a-{tag}", f"cust-b-{tag}"
    outputs = []
    for person in (alice, bob):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SITEML_NEW_USER_PASSWORD", person.password)
            code, out, err = as_person(admin, team_server.url, "access", "add-user", person.name)
        assert code == 0, err
        outputs.append(out + err)
    for user, role, customer in ((alice, "editor", a), (bob, "viewer", b)):
        code, out, err = as_person(admin, team_server.url, "access", "grant", user.name, role,
                                   customer)
        assert code == 0, err
        outputs.append(out + err)
    data = root / "data"
    md5 = synthesize(data, ["helmet", "vest", "person"], {"train": 16, "val": 8}, imgsz=64,
                     seed=1).md5
    with pytest.MonkeyPatch.context() as mp:  # a stand-in training: access is what is tested
        mp.setattr(siteml.pipelines.train, "run", fake_train)
        code, out, err = as_person(alice, team_server.url, "run",
                                   str(scenario(root, a, data, md5)), "--json")
    assert code == 0, err
    outputs.append(out + err)
    outcome = json.loads(out)
    return Customers(team_server, admin, alice, bob, a, b, outcome["run_id"],
                     outcome["experiment_id"], outcome["registered_model"],
                     scenario(root, b, data, md5), "\n".join(outputs))


def get(server: TeamServer, person: Person | None, endpoint: str, workspace: str,
        **params: str) -> tuple[int, dict]:
    """A raw GET of MLflow's REST API (or artifact proxy) as ``person`` in ``workspace``; a
    POST of the parameters as JSON for an endpoint that takes only that (``runs/search``)."""
    post = endpoint.endswith("/runs/search")
    query = f"?{urllib.parse.urlencode(params)}" if params and not post else ""
    request = urllib.request.Request(
        f"{server.url}{endpoint}{query}", headers={"X-MLFLOW-WORKSPACE": workspace,
                                                   "Content-Type": "application/json"},
        data=json.dumps({k: [v] for k, v in params.items()}).encode() if post else None)
    if person is not None:
        basic = base64.b64encode(f"{person.name}:{person.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            try:
                return response.status, json.loads(body or b"{}")
            except ValueError:
                return response.status, {"bytes": len(body)}
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def probes(c: Customers) -> list[tuple[str, str, dict[str, str]]]:
    """(family, path, query) of every read of customer A's experiment, run, metrics,
    artifacts, model, version and alias."""
    _, found = get(c.server, c.admin, "/api/2.0/mlflow/runs/get", c.a, run_id=c.run_id)
    artifact_root = found["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    _, listed = get(c.server, c.admin, "/api/2.0/mlflow/artifacts/list", c.a, run_id=c.run_id)
    first = next(f["path"] for f in listed["files"] if not f["is_dir"])
    api = "/api/2.0/mlflow"
    return [
        ("experiments", f"{api}/experiments/get", {"experiment_id": c.experiment_id}),
        ("experiments", f"{api}/experiments/get-by-name",
         {"experiment_name": f"{c.a}/ulsan-plant1/welding"}),
        ("search", f"{api}/experiments/search", {"max_results": "100"}),
        ("runs", f"{api}/runs/get", {"run_id": c.run_id}),
        ("search", f"{api}/runs/search", {"experiment_ids": c.experiment_id}),
        ("metrics", f"{api}/metrics/get-history", {"run_id": c.run_id, "metric_key": "val/map50"}),
        ("artifacts", f"{api}/artifacts/list", {"run_id": c.run_id}),
        ("artifacts", f"/api/2.0/mlflow-artifacts/artifacts/{artifact_root}/{first}", {}),
        ("artifacts", "/api/2.0/mlflow-artifacts/artifacts", {"path": artifact_root}),
        ("registered models", f"{api}/registered-models/get", {"name": c.model}),
        ("search", f"{api}/registered-models/search", {}),
        ("versions", f"{api}/model-versions/get", {"name": c.model, "version": "1"}),
        ("search", f"{api}/model-versions/search", {"filter": f"name='{c.model}'"}),
        ("aliases", f"{api}/registered-models/alias", {"name": c.model, "alias": "candidate"}),
    ]


def leaked(status: int, body: dict) -> bool:
    """Whether an answer shows anything: a 200 with content (an empty search shows nothing)."""
    return status == 200 and any(body.get(k) for k in body if k != "next_page_token")


def test_alice_registered_in_her_customer(customers):
    c = customers
    status, body = get(c.server, c.alice, "/api/2.0/mlflow/registered-models/alias", c.a,
                       name=c.model, alias="candidate")
    assert status == 200 and body["model_version"]["version"] == "1"


def test_bob_sees_nothing_of_customer_a_over_raw_http(customers):
    tried = [(family, path, get(customers.server, customers.bob, path, workspace, **query))
             for family, path, query in probes(customers)
             for workspace in (customers.a, customers.b, "default")]
    shown = [(family, path, status) for family, path, (status, body) in tried
             if leaked(status, body)]
    assert shown == []
    assert len(tried) == 42
    # the same probes as the admin do find it: they are not probing nothing
    missed = [(path, status) for _, path, query in probes(customers)
              if (status := get(customers.server, customers.admin, path, customers.a,
                                **query)[0]) != 200]
    assert missed == []


def test_bob_sees_nothing_of_customer_a_through_siteml(customers):
    c = customers
    code, out, err = as_person(c.bob, c.server.url, "models", "--json")
    assert code == 0, err
    assert not [m for m in json.loads(out) if m["site"].startswith(c.a)]
    code, out, err = as_person(c.bob, c.server.url, "runs", "--json")
    assert code == 0 and not [r for r in json.loads(out) if r["site"].startswith(c.a)], err
    code, out, _ = as_person(c.bob, c.server.url, "runs", "--site",
                             f"{c.a}/ulsan-plant1/welding", "--json")
    assert code in (0, 1) and c.run_id not in out
    code, _, err = as_person(c.bob, c.server.url, "promote",
                             f"{c.a}/ulsan-plant1/welding/ppe/1", "champion")
    assert code == 1
    assert f"user {c.bob.name!r} may not manage customer {c.a!r}" in err
    assert "manager role" in err


def test_bob_cannot_write_in_his_own_customer_as_viewer(customers):
    c = customers
    code, _, err = as_person(c.bob, c.server.url, "run", str(c.scenario_b))
    assert code == 1
    assert f"user {c.bob.name!r} may not write to customer {c.b!r}" in err
    assert "editor role" in err and c.bob.password not in err
    status, body = get(c.server, c.admin, "/api/2.0/mlflow/experiments/search", c.b,
                       max_results="10")
    assert status == 200 and not body.get("experiments"), "nothing written in B"


def test_the_admin_sees_both_customers(customers):
    c = customers
    code, out, err = as_person(c.admin, c.server.url, "models", "--json")
    assert code == 0, err
    assert c.model.rsplit(".", 1)[0].replace(".", "/") in {m["site"] for m in json.loads(out)}
    code, out, err = as_person(c.admin, c.server.url, "access", "list", "--json")
    assert code == 0, err
    grants = {(g["user"], g["role"], g["customer"]) for g in json.loads(out)}
    assert {(c.alice.name, "editor", c.a), (c.bob.name, "viewer", c.b)} <= grants


def test_a_revoked_role_ends_on_the_next_call_with_what_the_user_created(customers):
    from mlflow import MlflowClient

    c = customers
    carol = Person(f"carol-{uuid.uuid4().hex[:8]}", f"carol-pw-{uuid.uuid4().hex[:8]}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SITEML_NEW_USER_PASSWORD", carol.password)
        assert as_person(c.admin, c.server.url, "access", "add-user", carol.name)[0] == 0
    assert as_person(c.admin, c.server.url, "access", "grant", carol.name, "editor", c.a)[0] == 0
    with pytest.MonkeyPatch.context() as mp, WorkspaceContext(c.a):
        carol.env(mp, c.server.url)
        made = MlflowClient(c.server.url).create_experiment(f"carol-{uuid.uuid4().hex[:6]}")
    for experiment_id in (c.experiment_id, made):
        assert get(c.server, carol, "/api/2.0/mlflow/experiments/get", c.a,
                   experiment_id=experiment_id)[0] == 200
    code, out, err = as_person(c.admin, c.server.url, "access", "revoke", carol.name, "editor",
                               c.a, "--json")
    assert code == 0 and json.loads(out)["outcome"] == "revoked", err
    for experiment_id in (c.experiment_id, made):  # her own experiment too
        assert get(c.server, carol, "/api/2.0/mlflow/experiments/get", c.a,
                   experiment_id=experiment_id)[0] == 403


def test_no_password_reaches_the_store_the_artifacts_or_the_output(customers, tmp_path):
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    c = customers
    passwords = [c.admin.password, c.alice.password, c.bob.password]
    with pytest.MonkeyPatch.context() as mp, WorkspaceContext(c.a):
        c.admin.env(mp, c.server.url)
        client = MlflowClient(c.server.url)
        run = client.get_run(c.run_id)
        versions = client.search_model_versions(f"name = '{c.model}'")
        folder = download_artifacts(run_id=c.run_id, dst_path=str(tmp_path / "artifacts"))
    recorded = json.dumps([run.data.params, run.data.tags, run.info.artifact_uri,
                           [v.tags for v in versions], [v.source for v in versions]])
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    assert {"scenario.yaml", "dataset_profile.json"} <= {p.name for p in files}
    texts = [recorded, c.outputs] + [p.read_bytes().decode("utf-8", "replace") for p in files
                                     if p.stat().st_size < 5_000_000]
    assert not [p for p in passwords for text in texts if p in text]


@pytest.mark.parametrize(("args", "message"), [
    (("grant", "nobody-here", "viewer", "cust-x"), "no user 'nobody-here'"),
    (("grant", "admin", "viewer", "api"), "reserves for its workspaces"),
    (("grant", "admin", "viewer", "a"), "at least 2"),
    (("grant", "admin", "owner", "cust-x"), "use one of viewer, editor, manager"),
    (("revoke", "admin", "viewer", "never-made-customer"), "has no workspace"),
])
def test_bad_access_input_is_exit_2(team_server, args, message):
    admin = Person(team_server.admin, team_server.admin_password)
    code, _, err = as_person(admin, team_server.url, "access", *args)
    assert code == 2 and message in err


def test_wrong_credentials_are_exit_1_naming_the_user_not_the_password(team_server):
    mallory = Person("admin", "not-the-admin-password")
    for args in (("access", "list"), ("models",), ("runs",)):
        code, out, err = as_person(mallory, team_server.url, *args)
        assert code == 1 and "refused the credentials of 'admin'" in err, args
        assert mallory.password not in out + err


def test_credentials_in_the_uri_are_named_by_user_only(team_server, monkeypatch):
    from tests.conftest import invoke

    parts = urllib.parse.urlsplit(team_server.url)
    secret = "not-the-admin-password"
    url = parts._replace(netloc=f"admin:{secret}@{parts.netloc}").geturl()
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    code, out, err = invoke("models")
    assert code == 1 and "refused the credentials of 'admin'" in err, err
    assert secret not in out + err


def test_ui_links_open_the_customers_workspace(customers):
    c = customers
    where = site(c.a)
    site_path = f"{c.a}/{where['region']}-{where['plant']}/{where['zone']}"
    code, out, err = as_person(c.alice, c.server.url, "ui", "--site", site_path, "--json")
    assert code == 0, err
    links = json.loads(out)["links"]
    assert links["runs"].startswith(f"{c.server.url}/#/experiments/{c.experiment_id}/runs?")
    assert all(link.endswith(f"&workspace={c.a}") for link in links.values()), links
