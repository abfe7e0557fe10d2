"""Tracking overhead of `siteml run` against a plain-MLflow script that logs the same things.

Both are cold processes on their own pre-created sqlite store, timed interleaved in one run (the
machine is shared and noisy). The pipeline does nothing but return metrics, so what is timed is
siteml's own work: loading and checking the scenario, host and git facts, the run's tags, params,
metrics, scenario artifacts and dataset input. The plain script logs the same experiment, run,
tags, params and metrics with MLflow's fastest calls (one ``log_batch``). Goal (issue 3): <= 1.3.

    python benchmarks/tracking_overhead.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import report, verdict, wall

REPO = Path(__file__).resolve().parents[1]
SHIPPED = "experiments/donghwa_entec/welding-ppe-train-v2.yaml"
METRICS = {"val/map50": 0.8, "val/map50_95": 0.61, "val/precision": 0.9, "val/recall": 0.7}


def child_siteml(scenario: str, version: str) -> None:
    """`siteml run` with a pipeline that only returns metrics."""
    import siteml.pipelines.train
    from siteml.cli import main
    from siteml.core.models import PipelineResult

    siteml.pipelines.train.run = lambda scenario, tracker: PipelineResult(metrics=dict(METRICS))
    sys.argv = ["siteml", "run", scenario, "--set", f"version={version}"]
    main()


def child_plain(plan_file: str, version: str) -> None:
    """The same experiment, run, tags, params and metrics, logged with plain MLflow."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    plan = json.loads(Path(plan_file).read_text())
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(plan["experiment_name"])
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(plan["experiment_name"]))
    run_name = plan["run_name"].rsplit("-", 1)[0] + f"-{version}"
    run = client.create_run(experiment_id, run_name=run_name)
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id,
                     metrics=[Metric(k, v, now, 0) for k, v in METRICS.items()],
                     params=[Param(k, v) for k, v in plan["params"].items()],
                     tags=[RunTag(k, v) for k, v in plan["tags"].items()])
    client.set_terminated(run.info.run_id)


def make_scenario(root: Path) -> Path:
    """The shipped training scenario, on this machine's CPU (siteml refuses a CUDA device on a
    machine without one) and on a small dataset folder whose DVC hash and image count it
    states, as the data check requires."""
    import yaml

    from siteml.data.dvc_hash import dir_hash

    images = root / "data" / "images" / "train"
    images.mkdir(parents=True)
    for i in range(10):
        (images / f"{i}.jpg").write_bytes(b"x")
    from siteml.scenario.factory import load_scenario

    scenario = load_scenario(REPO / SHIPPED).model_dump(mode="json")  # bases merged
    scenario["environment"]["device"] = "cpu"
    scenario["dataset"].update(path="data", image_count=10,
                               dvc_hash=dir_hash(root / "data").md5)
    path = root / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenario = make_scenario(root)
        plan_file = root / "plan.json"
        plan_file.write_text(subprocess.run(
            [sys.executable, "-m", "siteml", "plan", str(scenario), "--json"],
            check=True, capture_output=True, text=True).stdout)
        envs = {name: {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/{name}.db",
                       "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO)}
                for name in ("siteml", "plain")}
        commands = {
            "siteml": lambda v: [sys.executable, __file__, "child-siteml", str(scenario), v],
            "plain": lambda v: [sys.executable, __file__, "child-plain", str(plan_file), v],
        }
        for name, command in commands.items():  # creates each database, warms the page cache
            wall(command("v1000"), envs[name], root)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(args.repeats):
            for name, command in commands.items():
                times[name].append(wall(command(f"v{i + 1}"), envs[name], root))
    med = report(times)
    verdict("ratio siteml run / plain MLflow", med["siteml"] / med["plain"], 1.3)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child-siteml":
        child_siteml(*sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "child-plain":
        child_plain(*sys.argv[2:])
    else:
        main()
