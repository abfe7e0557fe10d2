"""The imported dataset's classes: the order asked for (``--classes``), renames (``--map``),
and labels of any other class refused or dropped (``--drop-unknown``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from siteml.core.errors import InvalidInputError


@dataclass(frozen=True)
class ClassPlan:
    """Names as asked: the order (None: the source's) and renames (source -> dataset name)."""

    order: tuple[str, ...] | None
    renames: dict[str, str]

    def name(self, label: str) -> str:
        return self.renames.get(label, label)


def parse_plan(classes: str | None, mapping: str | None) -> ClassPlan:
    """Parse ``--classes a,b`` and ``--map "x=a,y=b"``; a rename onto a class outside
    ``--classes`` is refused here, before the source is read."""
    order = tuple(_items(classes)) if classes else None
    if order is not None and len(set(order)) != len(order):
        repeated = sorted(n for n, k in Counter(order).items() if k > 1)
        raise InvalidInputError(f"--classes names {', '.join(repeated)} more than once")
    renames: dict[str, str] = {}
    for item in _items(mapping or ""):
        source, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not source or not target:
            raise InvalidInputError(f"--map: {item!r} is not SOURCE=CLASS")
        if source in renames and renames[source] != target:
            raise InvalidInputError(f"--map renames {source!r} twice")
        renames[source] = target
    if order is not None:
        outside: dict[str, list[str]] = {}
        for source, target in renames.items():
            if target not in order:
                outside.setdefault(target, []).append(source)
        if outside:
            raise InvalidInputError("--map renames onto classes not in --classes ("
                                    f"{', '.join(order)}): " + "; ".join(
                                        f"{', '.join(s)} -> {t}" for t, s in outside.items()))
    return ClassPlan(order, renames)


def resolve(plan: ClassPlan, source_classes: list[str],
            used: Counter[str]) -> tuple[list[str], Counter[str]]:
    """The dataset's classes (``--classes``, else the source's declared classes renamed), and
    the labels outside them (source names, with box counts)."""
    names = list(plan.order) if plan.order is not None else list(
        dict.fromkeys(plan.name(c) for c in source_classes))
    unknown = Counter({label: n for label, n in used.items() if plan.name(label) not in names})
    return names, unknown


def unknown_message(unknown: Counter[str]) -> str:
    listed = ", ".join(f"{label} ({n} boxes)" for label, n in unknown.most_common())
    return (f"labels of classes not in the class list: {listed}; rename them with "
            "--map SOURCE=CLASS or leave them out with --drop-unknown")


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]
