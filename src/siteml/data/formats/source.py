"""What a label-format reader returns: images with their boxes, in the source's own words.

Readers keep everything the checks need (annotated size, split, where each image was named) and
judge nothing: clipping, refusing and class mapping happen later, the same for every format.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from siteml.core.errors import InvalidInputError

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test"}
_SPLIT_IN_NAME = re.compile(r"(?<![a-z])(train|training|val|valid|validation|test|testing)"
                            r"(?:\d*)(?![a-z])")


class SourceError(InvalidInputError):
    """The source cannot be read as the format asked for (exit 2, nothing written)."""


@dataclass(frozen=True)
class SourceBox:
    """One box in source pixels; ``bad`` says why the reader could not make a box of it."""

    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    bad: str | None = None


@dataclass
class SourceImage:
    """One annotated image as the source describes it.

    Attributes:
        path: Where its file is (it may be missing: the checks say so).
        name: Its path inside the imported dataset's split folder (posix, unique per source).
        where: The annotation that names it, for messages (``export.json: images[3]``).
        size: (width, height) the annotation states, or None when the format has none (YOLO).
        split: ``train``, ``val`` or ``test`` when the source assigns one.
    """

    path: Path
    name: str
    where: str
    size: tuple[int, int] | None = None
    split: str | None = None
    boxes: list[SourceBox] = field(default_factory=list)

    @property
    def label_name(self) -> str:
        """Its label file's path inside a split's ``labels/`` folder (``cam1/0001.txt``)."""
        return self.name.rsplit(".", 1)[0] + ".txt"


@dataclass
class SourceDataset:
    """A whole source: images, class names in the source's order, counts of what the reader
    left out on purpose (COCO crowd regions, LabelMe polygons ...) and the files it did not
    read, by why (COCO's ``captions_val2017.json`` beside its ``instances_*`` files)."""

    images: list[SourceImage]
    classes: list[str]
    notes: Counter[str] = field(default_factory=Counter)
    skipped_files: dict[str, list[str]] = field(default_factory=dict)


def split_of(folder: str) -> str | None:
    """A folder or subset named like a split: ``Validation`` -> ``val``, ``train2017`` ->
    ``train``, ``cam_val_1`` -> None."""
    return SPLIT_NAMES.get(folder.lower().rstrip("0123456789"))


def split_word(stem: str) -> str | None:
    """The word of a file name that names a split: ``instances_train2017`` -> ``train2017``."""
    found = _SPLIT_IN_NAME.search(stem.lower())
    return found.group(0) if found else None


def split_in_file_name(stem: str) -> str | None:
    """A split named inside a file name: ``instances_train2017`` -> ``train``."""
    word = split_word(stem)
    return split_of(word) if word else None


def dataset_name(relative: str) -> str:
    """A source path as a clean relative posix path (no ``..``, no leading ``/``)."""
    parts = [p for p in PurePosixPath(relative.replace("\\", "/")).parts
             if p not in ("", ".", "..", "/")]
    if not parts:
        raise ValueError(f"{relative!r} names no file")
    return "/".join(parts)


def first_existing(candidates: list[Path]) -> Path:
    """The first candidate that is a file, or the first candidate (reported missing later)."""
    return next((c for c in candidates if c.is_file()), candidates[0])


def ordered_labels(images: list[SourceImage]) -> list[str]:
    """Labels in order of first appearance, for formats that declare no class list."""
    return list(dict.fromkeys(box.label for image in images for box in image.boxes))
