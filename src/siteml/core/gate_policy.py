"""Gate policy at promotion: a version may become champion only when a gate passed it and it
carries no warning. Pure, so the registry applies the rule the pipelines' gates write tags for."""

from __future__ import annotations

from siteml.core import keys


def gate_problem(version_tags: dict[str, str]) -> str | None:
    """Why a version may not become champion, or None: its gate refused it, it was never
    scored by one, or it carries a warning."""
    gate, problems = version_tags.get(keys.GATE), []
    if gate is None:
        problems.append("it was never scored by a gate (its run had no training.gate)")
    elif gate != keys.GATE_PASSED:
        problems.append(f"its gate says {gate}: {version_tags.get(keys.GATE_REASONS, '')}")
    if keys.WARNING in version_tags:
        problems.append(f"it carries a warning: {version_tags[keys.WARNING]}")
    return "; ".join(problems) or None
