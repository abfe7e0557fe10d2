"""Ctrl-C and SIGTERM end a run KILLED whatever the timing: a swallowed interrupt (a
KeyboardInterrupt raised inside a ``__del__``, which Python prints and drops) and one that
arrives while the run is being created. In-process, with the stand-in pipelines."""

import json
import signal

import pytest

import siteml.pipelines.train
from siteml.tracking.runs import RunRecorder
from tests.scenario.test_batch import runs_of
from tests.scenario.test_runner import client_for, fake_train, only_run

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class _Finalizer:
    """Receives the signal in its ``__del__``, as a torch tensor's or a weakref's finalizer
    may: the exception its handler raises there is printed and dropped by Python."""

    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self):
        signal.raise_signal(self.signum)


def swallowing(signum):
    """A stand-in training that gets ``signum`` where its exception is swallowed, then trains
    on and returns a model."""

    def train(scenario, tracker):
        _Finalizer(signum)  # dropped at once: its __del__ runs here
        return fake_train(scenario, tracker)

    return train


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_swallowed_interrupt_still_ends_the_run_killed(cli, store_uri, site_scenario,
                                                         pipelines, monkeypatch, signum, code):
    monkeypatch.setattr(siteml.pipelines.train, "run", swallowing(signum))
    exit_code, out, err = cli("run", str(site_scenario.path), "--json")
    assert (exit_code, out) == (code, ""), err
    assert "marked KILLED" in err
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


def test_a_swallowed_interrupt_stops_a_batch(cli, store_uri, site_scenario, chain, pipelines,
                                             monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", swallowing(signal.SIGINT))
    exit_code, out, err = cli("run", str(chain), "--json")
    assert exit_code == 130, err
    rows = {r["file"].rsplit("/", 1)[1]: r["status"] for r in json.loads(out)}
    assert rows == {"b-train.yaml": "KILLED", "a-quant.yaml": "NOT_RUN"}
    assert [r.info.status for r in runs_of(store_uri, site_scenario.site)] == ["KILLED"]


def test_ctrl_c_while_the_run_is_created_ends_it_killed(cli, store_uri, site_scenario,
                                                        pipelines, monkeypatch):
    log_params = RunRecorder.log_params

    def interrupted(recorder, params):  # the run exists; its recorder is not returned yet
        signal.raise_signal(signal.SIGINT)
        log_params(recorder, params)

    monkeypatch.setattr(RunRecorder, "log_params", interrupted)
    try:
        exit_code, _, err = cli("run", str(site_scenario.path))
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while the run was created escaped the lifecycle")
    assert exit_code == 130, err
    _, run = only_run(client_for(store_uri), site_scenario.site)
    assert run.info.status == "KILLED"
