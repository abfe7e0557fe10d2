"""Dataset folders in Ultralytics' YOLO layout (``images/<split>/``, ``labels/<split>/``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import yaml

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
REQUIRED_SPLITS = ("train", "val")
MAX_REPORTED = 5
IMAGE_ERRORS = (OSError, SyntaxError, ValueError)
"""What Pillow raises on a bad image file."""


class DatasetError(Exception):
    """The dataset folder does not hold what a detector can be trained on."""


def yaml_names(path: Path) -> list[str] | None:
    """The class names of an Ultralytics ``data.yaml`` (``names:`` as a list or an index map),
    or None when it has none.

    Raises:
        yaml.YAMLError: the file is not YAML.
    """
    content = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = content.get("names") if isinstance(content, dict) else None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    return None


def open_image(source: str | Path | BinaryIO) -> Image.Image:
    """Pillow's own ``Image.open``. Ultralytics, once imported, replaces it for the whole
    process with one that, on any file Pillow cannot identify, probes the network and tries to
    install and import a HEIF plugin; siteml's checks must see the file as unreadable."""
    from PIL import Image

    opener = Image.open
    if opener.__module__ != Image.__name__:
        opener = getattr(opener, "__globals__", {}).get("_image_open", opener)
    return opener(source)


def count_images(root: Path) -> int:
    """Image files under ``root/images`` (or under ``root`` when it has no ``images`` folder)."""
    base = root / "images" if (root / "images").is_dir() else root
    return sum(1 for _, _, files in os.walk(base) for name in files
               if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES)


def split_images(root: Path, split: str) -> list[Path]:
    """Image files of one split, sorted."""
    folder = root / "images" / split
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def check_detection_dataset(root: Path, num_classes: int) -> dict[str, int]:
    """Check splits and every label line; return images per split.

    Raises:
        DatasetError: naming the missing split or the first bad label lines (file:line).
    """
    counts = {}
    for split in REQUIRED_SPLITS:
        if not (root / "images" / split).is_dir():
            raise DatasetError(f"{root}: missing split images/{split}/ (need "
                               f"{', '.join(REQUIRED_SPLITS)})")
        counts[split] = len(split_images(root, split))
        if counts[split] == 0:
            raise DatasetError(f"{root}/images/{split}: no images")
    problems: list[str] = []
    for split in REQUIRED_SPLITS:
        for label in sorted((root / "labels" / split).glob("*.txt")):
            problems += label_problems(label, num_classes)
            if len(problems) >= MAX_REPORTED:
                break
    if problems:
        raise DatasetError("invalid YOLO labels (class x_center y_center width height, "
                           "normalized):\n  " + "\n  ".join(problems[:MAX_REPORTED]))
    return counts


def label_problems(path: Path, num_classes: int) -> list[str]:
    problems = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls, *coords = int(fields[0]), *map(float, fields[1:])
        except ValueError:
            problems.append(f"{path}:{number}: not numbers: {line[:60]!r}")
            continue
        if len(coords) != 4:
            problems.append(f"{path}:{number}: expected 5 values, got {len(fields)}")
        elif not 0 <= cls < num_classes:
            problems.append(f"{path}:{number}: class {cls} outside 0..{num_classes - 1}")
        elif not all(0 <= c <= 1 for c in coords):
            problems.append(f"{path}:{number}: coordinates outside 0..1")
    return problems


def training_view(root: Path, classes: Sequence[str], view: Path) -> Path:
    """A run-scoped view of the dataset plus its ``data.yaml``; returns the yaml's path.

    The view's image folders hold links to the dataset's images, and its label folders link to
    the dataset's; Ultralytics resolves the split folders and writes its label caches
    (``labels/<split>.cache``) beside them, so they land in the view and the DVC-tracked folder
    stays untouched. The class names come from the scenario, never from a yaml in the dataset.
    """
    for split in REQUIRED_SPLITS:
        images = view / "images" / split
        images.mkdir(parents=True, exist_ok=True)
        for image in split_images(root, split):
            link = images / image.relative_to(root / "images" / split)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(image.absolute())
        (view / "labels").mkdir(exist_ok=True)
        labels = root.absolute() / "labels" / split
        if labels.is_dir():
            (view / "labels" / split).symlink_to(labels, target_is_directory=True)
    data = {"path": str(view), "train": "images/train", "val": "images/val",
            "names": dict(enumerate(classes))}
    data_yaml = view / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return data_yaml


def place_file(source: str | Path, target: str | Path, copy: bool) -> None:
    """``target`` as a hard link to ``source`` (never re-encoded), else a copy."""
    if not copy:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    shutil.copyfile(source, target)
