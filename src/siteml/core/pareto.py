"""The latency / accuracy trade-off of model variants: Pareto front and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siteml.core.extras import require


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
    """Latency p50 against mAP50-95: one point per variant, and one colour and one Pareto front
    (the rows flagged ``pareto``) per device and host."""
    require("matplotlib", "train").use("Agg")
    from matplotlib import pyplot

    shown = sorted((r for r in rows if r.get("map50_95") is not None),
                   key=lambda r: r["p50_ms"])
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for device, host in sorted({(r["device"], r["host"]) for r in shown}):
        here = [r for r in shown if (r["device"], r["host"]) == (device, host)]
        dots = axes.scatter([r["p50_ms"] for r in here], [r["map50_95"] for r in here], s=36,
                            label=f"{device} on {host}" if host else device)
        for row in here:
            axes.annotate(row["variant"], (row["p50_ms"], row["map50_95"]), fontsize=8,
                          xytext=(4, 4), textcoords="offset points")
        front = [(r["p50_ms"], r["map50_95"]) for r in here if r.get("pareto")]
        if front:
            axes.step(*zip(*front, strict=True), "--", where="post", alpha=0.6,
                      color=dots.get_facecolor()[0])
    if shown:
        axes.legend(loc="lower right", fontsize=8, title="dashed: Pareto front",
                    title_fontsize=8)
    axes.set(xlabel="latency p50 (ms), batch 1", ylabel="mAP50-95", title=title)
    axes.grid(alpha=0.3)
    axes.margins(x=0.15, y=0.15)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
