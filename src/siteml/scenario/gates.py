"""The training gate as a scenario states it: all-class and per-class floors, and the rule that
compares with the champion; a scenario's gate goes on top of its site's (``pipelines.gates``
checks the figures against it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from pydantic import Field

from siteml.core import keys
from siteml.scenario.fields import Fraction, Section

if TYPE_CHECKING:  # the figures' names, from core.keys: to a type checker, a name
    GateMetric: TypeAlias = str
else:
    GateMetric = Literal[keys.CLASS_FIGURES]
ALL_CLASSES = "*"


class MetricFloors(Section):
    """Lowest all-class values allowed on the final validation (0-1)."""

    precision: Fraction | None = Field(None, description="Lowest precision")
    recall: Fraction | None = Field(None, description="Lowest recall")
    map50: Fraction | None = Field(None, description="Lowest mAP50")
    map50_95: Fraction | None = Field(None, description="Lowest mAP50-95")


class ClassFloors(Section):
    """Lowest values allowed per class (0-1), e.g. ``recall: {helmet: 0.8}``; ``'*'`` is every
    class of the task."""

    precision: dict[str, Fraction] | None = Field(None, description="Lowest precision per class")
    recall: dict[str, Fraction] | None = Field(None, description="Lowest recall per class")
    map50: dict[str, Fraction] | None = Field(None, description="Lowest AP50 per class")
    map50_95: dict[str, Fraction] | None = Field(None, description="Lowest AP50-95 per class")


class TrainingGate(Section):
    """What a trained model must reach to be registered; one that fails ends FAILED, registers
    nothing, and keeps its weights as run artifacts."""

    min: MetricFloors = Field(default_factory=MetricFloors,
                              description="Lowest all-class values, e.g. {map50: 0.5}")
    min_per_class: ClassFloors = Field(default_factory=ClassFloors,
                                       description="Lowest values per class, e.g. "
                                       "{recall: {helmet: 0.8}}")
    compare_to: Literal["champion"] | None = Field(
        None, description="Score the site/task's @champion on this scenario's val split with "
        "the same evaluator, and refuse a model that regresses more than max_regression")
    max_regression: Fraction = Field(0.0, description="Largest drop below the champion allowed "
                                     "on regression_metric (absolute, 0-1)")
    regression_metric: GateMetric = Field("map50_95", description="Metric the champion rule "
                                          "compares")

    def class_rules(self) -> list[tuple[str, str, float]]:
        """``(figure, class or '*', floor)`` of every per-class rule."""
        return [(figure, name, floor) for figure, floors in
                self.min_per_class.model_dump(exclude_none=True).items()
                for name, floor in floors.items()]

    def to_params(self) -> dict[str, str]:
        """``gate.min.map50``, ``gate.min_per_class.recall.helmet``, ``gate.compare_to``..."""
        params = {f"gate.min.{k}": str(v)
                  for k, v in self.min.model_dump(exclude_none=True).items()}
        params.update({f"gate.min_per_class.{figure}.{name}": str(floor)
                       for figure, name, floor in self.class_rules()})
        if self.compare_to:
            params.update({"gate.compare_to": self.compare_to,
                           "gate.max_regression": str(self.max_regression),
                           "gate.regression_metric": self.regression_metric})
        return params

    def over(self, base: TrainingGate | None) -> TrainingGate:
        """This gate's rules on top of ``base`` (a site's default): what it sets wins."""
        if base is None:
            return self
        merged = base.model_dump(exclude_none=True)
        for key, value in self.model_dump(exclude_unset=True, exclude_none=True).items():
            if isinstance(value, dict):
                for inner, floor in value.items():
                    if isinstance(floor, dict):
                        merged[key].setdefault(inner, {}).update(floor)
                    else:
                        merged[key][inner] = floor
            else:
                merged[key] = value
        return TrainingGate.model_validate(merged)
