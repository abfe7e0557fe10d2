"""Darknet's YOLO layout, which CVAT exports as "YOLO 1.1": ``obj.names`` (classes),
``obj.data`` (``names = ...`` and one list file per subset: ``train = data/train.txt``), list
files of image paths, and each image's label ``.txt`` beside it in ``obj_<subset>_data/``.

Paths in ``obj.data`` and the lists are written as Darknet sees them from the folder above the
export (``data/obj_train_data/frame_000001.jpg``): a leading ``data/`` is dropped unless the
path exists as written. A list's subset is its images' split (``train``, ``valid`` -> val);
without lists every image in ``obj_*_data/`` is read, and the splits are drawn.
"""

from __future__ import annotations

import re
from pathlib import Path

from siteml.data.formats.source import (
    SourceDataset,
    SourceError,
    SourceImage,
    first_existing,
    split_of,
)
from siteml.data.formats.yolo_labels import label_boxes, read_names
from siteml.data.layout import IMAGE_SUFFIXES

NOT_LISTS = frozenset({"classes", "names", "backup", "eval", "results"})
"""``obj.data`` keys that name no list of images."""
_SUBSET_FOLDER = re.compile(r"obj_.+_data")


def is_darknet(src: Path) -> bool:
    """A Darknet export: ``obj.data``, or ``obj_<subset>_data/`` folders."""
    return (src / "obj.data").is_file() or any(p.is_dir() for p in src.glob("obj_*_data"))


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read a Darknet export folder. ``images``, when given, holds the images the lists name
    (an export without images): at the lists' paths, or at their paths inside
    ``obj_<subset>_data/``."""
    config = _config(src / "obj.data")
    names = _local(src, config.get("names", "obj.names"))
    if not names.is_file():
        raise SourceError(f"{names}: no such file (Darknet's class names, one a line)")
    dataset = SourceDataset(images=[], classes=read_names(names))
    lists = _lists(src, config)
    for listing, split in lists:
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            if line.strip():
                entry = _local(src, line)
                path = first_existing([_local(images, line), images / _inside(entry)]) \
                    if images else entry
                dataset.images.append(_image(src, path, entry.with_suffix(".txt"), split,
                                             f" ({listing.name}:{number})", dataset.classes))
    if not lists:
        for folder in sorted(p for p in src.glob("obj_*_data") if p.is_dir()):
            for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
                dataset.images.append(_image(src, path, path.with_suffix(".txt"), None, "",
                                             dataset.classes))
    if not dataset.images:
        raise SourceError(f"{src}: no images (none listed in train.txt / valid.txt, none in "
                          "obj_<subset>_data/)")
    return dataset


def _image(src: Path, path: Path, label: Path, split: str | None, listed: str,
           names: list[str]) -> SourceImage:
    where = (label.relative_to(src).as_posix() if label.is_relative_to(src) else str(label))
    image = SourceImage(path=path, name=_inside(path), split=split, where=where + listed)
    image.boxes = label_boxes(label, path, names)
    return image


def _inside(path: Path) -> str:
    """Its path inside its ``obj_<subset>_data/`` folder (CVAT keeps a task's subfolders), else
    its file name."""
    folder = next((p for p in path.parents if _SUBSET_FOLDER.fullmatch(p.name)), path.parent)
    return path.relative_to(folder).as_posix()


def _config(path: Path) -> dict[str, str]:
    """``obj.data``'s ``key = value`` lines (``#`` starts a comment); none without the file."""
    if not path.is_file():
        return {}
    config = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.split("#", 1)[0].partition("=")
        if sep:
            config[key.strip()] = value.strip()
    return config


def _lists(src: Path, config: dict[str, str]) -> list[tuple[Path, str | None]]:
    """Each list of images with its split: the subsets ``obj.data`` names, else ``train.txt``
    and ``valid.txt`` beside it."""
    named = {key: value for key, value in config.items() if key not in NOT_LISTS} or {
        key: f"{key}.txt" for key in ("train", "valid") if (src / f"{key}.txt").is_file()}
    found = []
    for subset, value in named.items():
        listing = _local(src, value)
        if not listing.is_file():
            raise SourceError(f"{src / 'obj.data'}: {subset} = {value}: no such list file")
        found.append((listing, split_of(subset)))
    return found


def _local(base: Path, written: str) -> Path:
    """A path from ``obj.data`` or a list, under ``base``; Darknet's leading ``data/`` is
    dropped unless the path exists as written."""
    relative = written.strip().replace("\\", "/")
    as_written = base / relative
    if relative.startswith("data/") and not as_written.exists():
        return base / relative.removeprefix("data/")
    return as_written
