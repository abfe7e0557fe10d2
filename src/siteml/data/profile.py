"""A dataset's profile: images and boxes per split and class, images without boxes, box sizes as
COCO counts them, and near-duplicate images across splits by a perceptual hash (imagehash's
pHash, 64 bits; pairs within ``max_distance`` bits), worst pairs first.

A val image that is a near-duplicate of a train image (the same camera a second later) makes
val mAP look better than the site will see; the profile finds them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from siteml.core.progress import progress_bar
from siteml.data.file_state import Known, recall, remember
from siteml.data.layout import IMAGE_ERRORS, open_image, split_images, yaml_names

SMALL, MEDIUM = 32 ** 2, 96 ** 2  # COCO's area thresholds, in pixels
DEFAULT_MAX_DISTANCE = 4
WORST_PAIRS = 10
CELLS = 1 << 22
SPLIT_ORDER = ("train", "val", "test")
Hashes = dict[str, list[tuple[str, int]]]
"""Per split: (image path, its 64-bit pHash) of each image."""


class SplitStats(TypedDict):
    """One split's counts; box sizes as COCO counts them (small, medium, large)."""

    images: int
    boxes: int
    images_without_boxes: int
    boxes_per_class: dict[str, int]
    box_sizes: dict[str, int]


class Pair(TypedDict):
    """Two near-duplicate images and the bits their hashes differ by."""

    distance: int
    a: str
    b: str


class NearDuplicates(TypedDict):
    """Counts per split pair (``val~train``: val images close to a train image), worst pairs."""

    max_distance: int
    counts: dict[str, int]
    worst_pairs: list[Pair]


class Profile(TypedDict):
    """A dataset's profile, as ``siteml data stats --json`` prints it and runs log it."""

    splits: dict[str, SplitStats]
    classes: list[str]
    unreadable: list[str]
    near_duplicates: NearDuplicates


def dataset_images(root: Path) -> dict[str, list[Path]]:
    """Images per split folder under ``root/images``, sorted."""
    base = root / "images"
    splits = sorted((p.name for p in base.iterdir() if p.is_dir()),
                    key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 9, s)) \
        if base.is_dir() else []
    return {split: split_images(root, split) for split in splits}


def profile_dataset(root: Path, max_distance: int = DEFAULT_MAX_DISTANCE,
                    classes: list[str] | None = None) -> Profile:
    """The profile of a YOLO-layout dataset (JSON-ready), with a progress bar over its images;
    class names from ``classes``, else the dataset's ``data.yaml``, else ``class N``."""
    names = dict(enumerate(classes)) if classes else _class_names(root)
    listed = dataset_images(root)
    with progress_bar(f"profiling {root.name}", sum(map(len, listed.values()))) as advance:
        splits, hashes, unreadable = _profile_splits(root, listed, names, advance)
    found = sorted({c for stats in splits.values() for c in stats["boxes_per_class"]})
    return {"splits": splits, "classes": list(names.values()) or found, "unreadable": unreadable,
            "near_duplicates": near_duplicates(hashes, max_distance)}


def _profile_splits(root: Path, listed: dict[str, list[Path]], names: dict[int, str],
                    progress: Callable[[str], None]) -> tuple[dict[str, SplitStats], Hashes,
                                                              list[str]]:
    """Per split: counts, box sizes and image hashes (the file state's, else computed and kept
    there); and the images that would not open."""
    splits: dict[str, SplitStats] = {}
    hashes: Hashes = {}
    unreadable = []
    known = recall([str(image) for images in listed.values() for image in images])
    learned = []
    for split, images in listed.items():
        per_class: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        empty = 0
        hashes[split] = []
        for image in images:
            progress("")
            relative = image.relative_to(root).as_posix()
            try:
                with open_image(image) as opened:
                    width, height = opened.size
                    phash = known[str(image)].phash
                    if phash is None:
                        phash = perceptual_hash(opened)
                        learned.append(Known(known[str(image)].stat, None, phash))
                    hashes[split].append((relative, phash))
            except IMAGE_ERRORS:
                unreadable.append(relative)
                continue
            boxes = _boxes(root, split, image)
            empty += not boxes
            for cls, w, h in boxes:
                per_class[names.get(cls, f"class {cls}")] += 1
                area = w * width * h * height
                sizes["small" if area < SMALL else "medium" if area < MEDIUM else "large"] += 1
        splits[split] = {"images": len(images), "boxes": sum(per_class.values()),
                         "images_without_boxes": empty, "boxes_per_class": dict(per_class),
                         "box_sizes": {k: sizes[k] for k in ("small", "medium", "large")}}
    remember(learned)
    return splits, hashes, unreadable


def perceptual_hash(image: Any) -> int:
    """imagehash's pHash of an opened image, as a 64-bit integer."""
    import imagehash

    return int(str(imagehash.phash(image)), 16)


def near_duplicates(hashes: Hashes, max_distance: int) -> NearDuplicates:
    """Images of a later split (val, test) with a near-duplicate in an earlier one: hashes at
    most ``max_distance`` bits apart. Counts per split pair, and the worst (closest) pairs."""
    counts: dict[str, int] = {}
    pairs: list[tuple[int, str, str]] = []
    order = list(hashes)
    for i, first in enumerate(order):
        for second in order[i + 1:]:
            matches = closest(hashes[first], hashes[second], max_distance)
            counts[f"{second}~{first}"] = len(matches)
            pairs = sorted(pairs + matches)[:WORST_PAIRS]
    return {"max_distance": max_distance, "counts": counts,
            "worst_pairs": [{"distance": d, "a": a, "b": b} for d, a, b in pairs]}


def closest(first: list[tuple[str, int]], second: list[tuple[str, int]],
             max_distance: int) -> list[tuple[int, str, str]]:
    """For each image of ``second`` with a match in ``first``: (distance, its closest, it)."""
    if not first or not second:
        return []
    a = np.array([h for _, h in first], dtype=np.uint64)
    found = []
    rows = max(1, CELLS // len(first))  # bounded memory: CELLS distances at a time
    for start in range(0, len(second), rows):
        chunk = second[start:start + rows]
        b = np.array([h for _, h in chunk], dtype=np.uint64)
        distance = np.bitwise_count(a[None, :] ^ b[:, None])
        nearest = distance.argmin(axis=1)
        best = distance[np.arange(len(chunk)), nearest]
        for row in np.nonzero(best <= max_distance)[0]:
            found.append((int(best[row]), first[nearest[row]][0], chunk[row][0]))
    return found


def _boxes(root: Path, split: str, image: Path) -> list[tuple[int, float, float]]:
    inside = image.relative_to(root / "images" / split).with_suffix(".txt")
    label = root / "labels" / split / inside
    if not label.is_file():
        return []
    boxes = []
    for line in label.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 5:
            try:
                boxes.append((int(fields[0]), float(fields[3]), float(fields[4])))
            except ValueError:
                continue
    return boxes


def _class_names(root: Path) -> dict[int, str]:
    data_yaml = root / "data.yaml"
    return dict(enumerate((yaml_names(data_yaml) if data_yaml.is_file() else None) or []))


def val_leaks(profile: Profile) -> int:
    """Val images with a near-duplicate in train."""
    return profile["near_duplicates"]["counts"].get("val~train", 0)


def plot_profile(profile: Profile, path: Path) -> None:
    """A PNG: boxes per class and split, box sizes per split, near-duplicates per split pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = profile["splits"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    classes = sorted({c for s in splits.values() for c in s["boxes_per_class"]})
    x = np.arange(len(classes))
    for k, (split, stats) in enumerate(splits.items()):
        width = 0.8 / max(len(splits), 1)
        axes[0].bar(x + k * width, [stats["boxes_per_class"].get(c, 0) for c in classes],
                    width, label=split)
        axes[1].bar(np.arange(3) + k * width, list(stats["box_sizes"].values()), width,
                    label=split)
    axes[0].set(title="boxes per class", xticks=x, xticklabels=classes)
    axes[1].set(title="box sizes (COCO)", xticks=np.arange(3),
                xticklabels=["small", "medium", "large"])
    counts = profile["near_duplicates"]["counts"]
    axes[2].bar(list(counts), list(counts.values()), color="tab:red")
    axes[2].set(title=f"near-duplicates (<= {profile['near_duplicates']['max_distance']} bits)")
    for ax in axes[:2]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
