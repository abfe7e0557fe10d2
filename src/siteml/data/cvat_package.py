"""A CVAT for images 1.1 package for a labelling task whose server siteml cannot reach: the
frames under ``images/`` and ``annotations.xml`` with the task's labels and the model's boxes
(``source="auto"``), which CVAT imports into a task made of those frames (Upload annotations,
"CVAT 1.1"). CVAT's export of the finished task comes back through ``formats.cvat``."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedFrame:
    """One frame: its name in the task, its file, its size and the proposed boxes
    (``(label, [x1, y1, x2, y2])`` in pixels)."""

    name: str
    path: Path
    width: int
    height: int
    boxes: list[tuple[str, list[float]]]


def write_package(folder: Path, title: str, classes: list[str],
                  frames: list[PackagedFrame]) -> None:
    """Write the package into the new folder ``folder`` (beside, then renamed into place)."""
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "name").text = title
    ET.SubElement(task, "size").text = str(len(frames))
    labels = ET.SubElement(task, "labels")
    for name in classes:
        ET.SubElement(ET.SubElement(labels, "label"), "name").text = name
    for index, frame in enumerate(frames):
        shutil.copy2(frame.path, partial / "images" / frame.name)
        image = ET.SubElement(root, "image", id=str(index), name=frame.name,
                              width=str(frame.width), height=str(frame.height))
        for label, (x1, y1, x2, y2) in frame.boxes:
            ET.SubElement(image, "box", label=label, source="auto", occluded="0",
                          xtl=f"{x1:.2f}", ytl=f"{y1:.2f}", xbr=f"{x2:.2f}", ybr=f"{y2:.2f}",
                          z_order="0")
    ET.indent(root)
    ET.ElementTree(root).write(partial / "annotations.xml", encoding="utf-8",
                               xml_declaration=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(folder)
