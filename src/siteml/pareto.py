"""The latency / accuracy trade-off of model variants: Pareto front and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower latency ``x``, higher
    accuracy ``y``), ordered by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for index in order:
        if points[index][1] > best:
            front.append(index)
            best = points[index][1]
    return front


def plot_pareto(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Latency p50 against mAP50-95, one point per variant and device, the front drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    shown = [r for r in rows if r.get("map50_95") is not None]
    points = [(r["p50_ms"], r["map50_95"]) for r in shown]
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for row, (x, y) in zip(shown, points, strict=True):
        axes.scatter(x, y, s=36)
        axes.annotate(f"{row['variant']} ({row['device']})", (x, y), fontsize=8,
                      xytext=(4, 4), textcoords="offset points")
    front = [points[i] for i in pareto_front(points)]
    if front:
        axes.step(*zip(*front, strict=True), "--", where="post", color="grey",
                  label="Pareto front")
        axes.legend(loc="lower right")
    axes.set(xlabel="latency p50 (ms), batch 1", ylabel="mAP50-95", title=title)
    axes.grid(alpha=0.3)
    axes.margins(x=0.15, y=0.15)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
