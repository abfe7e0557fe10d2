"""The experiment types: one table, from which the scenario classes' dispatch, the JSON Schema,
the CLI's ``--type`` choices, the lifecycle and the tests all read.

Adding a type: its scenario class in ``schema.py`` (its parameter section in ``params.py``), one
entry here, and a pipeline module with ``check``, ``check_models`` and ``run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import get_args

from siteml.scenario.schema import (
    BaseScenario,
    InferenceBenchmarkScenario,
    MiningScenario,
    QuantizationScenario,
    TrainingScenario,
)


@dataclass(frozen=True)
class ExperimentType:
    """One experiment type.

    Attributes:
        scenario: Its scenario class; its ``experiment_type`` literal is the type's name and
            its ``params_key`` the parameter section.
        pipeline: Import path of its pipeline module (imported when a run needs it), which
            defines ``check(scenario)`` (what this machine must have), ``check_models(scenario,
            read)`` (whether the registered models it reads suit it, from their version tags by
            role) and ``run(scenario, tracker)``.
        roles: The registered models it reads, by role (``source``, ``baseline``, ``parent``,
            ``champion``), each with the YAML path of its reference (the scenario's
            ``model_reference(role)``). A ``source`` left unset defaults to the site/task's
            ``@champion``, else ``@candidate``.
        optional: Roles whose model may be missing (the run goes on without it): a training
            gate's champion, which the site's first model does not have.
        made_from: Roles that, left unset, read the version another role's model was made
            from (its ``source.*`` tags): mining's FP32 reference, the serving variant's source.
        profiles_dataset: Its runs log the dataset's profile (``siteml data stats``) with the
            dataset input, and warn when val holds near-duplicates of train.
    """

    scenario: type[BaseScenario]
    pipeline: str
    roles: dict[str, str] = field(default_factory=dict)
    optional: tuple[str, ...] = ()
    made_from: dict[str, str] = field(default_factory=dict)
    profiles_dataset: bool = False

    @property
    def name(self) -> str:
        return get_args(self.scenario.model_fields["experiment_type"].annotation)[0]

    @property
    def section(self) -> str:
        return self.scenario.params_key


EXPERIMENT_TYPES: dict[str, ExperimentType] = {kind.name: kind for kind in (
    ExperimentType(TrainingScenario, "siteml.pipelines.train",
                   {"parent": "model.weights_path", "champion": "training.gate.compare_to"},
                   optional=("champion",), profiles_dataset=True),
    ExperimentType(QuantizationScenario, "siteml.pipelines.quantize",
                   {"source": "quantization.source"}),
    ExperimentType(InferenceBenchmarkScenario, "siteml.pipelines.benchmark",
                   {"source": "benchmark.source", "baseline": "benchmark.baseline"}),
    ExperimentType(MiningScenario, "siteml.pipelines.mine",
                   {"source": "mine.source", "baseline": "mine.reference"},
                   made_from={"baseline": "source"}),
)}
"""In the order a site's work runs: train, then quantize, then benchmark, then mine the frames
the served model gets wrong."""
SCENARIO_TYPES: dict[str, type[BaseScenario]] = {
    name: kind.scenario for name, kind in EXPERIMENT_TYPES.items()}
