"""A parent dataset whose image names carry their camera, and labelled increments as ``siteml
label pull`` writes them, for the grow tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from siteml.data.dvc_hash import dir_hash, write_dvc_file
from siteml.data.synth import synthesize

CLASSES = ["helmet", "vest", "person"]
GROUP_BY = r"cam[A-Z]"


def parent_dataset(root: Path) -> Path:
    """12 train images of camera camA, 4 val images of camB, their class names in
    ``data.yaml``, and ``root.dvc``."""
    synthesize(root, CLASSES, {"train": 12, "val": 4}, imgsz=64, seed=3)
    (root / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(CLASSES))}))
    for split, camera in (("train", "camA"), ("val", "camB")):
        for image in sorted((root / "images" / split).iterdir()):
            image.rename(image.with_name(f"{camera}_{image.name}"))
            label = root / "labels" / split / image.with_suffix(".txt").name
            label.rename(label.with_name(f"{camera}_{label.name}"))
    write_dvc_file(root, dir_hash(root))
    return root


def increment(root: Path, frames: dict[str, tuple[Path, str]], cameras: dict[str, str],
              classes: list[str] = CLASSES) -> Path:
    """A labelled increment: name -> (image to copy, YOLO label text), each frame's camera."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name, (image, label) in frames.items():
        shutil.copyfile(image, root / "images" / name)
        (root / "labels" / Path(name).with_suffix(".txt")).write_text(label)
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    (root / "import.json").write_text(json.dumps({
        "siteml_labelled": 1, "mine_run": "grow-test/busan/plant1/yard/ppe-yolov11n-mine-v1",
        "mine_run_id": "0123", "tool": "labelstudio", "url": "http://127.0.0.1:8089",
        "project": "7", "selection_sha256": "ab" * 32, "cameras": cameras}))
    return root


def fresh_frames(root: Path, count: int, seed: int = 11) -> list[Path]:
    """``count`` synthetic images unlike the parent's."""
    synthesize(root, CLASSES, {"train": count}, imgsz=64, seed=seed)
    return sorted((root / "images" / "train").iterdir())
