"""A tracking server that goes away in the middle of a training (`siteml run` as its own
process, with a stand-in training that logs an epoch every 0.5 s as the real one does: what is
tested is siteml's patience, not Ultralytics): back after 10 s (longer than MLflow's own
retries, about 3 s), the run finishes with every epoch's metrics recorded once; away for good,
the run ends within its wait with an error that states the loss, and registers nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from siteml.core import keys
from siteml.data.synth import synthesize
from tests.conftest import REPO, free_port, start_mlflow_server, stop_process_group

pytestmark = pytest.mark.slow  # starts servers
MODEL = "blink.ulsan-plant1.zone.ppe"
OUTAGE_S = 10


def start_training(tmp_path: Path, url: str, **env: str) -> subprocess.Popen:
    data = tmp_path / "data"
    md5 = synthesize(data, ["helmet", "vest", "person"], {"train": 4, "val": 2}, imgsz=32,
                     seed=0).md5
    scenario = tmp_path / "train.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "blink", "version": "v1", "experiment_type": "train",
        "site": {"customer": "blink", "region": "ulsan", "plant": "plant1", "zone": "zone"},
        "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
        "model": {"architecture": "yolov11n", "input_size": 32, "num_classes": 3},
        "environment": {"device": "cpu", "seed": 0},
        "dataset": {"version": "d", "dvc_hash": md5, "path": str(data), "image_count": 6},
        "training": {"epochs": 8, "batch": 2, "workers": 0}}))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.standins", "epochs", str(scenario), "--json"], cwd=REPO,
        env={**os.environ, "MLFLOW_TRACKING_URI": url, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(client: MlflowClient, epoch: int, training: subprocess.Popen) -> str:
    """The run's id once it has recorded ``epoch``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert training.poll() is None, training.communicate()
        for experiment in client.search_experiments():
            for run in client.search_runs([experiment.experiment_id]):
                if run.data.metrics and len(client.get_metric_history(
                        run.info.run_id, keys.EPOCH_TIME)) >= epoch:
                    return run.info.run_id
        time.sleep(0.1)
    raise TimeoutError(f"epoch {epoch} never recorded")


def test_a_server_away_for_a_while_loses_no_metric(tmp_path):
    port = free_port()
    server, url = start_mlflow_server(tmp_path, port=port)
    client = MlflowClient(url, url)
    training = start_training(tmp_path, url)
    try:
        run_id = wait_for_epoch(client, 2, training)
        stop_process_group(server)
        time.sleep(OUTAGE_S)
        server, _ = start_mlflow_server(tmp_path, port=port)
        out, err = training.communicate(timeout=600)
        assert training.returncode == 0, err[-3000:]
        assert "does not answer" in err and "is back after" in err
        outcome = json.loads(out)
        assert outcome["run_id"] == run_id and outcome["model_version"] == 1
        run = client.get_run(run_id)
        epochs = int(run.data.metrics[keys.EPOCHS_RUN])
        # one value per epoch; val/map50 also once more for the final validation
        for key, last in ((keys.EPOCH_TIME, epochs), (keys.VAL_MAP50, epochs + 1)):
            steps = [m.step for m in client.get_metric_history(run_id, key)]
            assert sorted(steps) == list(range(1, last + 1)), (key, steps)
        assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1
    finally:
        training.kill()
        stop_process_group(server)


def test_a_server_that_stays_away_ends_the_run_with_the_loss_stated(tmp_path):
    port = free_port()
    server, url = start_mlflow_server(tmp_path, port=port)
    client = MlflowClient(url, url)
    training = start_training(tmp_path, url, SITEML_SERVER_WAIT_S="10")
    try:
        run_id = wait_for_epoch(client, 1, training)
        stop_process_group(server)
        _, err = training.communicate(timeout=600)
        assert training.returncode == 1
        assert "the tracking server has not answered for" in err
        assert "metric values of steps" in err and "nothing was registered" in err
        assert "Traceback" not in err
        store = MlflowClient(f"sqlite:///{tmp_path}/server.db")  # the server's own database
        assert store.search_model_versions(f"name = '{MODEL}'") == []
        assert store.get_run(run_id).info.status == "RUNNING"
    finally:
        training.kill()
        stop_process_group(server)
