"""``siteml run --jobs N``: a site's chain as one batch in parallel worker processes on this
machine, on the embedded store, with the real pipelines (tiny)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from siteml.core.cores import core_shares, usable_cores
from tests.conftest import TINY_DEMO, needs

pytestmark = pytest.mark.slow
SHARE = len(usable_cores()) < 2
"""A one-core machine can only run two jobs on shared cores."""


@pytest.fixture
def demo(tmp_path) -> Path:
    """The demo site's train, quant and two benchmarks, tiny; its scenario folder."""
    needs("ultralytics", "train")
    from siteml.lifecycle.demo import DemoSize, prepare

    paths = prepare(tmp_path / "demo", DemoSize(**{**TINY_DEMO, "train_images": 8,
                                                   "val_images": 4}))
    return paths[0].parent


def siteml_env(folder: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store_of(folder)}"}


def siteml_jobs(folder: Path, *args: str) -> subprocess.Popen:
    """``siteml run FOLDER --jobs 2 --json`` on the demo's store, in its own process group."""
    return subprocess.Popen([sys.executable, "-m", "siteml", "run", str(folder), "--jobs", "2",
                             *(["--share-cores"] if SHARE else []), "--json", *args],
                            env=siteml_env(folder), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def store_of(folder: Path) -> Path:
    return folder.parents[1] / "mlflow.db"


def runs_in(folder: Path) -> list:
    client = MlflowClient(f"sqlite:///{store_of(folder)}")
    return [run for experiment in client.search_experiments()
            for run in client.search_runs([experiment.experiment_id])]


def running_count(folder: Path) -> int:
    """RUNNING runs in the demo's store, read without opening it through MLflow (which would
    create and migrate a store that the batch is creating at the same moment)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store_of(folder)}?mode=ro",
                                                uri=True)) as db:
            return db.execute("SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]
    except sqlite3.OperationalError:  # no store yet, or no runs table yet
        return 0


def painting_training(demo: Path, epochs: int) -> Path:
    """A training of the demo's model at another zone: independent of the demo's chain."""
    data = yaml.safe_load((demo / "ppe-yolov11n-train-v1.yaml").read_text())
    data["training"]["epochs"] = epochs
    data["site"] = {"customer": "acme-steel", "region": "ulsan", "plant": "plant1",
                    "zone": "painting"}
    path = demo / "train-painting.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_independent_scenarios_run_at_once_on_disjoint_cores(demo):
    painting = painting_training(demo, epochs=1)
    proc = siteml_jobs(demo)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    rows = json.loads(out)
    assert [row["status"] for row in rows] == ["FINISHED"] * 5
    runs = {(r.data.tags["site.zone"], r.info.run_name): r for r in runs_in(demo)}
    assert len(runs) == 5
    train = runs["welding", "ppe-yolov11n-train-v1"]
    assert all(r.info.start_time >= train.info.end_time for (zone, name), r in runs.items()
               if zone == "welding" and r is not train)  # they read its model
    other = runs["painting", "ppe-yolov11n-train-v1"]
    assert other.info.start_time < train.info.end_time  # the two trainings ran at once
    assert train.info.start_time < other.info.end_time
    cores = {train.data.tags["siteml.cores"], other.data.tags["siteml.cores"]}
    assert cores == {",".join(map(str, share)) for share in core_shares(2, SHARE)}
    pids = {int(r.data.tags["siteml.pid"]) for r in runs.values()}
    assert len(pids) == 2 and proc.pid not in pids  # two workers, each reused

    again = siteml_jobs(demo)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    assert [row["status"] for row in json.loads(out)] == ["SKIPPED"] * 5
    assert len(runs_in(demo)) == 5
    assert str(painting) in {row["file"] for row in rows}


def test_ctrl_c_kills_every_running_job(demo):
    painting_training(demo, epochs=200)
    for path in demo.glob("ppe-*.yaml"):
        if "-train-" not in path.name:
            path.unlink()
    train = demo / "ppe-yolov11n-train-v1.yaml"
    data = yaml.safe_load(train.read_text())
    data["training"]["epochs"] = 200
    train.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = siteml_jobs(demo)
    deadline = time.monotonic() + 300
    while running_count(demo) < 2:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the two trainings did not both start"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err[-3000:]
    assert [row["status"] for row in json.loads(out)] == ["KILLED", "KILLED"]
    assert sorted(r.info.status for r in runs_in(demo)) == ["KILLED", "KILLED"]
    plan = subprocess.run([sys.executable, "-m", "siteml", "plan", str(demo), "--json"],
                          env=siteml_env(demo), capture_output=True, text=True, check=True)
    assert [row["action"] for row in json.loads(plan.stdout)] == ["run", "run"]  # not done
