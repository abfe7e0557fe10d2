"""Writers of tiny labelled sets in each labelling tool's format, from one list of true boxes,
with each format's tricky cases: COCO crowd regions and category ids not 0..N-1, VOC
``difficult`` boxes and ImageSets splits, a CVAT project of two tasks whose subsets are the
splits, LabelMe polygons beside rectangles, YOLO with a data.yaml; and the layouts around them:
official COCO's and MMDetection's split files, Darknet's YOLO as CVAT exports it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

CLASSES = ["hardhat", "vest", "person"]  # the source's names; the scenario says helmet


@dataclass(frozen=True)
class TrueImage:
    name: str
    split: str
    size: tuple[int, int]
    boxes: tuple[tuple[str, int, int, int, int], ...]  # label, xmin, ymin, xmax, ymax


TRUTH = (
    TrueImage("cam1_0001.jpg", "train", (96, 64),
              (("hardhat", 4, 6, 30, 40), ("vest", 40, 10, 90, 60))),
    TrueImage("cam1_0002.png", "train", (96, 64), (("person", 10, 5, 50, 60),)),
    TrueImage("cam2_0001.jpg", "train", (80, 64), (("vest", 1, 2, 79, 63),)),
    TrueImage("cam2_0002.jpg", "val", (96, 64), (("hardhat", 20, 20, 44, 50),
                                                 ("person", 50, 3, 90, 61))),
    TrueImage("cam3_0001.png", "val", (96, 64), ()),
)


def write_image(path: Path, size: tuple[int, int], seed: int) -> None:
    """A distinct noisy image (no two alike, so none is a duplicate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def coco_content(truth, folder: Path, first: int = 0) -> dict:
    """COCO JSON of ``truth``, its images written to ``folder``; category ids 3, 7, 11; a crowd
    region on the first image. Image ids (and image seeds) start at 100 + ``first``."""
    ids = {"hardhat": 7, "vest": 3, "person": 11}
    images, annotations = [], []
    for index, image in enumerate(truth, first):
        write_image(folder / image.name, image.size, index)
        images.append({"id": 100 + index, "file_name": image.name, "width": image.size[0],
                       "height": image.size[1]})
        for label, x0, y0, x1, y1 in image.boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": 100 + index,
                                "category_id": ids[label], "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    annotations.append({"id": 999, "image_id": 100 + first, "category_id": 11, "iscrowd": 1,
                        "bbox": [0, 0, 60, 60], "area": 3600, "segmentation": {}})
    categories = [{"id": i, "name": n, "supercategory": "ppe"} for n, i in ids.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(root: Path, truth=TRUTH) -> Path:
    """``root/export.json`` with images in ``root/images``."""
    path = root / "export.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco_content(truth, root / "images")))
    return path


def write_coco_splits(root: Path, year: str = "", truth=TRUTH) -> Path:
    """``root/annotations/instances_<split><year>.json``, each split's images in
    ``root/<split><year>/``: official COCO's layout with ``year="2017"``, MMDetection's
    without."""
    first = 0
    for split in ("train", "val"):
        part = [image for image in truth if image.split == split]
        path = root / "annotations" / f"instances_{split}{year}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco_content(part, root / f"{split}{year}", first)))
        first += len(part)
    return root


def write_coco_other_tasks(annotations: Path) -> list[str]:
    """Official COCO's other annotation files beside the instances files (each as its task
    writes it: captions have no categories, panoptic annotations no ids); their names."""
    image = {"id": 100, "file_name": TRUTH[0].name, "width": 96, "height": 64}
    person = {"id": 1, "name": "person", "supercategory": "person", "keypoints": ["nose"],
              "skeleton": []}
    files = {
        "captions_train2017.json": {"images": [image], "annotations": [
            {"id": 1, "image_id": 100, "caption": "a worker in a vest"}]},
        "person_keypoints_val2017.json": {"images": [image], "categories": [person],
                                          "annotations": [{
                                              "id": 1, "image_id": 100, "category_id": 1,
                                              "bbox": [10, 5, 40, 55], "area": 2200,
                                              "iscrowd": 0, "keypoints": [20, 8, 2],
                                              "num_keypoints": 1}]},
        "panoptic_val2017.json": {"images": [image], "categories": [person], "annotations": [
            {"image_id": 100, "file_name": "000100.png", "segments_info": []}]},
        "stuff_train2017.json": {"images": [image], "categories": [
            {"id": 92, "name": "banner", "supercategory": "textile"}], "annotations": [
            {"id": 1, "image_id": 100, "category_id": 92, "bbox": [0, 0, 9, 9], "area": 81,
             "iscrowd": 0, "segmentation": {}}]},
    }
    for name, content in files.items():
        (annotations / name).write_text(json.dumps(content))
    return sorted(files)


def write_voc(root: Path, truth=TRUTH) -> Path:
    """Annotations/, JPEGImages/, ImageSets/Main/{train,val}.txt; the first box difficult."""
    sets: dict[str, list[str]] = {}
    for index, image in enumerate(truth):
        write_image(root / "JPEGImages" / image.name, image.size, index)
        objects = "".join(
            f"<object><name>{label}</name><difficult>{int(index == 0 and k == 0)}</difficult>"
            f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
            "</bndbox></object>" for k, (label, x0, y0, x1, y1) in enumerate(image.boxes))
        stem = Path(image.name).stem
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><folder>JPEGImages</folder><filename>{image.name}</filename><size>"
            f"<width>{image.size[0]}</width><height>{image.size[1]}</height><depth>3</depth>"
            f"</size>{objects}</annotation>")
        sets.setdefault(image.split, []).append(stem)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for split, stems in sets.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return root


def write_cvat(root: Path, truth=TRUTH) -> Path:
    """A CVAT project export: one task per split (subsets Train and Validation)."""
    subsets = {"train": ("Train", 1), "val": ("Validation", 2)}
    labels = "".join(f"<label><name>{n}</name></label>" for n in CLASSES)
    tasks = "".join(f"<task><id>{i}</id><name>task {i}</name><subset>{s}</subset></task>"
                    for s, i in subsets.values())
    nodes = []
    for index, image in enumerate(truth):
        subset, task = subsets[image.split]
        write_image(root / "images" / subset / image.name, image.size, index)
        boxes = "".join(f'<box label="{label}" occluded="0" source="manual" xtl="{x0}" '
                        f'ytl="{y0}" xbr="{x1}" ybr="{y1}" z_order="0"></box>'
                        for label, x0, y0, x1, y1 in image.boxes)
        nodes.append(f'<image id="{index}" name="{image.name}" subset="{subset}" '
                     f'task_id="{task}" width="{image.size[0]}" height="{image.size[1]}">'
                     f"{boxes}</image>")
    path = root / "annotations.xml"
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1'
                    f"</version><meta><project><name>site</name><labels>{labels}</labels>"
                    f"<tasks>{tasks}</tasks></project></meta>{''.join(nodes)}</annotations>")
    return root


def write_labelme(root: Path, truth=TRUTH) -> Path:
    """train/ and val/ folders, a JSON beside each image, and a polygon that is not a box."""
    for index, image in enumerate(truth):
        folder = root / image.split
        write_image(folder / image.name, image.size, index)
        shapes = [{"label": label, "points": [[x1, y1], [x0, y0]], "shape_type": "rectangle",
                   "group_id": None, "flags": {}} for label, x0, y0, x1, y1 in image.boxes]
        shapes.append({"label": "person", "points": [[1, 1], [5, 1], [3, 4]],
                       "shape_type": "polygon", "group_id": None, "flags": {}})
        (folder / f"{Path(image.name).stem}.json").write_text(json.dumps({
            "version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image.name,
            "imageData": None, "imageHeight": image.size[1], "imageWidth": image.size[0]}))
    return root


def write_yolo(root: Path, truth=TRUTH) -> Path:
    """Ultralytics' layout with data.yaml naming the classes."""
    for index, image in enumerate(truth):
        write_image(root / "images" / image.split / image.name, image.size, index)
        label = root / "labels" / image.split / f"{Path(image.name).stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(yolo_line(image, box) for box in image.boxes))
    (root / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(CLASSES))}))
    return root


def yolo_line(image: TrueImage, box: tuple[str, int, int, int, int]) -> str:
    """One YOLO label line: class index in CLASSES, centre and size relative to the image."""
    (w, h), (label, x0, y0, x1, y1) = image.size, box
    return (f"{CLASSES.index(label)} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
            f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}\n")


def write_darknet(root: Path, truth=TRUTH, lists: bool = True) -> Path:
    """CVAT's "YOLO 1.1" export: obj.names, obj.data and the lists naming paths as Darknet
    sees them (``data/obj_train_data/...``), each image's label beside it in
    ``obj_<subset>_data/`` (subsets train and valid); ``lists=False``: only obj.names and the
    folders."""
    subsets = {"train": "train", "val": "valid"}
    listed: dict[str, list[str]] = {}
    for index, image in enumerate(truth):
        folder = root / f"obj_{subsets[image.split]}_data"
        write_image(folder / image.name, image.size, index)
        (folder / f"{Path(image.name).stem}.txt").write_text(
            "".join(yolo_line(image, box) for box in image.boxes))
        listed.setdefault(subsets[image.split], []).append(f"data/{folder.name}/{image.name}")
    (root / "obj.names").write_text("".join(f"{name}\n" for name in CLASSES))
    if lists:
        for subset, paths in listed.items():
            (root / f"{subset}.txt").write_text("".join(f"{p}\n" for p in paths))
        (root / "obj.data").write_text(f"classes = {len(CLASSES)}\n" + "".join(
            f"{subset} = data/{subset}.txt\n" for subset in listed)
            + "names = data/obj.names\nbackup = backup/\n")
    return root


WRITERS = {"coco": write_coco, "voc": write_voc, "cvat": write_cvat, "labelme": write_labelme,
           "yolo": write_yolo}


def read_yolo_boxes(dataset: Path, classes: list[str]) -> dict[str, set]:
    """Imported labels back in pixels: image stem -> {(split, class, x0, y0, x1, y1)} rounded."""
    found: dict[str, set] = {}
    for label in sorted(dataset.glob("labels/*/**/*.txt")):
        split = label.relative_to(dataset / "labels").parts[0]
        image = next(p for p in (dataset / "images").glob(f"{split}/**/{label.stem}.*"))
        with Image.open(image) as opened:
            w, h = opened.size
        boxes = found.setdefault(label.stem, set())
        for line in label.read_text().splitlines():
            cls, xc, yc, bw, bh = line.split()
            xc, yc, bw, bh = float(xc) * w, float(yc) * h, float(bw) * w, float(bh) * h
            boxes.add((split, classes[int(cls)], round(xc - bw / 2), round(yc - bh / 2),
                       round(xc + bw / 2), round(yc + bh / 2)))
    return found
