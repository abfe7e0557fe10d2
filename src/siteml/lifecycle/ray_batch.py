"""The Ray executor (``siteml run --ray``): each step of a batch as a Ray task on an existing
cluster, logging to the tracking server.

A step asks the cluster for one CPU, a GPU when its device is CUDA, and the custom resource
``host:NAME`` when its scenario names ``environment.host`` (a site's box joins the cluster with
``ray start --address … --resources '{"host:NAME": 1}'``). The tracking URI, the workspace and
the credentials reach the workers as an object in Ray's object store, which each task puts in
its worker's environment: not in the job's runtime environment, whose agent logs its
variables in clear (``runtime_env_agent.log``). The worker reads the
dataset from the scenario's path (shared storage) and checks its DVC hash itself. Ray retries a
task whose worker died (``RETRIES``); the retry reaps the dead attempt's run and registers no
second version. A pipeline's own failure is a failed row, never retried.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from siteml.core import keys
from siteml.core.errors import InvalidInputError
from siteml.core.extras import require
from siteml.core.secrets import redact
from siteml.lifecycle.batch import Step, run_step
from siteml.lifecycle.options import RunOptions
from siteml.lifecycle.outcomes import FAILED, StepOutcome
from siteml.tracking.store import Store

RETRIES = 2
FORWARDED = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
             "MLFLOW_TRACKING_TOKEN", "MLFLOW_WORKSPACE", "MLFLOW_TRACKING_INSECURE_TLS",
             "MLFLOW_TRACKING_SERVER_CERT_PATH", "SITEML_HEARTBEAT_S", "SITEML_STALE_AFTER_S",
             "SITEML_SERVER_WAIT_S")
"""What a worker needs of this process's environment to log where the batch logs."""
CANCEL_WAIT_S = 60


def task_options(step: Step) -> dict[str, Any]:
    """The resources a step asks of the cluster, and its retries."""
    environment = step.scenario.environment
    resources = {f"host:{environment.host}": 1.0} if environment.host else {}
    return {"num_cpus": 1, "num_gpus": 1 if environment.device.startswith("cuda") else 0,
            "resources": resources, "max_retries": RETRIES, "retry_exceptions": False}


def _on_worker(settings: dict[str, str], step: Step, options: RunOptions) -> StepOutcome:
    """A step on a Ray worker (its environment given ``settings``), its run tagged with the
    node, job and task."""
    import ray

    os.environ.update(settings)
    context = ray.get_runtime_context()
    tags = {keys.RAY_NODE: context.get_node_id(), keys.RAY_JOB: context.get_job_id(),
            keys.RAY_TASK: context.get_task_id()}
    return run_step(step, replace(options, executor_tags=tags))


class RayExecutor:
    """Runs a batch's steps as Ray tasks, each as soon as the steps it waits for finished."""

    checks_data_here = False

    def __init__(self, steps: list[Step], store: Store, options: RunOptions,
                 address: str | None = None):
        if not store.is_server:
            raise InvalidInputError(
                f"--ray: the store is the embedded database {store.display}, which the "
                "cluster's workers cannot share; set MLFLOW_TRACKING_URI to a tracking server")
        self.ray, self.steps, self.options = require("ray", "cluster"), steps, options
        settings = {name: os.environ[name] for name in FORWARDED if os.environ.get(name)}
        settings["MLFLOW_TRACKING_URI"] = store.tracking_uri
        self.ray.init(address=address or os.environ.get("RAY_ADDRESS") or "auto",
                      log_to_driver=False, logging_level="WARNING")
        self.settings = self.ray.put(settings)
        self.capacity = len(steps)  # the cluster queues tasks by their resources
        self.remote = self.ray.remote(_on_worker)
        self.index: dict[Any, int] = {}

    def submit(self, index: int, pinned: dict[str, int]) -> Any:
        step = self.steps[index]
        ref = self.remote.options(**task_options(step)).remote(  # the path as the node reads it
            self.settings, replace(step, path=step.path.absolute()),
            replace(self.options, pinned=pinned))
        self.index[ref] = index
        return ref

    def wait(self, running: list[Any]) -> tuple[Any, StepOutcome]:
        [ref], _ = self.ray.wait(running, num_returns=1)
        step = self.steps[self.index.pop(ref)]
        try:
            row = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # retries spent, or the task interrupted
            cause = getattr(exc, "cause", None) or exc
            row = step.row(FAILED, f"Ray: {type(cause).__name__}: {redact(str(cause))}")
        row.file = str(step.path)
        return ref, row

    def cancel(self, running: list[Any]) -> None:
        """Interrupt the running tasks (their runs end KILLED) and wait for them to end."""
        for ref in running:
            self.ray.cancel(ref)
        self.ray.wait(running, num_returns=len(running), timeout=CANCEL_WAIT_S)

    def close(self) -> None:
        self.ray.shutdown()
