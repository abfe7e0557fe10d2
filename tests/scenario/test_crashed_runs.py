"""Crashed runs are found: heartbeats, ``siteml runs --stale / --reap``, and a new attempt of
a scenario whose last attempt died. On a real MLflow store, with the stand-in pipelines."""

import json
import os
import platform
import subprocess
import sys
import time

import pytest

import siteml.pipelines.train
from tests.scenario.test_runner import client_for, fake_train

RUN_NAME = "ppe-yolov11l-train-v2"


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def site_experiment(store_uri, site_scenario):
    client = client_for(store_uri)
    experiment_id = client.create_experiment(  # artifacts in the test's folder, not ./mlruns
        site_scenario.site, (site_scenario.path.parent / "artifacts").as_uri(),
        tags={"site.path": site_scenario.site})
    return client, experiment_id


def running(client, experiment_id, **tags):
    return client.create_run(experiment_id, run_name=RUN_NAME, tags=tags).info.run_id


def test_a_running_run_beats_until_it_ends(cli, store_uri, site_scenario, pipelines,
                                           monkeypatch):
    monkeypatch.setenv("SITEML_HEARTBEAT_S", "0.2")
    seen = []

    def slow_train(scenario, tracker):
        def beat() -> str:
            return tracker.client.get_run(tracker.run_id).data.tags["siteml.heartbeat"]

        seen.append(beat())
        deadline = time.monotonic() + 10
        while beat() == seen[0] and time.monotonic() < deadline:  # stamps are to the second
            time.sleep(0.05)
        seen.append(beat())
        return fake_train(scenario, tracker)

    monkeypatch.setattr(siteml.pipelines.train, "run", slow_train)
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    assert seen[1] > seen[0]
    tags = client_for(store_uri).get_run(json.loads(out)["run_id"]).data.tags
    assert tags["siteml.pid"].isdigit() and tags["env.hostname"] == platform.node()


def test_stale_runs_are_listed_and_reaped(cli, site_scenario, site_experiment):
    client, experiment_id = site_experiment
    host = platform.node()
    gone = running(client, experiment_id, **{"env.hostname": host,
                                             "siteml.pid": str(dead_pid()),
                                             "siteml.heartbeat": time.strftime(
                                                 "%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    silent = running(client, experiment_id, **{"env.hostname": "box-far-away",
                                               "siteml.pid": "4242",
                                               "siteml.heartbeat": "2026-01-01T00:00:00Z"})
    running(client, experiment_id, **{"env.hostname": host, "siteml.pid": str(os.getpid()),
                                      "siteml.heartbeat": time.strftime(
                                          "%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    code, out, err = cli("runs", "--stale", "--site", site_scenario.site, "--json")
    assert code == 0, err
    found = {row["run_id"]: row for row in json.loads(out)}
    assert set(found) == {gone, silent}
    assert "is gone" in found[gone]["reason"] and found[gone]["host"] == host
    assert "no heartbeat for" in found[silent]["reason"] and found[silent]["pid"] == 4242
    assert client.get_run(gone).info.status == "RUNNING"
    code, out, err = cli("runs", "--reap", "--json")
    assert code == 0, err
    assert {row["run_id"] for row in json.loads(out)} == {gone, silent}
    for run_id in (gone, silent):
        run = client.get_run(run_id)
        assert run.info.status == "KILLED" and run.data.tags["siteml.reaped"]
    assert json.loads(cli("runs", "--stale", "--json")[1]) == []


def test_a_new_attempt_reaps_a_dead_one_and_waits_for_a_live_one(cli, site_scenario,
                                                                  site_experiment, pipelines):
    client, experiment_id = site_experiment
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    live = running(client, experiment_id, **{"env.hostname": platform.node(),
                                             "siteml.pid": str(os.getpid()),
                                             "siteml.heartbeat": now})
    code, _, err = cli("run", str(site_scenario.path))
    assert code == 2
    assert f"is RUNNING in experiment '{site_scenario.site}' (run id {live}" in err
    client.set_terminated(live, "FAILED")
    dead = running(client, experiment_id, **{"env.hostname": platform.node(),
                                             "siteml.pid": str(dead_pid()),
                                             "siteml.heartbeat": now})
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    assert f"reaped run {dead}" in err
    assert client.get_run(dead).info.status == "KILLED"
    assert "is gone" in client.get_run(dead).data.tags["siteml.reaped"]
    assert client.get_run(json.loads(out)["run_id"]).info.status == "FINISHED"
