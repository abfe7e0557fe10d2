"""Gates: the rules a model must pass to be registered, checked on figures already measured.

A gate gives a verdict (every rule it checked, and the reasons it refused); a refused model's
run ends FAILED (``GateRefusedError``), tagged ``siteml.gate=refused`` with the reasons, and
nothing is registered. The rules of a passed gate go onto the registered version, which is what
``siteml promote … champion`` checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from siteml.core import keys
from siteml.core.models import Tracker
from siteml.scenario.gates import ALL_CLASSES, TrainingGate


class GateRefusedError(Exception):
    """The model failed its gate; the message lists each rule it failed."""


@dataclass
class Verdict:
    """Every rule a gate checked, as text, and the ones that failed, with the figures."""

    rules: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def floor(self, rule: str, value: float | None, floor: float, missing: str) -> None:
        """``rule`` holds when ``value`` is at least ``floor``; ``missing`` says why there is no
        value (a figure that was not measured fails: a gate cannot pass what it did not see)."""
        self.rules.append(f"{rule} >= {floor:g}")
        if value is None:
            self.reasons.append(f"{rule}: not scored ({missing}), needs >= {floor:g}")
        elif value < floor:
            self.reasons.append(f"{rule} is {value:.4f}, below {floor:g}")

    def tags(self) -> dict[str, str]:
        """``siteml.gate`` (passed or refused), its rules and, when refused, the reasons."""
        tags = {keys.GATE: keys.GATE_REFUSED if self.reasons else keys.GATE_PASSED,
                keys.GATE_RULES: "; ".join(self.rules)[:5000]}
        if self.reasons:
            tags[keys.GATE_REASONS] = "; ".join(self.reasons)[:5000]
        return tags

    def enforce(self, tracker: Tracker, what: str) -> dict[str, str]:
        """Tag the run with the verdict; raise ``GateRefusedError`` when refused, else return
        the tags for the registered version."""
        tags = self.tags()
        tracker.set_tags(tags)
        if self.reasons:
            raise GateRefusedError(f"{what} refused by its gate, not registered:\n  - "
                                   + "\n  - ".join(self.reasons))
        return tags


def training_verdict(gate: TrainingGate, metrics: dict[str, float], classes: Sequence[str],
                     champion: str | None) -> Verdict:
    """Check a trained model's final validation figures against ``gate``.

    Args:
        gate: The scenario's gate (site defaults included).
        metrics: The run's metrics: ``val/*``, ``val/class/<name>/*`` and, when the champion
            was scored, ``challenger/*`` and ``champion/*``.
        classes: The task's classes (what ``'*'`` expands to).
        champion: The champion's registry path, or None when the site/task has none.
    """
    verdict = Verdict()
    for figure, floor in gate.min.model_dump(exclude_none=True).items():
        verdict.floor(figure, metrics.get(f"val/{figure}"), floor, "no final validation")
    for figure, name, floor in gate.class_rules():
        for each in classes if name == ALL_CLASSES else [name]:
            verdict.floor(f"{each} {figure}", metrics.get(keys.class_metric(each, figure)),
                          floor, f"val has no {each!r} boxes")
    if gate.compare_to:
        figure = gate.regression_metric
        rule = f"{figure} at most {gate.max_regression:g} below @{gate.compare_to}"
        if champion is None:
            verdict.rules.append(f"{rule} (no @{gate.compare_to}: nothing to compare with)")
        else:
            verdict.rules.append(f"{rule} ({champion})")
            new = metrics[keys.scored(keys.CHALLENGER, figure)]
            old = metrics[keys.scored(keys.CHAMPION, figure)]
            if old - new > gate.max_regression:
                verdict.reasons.append(f"{figure} is {new:.4f} on this val split, "
                                       f"{old - new:.4f} below @{gate.compare_to} {champion} "
                                       f"({old:.4f}); max_regression is {gate.max_regression:g}")
    return verdict


def quantization_verdict(metrics: dict[str, float], classes: Sequence[str],
                         max_drop: float, max_class_drop: float | None) -> Verdict:
    """Check a variant's mAP50-95 loss against its source (all classes, and per class when
    ``max_class_drop`` is set) from a quant run's ``source/*``, ``variant/*`` figures."""
    verdict = Verdict()
    checks = [("mAP50-95", keys.SOURCE_MAP50_95, keys.VARIANT_MAP50_95, "max_accuracy_drop",
               max_drop)]
    if max_class_drop is not None:
        checks += [(f"{name} AP50-95", keys.class_metric(name, "map50_95", "source"),
                    keys.class_metric(name, "map50_95", "variant"), "max_class_drop",
                    max_class_drop) for name in classes]
    for what, before, after, setting, allowed in checks:
        if before not in metrics:  # a class absent from val
            continue
        verdict.rules.append(f"{what} loses at most {setting} {allowed:g}")
        drop = metrics[before] - metrics[after]
        if drop > allowed:
            verdict.reasons.append(f"{what} loses {drop:.4f} ({metrics[before]:.4f} -> "
                                   f"{metrics[after]:.4f}), more than {setting} {allowed:g}"
                                   + _noise(metrics, after))
    return verdict


def _noise(metrics: dict[str, float], after: str) -> str:
    """The standard error of the overall loss, where it was measured."""
    error = metrics.get(keys.DELTA_MAP50_95_SE)
    if after != keys.VARIANT_MAP50_95 or error is None:
        return ""
    return f" (standard error of the loss on this val split: {error:.4f})"
