"""Experiments, runs and what is logged into them, through MLflow's client API (no fluent state).

Everything a run records goes through ``RunRecorder``, which the pipelines see as their
``Tracker``: params and tags in batched calls, metrics with MLflow-safe names, artifacts, inputs.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)

from siteml.core import interrupts, keys
from siteml.core.models import SourceModel
from siteml.tracking.blink import Patience
from siteml.tracking.heartbeat import Heartbeat, process_tags
from siteml.tracking.store import Store

MAX_BATCH = {"params": 100, "tags": 100, "metrics": 1000}  # MLflow's log_batch limits
_METRIC_NAME_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]+")


def sanitize_metric_name(name: str) -> str:
    """Make a metric name MLflow accepts: ``metrics/mAP50(B)`` -> ``metrics/mAP50_B``."""
    return _METRIC_NAME_BAD.sub("_", name).strip("_") or "metric"


def open_client(store: Store) -> MlflowClient:
    """An MLflow client bound to ``store`` for tracking and registry alike; MLflow's global
    URIs are left alone (the calls that read them pin them: ``global_uris.pinned_uris``)."""
    return MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)


def find_experiment_id(client: MlflowClient, name: str) -> str | None:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else None


def ensure_experiment(client: MlflowClient, store: Store, name: str, tags: dict[str, str],
                      description: str) -> str:
    """The id of experiment ``name``; a new one gets ``tags``, a description, and (embedded
    store) an artifact folder beside the database named after the site path."""
    found = find_experiment_id(client, name)
    if found:
        return found
    location = (store.artifact_root / name).as_uri() if store.artifact_root else None
    all_tags = {**tags, keys.NOTE: description,
                keys.EXPERIMENT_KIND: keys.EXPERIMENT_KIND_MODELS}
    try:
        return client.create_experiment(name, artifact_location=location, tags=all_tags)
    except Exception:  # another process created it first
        found = find_experiment_id(client, name)
        if found:
            return found
        raise


def runs_named(client: MlflowClient, experiment_id: str, run_name: str) -> list[Any]:
    """Runs of an experiment with this run name, any status, newest first."""
    quoted = run_name.replace("'", "\\'")
    return list(client.search_runs([experiment_id], f"attributes.run_name = '{quoted}'",
                                   run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                   order_by=["attributes.start_time DESC"]))


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class RunRecorder:
    """One MLflow run: the ``Tracker`` a pipeline logs into, plus the runner's own calls."""

    def __init__(self, client: MlflowClient, store: Store, run_id: str, experiment_id: str,
                 models: dict[str, Any] | None = None, local: dict[str, Path] | None = None):
        self.client = client
        self.store = store
        self.run_id = run_id
        self.experiment_id = experiment_id
        self._versions = {role: v for role, v in (models or {}).items() if v is not None}
        self._downloaded: dict[str, SourceModel] = {
            role: SourceModel(name=v.name, version=int(v.version), run_id=v.run_id,
                              path=(local or {})[role], tags=dict(v.tags))
            for role, v in self._versions.items() if role in (local or {})}
        self.last_step = 0
        self.patience = Patience(lambda batch: client.log_batch(
            run_id, metrics=batch, synchronous=True), MAX_BATCH["metrics"])
        self.heartbeat: Heartbeat | None = None

    @cached_property
    def workdir(self) -> Path:
        """The run's scratch folder, created on first use and removed by ``cleanup``."""
        return Path(tempfile.mkdtemp(prefix="siteml-run-"))

    @classmethod
    def start(cls, client: MlflowClient, store: Store, experiment_id: str, run_name: str,
              tags: dict[str, str], params: dict[str, str],
              models: dict[str, Any] | None = None,
              local: dict[str, Path] | None = None) -> RunRecorder:
        """Create the run and write all its tags and params in batched calls; ``models`` are
        the registered versions it reads, by role (``source``, ``baseline``), ``local`` the
        folders of those whose files are on disk already (not downloaded)."""
        run = client.create_run(experiment_id, run_name=run_name)
        recorder = cls(client, store, run.info.run_id, experiment_id, models, local)
        recorder.log_params(params)
        recorder.set_tags({**tags, **process_tags()})
        recorder.heartbeat = Heartbeat(lambda stamp: client.set_tag(
            recorder.run_id, keys.HEARTBEAT, stamp, synchronous=True))
        return recorder

    def log_params(self, params: dict[str, str]) -> None:
        for batch in _batches([Param(k, v) for k, v in params.items()], MAX_BATCH["params"]):
            self.patience.call(lambda b=batch: self.client.log_batch(
                self.run_id, params=b, synchronous=True))

    def set_tags(self, tags: dict[str, str]) -> None:
        for batch in _batches([RunTag(k, v) for k, v in tags.items()], MAX_BATCH["tags"]):
            self.patience.call(lambda b=batch: self.client.log_batch(
                self.run_id, tags=b, synchronous=True))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics at ``step``; without one, after every step logged so far, so that final
        metrics are what MLflow shows as the run's latest values. While the server is away they
        wait in memory (``Patience``). Every epoch passes here, so an interrupt whose exception
        was lost (``core.interrupts``) is raised again here and stops the training."""
        interrupts.raise_if_requested()
        step = self.last_step + 1 if step is None else step
        self.last_step = max(self.last_step, step)
        now = int(time.time() * 1000)
        self.patience.add([Metric(sanitize_metric_name(k), float(v), now, step)
                           for k, v in metrics.items()])

    def settle(self) -> None:
        """Wait until every metric logged so far is recorded (or the server is given up)."""
        self.patience.call(lambda: None)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        log = self.client.log_artifacts if Path(path).is_dir() else self.client.log_artifact
        self.patience.call(lambda: log(self.run_id, str(path), artifact_path))

    def log_text(self, text: str, artifact_file: str) -> None:
        self.patience.call(lambda: self.client.log_text(self.run_id, text, artifact_file))

    def log_dataset(self, name: str, digest: str, source: str, context: str,
                    profile: dict[str, Any] | None = None,
                    tags: dict[str, str] | None = None) -> None:
        """Record the dataset as a run input: digest = DVC hash, source = its path, its
        profile (``siteml data stats``) and tags (its lineage) when given."""
        dataset = Dataset(name=name, digest=digest, source_type="local",
                          source=json.dumps({"uri": source}),
                          profile=json.dumps(profile) if profile is not None else None)
        inputs = [InputTag("mlflow.data.context", context),
                  *(InputTag(key, value) for key, value in (tags or {}).items())]
        self.patience.call(lambda: self.client.log_inputs(self.run_id,
                                                          [DatasetInput(dataset, inputs)]))

    def reads(self, role: str) -> bool:
        return role in self._versions

    def source_model(self, role: str = "source") -> SourceModel:
        """Download the model version the scenario reads as ``role`` once, into the run's
        scratch folder (one on disk already is read where it is)."""
        if role not in self._downloaded:
            if role not in self._versions:
                raise RuntimeError(f"this scenario has no {role} model")
            from siteml.tracking.model_resolve import download_version

            self._downloaded[role] = self.patience.call(lambda: download_version(
                self._versions[role], self.workdir / role, self.store.tracking_uri))
        return self._downloaded[role]

    def finish(self, status: str) -> None:
        """End the run as FINISHED, FAILED or KILLED."""
        self._stop_heartbeat()
        self.patience.call(lambda: self.client.set_terminated(
            self.run_id, RunStatus.to_string(RunStatus.from_string(status))))

    def _stop_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None

    def cleanup(self) -> None:
        self._stop_heartbeat()
        if "workdir" in self.__dict__:
            shutil.rmtree(self.workdir, ignore_errors=True)
