"""Deterministic synthetic detection datasets, one look per task, for demos and tests.

Each class is drawn as its own shape and colour (a helmet is a yellow dome, a vest an orange
striped block, a person a tall blue figure ...) on a cluttered, noisy background, so a small
YOLO model learns it in minutes on a CPU, yet the boxes must really be found. The same seed gives
the same pixels and labels; ``DIR.dvc`` is written as ``dvc add`` would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from siteml.data.dvc_hash import DirHash, dir_hash, write_dvc_file

Box = tuple[float, float, float, float]
Rgb = tuple[int, int, int]


def _dome(draw: ImageDraw.ImageDraw, box: Box, color: Rgb) -> None:
    x0, y0, x1, y1 = box
    draw.pieslice((x0, y0, x1, y1 + (y1 - y0)), 180, 360, fill=color)


def _striped(draw: ImageDraw.ImageDraw, box: Box, color: Rgb) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=color)
    step = max(2.0, (y1 - y0) / 5)
    for k in (1, 3):
        draw.rectangle((x0, y0 + k * step, x1, y0 + k * step + step / 2), fill=(235, 235, 235))


def _figure(draw: ImageDraw.ImageDraw, box: Box, color: Rgb) -> None:
    x0, y0, x1, y1 = box
    head = (x1 - x0) * 0.5
    cx = (x0 + x1) / 2
    draw.ellipse((cx - head / 2, y0, cx + head / 2, y0 + head), fill=(230, 190, 160))
    draw.rectangle((x0, y0 + head, x1, y1), fill=color)


def _triangle(draw: ImageDraw.ImageDraw, box: Box, color: Rgb) -> None:
    x0, y0, x1, y1 = box
    draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=color)


def _disc(draw: ImageDraw.ImageDraw, box: Box, color: Rgb) -> None:
    draw.ellipse(box, fill=color)


def _block(draw: ImageDraw.ImageDraw, box: Box, color: Rgb) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=color)
    draw.rectangle((x0, y0, x1, y0 + (y1 - y0) * 0.2), fill=(40, 40, 40))


@dataclass(frozen=True)
class _Look:
    draw: Callable[[ImageDraw.ImageDraw, Box, Rgb], None]
    color: Rgb
    aspect: tuple[float, float]  # width / height range


LOOKS = (
    _Look(_dome, (250, 205, 20), (1.3, 1.8)),
    _Look(_striped, (255, 110, 0), (0.8, 1.1)),
    _Look(_figure, (30, 80, 220), (0.35, 0.5)),
    _Look(_triangle, (220, 30, 30), (0.8, 1.2)),
    _Look(_disc, (150, 150, 160), (0.9, 1.1)),
    _Look(_block, (60, 170, 60), (1.8, 2.6)),
)


@dataclass(frozen=True)
class SiteLook:
    """How another site's images differ from the demo's: the light (a brightness factor drawn
    per image from ``light``), the background's level, and how often each class appears."""

    light: tuple[float, float] = (1.0, 1.0)
    background: int = 0
    class_weights: tuple[float, ...] | None = None


PLAIN = SiteLook()


def _clutter(rng: np.random.Generator, size: int, site: SiteLook) -> Image.Image:
    base = rng.integers(60, 140, size=3) + site.background
    pixels = np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 10))):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(size // 12, size // 3, 2)
        muted = tuple(int(v) for v in rng.integers(70, 150, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + w, y + h), outline=muted, width=2)
        else:
            draw.line((x, y, x + w, y + h), fill=muted, width=3)
    return image


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _draw_image(rng: np.random.Generator, size: int, num_classes: int, site: SiteLook = PLAIN,
                ) -> tuple[Image.Image, list[tuple[int, Box]]]:
    image = _clutter(rng, size, site)
    draw = ImageDraw.Draw(image)
    labels: list[tuple[int, Box]] = []
    weights = np.array(site.class_weights[:num_classes]) if site.class_weights else None
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.choice(num_classes, p=weights / weights.sum()) if weights is not None
                  else rng.integers(0, num_classes))
        look = LOOKS[cls % len(LOOKS)]
        for _attempt in range(10):  # place it clear of the others, so no label is hidden
            height = rng.uniform(0.15, 0.4) * size
            width = min(height * rng.uniform(*look.aspect), 0.6 * size)
            x0, y0 = rng.uniform(0, size - width), rng.uniform(0, size - height)
            box = (x0, y0, x0 + width, y0 + height)
            if not any(_overlap(box, other) for _, other in labels):
                break
        else:
            continue
        red, green, blue = np.clip(np.array(look.color) + rng.integers(-20, 21, 3), 0, 255)
        look.draw(draw, box, (int(red), int(green), int(blue)))
        labels.append((cls, box))
    if site.light != (1.0, 1.0):  # drawn last: the plain site's images stay as they were
        factor = rng.uniform(*site.light)
        image = image.point(lambda value: min(255, int(value * factor)))
    return image, labels


def _label_line(cls: int, box: Box, size: int) -> str:
    x0, y0, x1, y1 = box
    return (f"{cls} {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} "
            f"{(x1 - x0) / size:.6f} {(y1 - y0) / size:.6f}")


def synthesize(root: Path, classes: Sequence[str], splits: dict[str, int], imgsz: int = 320,
               seed: int = 0, progress: Callable[[int], None] | None = None,
               cameras: int = 0, site: SiteLook = PLAIN) -> DirHash:
    """Write a YOLO-layout dataset under ``root`` and ``root.dvc`` beside it.

    Args:
        root: Folder to create (must not hold a dataset already).
        classes: Class names; class i gets the i-th look.
        splits: Images per split, e.g. ``{"train": 200, "val": 50}``.
        imgsz: Square image size in pixels.
        seed: Same seed, same dataset.
        progress: Called with the number of images written so far.
        cameras: Name the images as the frames of this many cameras (``cam<k>_<time>``,
            what mining's default ``name_pattern`` reads) instead of ``<split>_<index>``.
        site: Another site's look (light, background, class mix).

    Returns:
        The folder's DVC hash.
    """
    if (root / "images").exists():
        raise FileExistsError(f"{root} already holds a dataset (images/)")
    written = 0
    for split, count in splits.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for index in range(count):
            rng = np.random.default_rng([seed, sum(map(ord, split)), index])
            image, labels = _draw_image(rng, imgsz, len(classes), site)
            stem = (f"cam{index % cameras}_{sum(splits.values()) * seed + written:06d}"
                    if cameras else f"{split}_{index:05d}")
            image.save(root / "images" / split / f"{stem}.jpg", quality=90)
            (root / "labels" / split / f"{stem}.txt").write_text(
                "".join(_label_line(c, b, imgsz) + "\n" for c, b in labels))
            written += 1
            if progress:
                progress(written)
    found = dir_hash(root)
    write_dvc_file(root, found)
    return found
