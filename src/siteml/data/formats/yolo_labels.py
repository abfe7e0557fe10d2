"""YOLO label files, shared by the Ultralytics and Darknet layouts: one ``class x_center
y_center width height`` line per box (relative to the image), each read by globox.

YOLO labels carry no image size, so each image's header is read for it. A line that names no
class of the class list is a bad box, located by its line, as a bad box of any other format.
"""

from __future__ import annotations

from pathlib import Path

from siteml.data.formats.source import SourceBox
from siteml.data.layout import IMAGE_ERRORS, open_image


def read_names(path: Path) -> list[str]:
    """Class names, one a line (``classes.txt``, Darknet's ``obj.names``)."""
    return [n.strip() for n in path.read_text(encoding="utf-8").splitlines() if n.strip()]


def label_boxes(label: Path, image: Path, names: list[str]) -> list[SourceBox]:
    """The boxes of one label file, in pixels of ``image`` (whose header gives the size)."""
    if not label.is_file():
        return []
    lines = [line for line in label.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip()]
    if not lines:
        return []
    try:
        with open_image(image) as opened:
            size = opened.size
    except IMAGE_ERRORS:
        return []  # the image checks report it unreadable
    return [_box(line.split(), number, size, names) for number, line in enumerate(lines, 1)]


def _box(fields: list[str], number: int, size: tuple[int, int], names: list[str]) -> SourceBox:
    from globox import BoundingBox, BoxFormat
    from globox.errors import ParsingError

    try:
        index = int(fields[0])
    except ValueError:
        return SourceBox(f"class {fields[0]!r}", 0, 0, 0, 0,
                         bad=f"line {number}: not a class id")
    if not 0 <= index < len(names):
        return SourceBox(f"class id {index}", 0, 0, 0, 0,
                         bad=f"line {number}: not one of the {len(names)} class names")
    if len(fields) not in (5, 6):
        return SourceBox(names[index], 0, 0, 0, 0,
                         bad=f"line {number}: {len(fields)} values (a segment?)")
    try:
        box = BoundingBox.from_txt(" ".join(fields[:5]), box_format=BoxFormat.XYWH,
                                   relative=True, image_size=size)
    except (ParsingError, AssertionError, ValueError) as exc:
        reason = "negative size" if isinstance(exc, AssertionError) else "not 5 numbers"
        return SourceBox(names[index], 0, 0, 0, 0, bad=f"line {number}: {reason}")
    return SourceBox(names[index], box.xmin, box.ymin, box.xmax, box.ymax)
