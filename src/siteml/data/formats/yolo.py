"""YOLO text labels: Ultralytics' layout (Roboflow's, or a flat images/ + labels/ pair) with
class names from ``data.yaml`` (or ``classes.txt`` / ``obj.names``), or Darknet's, which CVAT
exports as "YOLO 1.1" (``obj.data``, ``obj_<subset>_data/``: read by ``darknet``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from siteml.data.formats import darknet
from siteml.data.formats.source import SourceDataset, SourceError, SourceImage, split_of
from siteml.data.formats.yolo_labels import label_boxes, read_names
from siteml.data.layout import IMAGE_SUFFIXES, yaml_names


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read a YOLO dataset folder: images/<split>/ with labels/<split>/ beside them, or a
    Darknet one."""
    if not src.is_dir():
        raise SourceError(f"{src}: a YOLO dataset is a folder (images/ and labels/, or "
                          "Darknet's obj.data and obj_<subset>_data/)")
    if darknet.is_darknet(src):
        return darknet.read(src, images)
    names = _class_names(src)
    image_dirs = sorted(p for p in src.rglob("images") if p.is_dir())
    if not image_dirs:
        raise SourceError(f"{src}: no images/ folder (YOLO layout: images/<split>/ and "
                          "labels/<split>/; Darknet: obj.data and obj_<subset>_data/)")
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
            image.boxes = label_boxes(label, path, names)
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
            return read_names(path)
    raise SourceError(f"{src}: no class names (data.yaml with names:, classes.txt or obj.names)")
