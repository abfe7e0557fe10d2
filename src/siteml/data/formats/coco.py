"""COCO detection JSON (one file, or a folder of them: one per split), read by pycocotools.

Crowd regions (``iscrowd: 1``) are left out and counted: they mark many objects at once, which
a YOLO label cannot say (Ultralytics' own COCO converter drops them too). Category ids may be
any integers; classes come in id order.

Official COCO and MMDetection name the detection files ``instances_<split>.json``; beside them
in ``annotations/`` lie other tasks' files (``captions_*``, ``person_keypoints_*``,
``panoptic_*``, ``stuff_*``). When a folder holds ``instances_*`` files, only those are read
and the others are reported by name. A split's images are looked for beside ``annotations/``
in a folder named for it (``train2017/``, MMDetection's ``train/``, ``images/train/``).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siteml.data.formats.source import (
    SourceBox,
    SourceDataset,
    SourceError,
    SourceImage,
    dataset_name,
    first_existing,
    split_in_file_name,
    split_of,
    split_word,
)

INSTANCES = "instances_"
SKIPPED = f"COCO files other than {INSTANCES}* left out"

if TYPE_CHECKING:
    from pycocotools.coco import COCO


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read ``src`` (a COCO JSON file, or a folder holding one per split)."""
    files, skipped = _files(src)
    loaded = [(path, coco) for path in files if (coco := _load(path)) is not None]
    if not loaded:
        raise SourceError(f"{src}: no COCO detection JSON (a file with images, annotations "
                          "and categories)")
    several = len(loaded) > 1
    dataset = SourceDataset(images=[], classes=[])
    if skipped:
        dataset.skipped_files[SKIPPED] = [path.relative_to(src).as_posix() for path in skipped]
    for path, coco in loaded:
        split = (split_in_file_name(path.stem) or split_of(path.parent.name)) if several else None
        if several and split is None:
            raise SourceError(f"{path}: several COCO files, but this one's name says no split "
                              "(train, val or test)")
        _add(dataset, coco, path, split, images)
    return dataset


def _files(src: Path) -> tuple[list[Path], list[Path]]:
    """The JSON files to read and those left out: beside ``instances_*`` files, every other
    JSON file is another task's annotations (or not COCO at all)."""
    if src.is_file():
        return [src], []
    files = sorted(p for p in src.rglob("*.json") if not p.name.startswith("."))
    instances = [p for p in files if p.name.startswith(INSTANCES)]
    if not instances:
        return files, []
    return instances, [p for p in files if not p.name.startswith(INSTANCES)]


def _load(path: Path) -> COCO | None:
    from pycocotools.coco import COCO

    try:
        content = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        if path.suffix == ".json":
            raise SourceError(f"{path}: not readable JSON ({exc})") from None
        return None
    if not isinstance(content, dict) or not {"images", "annotations", "categories"} <= set(content):
        return None
    coco = COCO()  # indexes the three lists; the rest of the file is not needed
    coco.dataset = {"images": content["images"], "annotations": content["annotations"],
                    "categories": content["categories"]}
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            coco.createIndex()
        except (KeyError, TypeError) as exc:
            raise SourceError(f"{path}: malformed COCO JSON (missing field {exc})") from None
    return coco


def _add(dataset: SourceDataset, coco: COCO, path: Path, split: str | None,
         images: Path | None) -> None:
    categories = {c["id"]: str(c["name"]) for c in sorted(coco.cats.values(),
                                                           key=lambda c: c["id"])}
    dataset.classes += [n for n in categories.values() if n not in dataset.classes]
    roots = [images] if images else [path.parent, path.parent / "images", path.parent.parent,
                                     path.parent.parent / "images"]
    named = split or split_in_file_name(path.stem)  # a lone instances_val2017.json too
    if named:
        folders = dict.fromkeys([split_word(path.stem) or named, named, f"{named}2017"])
        bases = [images] if images else [path.parent.parent / "images", path.parent.parent]
        roots += [base / folder for base in bases for folder in folders]
    for index, (image_id, info) in enumerate(coco.imgs.items()):
        where = f"{path.name}: images[{index}] (id {image_id})"
        try:
            name = dataset_name(str(info["file_name"]))
            size = int(info["width"]), int(info["height"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"{path}: images[{index}]: malformed ({exc})") from None
        image = SourceImage(path=first_existing([root / name for root in roots]), name=name,
                            where=where, size=size, split=split)
        for ann in coco.imgToAnns.get(image_id, []):
            if ann.get("iscrowd"):
                dataset.notes["COCO crowd regions left out"] += 1
                continue
            image.boxes.append(_box(ann, categories))
        dataset.images.append(image)


def _box(ann: Mapping[str, Any], categories: dict[int, str]) -> SourceBox:
    category: Any = ann.get("category_id")  # any JSON value
    label = categories.get(category, f"category id {category}")
    try:
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (KeyError, TypeError, ValueError):
        return SourceBox(label, 0, 0, 0, 0, bad=f"annotation {ann.get('id')}: no usable bbox")
    return SourceBox(label, x, y, x + w, y + h)
