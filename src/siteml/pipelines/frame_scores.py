"""What mining scores on each unlabelled frame, from the detections of the model that serves at
the site, those of its FP32 source, and the source's own features (numpy only).

Detections are ``(n, 6)`` rows ``x1, y1, x2, y2, score, class`` as ``canary.detections`` gives
them. Each score is 0 to 1:

- **uncertainty**: the serving model's most doubtful detection, 1 at the threshold and 0 at
  ``band`` or farther from it (a box the model half-sees);
- **disagreement**: the share of the two models' detections above the threshold that find no
  partner of the same class at IoU 0.5 in the other model's (a class flip counts on both
  sides): what quantization changed;
- **novelty**: how far the frame is from the dataset's train images in the source's features,
  ``d / (d + typical)`` with ``typical`` the train images' median distance to their nearest
  other (0.5: as far as train images are from each other);
- **flicker**: a detection of the camera's frames before and after (matching each other) that
  this frame lacks, or one this frame alone has between two frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from siteml.pipelines.canary import box_iou

MATCH_IOU = 0.5
"""The IoU at which two detections of the same class are the same object."""


def uncertainty(found: np.ndarray, conf: float, band: float) -> float:
    """1 for a detection scored exactly ``conf``, falling to 0 at ``band`` away."""
    if not len(found):
        return 0.0
    return float(max(0.0, (1 - np.abs(found[:, 4] - conf) / band).max()))


def disagreement(serving: np.ndarray, source: np.ndarray, conf: float) -> float:
    """The share of both models' detections scored ``conf`` or more without a partner."""
    ours, theirs = serving[serving[:, 4] >= conf], source[source[:, 4] >= conf]
    total = len(ours) + len(theirs)
    if not total:
        return 0.0
    return (_unmatched(ours, theirs) + _unmatched(theirs, ours)) / total


def _unmatched(rows: np.ndarray, others: np.ndarray) -> int:
    return sum(1 for row in rows if not _partner(row, others))


def _partner(row: np.ndarray, others: np.ndarray) -> bool:
    same = others[others[:, 5] == row[5]]
    return bool(len(same)) and float(box_iou(row[:4], same[:, :4]).max()) >= MATCH_IOU


def cosine_distances(features: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``1 - cosine similarity`` of each row of ``features`` with each row of ``others``."""
    def unit(rows: np.ndarray) -> np.ndarray:
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return 1 - unit(features) @ unit(others).T


def typical_distance(train: np.ndarray) -> float:
    """The train images' median distance to their nearest other image."""
    if len(train) < 2:
        return 1.0
    distances = cosine_distances(train, train)
    np.fill_diagonal(distances, np.inf)
    return max(float(np.median(distances.min(axis=1))), 1e-6)


def novelty(features: np.ndarray, train: np.ndarray, typical: float) -> np.ndarray:
    """Each frame's novelty (rows of ``features``) against the train images' features."""
    nearest = cosine_distances(features, train).min(axis=1).clip(0)
    return nearest / (nearest + typical)


def flicker(sequence: Sequence[np.ndarray], conf: float) -> list[float]:
    """1 for each frame of one camera's frames in time order (their detections) where a
    detection blinks: seen before and after but not now, or now only."""
    kept = [found[found[:, 4] >= conf] for found in sequence]
    scores = []
    for index, now in enumerate(kept):
        if index == 0 or index == len(kept) - 1:
            scores.append(0.0)
            continue
        before, after = kept[index - 1], kept[index + 1]
        missed = any(_partner(row, after) and not _partner(row, now) for row in before)
        alone = any(not _partner(row, before) and not _partner(row, after) for row in now)
        scores.append(1.0 if missed or alone else 0.0)
    return scores
