"""models / promote / runs / best, ModelRef resolution, and the registry under concurrency."""

import getpass
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

import siteml.pipelines.train
from siteml.tracking.model_register import set_alias
from tests.conftest import SiteScenario, invoke, make_site_scenario
from tests.scenario.test_runner import fake_train

GATE = "training.gate={min: {map50: 0.5}, min_per_class: {recall: {helmet: 0.6}}}"


def train_twice(site: SiteScenario) -> SiteScenario:
    """Two training runs of one site: v2 passes a gate (version 1 of its ppe model), v3 has
    none (version 2, never scored); stand-in trainings, on the store the environment names."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(siteml.pipelines.train, "run", fake_train)
        for version, gate in (("v2", ["--set", GATE]), ("v3", [])):
            code, _, err = invoke("run", str(site.path), "--set", f"version={version}", *gate)
            assert code == 0, err
    return site


@pytest.fixture(scope="module")
def trained_sqlite(empty_store, tmp_path_factory) -> tuple[Path, SiteScenario]:
    """``train_twice`` into an embedded store once per module: its database, and the site."""
    root = tmp_path_factory.mktemp("trained")
    database = root / "store" / "mlflow.db"
    database.parent.mkdir()
    shutil.copyfile(empty_store, database)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
        return database, train_twice(make_site_scenario(root))


@pytest.fixture
def trained(store_uri, site_scenario, request) -> SiteScenario:
    """``train_twice`` on this test's store: a copy of ``trained_sqlite``'s database (its
    artifacts stay beside the original), or the runs made now on a server."""
    if store_uri.startswith("sqlite:"):
        database, site = request.getfixturevalue("trained_sqlite")
        shutil.copyfile(database, store_uri.removeprefix("sqlite:///"))
        return site
    return train_twice(site_scenario)


def test_models_tree_json_and_text(cli, trained):
    code, out, _ = cli("models", "--site", trained.site, "--json")
    assert code == 0
    [entry] = json.loads(out)
    assert (entry["site"], entry["task"], entry["variant"]) == (trained.site, "ppe", None)
    assert entry["path"] == f"{trained.site}/ppe"
    assert [v["version"] for v in entry["versions"]] == [2, 1]
    assert entry["versions"][0]["aliases"] == ["candidate"]
    assert entry["versions"][0]["metrics"] == {"val/map50_95": "0.61"}
    assert [v["gate"] for v in entry["versions"]] == [None, "passed"]
    code, out, _ = cli("models", "--site", trained.site)
    assert code == 0
    assert trained.site in out and "v2" in out and "@candidate" in out
    assert "gate passed" in out and "no gate" in out


def test_models_task_filter_and_bad_site(cli, trained):
    code, out, _ = cli("models", "--site", trained.site, "--task", "fire", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, _, err = cli("models", "--site", "Bad/Site")
    assert code == 2
    assert "customer/region-plant/zone" in err


def test_promote_champion_checks_the_gate_and_keeps_a_history(cli, store_uri, trained):
    code, out, err = cli("promote", f"{trained.site}/ppe/1", "champion", "--json")
    assert code == 0, err
    assert json.loads(out) == {"name": trained.model_name, "path": f"{trained.site}/ppe",
                               "version": 1, "alias": "champion", "previous": None,
                               "forced_past": None}
    code, _, err = cli("promote", f"models:/{trained.model_name}@candidate", "champion")
    assert code == 1
    assert f"{trained.site}/ppe/2 cannot become @champion" in err and "never scored" in err
    assert "--force" in err
    code, out, err = cli("promote", f"models:/{trained.model_name}@candidate", "champion",
                         "--force")
    assert code == 0, err
    assert out.strip() == f"{trained.site}/ppe@champion -> version 2 (was 1)"
    assert "forced past its gate: it was never scored" in err
    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    aliases = client.get_registered_model(trained.model_name).aliases
    assert {a: int(v) for a, v in aliases.items()} == {"candidate": 2, "champion": 2}
    forced = json.loads(client.get_model_version(trained.model_name, "2").tags[
        "siteml.gate_forced"])
    assert forced["by"] == getpass.getuser() and "never scored" in forced["problem"]
    code, out, _ = cli("models", "--site", trained.site, "--history", "--json")
    moves = [{k: m[k] for k in ("model", "alias", "from", "to", "by", "forced")}
             for m in json.loads(out)]
    assert moves == [
        {"model": f"{trained.site}/ppe", "alias": "champion", "from": None, "to": 1,
         "by": getpass.getuser(), "forced": False},
        {"model": f"{trained.site}/ppe", "alias": "champion", "from": 1, "to": 2,
         "by": getpass.getuser(), "forced": True}]
    code, out, _ = cli("models", "--site", trained.site, "--history")
    assert code == 0 and "champion" in out and "yes" in out
    code, _, _ = cli("promote", f"{trained.site}/ppe/2", "staging")
    assert code == 0, "only champion is gated"


def test_a_refused_model_fails_its_run_and_registers_nothing(cli, store_uri, site_scenario,
                                                            monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    code, _, err = cli("run", str(site_scenario.path), "--set",
                       "training.gate={min: {map50: 0.9}, min_per_class: {recall: {vest: 0.5}}}")
    assert code == 1
    assert "map50 is 0.8000, below 0.9" in err
    assert "vest recall: not scored (val has no 'vest' boxes), needs >= 0.5" in err
    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    [run] = client.search_runs([client.get_experiment_by_name(site_scenario.site).experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["siteml.gate"] == "refused"
    assert "map50 is 0.8000" in run.data.tags["siteml.gate_reasons"]
    assert run.data.params["gate.min.map50"] == "0.9"
    assert client.search_registered_models(f"name = '{site_scenario.model_name}'") == []


@pytest.mark.parametrize(("ref", "words"), [
    ("{site}/ppe/9", "has no version 9 (latest: 2)"),
    ("{site}/ppe@prod", "has no alias @prod (aliases: @candidate -> v2)"),
    ("{site}/fire@champion", "no registered model"),
    ("{site}/ppe", "names no version"),
])
def test_promote_missing_reference_is_exit_2(cli, trained, ref, words):
    code, _, err = cli("promote", ref.format(site=trained.site), "champion")
    assert code == 2
    assert words in err


def test_runs_and_best(cli, trained):
    code, out, _ = cli("runs", "--site", trained.site, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["run_name"] for r in rows] == ["ppe-yolov11l-train-v3", "ppe-yolov11l-train-v2"]
    assert all(r["status"] == "FINISHED" and r["type"] == "train" for r in rows)
    assert rows[0]["metrics"]["val/map50_95"] == pytest.approx(0.61)
    code, out, _ = cli("best", trained.site, "--task", "ppe", "--json")
    assert code == 0
    best = json.loads(out)
    assert best["value"] == pytest.approx(0.61)
    assert best["model_version"] in {f"{trained.model_name}/1", f"{trained.model_name}/2"}
    code, out, _ = cli("runs", "--site", trained.site)
    assert code == 0 and "FINISHED" in out


def test_runs_filters_by_task_type_and_status(cli, trained):
    code, out, _ = cli("runs", "--site", trained.site, "--type", "train", "--task", "ppe",
                       "--status", "FINISHED", "--json")
    assert code == 0
    assert [r["run_name"] for r in json.loads(out)] == ["ppe-yolov11l-train-v3",
                                                        "ppe-yolov11l-train-v2"]
    for args in (["--type", "infer"], ["--task", "fire"], ["--status", "FAILED"]):
        code, out, _ = cli("runs", "--site", trained.site, *args, "--json")
        assert (code, json.loads(out)) == (0, [])
    for args, allowed in ((["--type", "benchmark"], "train, quant, infer, mine, compare"),
                          (["--task", "helmet"], "ppe, fall, fire, collision, stuck"),
                          (["--status", "done"], "RUNNING, FINISHED, FAILED, KILLED")):
        code, _, err = cli("runs", *args)
        assert code == 2 and f"use one of {allowed}" in err
    code, _, err = cli("best", trained.site, "--task", "ppe'")
    assert code == 2 and "--task" in err


def test_read_commands_do_not_create_a_store(cli, tmp_path, monkeypatch):
    database = tmp_path / "none" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    for args in (["models", "--json"], ["runs", "--json"]):
        code, out, _ = cli(*args)
        assert (code, json.loads(out)) == (0, [])
    code, _, err = cli("promote", "ab/b-c/d/ppe/1", "champion")
    assert code == 2
    assert "no registered models yet" in err
    assert not database.exists()


@pytest.mark.slow
def test_concurrent_registration_on_the_server(mlflow_server, tmp_path, site_scenario):
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    helper = Path(__file__).with_name("register_many.py")
    procs = [subprocess.Popen([sys.executable, str(helper), site_scenario.site, str(w), "5"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in results]
    printed = sorted(int(v) for out, _ in results for v in out.split())
    assert printed == list(range(1, 21))
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    versions = client.search_model_versions(f"name = '{site_scenario.model_name}'")
    assert sorted(int(v.version) for v in versions) == list(range(1, 21))
    assert len({(v.tags["worker"], v.tags["i"]) for v in versions}) == 20
    candidate = client.get_model_version_by_alias(site_scenario.model_name, "candidate")
    assert int(candidate.version) in range(1, 21)
    aliases = client.get_registered_model(site_scenario.model_name).aliases
    assert {a: int(v) for a, v in aliases.items()} == {"candidate": int(candidate.version)}


def set_alias_at_once(uri: str, name: str, versions: list[str]) -> list[Exception]:
    """One thread (with its own client) per version sets ``candidate`` at the same moment;
    returns what they raised."""
    start, errors = threading.Barrier(len(versions)), []

    def point(version: str) -> None:
        own = MlflowClient(tracking_uri=uri, registry_uri=uri)
        start.wait()
        try:
            set_alias(own, name, "candidate", version)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=point, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_processes_setting_a_new_alias_at_once_all_succeed(sqlite_uri):
    """MLflow reads an alias, then inserts or updates it: racing first inserts collide on the
    unique key (about one round in three here without the retry)."""
    uri = sqlite_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for round_number in range(20):
        name = f"race-{round_number}"
        client.create_registered_model(name)
        versions = [client.create_model_version(name, source="file:///nowhere").version
                    for _ in range(4)]
        assert set_alias_at_once(uri, name, versions) == []
        assert client.get_registered_model(name).aliases["candidate"] in versions


def test_mlflow_errors_are_one_clear_line_on_every_store(cli, trained):
    # a tracking server answers with RestException (a subclass of MlflowException): it must be
    # reported like the embedded store's error, not escape as a traceback
    code, out, err = cli("best", trained.site, "--task", "ppe", "--metric", "a`b")
    assert code == 1, out
    assert err.startswith("error: MLflow: ")
    assert "Traceback" not in err
