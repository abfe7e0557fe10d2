"""Canary detections: what a registered variant detects on a few val images, kept with the
version so that an edge box can check, before it serves the version, that its own runtime
detects the same.

numpy and Pillow only: an edge box has the ``quantize`` extra, not PyTorch. The decode and NMS
here are Ultralytics' in numpy (a test holds them equal), and both sides read the images with
``timing_frame``, so the registering machine and the box feed the model the same pixels.

A canary folder holds the images under their own names and ``canary.json``::

    {"siteml_canary": 1, "size": 96, "conf": 0.25, "iou": 0.7,
     "images": {"000012.jpg": [[x1, y1, x2, y2, score, class], ...]}}

(boxes in input pixels of the letterboxed ``size`` x ``size`` frame).
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siteml.core import keys
from siteml.core.errors import SitemlError
from siteml.core.models import CANARY_DIR
from siteml.pipelines.images import timing_frame

CANARY_FILE = "canary.json"
CANARY_IMAGES = 4
"""How many val images a canary holds: a few detections per image show a broken runtime, and
the box's check stays well under a second."""
CONF, IOU = 0.25, 0.7
"""The thresholds of Ultralytics' predictions, which the canary's detections are taken at."""
MAX_WH = 7680
"""Ultralytics' per-class box offset, which keeps NMS within a class."""
ROUNDS = 3
"""Times the box predicts on each canary image: the median latency needs more than one."""

Predict = Callable[[Any], Any]
"""One inference on an NCHW float32 batch of one, returning the raw detect-head output."""


class CanaryError(SitemlError):
    """A canary that cannot be read: its ``canary.json`` or an image missing or malformed."""


@dataclass(frozen=True)
class Tolerance:
    """How far a runtime's detections may stray from the registered ones.

    A registered detection scored at least ``conf + margin`` must be found among the runtime's
    detections scored at least ``conf - margin``: the same class, IoU at least ``iou``, a score
    within ``conf_delta``; and symmetrically every runtime detection scored at least
    ``conf + margin`` must be one of the registered. Detections inside the band around the
    threshold may come and go: a score of 0.24 on one CPU is 0.26 on another.

    The canary keeps detections down to ``conf`` only, so ``conf_delta`` may not exceed
    ``margin`` (a runtime detection above the band could match a registered one below ``conf``).

    Timed in turns against a reference (the version the box serves now), its median latency
    may be at most ``max_slowdown`` times the reference's.
    """

    iou: float = 0.9
    conf_delta: float = 0.1
    margin: float = 0.1
    max_slowdown: float = 2.0

    def __post_init__(self) -> None:
        if (not 0 < self.iou <= 1 or not 0 <= self.conf_delta <= self.margin
                or self.max_slowdown <= 0):
            raise ValueError(f"{self}: need 0 < iou <= 1, 0 <= conf_delta <= margin and "
                             "max_slowdown > 0")


@dataclass
class CanaryCheck:
    """A runtime's detections on a canary against the registered ones.

    Attributes:
        matched: Share of the compared detections found on the other side (1.0 when none).
        compared: Detections compared (registered and runtime's, above the band).
        max_shift: The largest ``1 - IoU`` of a matched pair.
        max_conf_delta: The largest score difference of a matched pair.
        p50_ms: Median wall-clock latency of ``predict`` on the canary images.
        reference_p50_ms: The reference's, timed in turns with it; None without one.
        problem: Why the check fails, naming each image and the detections, or the slowdown;
            None if it passes.
    """

    matched: float
    compared: int
    max_shift: float
    max_conf_delta: float
    p50_ms: float
    problem: str | None
    reference_p50_ms: float | None = None

    @property
    def slowdown(self) -> float | None:
        """``p50_ms`` over the reference's."""
        return self.p50_ms / self.reference_p50_ms if self.reference_p50_ms else None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def metrics(self) -> dict[str, float]:
        """The figures under their MLflow names, for the run that records the box's check."""
        speed = {keys.CANARY_SLOWDOWN: self.slowdown} if self.slowdown is not None else {}
        return {keys.CANARY_MATCHED: self.matched, keys.CANARY_MAX_SHIFT: self.max_shift,
                keys.CANARY_MAX_CONF_DELTA: self.max_conf_delta, keys.CANARY_P50: self.p50_ms,
                **speed}


def detections(output: Any, conf: float = CONF, iou: float = IOU,
               max_det: int = 300) -> np.ndarray:
    """Ultralytics' post-processing of one raw detect-head output ``(1, 4 + nc, anchors)``
    (``cx, cy, w, h`` in input pixels, then class scores): each anchor's best class when it
    scores above ``conf``, greedy NMS within each class (a box overlapping a better one by IoU
    above ``iou`` goes); ``(n, 6)`` float32 rows ``x1, y1, x2, y2, score, class``, best first."""
    rows = np.asarray(output, dtype=np.float32)[0].T
    scores = rows[:, 4:]
    classes = scores.argmax(1)
    best = scores[np.arange(len(rows)), classes]
    keep = best > conf
    centres, halves = rows[keep, :2], rows[keep, 2:4] / 2
    found = np.column_stack([centres - halves, centres + halves, best[keep],
                             classes[keep].astype(np.float32)])
    offset = found[:, :4] + found[:, 5:6] * MAX_WH  # as Ultralytics keeps classes apart
    return found[_nms(offset, found[:, 4], iou)[:max_det]]


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, best score first."""
    order, kept = np.argsort(-scores, kind="stable"), []
    while order.size:
        kept.append(order[0])
        order = order[1:][box_iou(boxes[order[0]], boxes[order[1:]]) <= iou]
    return np.array(kept, dtype=np.int64)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``x1, y1, x2, y2`` box with each of ``boxes`` (computed as torchvision's NMS
    does, so that a pair at the threshold falls the same way)."""
    width = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    height = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    overlap = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    return overlap / (area + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - overlap)


def write_canary(predict: Predict, images: list[Path], size: int, folder: Path) -> Path:
    """Copy ``images`` into ``folder/canary/`` and write there what ``predict`` detects on each
    (at ``size``, as Ultralytics predicts: conf 0.25, IoU 0.7); return that folder.

    Raises:
        CanaryError: two images share a file name.
    """
    names = [image.name for image in images]
    if len(set(names)) < len(names):
        raise CanaryError(f"canary images must have distinct file names: {', '.join(names)}")
    canary = folder / CANARY_DIR
    canary.mkdir(parents=True, exist_ok=True)
    found = {}
    for image in images:
        shutil.copy2(image, canary / image.name)
        found[image.name] = [[*(round(float(v), 4) for v in row[:5]), int(row[5])]
                             for row in detections(predict(timing_frame(image, size)))]
    stored = {"siteml_canary": 1, "size": size, "conf": CONF, "iou": IOU, "images": found}
    (canary / CANARY_FILE).write_text(json.dumps(stored, indent=1) + "\n", encoding="utf-8")
    return canary


def read_canary(canary: Path) -> dict[str, Any]:
    """The canary in the folder ``canary``: ``canary.json`` parsed and checked, its images
    there.

    Raises:
        CanaryError: the file is missing, not JSON or not a canary, or an image is missing.
    """
    path = canary / CANARY_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CanaryError(f"canary {path} cannot be read: {exc}") from None
    problem = _malformed(stored)
    if problem:
        raise CanaryError(f"canary {path} is not a siteml canary: {problem}")
    missing = [name for name in stored["images"] if not (canary / name).is_file()]
    if missing:
        raise CanaryError(f"canary {path} lists images that are not in {canary}: "
                          f"{', '.join(missing)}")
    return stored


def _malformed(stored: Any) -> str | None:
    """What is wrong with a parsed ``canary.json``, or None."""
    if not isinstance(stored, dict) or stored.get("siteml_canary") != 1:
        return "no \"siteml_canary\": 1"
    if not isinstance(stored.get("size"), int) or stored["size"] <= 0:
        return f"size {stored.get('size')!r} is not a positive integer"
    for name in ("conf", "iou"):
        if not isinstance(stored.get(name), int | float) or not 0 <= stored[name] <= 1:
            return f"{name} {stored.get(name)!r} is not a number from 0 to 1"
    images = stored.get("images")
    if not isinstance(images, dict) or not images:
        return "no images"
    for name, rows in images.items():
        if Path(name).name != name or not isinstance(rows, list) or not all(
                isinstance(row, list) and len(row) == 6
                and all(isinstance(v, int | float) for v in row) for row in rows):
            return f"image {name!r}: need a file name and rows [x1, y1, x2, y2, score, class]"
    return None


def check_canary(predict: Predict, canary: Path, tolerance: Tolerance = Tolerance(),
                 reference: Predict | None = None) -> CanaryCheck:
    """Run ``predict`` on the canary's images (each ``ROUNDS`` times, for the latency; in turns
    with ``reference`` when given, so that both are timed under the same load) and compare what
    it detects with the registered detections, within ``tolerance``.

    Raises:
        CanaryError: the canary cannot be read (``read_canary``), or an image cannot.
    """
    stored = read_canary(canary)
    frames = {name: _frame(canary / name, stored["size"]) for name in stored["images"]}
    outputs: dict[str, Any] = {}
    latencies: list[float] = []
    references: list[float] = []
    for _ in range(ROUNDS):
        for name, frame in frames.items():
            outputs[name] = _timed(predict, frame, latencies)
            if reference is not None:
                _timed(reference, frame, references)
    compared, pairs, problems = 0, [], []
    for name, rows in stored["images"].items():
        found = detections(outputs[name], stored["conf"] - tolerance.margin, stored["iou"])
        image = _compare(np.array(rows, dtype=np.float32).reshape(-1, 6), found,
                         stored["conf"], tolerance)
        compared += image.compared
        pairs += image.pairs
        if image.problem:
            problems.append(f"canary {name}: {image.problem}")
    shifts, deltas = zip(*pairs, strict=True) if pairs else ((0.0,), (0.0,))
    check = CanaryCheck(matched=len(pairs) / compared if compared else 1.0, compared=compared,
                        max_shift=max(shifts), max_conf_delta=max(deltas),
                        p50_ms=statistics.median(latencies), problem=None,
                        reference_p50_ms=statistics.median(references) if references else None)
    if check.slowdown is not None and check.slowdown > tolerance.max_slowdown:
        problems.append(f"{check.p50_ms:.1f} ms per frame, {check.slowdown:.2f}x the "
                        f"{check.reference_p50_ms:.1f} ms of the version serving now, timed in "
                        f"turns (at most {tolerance.max_slowdown:g}x)")
    check.problem = "; ".join(problems) or None
    return check


def _timed(predict: Predict, frame: Any, latencies: list[float]) -> Any:
    """``predict(frame)``, its wall-clock milliseconds appended to ``latencies``."""
    started = time.perf_counter()
    output = predict(frame)
    latencies.append((time.perf_counter() - started) * 1000)
    return output


def _frame(image: Path, size: int) -> Any:
    """``timing_frame``, an unreadable image said as the canary's."""
    try:
        return timing_frame(image, size)
    except (OSError, ValueError, ImportError) as exc:  # ImportError: where Ultralytics is
        # loaded, its patch of Pillow's open reaches for a HEIF plugin on an unknown image
        why = "not an image Pillow identifies" if isinstance(exc, ImportError) else exc
        raise CanaryError(f"canary image {image} cannot be read: {why}") from None


@dataclass
class _ImageCheck:
    compared: int
    pairs: list[tuple[float, float]]
    """``1 - IoU`` and score difference of each matched pair."""
    problem: str | None


def _compare(registered: np.ndarray, found: np.ndarray, conf: float,
             tolerance: Tolerance) -> _ImageCheck:
    """One image: the registered detections above the band against all the runtime's, and the
    runtime's above the band against all the registered."""
    high = conf + tolerance.margin
    compared, pairs, lost = 0, [], []
    for required, candidates, says in (
            (registered[registered[:, 4] >= high], found, "registered detections not found"),
            (found[found[:, 4] >= high], registered, "detections of this runtime not registered")):
        unmatched = [row for row in required if not _match(row, candidates, tolerance, pairs)]
        compared += len(required)
        if unmatched:
            lost.append(f"{len(unmatched)} of {len(required)} {says} "
                        f"({', '.join(map(_describe, unmatched))})")
    return _ImageCheck(compared, pairs, "; ".join(lost) or None)


def _match(row: np.ndarray, candidates: np.ndarray, tolerance: Tolerance,
           pairs: list[tuple[float, float]]) -> bool:
    """Whether a detection of the same class as ``row`` overlaps it by ``tolerance.iou`` with a
    score within ``tolerance.conf_delta``; the closest one's shift and delta go to ``pairs``."""
    same = candidates[candidates[:, 5] == row[5]]
    overlaps = box_iou(row[:4], same[:, :4])
    deltas = np.abs(same[:, 4] - row[4])
    close = (overlaps >= tolerance.iou) & (deltas <= tolerance.conf_delta)
    if not close.any():
        return False
    best = np.where(close, overlaps, -1).argmax()
    pairs.append((float(1 - overlaps[best]), float(deltas[best])))
    return True


def _describe(row: np.ndarray) -> str:
    x1, y1, x2, y2 = (round(float(v)) for v in row[:4])
    return f"class {int(row[5])} at {x1},{y1},{x2},{y2} score {row[4]:.2f}"
