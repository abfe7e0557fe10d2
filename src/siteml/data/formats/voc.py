"""Pascal VOC XML (one file per image), each box read by globox.

Splits come from ``ImageSets/Main/{train,val,test}.txt`` when present. Boxes marked
``difficult`` are kept (they are real objects a site's detector must find) and counted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from siteml.data.formats.source import (
    SourceDataset,
    SourceError,
    SourceImage,
    dataset_name,
    first_existing,
    ordered_labels,
)
from siteml.data.formats.xml_boxes import read_box


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read every VOC ``<annotation>`` XML under ``src``."""
    if not src.is_dir():
        raise SourceError(f"{src}: Pascal VOC is a folder of XML files (Annotations/)")
    splits = _image_sets(src)
    dataset = SourceDataset(images=[], classes=[])
    for path in sorted(src.rglob("*.xml")):
        root = _parse(path)
        if root is None:
            continue
        filename = root.findtext("filename") or path.with_suffix(".jpg").name
        try:
            size = int(root.findtext("size/width") or ""), int(root.findtext("size/height") or "")
        except ValueError:
            size = None
        name = dataset_name(filename)
        roots = [images] if images else [path.parent.parent / "JPEGImages", path.parent, src,
                                         src / "JPEGImages"]
        image = SourceImage(path=first_existing([r / name for r in roots]), name=name,
                            where=str(path.relative_to(src)), size=size,
                            split=splits.get(Path(name).stem))
        for node in root.iter("object"):
            if node.findtext("difficult", "0").strip() == "1":
                dataset.notes["VOC difficult boxes kept"] += 1
            image.boxes.append(read_box(node, "voc"))
        dataset.images.append(image)
    if not dataset.images:
        raise SourceError(f"{src}: no Pascal VOC annotation XML (<annotation> files)")
    dataset.classes = ordered_labels(dataset.images)
    return dataset


def _parse(path: Path) -> ET.Element | None:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SourceError(f"{path}: not readable XML ({exc})") from None
    return root if root.tag == "annotation" else None


def _image_sets(src: Path) -> dict[str, str]:
    """Image stem -> split, from ImageSets/Main/<split>.txt (train, val, test)."""
    found: dict[str, str] = {}
    for split in ("train", "val", "test"):
        listing = src / "ImageSets" / "Main" / f"{split}.txt"
        if listing.is_file():
            for line in listing.read_text(encoding="utf-8").split():
                found.setdefault(line.strip(), split)
    return found
