"""COCO detection JSON (one file, or a folder of them: one per split), read by pycocotools.

Crowd regions (``iscrowd: 1``) are left out and counted: they mark many objects at once, which
a YOLO label cannot say (Ultralytics' own COCO converter drops them too). Category ids may be
any integers; classes come in id order.
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
)

if TYPE_CHECKING:
    from pycocotools.coco import COCO


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read ``src`` (a COCO JSON file, or a folder holding one per split)."""
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*.json")
                                               if not p.name.startswith("."))
    loaded = [(path, coco) for path in files if (coco := _load(path)) is not None]
    if not loaded:
        raise SourceError(f"{src}: no COCO detection JSON (a file with images, annotations "
                          "and categories)")
    several = len(loaded) > 1
    dataset = SourceDataset(images=[], classes=[])
    for path, coco in loaded:
        split = (split_in_file_name(path.stem) or split_of(path.parent.name)) if several else None
        if several and split is None:
            raise SourceError(f"{path}: several COCO files, but this one's name says no split "
                              "(train, val or test)")
        _add(dataset, coco, path, split, images)
    return dataset


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
    if split and not images:
        roots += [path.parent.parent / "images" / split, path.parent.parent / f"{split}2017"]
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
