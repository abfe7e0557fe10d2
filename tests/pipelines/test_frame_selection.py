"""Mining's scores and selection on hand-made detections and features: uncertainty around the
threshold, disagreement and class flips, novelty against the train features, flicker across a
camera's frames; near-duplicates out, quotas for the rare classes, spread over the features."""

from __future__ import annotations

import numpy as np
import pytest

from siteml.pipelines.frame_scores import (
    disagreement,
    flicker,
    novelty,
    typical_distance,
    uncertainty,
)
from siteml.pipelines.frame_selection import Candidate, select

PERSON, FALL = 0.0, 1.0


def found(*rows: tuple[float, ...]) -> np.ndarray:
    """Detections ``(class, score, x1, y1, x2, y2)`` as ``(n, 6)`` rows."""
    return np.array([[x1, y1, x2, y2, score, cls] for cls, score, x1, y1, x2, y2 in rows],
                    dtype=np.float32).reshape(-1, 6)


def test_uncertainty_peaks_at_the_threshold():
    assert uncertainty(found(), 0.25, 0.1) == 0
    assert uncertainty(found((PERSON, 0.9, 0, 0, 10, 10)), 0.25, 0.1) == 0
    assert uncertainty(found((PERSON, 0.25, 0, 0, 10, 10)), 0.25, 0.1) == pytest.approx(1)
    assert uncertainty(found((PERSON, 0.9, 0, 0, 9, 9), (FALL, 0.3, 0, 0, 10, 10)), 0.25,
                       0.1) == pytest.approx(0.5)


def test_disagreement_counts_lost_boxes_and_class_flips():
    person = (PERSON, 0.8, 10, 10, 50, 50)
    assert disagreement(found(person), found(person), 0.25) == 0
    assert disagreement(found(), found(), 0.25) == 0
    assert disagreement(found(person), found(), 0.25) == 1
    flipped = found((FALL, 0.8, 10, 10, 50, 50))
    assert disagreement(found(person), flipped, 0.25) == 1  # both sides unmatched
    shifted = found((PERSON, 0.8, 14, 10, 54, 50), (FALL, 0.2, 0, 0, 5, 5))  # 0.2: below
    assert disagreement(found(person), shifted, 0.25) == 0  # IoU 0.82 >= 0.5


def test_novelty_is_half_at_the_typical_train_spacing():
    rng = np.random.default_rng(0)
    train = 1 + rng.normal(scale=0.1, size=(50, 16))  # one site's frames, alike
    typical = typical_distance(train)
    unseen = 1 + rng.normal(scale=0.1, size=(1, 16))
    unseen[0, :8] = -1  # another light
    scores = novelty(np.vstack([train[:1], unseen]), train, typical)
    assert scores[0] == pytest.approx(0, abs=1e-6)  # a train image itself
    assert scores[1] > 0.9  # much farther than train images are from each other


def test_flicker_marks_a_detection_that_blinks():
    person = (PERSON, 0.8, 10, 10, 50, 50)
    ghost = (FALL, 0.8, 60, 60, 90, 90)
    frames = [found(person), found(), found(person), found(person, ghost), found(person)]
    assert flicker(frames, 0.25) == [0, 1, 0, 1, 0]
    assert flicker([found(person)] * 3, 0.25) == [0, 0, 0]


def candidate(name: str, score: float, phash: int, classes: set[str],
              feature: list[float]) -> Candidate:
    return Candidate(name, score, phash, frozenset(classes), np.array(feature, dtype=float))


def test_near_duplicates_go_and_quotas_keep_the_rare_class():
    frames = [candidate("a", 0.9, 0b0000, {"person"}, [1, 0, 0]),
              candidate("a-twin", 0.8, 0b0001, {"person"}, [1, 0.01, 0]),  # 1 bit away
              candidate("b", 0.7, 0b1111_0000, {"person"}, [0, 1, 0]),
              candidate("c", 0.6, 0b1111_0000_0000, {"person"}, [0, 0, 1]),
              candidate("fall", 0.1, 0b1111_0000_0000_0000, {"fall"}, [1, 1, 1])]
    picked = select(frames, budget=2, quotas={"fall": 0.5}, max_bits=2)
    assert [frames[i].name for i in picked.chosen] == ["fall", "a"]
    assert picked.why[1] == "near-duplicate of a"
    assert (picked.why[4], picked.why[0]) == ("quota fall", "score")
    assert picked.why[2] == picked.why[3] == "over budget"
    without = select(frames, budget=2, quotas={}, max_bits=2)
    assert [frames[i].name for i in without.chosen] == ["a", "b"]
    assert select(frames, budget=10, quotas={}, max_bits=0).chosen.__len__() == 5


def test_the_spread_passes_over_a_frame_like_one_picked():
    frames = [candidate("glare-1", 0.9, 0b0, set(), [1, 0]),
              candidate("glare-2", 0.85, 0b1111_1111, set(), [1, 0.001]),  # another hash
              candidate("other", 0.5, 0b1111_0000_1111_0000, set(), [0, 1])]
    picked = select(frames, budget=2, quotas={}, max_bits=2)
    assert [frames[i].name for i in picked.chosen] == ["glare-1", "other"]
