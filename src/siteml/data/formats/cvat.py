"""CVAT for images 1.1 XML (a task or a project export), each box read by globox.

A project export holds several tasks, each with its subset (Train, Validation ...): the subset
is the split, and an image is looked for under ``images/<subset>/`` first, so that two tasks may
both have a ``frame_000000.jpg``. Tracks (CVAT for video) are refused with what to export instead.
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
    split_of,
)
from siteml.data.formats.xml_boxes import read_box


def read(src: Path, images: Path | None = None) -> SourceDataset:
    """Read ``src``: a CVAT XML file, or a folder holding ``annotations.xml``."""
    path = src if src.is_file() else _find(src)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SourceError(f"{path}: not readable XML ({exc})") from None
    if root.tag != "annotations" or root.find("meta") is None:
        raise SourceError(f"{path}: not a CVAT XML (<annotations> with <meta>)")
    if root.find("image") is None and root.find("track") is not None:
        raise SourceError(f"{path}: CVAT for video (tracks) is not supported; export the task "
                          "as 'CVAT for images 1.1'")
    base = images or path.parent / "images"
    dataset = SourceDataset(images=[], classes=[n.text or "" for n in
                                                root.iterfind("meta/*/labels/label/name")])
    for index, node in enumerate(root.iter("image")):
        subset = node.get("subset")
        name = dataset_name(node.get("name") or f"image {index}")
        candidates = [base / name, path.parent / name]
        if subset:
            candidates.insert(0, base / subset / name)
        found = first_existing(candidates)
        try:
            size = int(node.get("width", "")), int(node.get("height", ""))
        except ValueError:
            size = None
        image = SourceImage(
            path=found, size=size, split=split_of(subset) if subset else None,
            name=found.relative_to(base).as_posix() if found.is_relative_to(base) else name,
            where=f"{path.name}: image id {node.get('id')} (task {node.get('task_id', '-')})")
        image.boxes = [read_box(box, "cvat") for box in node.iter("box")]
        dataset.notes["CVAT shapes other than boxes left out"] += sum(
            1 for child in node if child.tag != "box")
        dataset.images.append(image)
    dataset.classes = dataset.classes or ordered_labels(dataset.images)
    return dataset


def _find(src: Path) -> Path:
    for candidate in [src / "annotations.xml", *sorted(src.glob("*.xml"))]:
        if candidate.is_file():
            return candidate
    raise SourceError(f"{src}: no CVAT XML (annotations.xml)")
