"""Unlabelled frames from a site's cameras: a folder of images whose file names say the camera
and the time (a regular expression with the groups ``camera`` and ``time``), in each camera's
time order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from siteml.data.layout import IMAGE_ERRORS, IMAGE_SUFFIXES, open_image


class FramesError(ValueError):
    """The frames folder is missing or empty, or holds a file that is not an image or whose
    name the pattern does not read."""


@dataclass(frozen=True)
class Frame:
    """One frame: its file, the camera that took it and its time (as the name writes it)."""

    path: Path
    camera: str
    time: str


def list_frames(folder: Path, pattern: str) -> list[Frame]:
    """Every frame under ``folder`` (hidden files aside), by camera and time; each image's
    header is read, so that a file that is no image is found before anything runs.

    Raises:
        FramesError: naming the folder or the first file at fault.
    """
    if not folder.is_dir():
        raise FramesError(f"{folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise FramesError(f"{folder} holds no frames")
    reader, frames = re.compile(pattern), []
    for path in files:
        found = reader.fullmatch(path.stem)
        if found is None:
            raise FramesError(f"{path}: its name does not match mine.name_pattern {pattern!r}")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise FramesError(f"{path} is not an image (suffixes: "
                              f"{', '.join(sorted(IMAGE_SUFFIXES))})")
        try:
            with open_image(path) as opened:
                opened.size  # noqa: B018 - the header, read
        except IMAGE_ERRORS as exc:
            raise FramesError(f"{path} is not an image Pillow reads: {exc}") from None
        groups = found.groupdict()
        frames.append(Frame(path, groups["camera"], groups.get("time") or path.stem))
    return sorted(frames, key=lambda frame: (frame.camera, frame.time, frame.path.name))
