"""`siteml models` and the "best version of task T at site S" query on a big store.

Builds (once, reusable with --store-dir) a sqlite store with 10,000 runs across 50 site
experiments, tagged as siteml tags them (every seventh one a benchmark run of a base model or a
variant), and 2 tasks x (base + 2 variants) x 3 versions registered per site. Then times, in one
run: the `best_run` and `compare_rows` queries in-process (median of 20), and cold `siteml best`,
`siteml models --site`, `siteml models` and `siteml compare` processes. Goal (issue 3): the
best query <= 0.5 s.

    python benchmarks/registry_queries.py [--runs 10000] [--sites 50] [--repeats 5]
        [--store-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import wall

TASKS = ("ppe", "fire")
VARIANTS = (None, "openvino_int8", "onnxruntime_int8")


def site_path(i: int) -> str:
    return f"customer{i // 10}/region{i % 5}-plant{i % 3}/zone{i}"


def populate(uri: str, runs: int, sites: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from siteml.core.naming import registered_model_name

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    rng = random.Random(0)
    experiment_ids = []
    for i in range(sites):
        site = site_path(i)
        experiment_ids.append(client.create_experiment(site, tags={"site.path": site}))
    now = int(time.time() * 1000)
    for n in range(runs):
        i = n % sites
        task = TASKS[n % len(TASKS)]
        kind = "infer" if n % 7 == 3 else "train"
        run = client.create_run(experiment_ids[i], run_name=f"{task}-yolov11n-{kind}-v{n}")
        tags = {"site.path": site_path(i), "task.type": task, "siteml.experiment_type": kind,
                "data.dvc_hash": f"{n:032x}.dir", "siteml.scenario": f"s{n}"}
        tags.update({f"env.k{k}": "v" for k in range(12)})
        metrics = [Metric("val/map50_95", rng.random(), now, 0),
                   Metric("val/map50", rng.random(), now, 0)]
        params = [Param(f"training.p{k}", str(k)) for k in range(10)]
        if kind == "infer":
            tags.update({"source.model_name": registered_model_name(
                site_path(i), task, VARIANTS[n % len(VARIANTS)]), "source.model_version": "3"})
            metrics = [Metric(f"b1/{name}", rng.uniform(2, 20), now, 0) for name in (
                "latency_p50_ms", "latency_p95_ms", "fps")] + [
                Metric("model/size_mb", 5.0, now, 0)]
            params = [Param("environment.device", "cpu")]
        client.log_batch(run.info.run_id, metrics=metrics, params=params,
                         tags=[RunTag(k, v) for k, v in tags.items()])
        client.set_terminated(run.info.run_id)
        if n % 1000 == 999:
            print(f"  {n + 1} runs", flush=True)
    for i in range(sites):
        for task in TASKS:
            for variant in VARIANTS:
                name = registered_model_name(site_path(i), task, variant)
                client.create_registered_model(name)
                for v in range(3):
                    tags = {"metrics.val/map50_95": f"{rng.random():.3f}"}
                    client.create_model_version(name, source=f"file:///m/{v}", tags=tags)
                client.set_registered_model_alias(name, "candidate", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store-dir", type=Path, default=None,
                        help="keep the generated store here and reuse it next time")
    args = parser.parse_args()
    folder = args.store_dir or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder}/registry-bench.db"
    if not (folder / "registry-bench.db").exists():
        print(f"building store: {args.runs} runs, {args.sites} sites ...", flush=True)
        start = time.perf_counter()
        populate(uri, args.runs, args.sites)
        print(f"  built in {time.perf_counter() - start:.0f} s")

    from siteml.tracking.queries import best_run
    from siteml.tracking.runs import open_client
    from siteml.tracking.store import resolve_store

    client = open_client(resolve_store({"MLFLOW_TRACKING_URI": uri}))
    # an even site (they hold the ppe runs when --sites is even): the 9th, or the first of few
    site = site_path(min(8, max(0, (args.sites - 1) // 2 * 2)))
    best_run(client, site, "ppe")  # connect, warm caches
    query = []
    for _ in range(20):
        start = time.perf_counter()
        found = best_run(client, site, "ppe")
        query.append(time.perf_counter() - start)
    assert found is not None
    from siteml.tracking.model_listing import model_tree

    tree = []
    for _ in range(5):
        start = time.perf_counter()
        model_tree(client)
        tree.append(time.perf_counter() - start)
    from siteml.tracking.compare import compare_rows

    compare = []
    for _ in range(20):
        start = time.perf_counter()
        rows = compare_rows(client, site, "ppe")
        compare.append(time.perf_counter() - start)
    assert rows, "the store holds benchmark runs of this site and task"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    siteml = [sys.executable, "-m", "siteml"]
    commands = {
        "siteml best SITE --task ppe": [*siteml, "best", site, "--task", "ppe"],
        "siteml models --site SITE": [*siteml, "models", "--site", site],
        "siteml models (all sites)": [*siteml, "models", "--json"],
        "siteml compare SITE --task ppe": [*siteml, "compare", site, "--task", "ppe", "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd, env))
    print(f"store: {args.runs} runs over {args.sites} site experiments, "
          f"{args.sites * len(TASKS) * len(VARIANTS)} registered models")
    q = statistics.median(query)
    print(f"best_run query (in-process, n=20): median {q * 1000:.1f} ms "
          f"(max {max(query) * 1000:.1f} ms)  goal <= 500 ms -> {'met' if q <= 0.5 else 'NOT met'}")
    print(f"compare_rows, one site and task (in-process, n=20): median "
          f"{statistics.median(compare) * 1000:.1f} ms ({len(rows)} rows)")
    print(f"model_tree, all sites (in-process, n=5): "
          f"median {statistics.median(tree) * 1000:.0f} ms")
    for name, values in times.items():
        print(f"{name:<30} cold process: median {statistics.median(values):.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
