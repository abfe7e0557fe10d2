"""Real dataset images as model inputs: seeded samples and Ultralytics' letterbox preprocessing."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from siteml.backends.ultralytics import letterbox
from siteml.data.layout import split_images


def sample_images(dataset: Path, split: str, count: int, seed: int) -> list[Path]:
    """Up to ``count`` images of ``split``, drawn with ``seed``, sorted.

    Raises:
        FileNotFoundError: the split holds no images.
    """
    images = split_images(dataset, split)
    if not images:
        raise FileNotFoundError(f"no images in split {split!r} of {dataset}")
    return sorted(random.Random(seed).sample(images, min(count, len(images))))


def timing_frame(image: Path, size: int) -> Any:
    """An image as a model input to time, read without Ultralytics (an edge box may have only
    the runtime): letterboxed as Ultralytics does it (scaled to fit, centred on grey 114), RGB,
    a 0-1 float32 NCHW batch of one. Pixels may differ from Ultralytics' by rounding, which
    changes no timing; accuracy is scored on Ultralytics' own letterbox."""
    from PIL import Image

    with Image.open(image) as opened:
        return letterboxed(opened.convert("RGB"), size)


def letterboxed(picture: Any, size: int) -> Any:
    """``timing_frame`` of an RGB Pillow image already read."""
    import numpy as np
    from PIL import Image

    scale = min(size / picture.width, size / picture.height)
    width, height = round(picture.width * scale), round(picture.height * scale)
    canvas = Image.new("RGB", (size, size), (114, 114, 114))
    canvas.paste(picture.resize((width, height), Image.Resampling.BILINEAR),
                 ((size - width) // 2, (size - height) // 2))
    return np.ascontiguousarray(np.asarray(canvas).transpose(2, 0, 1)[None],
                                dtype=np.float32) / 255


class Letterboxed(Sequence[Any]):
    """Images as model inputs, read and letterboxed when asked for: a calibration or val set
    of thousands of 640 px images would take gigabytes held as float32 arrays."""

    def __init__(self, images: list[Path], size: int) -> None:
        self.images, self.size = images, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        return letterbox(self.images[index], self.size)

    def __iter__(self) -> Iterator[Any]:
        return (letterbox(image, self.size) for image in self.images)
