"""MLflow's client with the one call a box agent adds: a run's tags and metrics in one
request (``RestClient.log_report`` says the same over REST)."""

from __future__ import annotations

import time

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag


class ReportingClient(MlflowClient):
    """``MlflowClient`` with ``log_report``."""

    def log_report(self, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                       tags=[RunTag(k, v) for k, v in tags.items()])
