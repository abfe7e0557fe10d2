"""LabelMe JSON (one file per image, beside it or in a folder tree), rectangles read by globox.

Only rectangles are boxes; other shapes (polygons, points ...) are counted and left out. A first
folder named like a split (``train/``, ``val/``) gives the split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from siteml.data.formats.source import (
    SourceBox,
    SourceDataset,
    SourceError,
    SourceImage,
    dataset_name,
    ordered_labels,
    split_of,
)


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read every LabelMe JSON under ``src``."""
    if not src.is_dir():
        raise SourceError(f"{src}: LabelMe is a folder of JSON files, one per image")
    dataset = SourceDataset(images=[], classes=[])
    for path in sorted(src.rglob("*.json")):
        content = _load(path)
        if content is None:
            continue
        relative = path.relative_to(src)
        try:
            raw_path = str(content["imagePath"]).replace("\\", "/")
            image_path = dataset_name(raw_path)
            size = int(content["imageWidth"]), int(content["imageHeight"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"{path}: malformed LabelMe JSON ({exc})") from None
        image = SourceImage(
            path=Path(os.path.normpath((images or path.parent) / raw_path)),
            where=str(relative), size=size,
            name=(relative.parent / Path(image_path).name).as_posix(),
            split=split_of(relative.parts[0]) if len(relative.parts) > 1 else None)
        for shape in content.get("shapes") or []:
            if shape.get("shape_type", "rectangle") == "rectangle":
                image.boxes.append(_box(shape))
            else:
                dataset.notes["LabelMe shapes other than rectangles left out"] += 1
        dataset.images.append(image)
    if not dataset.images:
        raise SourceError(f"{src}: no LabelMe JSON (files with shapes and imagePath)")
    dataset.classes = ordered_labels(dataset.images)
    return dataset


def _load(path: Path) -> dict | None:
    try:
        content = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: not readable JSON ({exc})") from None
    return content if isinstance(content, dict) and "shapes" in content else None


def _box(shape: dict) -> SourceBox:
    from globox import BoundingBox
    from globox.errors import ParsingError

    try:
        box = BoundingBox.from_labelme(shape)
    except (ParsingError, ValueError, TypeError) as exc:
        return SourceBox(str(shape.get("label")), 0, 0, 0, 0, bad=f"unreadable rectangle ({exc})")
    return SourceBox(box.label, box.xmin, box.ymin, box.xmax, box.ymax)
