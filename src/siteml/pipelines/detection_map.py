"""mAP of a detector's raw outputs on the val split, the same for every runtime and precision.

Every model, the PyTorch source and each variant, sees the same inputs: each val image
letterboxed to the model's fixed input size, run on its runtime at an explicit execution
precision. The outputs are scored with Ultralytics' own NMS, AP code and matching rule. Ultralytics'
validator is not used for the comparison: it runs a ``.pt`` on rectangular batches padded to a
larger size (352 px for 320 px images) but an export at its fixed size, and OpenVINO in bf16 on
CPUs that have it, which made a lossless FP32 export look 1.6 points worse than its source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siteml.backends import ultralytics
from siteml.core import keys
from siteml.core.progress import progress_bar
from siteml.data.layout import open_image, split_images
from siteml.pipelines.images import Letterboxed

IOU_THRESHOLDS = tuple(0.5 + 0.05 * k for k in range(10))


def letterboxed_labels(image: Path, labels_root: Path, size: int) -> Any:
    """Ground truth of ``image`` as ``(n, 5)`` rows ``class, x1, y1, x2, y2`` in the pixels of
    its ``size`` x ``size`` letterbox (Ultralytics' ``LetterBox(auto=False)`` geometry)."""
    import numpy as np

    with open_image(image) as opened:
        width, height = opened.size
    ratio = min(size / width, size / height)
    new_w, new_h = round(width * ratio), round(height * ratio)
    left, top = round((size - new_w) / 2 - 0.1), round((size - new_h) / 2 - 0.1)
    label = labels_root / f"{image.stem}.txt"
    rows = np.loadtxt(label, ndmin=2).reshape(-1, 5) if label.is_file() else np.zeros((0, 5))
    cls, cx, cy, w, h = rows.T
    return np.stack([cls, (cx - w / 2) * new_w + left, (cy - h / 2) * new_h + top,
                     (cx + w / 2) * new_w + left, (cy + h / 2) * new_h + top], axis=1)


def val_split(dataset: Path, size: int) -> tuple[Letterboxed, list[Any]]:
    """Every val image as a (lazily) letterboxed input batch of one, and its
    ``letterboxed_labels``."""
    images = split_images(dataset, "val")
    if not images:
        raise FileNotFoundError(f"no images in the val split of {dataset}")
    truths = [letterboxed_labels(image, dataset / "labels" / "val", size) for image in images]
    return Letterboxed(images, size), truths


@dataclass(frozen=True)
class Scores:
    """What the evaluator measures: mAP50 and mAP50-95 over all classes, and per class
    present in val (by class id) precision, recall, AP50 and AP50-95; ``images`` keeps each
    image's matched detections, to resample."""

    map50: float
    map50_95: float
    per_class: dict[int, dict[str, float]] = field(default_factory=dict)
    images: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def metrics(self, prefix: str, classes: Sequence[str]) -> dict[str, float]:
        """``{prefix}/map50``, ``{prefix}/map50_95`` and ``{prefix}/class/<name>/<figure>``."""
        found = {keys.scored(prefix, "map50"): self.map50,
                 keys.scored(prefix, "map50_95"): self.map50_95}
        found.update({keys.class_metric(classes[index], figure, prefix): value
                      for index, figures in self.per_class.items()
                      for figure, value in figures.items()})
        return found


def deltas(before: Scores, after: Scores, classes: Sequence[str],
           prefix: str = "delta") -> dict[str, float]:
    """``after`` minus ``before``: ``delta/map50``, ``delta/map50_95`` and per class."""
    old, new = before.metrics(prefix, classes), after.metrics(prefix, classes)
    return {name: new[name] - old[name] for name in new if name in old}


def score(predict: Callable[[Any], Any], frames: Sequence[Any], truths: list[Any],
          description: str) -> Scores:
    """``predict`` (a batch to its raw output) scored over ``frames``."""
    outputs = []
    with progress_bar(description, len(frames)) as advance:
        for frame in frames:
            outputs.append(predict(frame))
            advance("")
    return evaluate(outputs, truths)


def evaluate(outputs: list[Any], truths: list[Any]) -> Scores:
    """Raw ``(1, 4 + nc, anchors)`` outputs scored against ``letterboxed_labels`` rows."""
    return _average(tuple(_matched(output, truth)
                          for output, truth in zip(outputs, truths, strict=True)))


def drop_standard_error(before: Scores, after: Scores, rounds: int = 100) -> float:
    """The standard error of mAP50-95 lost from ``before`` to ``after`` (scored on the same
    images): the spread of the loss over seeded bootstrap resamples of the images (100 rounds:
    within 3% of 200; each round costs an AP of the val set, 0.15 s per 1000 images here)."""
    import numpy as np

    rng = np.random.default_rng(0)
    count = len(before.images)
    drops = []
    for _ in range(rounds):
        pick = rng.integers(0, count, count)
        drops.append(_average(tuple(before.images[i] for i in pick)).map50_95
                     - _average(tuple(after.images[i] for i in pick)).map50_95)
    return float(np.std(drops, ddof=1))


def _matched(output: Any, truth: Any) -> tuple[Any, Any, Any, Any]:
    """One image's detections (after NMS) matched to its truths: which are correct at each IoU
    threshold, their confidences and classes, and the truths' classes."""
    detections = ultralytics.nms(output, conf=0.001, iou=0.7, multi_label=True, max_det=300)
    iou = ultralytics.box_iou(truth[:, 1:], detections[:, :4])
    return (_matches(iou * (truth[:, :1] == detections[None, :, 5]), len(detections)),
            detections[:, 4], detections[:, 5], truth[:, 0])


def _average(images: tuple[Any, ...]) -> Scores:
    """Ultralytics' average precision over ``_matched`` images."""
    import numpy as np

    if not any(len(image[3]) for image in images):  # no truths
        return Scores(0.0, 0.0, images=images)
    correct, scores, predicted, targets = zip(*images, strict=True)
    precision, recall, ap, classes = ultralytics.average_precision(
        np.concatenate(correct), np.concatenate(scores), np.concatenate(predicted),
        np.concatenate(targets))
    if not len(ap):
        return Scores(0.0, 0.0, images=images)
    per_class = {int(c): dict(zip(keys.CLASS_FIGURES, map(float, (p, r, a[0], a.mean())),
                                  strict=True))
                 for c, p, r, a in zip(classes, precision, recall, ap, strict=True)}
    return Scores(float(ap[:, 0].mean()), float(ap.mean()), per_class, images)


def _matches(iou: Any, count: int) -> Any:
    """Which predictions are true positives at each IoU threshold (one truth per prediction,
    highest IoU first), as Ultralytics' validator matches them."""
    import numpy as np

    correct = np.zeros((count, len(IOU_THRESHOLDS)), dtype=bool)
    for k, threshold in enumerate(IOU_THRESHOLDS):
        pairs = np.argwhere(iou >= threshold)
        if len(pairs) > 1:
            pairs = pairs[iou[pairs[:, 0], pairs[:, 1]].argsort()[::-1]]
            pairs = pairs[np.unique(pairs[:, 1], return_index=True)[1]]
            pairs = pairs[np.unique(pairs[:, 0], return_index=True)[1]]
        correct[pairs[:, 1], k] = True
    return correct
