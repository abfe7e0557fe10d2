"""mAP50-95 of a detector's raw outputs on letterboxed images, for NNCF's accuracy-control loop.

NNCF hands its validation function a compiled model, not a file Ultralytics could load, so this
scores raw outputs directly with Ultralytics' own NMS and AP code and its matching rule. The
accuracy gate itself still scores the saved variant with Ultralytics' validator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

IOU_THRESHOLDS = tuple(0.5 + 0.05 * k for k in range(10))


def letterboxed_labels(image: Path, labels_root: Path, size: int) -> Any:
    """Ground truth of ``image`` as ``(n, 5)`` rows ``class, x1, y1, x2, y2`` in the pixels of
    its ``size`` x ``size`` letterbox (Ultralytics' ``LetterBox(auto=False)`` geometry)."""
    import numpy as np
    from PIL import Image

    width, height = Image.open(image).size
    ratio = min(size / width, size / height)
    new_w, new_h = round(width * ratio), round(height * ratio)
    left, top = round((size - new_w) / 2 - 0.1), round((size - new_h) / 2 - 0.1)
    label = labels_root / f"{image.stem}.txt"
    rows = np.loadtxt(label, ndmin=2).reshape(-1, 5) if label.is_file() else np.zeros((0, 5))
    cls, cx, cy, w, h = rows.T
    return np.stack([cls, (cx - w / 2) * new_w + left, (cy - h / 2) * new_h + top,
                     (cx + w / 2) * new_w + left, (cy + h / 2) * new_h + top], axis=1)


def map50_95(outputs: list[Any], truths: list[Any]) -> float:
    """mAP50-95 of raw ``(1, 4 + nc, anchors)`` outputs against ``letterboxed_labels`` rows."""
    import numpy as np
    import torch
    from ultralytics.utils.metrics import ap_per_class, box_iou
    from ultralytics.utils.nms import non_max_suppression

    correct, scores, predicted, targets = [], [], [], []
    for output, truth in zip(outputs, truths, strict=True):
        [detections] = non_max_suppression(torch.as_tensor(output), conf_thres=0.001,
                                           iou_thres=0.7, multi_label=True, max_det=300)
        detections = detections.numpy()
        targets.append(truth[:, 0])
        scores.append(detections[:, 4])
        predicted.append(detections[:, 5])
        iou = box_iou(torch.as_tensor(truth[:, 1:]), torch.as_tensor(detections[:, :4])).numpy()
        correct.append(_matches(iou * (truth[:, :1] == detections[None, :, 5]), len(detections)))
    if not sum(len(t) for t in targets):
        return 0.0
    ap = ap_per_class(np.concatenate(correct), np.concatenate(scores),
                      np.concatenate(predicted), np.concatenate(targets))[5]
    return float(ap.mean()) if len(ap) else 0.0


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
