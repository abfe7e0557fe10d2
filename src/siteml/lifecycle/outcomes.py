"""What running scenarios reports: one run's outcome and a batch's rows, with one spelling of
a status for both: MLflow's run statuses (upper case), and the batch's own for what did not run
(a scenario skipped as done, blocked by a failure, or not reached before an interrupt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siteml.core import keys
from siteml.core.naming import CANDIDATE, registry_path

RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
SKIPPED, BLOCKED, NOT_RUN = "SKIPPED", "BLOCKED", "NOT_RUN"
DONE = (FINISHED, SKIPPED)
"""A run's model is there: the statuses its dependents go on after."""


@dataclass
class RunOutcome:
    """What ``siteml run`` reports."""

    experiment_name: str
    experiment_id: str
    run_name: str
    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    registered_model: str | None = None
    model_version: int | None = None
    alias: str | None = None

    @classmethod
    def skipped(cls, experiment_name: str, run: Any) -> RunOutcome:
        """The outcome of a scenario whose run key already FINISHED: that run and its version."""
        outcome = cls(experiment_name, run.info.experiment_id, run.info.run_name,
                      run.info.run_id, SKIPPED, dict(run.data.metrics))
        registered = run.data.tags.get(keys.MODEL_VERSION)
        if registered:
            name, version = registered.rsplit("/", 1)
            outcome.registered_model, outcome.model_version = name, int(version)
            outcome.alias = CANDIDATE
        return outcome

    @property
    def registered_path(self) -> str | None:
        """``site/task/version @alias`` as people write it (the slash spelling)."""
        if not self.registered_model:
            return None
        return f"{registry_path(self.registered_model)}/{self.model_version} @{self.alias}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StepOutcome:
    """One row of a batch's table (made by ``Step.row``)."""

    file: str
    run_name: str
    status: str
    run_id: str | None = None
    duration_s: float | None = None
    model_version: str | None = None
    detail: str | None = None

    @property
    def pin(self) -> tuple[str, int] | None:
        """The registered model and version it made (or its skipped run had made)."""
        if not self.model_version:
            return None
        name, version = self.model_version.rsplit("/", 1)
        return name, int(version)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
