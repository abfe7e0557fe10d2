"""One box node of a VOC or CVAT XML, read by globox, with its error kept instead of raised."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from siteml.data.formats.source import SourceBox

_READERS = {"voc": "from_xml", "cvat": "from_cvat"}


def read_box(node: ET.Element, flavour: str) -> SourceBox:
    """The box of ``node``; a box globox refuses (xmax < xmin, not numbers) comes back ``bad``."""
    from globox import BoundingBox
    from globox.errors import ParsingError

    label = node.findtext("name") if flavour == "voc" else node.get("label")
    try:
        box = getattr(BoundingBox, _READERS[flavour])(node)
    except AssertionError:
        return SourceBox(label or "?", 0, 0, 0, 0, bad="negative size (max < min)")
    except (ParsingError, ValueError) as exc:
        return SourceBox(label or "?", 0, 0, 0, 0, bad=f"unreadable box ({exc})")
    return SourceBox(box.label, box.xmin, box.ymin, box.xmax, box.ymax)
