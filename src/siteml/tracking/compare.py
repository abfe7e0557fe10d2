"""`siteml compare`: every variant of a site's task beside its latest benchmark on each device
of each host (a site's edge boxes are told apart by host name).

Two tag-filtered queries, whatever the store's size: the task's registered models (base and
variants), and the finished benchmark runs of the task at the site, newest first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from siteml.core import keys
from siteml.core.naming import ModelRef, registered_model_name
from siteml.core.pareto import pareto_front
from siteml.core.provenance import instruction_set
from siteml.tracking.model_listing import all_pages, headline_metrics, like_pattern
from siteml.tracking.runs import find_experiment_id

MAX_BENCHMARK_RUNS = 5000


def compare_rows(client: MlflowClient, site: str, task: str) -> list[dict[str, Any]]:
    """One row per variant, device and host: the latest benchmark of that variant there, the
    variant's accuracy (its quant gate's, or the benchmark's own when it measured it) and its
    speedup over the base (PyTorch FP32) model benchmarked on the same device of the same host
    (``speedup_paired``: timed in turns with it in the variant's own benchmark run, else from
    the base model's latest benchmark there);
    ``pareto`` says whether no other variant there is both faster and more accurate,
    ``steady`` whether the host kept one speed during the benchmark (None: not recorded),
    ``cameras`` how many camera streams it served at ``camera_fps`` each (None: not
    measured; ``cameras_capped``: the search stopped at its limit, so at least that many),
    ``worst_class`` the class with the lowest AP50 (the benchmark's own, else the version's)
    and ``warning`` the version's warning."""
    experiment_id = find_experiment_id(client, site)
    if experiment_id is None:
        return []
    base_name = registered_model_name(site, task)
    tags_of: dict[str, dict[int, dict[str, str]]] = {}
    for version in all_pages(lambda token: client.search_model_versions(
            f"name LIKE '{like_pattern(base_name)}%'", max_results=10_000, page_token=token)):
        if version.name == base_name or version.name.startswith(f"{base_name}__"):
            tags_of.setdefault(version.name, {})[int(version.version)] = version.tags
    runs = client.search_runs(
        [experiment_id], f"tags.`{keys.EXPERIMENT_TYPE}` = 'infer' and tags.`{keys.TASK_TYPE}` = "
        f"'{task}' and attributes.status = 'FINISHED'",
        max_results=MAX_BENCHMARK_RUNS, order_by=["attributes.start_time DESC"])
    latest: dict[tuple[str, str, str], Any] = {}
    for run in runs:
        name = run.data.tags.get(keys.SOURCE_MODEL_NAME)
        if name in tags_of:
            latest.setdefault((name, *_where(run)), run)  # runs come newest first
    rows = [_row(name, run, tags_of[name]) for (name, *_), run in latest.items()]
    rows = [row for row in rows if row is not None]
    base_p50 = {_place(row): row["p50_ms"] for row in rows if row["variant"] == "base"}
    for row in rows:
        reference = base_p50.get(_place(row))
        paired_with, paired = row.pop("paired_with"), row.pop("paired_speedup")
        row["speedup_paired"] = paired_with == base_name and paired is not None
        row["speedup"] = paired if row["speedup_paired"] else (
            reference / row["p50_ms"] if reference else None)
    for place in {_place(row) for row in rows}:
        scored = [r for r in rows if _place(r) == place and r["map50_95"] is not None]
        for index in pareto_front([(r["p50_ms"], r["map50_95"]) for r in scored]):
            scored[index]["pareto"] = True
    return sorted(rows, key=lambda r: (*_place(r), r["variant"] != "base", r["p50_ms"]))


def _where(run: Any) -> tuple[str, str]:
    """The device and host a benchmark run measured on."""
    return (run.data.params.get(keys.DEVICE_PARAM, "cpu").lower(),
            run.data.tags.get(keys.ENV_HOSTNAME, ""))


def _place(row: dict[str, Any]) -> tuple[str, str]:
    """The device and host of a row."""
    return row["device"], row["host"]


def _row(name: str, run: Any, versions: dict[int, dict[str, str]]) -> dict | None:
    """A benchmark run as a table row at its smallest batch size (None if it logged none)."""
    metrics = run.data.metrics
    batches = keys.batch_sizes(metrics)
    if not batches:
        return None
    batch = batches[0]
    number = int(run.data.tags.get(keys.SOURCE_MODEL_VERSION, "0"))
    version_tags = versions.get(number, {})
    tags = {k: float(v) for k, v in headline_metrics(version_tags).items()}
    variant = ModelRef(name=name, version=number or 1).variant
    device, host = _where(run)
    accuracy = metrics.get(keys.ACCURACY_MAP50_95, tags.get(keys.VARIANT_MAP50_95,
                                                            tags.get(keys.VAL_MAP50_95)))
    return {
        "variant": variant or "base", "version": number,
        "device": device, "host": host, "cpu": run.data.tags.get(keys.ENV_CPU),
        "isa": instruction_set(run.data.tags.get(keys.ENV_CPU_FLAGS)), "batch": batch,
        "size_mb": metrics.get(keys.MODEL_SIZE_MB), "map50_95": accuracy,
        "delta_map50_95": tags.get(keys.DELTA_MAP50_95, 0.0 if variant is None else None),
        "p50_ms": metrics[keys.batch_metric(batch, keys.LATENCY_P50)],
        "p95_ms": metrics.get(keys.batch_metric(batch, keys.LATENCY_P95)),
        "fps": metrics.get(keys.batch_metric(batch, keys.FPS)),
        "cameras": int(metrics[keys.STREAMS_MAX_CAMERAS]) if keys.STREAMS_MAX_CAMERAS in metrics
        else None,
        "cameras_capped": bool(metrics[keys.STREAMS_CAPPED])
        if keys.STREAMS_CAPPED in metrics else None,
        "camera_fps": metrics.get(keys.STREAMS_TARGET_FPS),
        "speedup": None, "pareto": False,
        "paired_with": run.data.tags.get(keys.BASELINE_MODEL_NAME),
        "paired_speedup": metrics.get(keys.batch_metric(batch, keys.SPEEDUP_VS_BASELINE)),
        "steady": {"true": True, "false": False}.get(run.data.tags.get(keys.BENCHMARK_STEADY,
                                                                       "")),
        "worst_class": keys.worst_class(metrics, keys.ACCURACY) or version_tags.get(
            keys.WORST_CLASS),
        "warning": version_tags.get(keys.WARNING),
        "benchmark_run_id": run.info.run_id,
        "model_name": name,
    }


def log_comparison(client: MlflowClient, site: str, task: str, plot: Path,
                   table_csv: str) -> str:
    """Record the comparison as a run ``{task}-compare-{time}`` of the site's experiment, with the
    Pareto plot and the table as artifacts; return its run id."""
    experiment_id = find_experiment_id(client, site)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = client.create_run(experiment_id, run_name=f"{task}-compare-{stamp}",
                            tags={keys.EXPERIMENT_TYPE: "compare", keys.TASK_TYPE: task})
    client.log_artifact(run.info.run_id, str(plot), "compare")
    client.log_text(run.info.run_id, table_csv, "compare/variants.csv")
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id
