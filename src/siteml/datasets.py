"""Dataset folders in Ultralytics' YOLO layout (``images/<split>/``, ``labels/<split>/``)."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def count_images(root: Path) -> int:
    """Image files under ``root/images`` (or under ``root`` when it has no ``images`` folder)."""
    base = root / "images" if (root / "images").is_dir() else root
    return sum(1 for _, _, files in os.walk(base) for name in files
               if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES)
