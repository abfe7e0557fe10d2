"""Read-only questions about runs: a site's runs, the best version of a task at a site."""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType

from siteml.tracking.runs import find_experiment_id

KEY_METRICS = ("val/map50", "val/map50_95", "variant/map50_95", "delta/map50_95", "speedup",
               "b1/latency_p50_ms", "b1/fps", "b1/speedup_vs_baseline")


def _site_experiments(client: MlflowClient, site: str | None) -> dict[str, str]:
    """Experiment id -> name, of one site or of every site siteml created."""
    if site:
        found = find_experiment_id(client, site)
        return {found: site} if found else {}
    experiments = client.search_experiments(filter_string="tags.`site.path` LIKE '%'",
                                            max_results=50_000)
    return {e.experiment_id: e.name for e in experiments}


def site_runs(client: MlflowClient, site: str | None = None, limit: int = 100, *,
              task: str | None = None, kind: str | None = None,
              status: str | None = None) -> list[dict[str, Any]]:
    """Newest runs of a site (or of all sites), with status, key metrics, the model version
    each read (``source_model``: quant and infer runs) and the one it registered; only those
    of ``task``, of type ``kind`` (train, quant, infer, compare) or in ``status`` if given."""
    experiments = _site_experiments(client, site)
    if not experiments:
        return []
    clauses = [f"tags.`siteml.experiment_type` = '{kind}'" if kind
               else "tags.`siteml.experiment_type` != ''"]
    clauses += [f"tags.`task.type` = '{task}'"] if task else []
    clauses += [f"attributes.status = '{status}'"] if status else []
    runs = client.search_runs(list(experiments), " and ".join(clauses),
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=limit,
                              order_by=["attributes.start_time DESC"])
    return [{
        "site": experiments[run.info.experiment_id],
        "run_name": run.info.run_name,
        "run_id": run.info.run_id,
        "type": run.data.tags.get("siteml.experiment_type", ""),
        "status": run.info.status,
        "start_time": run.info.start_time,
        "duration_s": ((run.info.end_time - run.info.start_time) / 1000
                       if run.info.end_time else None),
        "source_model": _source_model(run.data.tags),
        "model_version": run.data.tags.get("siteml.model_version"),
        "metrics": {k: v for k, v in run.data.metrics.items() if k in KEY_METRICS},
    } for run in runs]


def _source_model(tags: dict[str, str]) -> str | None:
    """``name/version`` of the registered model a quant or infer run read, if any."""
    name = tags.get("source.model_name")
    return f"{name}/{tags.get('source.model_version', '?')}" if name else None


def best_run(client: MlflowClient, site: str, task: str,
             metric: str = "val/map50_95") -> dict[str, Any] | None:
    """The finished training run of ``task`` at ``site`` with the highest ``metric``, and the
    registered version it produced."""
    experiment_id = find_experiment_id(client, site)
    if experiment_id is None:
        return None
    runs = client.search_runs(
        [experiment_id],
        f"tags.`task.type` = '{task}' and tags.`siteml.experiment_type` = 'train' "
        "and attributes.status = 'FINISHED'",
        max_results=1, order_by=[f"metrics.`{metric}` DESC"])
    if not runs or metric not in runs[0].data.metrics:
        return None
    run = runs[0]
    return {"run_id": run.info.run_id, "run_name": run.info.run_name,
            "metric": metric, "value": run.data.metrics[metric],
            "model_version": run.data.tags.get("siteml.model_version")}
