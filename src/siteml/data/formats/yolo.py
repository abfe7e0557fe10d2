"""YOLO text labels (Ultralytics' layout, Roboflow's, or a flat images/ + labels/ pair), each
line read by globox; class names from ``data.yaml`` (or ``classes.txt`` / ``obj.names``).

YOLO labels carry no image size, so each image's header is read for it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from siteml.data.formats.source import (
    SourceBox,
    SourceDataset,
    SourceError,
    SourceImage,
    split_of,
)
from siteml.data.layout import IMAGE_ERRORS, IMAGE_SUFFIXES, open_image, yaml_names


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read a YOLO dataset folder: images/<split>/ with labels/<split>/ beside them."""
    if not src.is_dir():
        raise SourceError(f"{src}: a YOLO dataset is a folder (images/ and labels/)")
    names = _class_names(src)
    image_dirs = sorted(p for p in src.rglob("images") if p.is_dir())
    if not image_dirs:
        raise SourceError(f"{src}: no images/ folder (YOLO layout: images/<split>/ and "
                          "labels/<split>/)")
    dataset = SourceDataset(images=[], classes=list(names))
    for image_dir in image_dirs:
        label_dir = image_dir.with_name("labels")
        for path in sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            inside = path.relative_to(image_dir)
            label = (label_dir / inside).with_suffix(".txt")
            split = split_of(inside.parts[0]) if len(inside.parts) > 1 else None
            split = split or split_of(image_dir.parent.name)
            name = inside.relative_to(inside.parts[0]) if split and len(inside.parts) > 1 \
                else inside
            image = SourceImage(path=path, name=name.as_posix(), split=split,
                                where=str(label.relative_to(src)))
            image.boxes = _lines(label, path, names)
            dataset.images.append(image)
    if not dataset.images:
        raise SourceError(f"{src}: no images under images/")
    return dataset


def _class_names(src: Path) -> list[str]:
    for path in [src / "data.yaml", *sorted(src.glob("*.yaml"))]:
        if path.is_file():
            try:
                names = yaml_names(path)
            except yaml.YAMLError as exc:
                raise SourceError(f"{path}: not a readable data.yaml ({exc})") from None
            if names is not None:
                return names
    for path in (src / "classes.txt", src / "obj.names"):
        if path.is_file():
            return [n.strip() for n in path.read_text(encoding="utf-8").splitlines() if n.strip()]
    raise SourceError(f"{src}: no class names (data.yaml with names:, classes.txt or obj.names)")


def _lines(label: Path, image: Path, names: list[str]) -> list[SourceBox]:
    """The boxes of one label file, in pixels of ``image`` (whose header gives the size)."""
    from globox import BoundingBox, BoxFormat
    from globox.errors import ParsingError

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
    boxes = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        label_name = _name(fields[0], names)
        if len(fields) not in (5, 6):
            boxes.append(SourceBox(label_name, 0, 0, 0, 0,
                                   bad=f"line {number}: {len(fields)} values (a segment?)"))
            continue
        try:
            box = BoundingBox.from_txt(" ".join(fields[:5]), box_format=BoxFormat.XYWH,
                                       relative=True, image_size=size)
        except (ParsingError, AssertionError, ValueError) as exc:
            reason = "negative size" if isinstance(exc, AssertionError) else "not 5 numbers"
            boxes.append(SourceBox(label_name, 0, 0, 0, 0, bad=f"line {number}: {reason}"))
            continue
        boxes.append(SourceBox(label_name, box.xmin, box.ymin, box.xmax, box.ymax))
    return boxes


def _name(field: str, names: list[str]) -> str:
    try:
        index = int(field)
    except ValueError:
        return f"class {field!r}"
    return names[index] if 0 <= index < len(names) else f"class id {index}"
