"""Label-format readers, one module per format, each ``read(src, images) -> SourceDataset``."""

from __future__ import annotations

import importlib
from pathlib import Path

from siteml.data.formats.source import SourceDataset, SourceError

FORMATS = {"coco": "COCO JSON", "voc": "Pascal VOC XML", "cvat": "CVAT for images XML",
           "labelme": "LabelMe JSON",
           "yolo": "YOLO text (Ultralytics layout, or Darknet: CVAT's YOLO 1.1)"}


def read_source(src: Path, fmt: str, images: Path | None = None) -> SourceDataset:
    """Read ``src`` as ``fmt``; errors name the file and what was expected."""
    if fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if not src.exists():
        raise SourceError(f"{src}: no such file or folder")
    if images is not None and not images.is_dir():
        raise SourceError(f"{images}: --images is not a folder")
    return importlib.import_module(f"siteml.data.formats.{fmt}").read(src, images)
