"""Check every source image and box before anything is written: what can be repaired (a box
partly outside its image is clipped) and what cannot (a missing, unreadable or duplicate image;
a box outside the image, of zero or negative size, or unreadable).

Each image file is read once here: its md5 (reused for the DVC hash), its header (size) and,
for a JPEG, its end marker (a truncated upload).
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from siteml.data.formats.source import SourceBox, SourceDataset, SourceImage
from siteml.data.layout import IMAGE_ERRORS, open_image

MISSING = "missing image"
UNREADABLE = "unreadable image"
SIZE_MISMATCH = "image size differs from its annotation"
DUPLICATE = "duplicate image"
NAME_CLASH = "two images would share one label file"
OUTSIDE = "box outside the image"
EMPTY = "box of zero or negative size"
BAD_BOX = "unreadable box"
CLIPPED = "boxes partly outside their image, clipped"


@dataclass
class CheckedImage:
    """A source image that passed its checks, with its boxes clipped to it."""

    source: SourceImage
    md5: str
    nbytes: int
    size: tuple[int, int]
    boxes: list[SourceBox]


@dataclass
class Findings:
    """What the checks found: problems by kind with examples, and repairs by kind."""

    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    repaired: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, example: str) -> None:
        self.problems[kind].append(example)


def check_images(dataset: SourceDataset, findings: Findings,
                 progress: Callable[[str], None] | None = None) -> list[CheckedImage]:
    """The images worth importing; every problem goes to ``findings``."""
    seen_paths: dict[str, str] = {}
    seen_md5: dict[str, str] = {}
    seen_labels: dict[str, str] = {}
    good = []
    for image in dataset.images:
        if progress:
            progress("")
        checked = _read(image, findings)
        if checked is None:
            continue
        resolved = str(image.path.resolve())
        label = image.label_name
        for seen, key, kind in ((seen_paths, resolved, DUPLICATE), (seen_md5, checked.md5,
                                DUPLICATE), (seen_labels, label, NAME_CLASH)):
            if key in seen:
                findings.add(kind, f"{image.where}: {image.name} (same as {seen[key]})")
                break
        else:
            seen_paths[resolved] = seen_md5[checked.md5] = seen_labels[label] = image.where
            checked.boxes = _checked_boxes(image, checked.size, findings)
            good.append(checked)
    return good


def _read(image: SourceImage, findings: Findings) -> CheckedImage | None:
    try:
        data = image.path.read_bytes()
    except OSError:
        findings.add(MISSING, f"{image.where}: {image.path}")
        return None
    try:
        with open_image(io.BytesIO(data)) as opened:
            size, kind = opened.size, opened.format
            opened.verify()
    except IMAGE_ERRORS as exc:
        findings.add(UNREADABLE, f"{image.where}: {image.path} ({exc})")
        return None
    if kind == "JPEG" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        findings.add(UNREADABLE, f"{image.where}: {image.path} (truncated JPEG: no end marker)")
        return None
    if image.size is not None and tuple(image.size) != size:
        findings.add(SIZE_MISMATCH, f"{image.where}: annotated {image.size[0]}x{image.size[1]},"
                                    f" file {size[0]}x{size[1]}")
        return None
    return CheckedImage(image, hashlib.md5(data).hexdigest(), len(data), size, [])


def _checked_boxes(image: SourceImage, size: tuple[int, int],
                   findings: Findings) -> list[SourceBox]:
    width, height = size
    kept = []
    for box in image.boxes:
        where = f"{image.where}: {box.label} ({box.xmin:g}, {box.ymin:g}, {box.xmax:g}, " \
                f"{box.ymax:g})"
        if box.bad:
            findings.add(BAD_BOX, f"{image.where}: {box.label}: {box.bad}")
        elif box.xmax <= box.xmin or box.ymax <= box.ymin:
            findings.add(EMPTY, where)
        elif box.xmax <= 0 or box.ymax <= 0 or box.xmin >= width or box.ymin >= height:
            findings.add(OUTSIDE, f"{where} in {width}x{height}")
        else:
            clipped = SourceBox(box.label, max(box.xmin, 0.0), max(box.ymin, 0.0),
                                min(box.xmax, float(width)), min(box.ymax, float(height)))
            if clipped != box:
                findings.repaired[CLIPPED] += 1
            kept.append(clipped)
    return kept
