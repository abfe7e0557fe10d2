"""Ctrl-C and SIGTERM end a run KILLED whatever the timing: a swallowed interrupt (a
KeyboardInterrupt raised inside a ``__del__``, which Python prints and drops) and one that
arrives while the run is being created. `siteml run` as its own process (signals reach a
process; raised in the test process they outlived it), with the stand-in trainings of
``tests/standins.py``."""

import json
import subprocess
import sys

import pytest

import siteml.pipelines.train
from tests.conftest import REPO
from tests.scenario.test_batch import runs_of
from tests.scenario.test_runner import client_for, fake_train, only_run


def standin_run(mode: str, *args: str) -> subprocess.CompletedProcess:
    """``siteml run ARGS --json`` with stand-in training ``mode``, on the test's store."""
    return subprocess.run([sys.executable, "-m", "tests.standins", mode, *args, "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("mode", "code"), [
    ("swallow-sigint", 130),
    # each a siteml process of its own (3 s): the quick tier keeps the Ctrl-C case
    pytest.param("swallow-sigterm", 143, marks=pytest.mark.slow)])
def test_a_swallowed_interrupt_still_ends_the_run_killed(cli, store_uri, site_scenario,
                                                         monkeypatch, mode, code):
    done = standin_run(mode, str(site_scenario.path))
    assert (done.returncode, done.stdout) == (code, ""), done.stderr
    assert "marked KILLED" in done.stderr
    client = client_for(store_uri)
    _, run = only_run(client, site_scenario.site)
    assert run.info.status == "KILLED"
    assert client.search_registered_models(f"name = '{site_scenario.model_name}'") == []
    # stopped at its next epoch: the first metrics it logged after the signal
    assert client.get_metric_history(run.info.run_id, "train/box_loss") == []
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    exit_code, out, err = cli("run", str(site_scenario.path), "--json")  # not skipped as done
    assert exit_code == 0, err
    assert json.loads(out)["status"] == "FINISHED"


@pytest.mark.slow  # a siteml process of its own
def test_a_swallowed_interrupt_stops_a_batch(store_uri, site_scenario, chain):
    done = standin_run("swallow-sigint", str(chain))
    assert done.returncode == 130, done.stderr
    rows = {r["file"].rsplit("/", 1)[1]: r["status"] for r in json.loads(done.stdout)}
    assert rows == {"b-train.yaml": "KILLED", "a-quant.yaml": "NOT_RUN"}
    assert [r.info.status for r in runs_of(store_uri, site_scenario.site)] == ["KILLED"]


@pytest.mark.slow  # a siteml process of its own
def test_ctrl_c_while_the_run_is_created_ends_it_killed(store_uri, site_scenario):
    done = standin_run("at-creation", str(site_scenario.path))
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    _, run = only_run(client_for(store_uri), site_scenario.site)
    assert run.info.status == "KILLED"
