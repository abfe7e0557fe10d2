"""Which mined frames go to the labellers: near-duplicates out (perceptual hashes within a few
bits of a better frame), then each class's quota filled first, so that the rare classes (falls,
fire) are not drowned out by the common ones, then the rest, down to the budget. Every pick is
greedy on the frame's score times its spread (its feature distance to the nearest frame picked
already, against the typical distance between frames, capped at 1), so that ten frames of the
same glare do not fill the budget."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from siteml.pipelines.frame_scores import cosine_distances, typical_distance

FLOOR = 0.01
"""Added to every score before the spread weighs it, so that frames that score nothing are still
picked for their spread once the scored ones run out."""


@dataclass(frozen=True)
class Candidate:
    """One scored frame: its name, total score, perceptual hash, the classes the models detect
    on it, and its features."""

    name: str
    score: float
    phash: int
    classes: frozenset[str]
    feature: np.ndarray = field(repr=False)


@dataclass
class Selection:
    """The frames picked, in the order picked, and why each frame was or was not."""

    chosen: list[int]
    why: dict[int, str]


def select(candidates: list[Candidate], budget: int, quotas: dict[str, float],
           max_bits: int) -> Selection:
    """Pick at most ``budget`` of ``candidates``; ``quotas``: class -> the share of the budget
    kept for frames showing it; ``max_bits``: hashes this close are near-duplicates."""
    order = sorted(range(len(candidates)), key=lambda i: (-candidates[i].score,
                                                         candidates[i].name))
    kept: list[int] = []
    why: dict[int, str] = {}
    for index in order:
        twin = next((other for other in kept if (candidates[index].phash
                                                 ^ candidates[other].phash).bit_count()
                     <= max_bits), None)
        if twin is None:
            kept.append(index)
        else:
            why[index] = f"near-duplicate of {candidates[twin].name}"
    picker = _Picker([candidates[i] for i in kept])
    for name, share in sorted(quotas.items()):
        shows = np.array([name in candidates[i].classes for i in kept], dtype=bool)
        while int((shows & picker.taken).sum()) < math.ceil(share * budget) and len(
                picker.order) < budget and picker.pick(shows):
            why[kept[picker.order[-1]]] = f"quota {name}"
    while len(picker.order) < budget and picker.pick(np.ones(len(kept), dtype=bool)):
        why[kept[picker.order[-1]]] = "score"
    chosen = [kept[k] for k in picker.order]
    for index in kept:
        why.setdefault(index, "over budget")
    return Selection(chosen, why)


class _Picker:
    """Greedy picks over ``candidates`` by score times spread."""

    def __init__(self, candidates: list[Candidate]) -> None:
        self.scores = np.array([c.score for c in candidates], dtype=np.float64) + FLOOR
        self.features = np.stack([c.feature for c in candidates]) if candidates else np.zeros(
            (0, 1))
        self.typical = typical_distance(self.features)
        self.nearest = np.full(len(candidates), np.inf)
        self.taken = np.zeros(len(candidates), dtype=bool)
        self.order: list[int] = []

    def pick(self, allowed: np.ndarray) -> bool:
        """Take the best frame among ``allowed`` not taken yet; False when there is none."""
        gain = self.scores * np.minimum(1.0, self.nearest / self.typical)
        gain[~allowed | self.taken] = -np.inf
        if not len(gain) or not np.isfinite(gain.max()):
            return False
        best = int(gain.argmax())
        self.taken[best] = True
        self.order.append(best)
        self.nearest = np.minimum(self.nearest, cosine_distances(
            self.features, self.features[best:best + 1])[:, 0])
        return True
