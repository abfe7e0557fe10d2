"""Issue 15's figures, measured side by side in one run on this machine (shared and noisy):

- batch overhead: the tiny demo site (train, quant, two benchmarks) as one local batch
  (`siteml run FOLDER`) against the same four scenarios run one `siteml run` each, each on a
  fresh embedded store, rounds interleaved. Goal <= 1.05.
- N independent single-thread benchmark scenarios of the demo's model, logged to one plain
  `mlflow server`, run four ways in turns: the local executor, `--jobs 2`, a local Ray cluster
  with all of them pinned to one node (so one at a time, as locally), and on two one-CPU nodes.
  Ray overhead per scenario = (one node - local) / N, goal <= 2 s; parallel speedup = one node
  / two nodes, goal >= 1.7; and local `--jobs 2` against one at a time.
- kill -9: a training on the cluster whose worker is killed once it logged an epoch; the
  seconds from the kill to its retry's run starting, and to the dead run being reaped (then
  the batch is interrupted as Ctrl-C does: that the retry finishes is what
  tests/test_ray_batch.py proves).

The Ray cluster is two `ray start --block` nodes (host:box-a, host:box-b) started here unless
--ray-address names one with those resources.

    python benchmarks/batch_figures.py [--rounds 2] [--scenarios 4] [--iterations 1500]
        [--demo-epochs 2] [--demo-train-images 16] [--demo-... (the demo's sizes)]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from demo_store import add_demo_options, demo_size
from team_server_overhead import free_port, start
from timing import report, verdict, wall

from siteml.lifecycle.demo import DemoSize, prepare

REPO = Path(__file__).resolve().parents[1]


def short_benchmarks(template: Path, name: str, count: int, first: int, iterations: int,
                     host: str | None) -> Path:
    """``count`` single-thread benchmarks of the demo's trained model, ``iterations`` each
    (versions ``first`` on: the version names the run), in a new folder of the demo (its site
    file is found upward)."""
    folder = template.parents[2] / name
    folder.mkdir(parents=True)
    data = yaml.safe_load(template.read_text())
    data["dataset"]["path"] = str((template.parent / data["dataset"]["path"]).resolve())
    data["benchmark"].update(warmup=5, iterations=iterations, measure_accuracy=False,
                             num_threads=1)
    data["environment"].pop("host", None)
    if host:
        data["environment"]["host"] = host
    for i in range(count):
        data.update(name=f"short-{i}", version=f"v{first + i}")
        (folder / f"short-{i}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=1500,
                        help="timed iterations of each benchmark scenario")
    parser.add_argument("--ray-address", help="a cluster with host:box-a and host:box-b")
    parser.add_argument("--kill-epochs", type=int, default=10,
                        help="epochs of the training whose worker is killed (after its first)")
    parser.add_argument("--batch-steps", type=int, default=4, choices=range(1, 5),
                        help="how many of the demo's scenarios (train, quant, two benchmarks) "
                        "the batch overhead is measured on")
    add_demo_options(parser, folder=False)
    parser.set_defaults(demo_epochs=2, demo_train_images=16, demo_val_images=8, demo_imgsz=64)
    args = parser.parse_args()
    size = demo_size(args)
    siteml = [sys.executable, "-m", "siteml", "run"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        batch: dict[str, list[float]] = {"batch": [], "one by one": []}
        for n in range(args.rounds):
            for name in batch:
                folder = root / f"demo-{n}-{name.replace(' ', '-')}"
                paths = prepare(folder, size)[:args.batch_steps]  # its own store, there
                if name == "batch":
                    batch[name].append(wall([*siteml, *map(str, paths)], base, folder))
                else:
                    batch[name].append(sum(wall([*siteml, str(p)], base, folder)
                                           for p in paths))
        print(f"the demo site ({size.epochs} epochs, {size.train_images} train images at "
              f"{size.imgsz} px), {args.batch_steps} scenarios on a fresh embedded store:")
        medians = report(batch)
        verdict("batch overhead: one batch / one by one", medians["batch"]
                / medians["one by one"], 1.05)
        ray_figures(args, size, root, siteml, base)


def ray_figures(args: argparse.Namespace, size: DemoSize, root: Path, siteml: list[str],
                base: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    server = start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                    f"sqlite:///{root}/server.db", "--artifacts-destination", str(root / "art"),
                    "--port", url.rsplit(":", 1)[1], "--workers", "1"], base, url)
    try:
        env = {**base, "MLFLOW_TRACKING_URI": url}
        paths = prepare(root / "ray-demo", size)
        wall([*siteml, str(paths[0])], env)  # the trained model the benchmarks read
        if args.ray_address:
            ray_rounds(args, siteml, env, paths, args.ray_address)
            return
        sys.path.insert(0, str(REPO))
        from tests.conftest import stop_process_group
        from tests.ray_cluster import local_cluster

        with local_cluster(free_port(), stop_process_group) as address:
            ray_rounds(args, siteml, env, paths, address)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


def ray_rounds(args: argparse.Namespace, siteml: list[str], env: dict[str, str],
               paths: list[Path], address: str) -> None:
    modes = {"local executor": (None, []), "local --jobs 2": (None, ["--jobs", "2"]),
             "Ray, one node": ("box-a", ["--ray"]), "Ray, two nodes": (None, ["--ray"])}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for n in range(args.rounds):
        for i, (mode, (host, flags)) in enumerate(modes.items()):
            folder = short_benchmarks(paths[2], f"short-{n}-{i}", args.scenarios,
                                      100 + (n * len(modes) + i) * args.scenarios,
                                      args.iterations, host)
            times[mode].append(wall([*siteml, str(folder), *flags],
                                    {**env, "RAY_ADDRESS": address}))
    print(f"{args.scenarios} single-thread benchmarks of {args.iterations} iterations, one "
          "plain mlflow server:")
    medians = report(times)
    per_scenario = (medians["Ray, one node"] - medians["local executor"]) / args.scenarios
    print(f"Ray overhead per scenario (one node - local) / {args.scenarios}: "
          f"{per_scenario:.2f} s  goal <= 2 -> {'met' if per_scenario <= 2 else 'NOT met'}")
    speedup = medians["Ray, one node"] / medians["Ray, two nodes"]
    print(f"parallel speedup: one node / two nodes: {speedup:.3f}  goal >= 1.7 -> "
          f"{'met' if speedup >= 1.7 else 'NOT met'}")
    print(f"local speedup: one at a time / --jobs 2: "
          f"{medians['local executor'] / medians['local --jobs 2']:.3f}")
    kill_nine(siteml, {**env, "RAY_ADDRESS": address}, paths[0], args.kill_epochs)


def kill_nine(siteml: list[str], env: dict[str, str], template: Path, epochs: int) -> None:
    """Kill the worker of a training on the cluster once it logged an epoch; print the
    seconds to its retry's run starting and to the dead run being reaped."""
    from mlflow import MlflowClient

    data = yaml.safe_load(template.read_text())
    data["dataset"]["path"] = str((template.parent / data["dataset"]["path"]).resolve())
    data["site"] = {"customer": "acme-steel", "region": "ulsan", "plant": "plant1",
                    "zone": "kill-nine"}
    data["training"]["epochs"] = max(epochs, 2)
    path = template.parent / "kill-nine.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.Popen([*siteml, str(path), "--ray"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    try:
        victim = None
        while victim is None:
            if proc.poll() is not None:
                raise RuntimeError(f"the training ended first:\n{proc.stderr.read()[-3000:]}")
            experiment = client.get_experiment_by_name("acme-steel/ulsan-plant1/kill-nine")
            running = client.search_runs([experiment.experiment_id],
                                         "attributes.status = 'RUNNING'") if experiment else []
            victim = next((r for r in running if "time/epoch_s" in r.data.metrics), None)
            time.sleep(0.2)
        os.kill(int(victim.data.tags["siteml.pid"]), signal.SIGKILL)
        killed = time.time()
        retry = reaped = None
        while retry is None or reaped is None:
            runs = client.search_runs([experiment.experiment_id])
            retry = retry or next((time.time() for r in runs
                                   if r.info.run_id != victim.info.run_id), None)
            reaped = reaped or (time.time() if client.get_run(victim.info.run_id).info.status
                                == "KILLED" else None)
            if proc.poll() is not None and (retry is None or reaped is None):
                raise RuntimeError(f"no retry or reaping:\n{proc.stderr.read()[-3000:]}")
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # measured: Ctrl-C, not the retry's whole training
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"kill -9 of a training's worker: its retry's run started after {retry - killed:.1f} "
          f"s, the dead run was reaped KILLED after {reaped - killed:.1f} s")


if __name__ == "__main__":
    main()
