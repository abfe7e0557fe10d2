"""Read-only questions about runs: a site's runs, the best version of a task at a site, the
runs whose process is gone."""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType

from siteml.core import keys
from siteml.tracking.heartbeat import StaleRun, stale, staleness
from siteml.tracking.runs import find_experiment_id


def site_experiments(client: MlflowClient, site: str | None) -> dict[str, str]:
    """Experiment id -> name, of one site or of every site siteml created."""
    if site:
        found = find_experiment_id(client, site)
        return {found: site} if found else {}
    experiments = client.search_experiments(filter_string=f"tags.`{keys.SITE_PATH}` LIKE '%'",
                                            max_results=50_000)
    return {e.experiment_id: e.name for e in experiments}


def site_runs(client: MlflowClient, site: str | None = None, limit: int = 100, *,
              task: str | None = None, kind: str | None = None,
              status: str | None = None) -> list[dict[str, Any]]:
    """Newest runs of a site (or of all sites), with status, key metrics, the model version
    each read (``source_model``: quant and infer runs) and the one it registered; only those
    of ``task``, of type ``kind`` (train, quant, infer, compare) or in ``status`` if given."""
    experiments = site_experiments(client, site)
    if not experiments:
        return []
    clauses = [f"tags.`{keys.EXPERIMENT_TYPE}` = '{kind}'" if kind
               else f"tags.`{keys.EXPERIMENT_TYPE}` != ''"]
    clauses += [f"tags.`{keys.TASK_TYPE}` = '{task}'"] if task else []
    clauses += [f"attributes.status = '{status}'"] if status else []
    runs = client.search_runs(list(experiments), " and ".join(clauses),
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=limit,
                              order_by=["attributes.start_time DESC"])
    return [{
        "site": experiments[run.info.experiment_id],
        "run_name": run.info.run_name,
        "run_id": run.info.run_id,
        "type": run.data.tags.get(keys.EXPERIMENT_TYPE, ""),
        "status": run.info.status,
        "start_time": run.info.start_time,
        "duration_s": ((run.info.end_time - run.info.start_time) / 1000
                       if run.info.end_time else None),
        "source_model": _source_model(run.data.tags),
        "model_version": run.data.tags.get(keys.MODEL_VERSION),
        "metrics": {k: v for k, v in run.data.metrics.items() if k in keys.KEY_METRICS},
    } for run in runs]


def _source_model(tags: dict[str, str]) -> str | None:
    """``name/version`` of the registered model a quant or infer run read, if any."""
    name = tags.get(keys.SOURCE_MODEL_NAME)
    return f"{name}/{tags.get(keys.SOURCE_MODEL_VERSION, '?')}" if name else None


def best_run(client: MlflowClient, site: str, task: str,
             metric: str = keys.VAL_MAP50_95) -> dict[str, Any] | None:
    """The finished training run of ``task`` at ``site`` with the highest ``metric``, and the
    registered version it produced."""
    experiment_id = find_experiment_id(client, site)
    if experiment_id is None:
        return None
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{keys.TASK_TYPE}` = '{task}' and tags.`{keys.EXPERIMENT_TYPE}` = 'train' "
        "and attributes.status = 'FINISHED'",
        max_results=1, order_by=[f"metrics.`{metric}` DESC"])
    if not runs or metric not in runs[0].data.metrics:
        return None
    run = runs[0]
    return {"run_id": run.info.run_id, "run_name": run.info.run_name,
            "metric": metric, "value": run.data.metrics[metric],
            "model_version": run.data.tags.get(keys.MODEL_VERSION)}


def stale_runs(client: MlflowClient, site: str | None, older_than: float) -> list[StaleRun]:
    """RUNNING runs of a site (or of every site) whose process is gone."""
    experiments = site_experiments(client, site)
    if not experiments:
        return []
    runs = client.search_runs(list(experiments), "attributes.status = 'RUNNING'",
                              max_results=50_000)
    return [stale(run, experiments[run.info.experiment_id], reason) for run in runs
            if (reason := staleness(run, older_than)) is not None]
