"""``siteml data import`` from each labelling tool's format: boxes to a pixel, the class order
asked for, the source's splits, camera-grouped splits, box problems, and bad input that leaves
the destination untouched."""

import json
from pathlib import Path

import pytest
import yaml

from siteml.data.dvc_hash import dir_hash, read_dvc_file
from siteml.data.layout import check_detection_dataset
from tests.conftest import needs
from tests.data.label_files import (
    CLASSES,
    TRUTH,
    WRITERS,
    TrueImage,
    read_yolo_boxes,
    write_coco,
    write_coco_other_tasks,
    write_coco_splits,
    write_darknet,
)

needs("globox", "data")
needs("pycocotools", "data")

ORDER = ["person", "helmet", "vest"]
RENAME = "hardhat=helmet"


def expected_boxes(truth=TRUTH) -> dict[str, set]:
    return {Path(i.name).stem: {(i.split, RENAME.split("=")[1] if b[0] == "hardhat" else b[0],
                                 *b[1:]) for b in i.boxes} for i in truth}


def without_splits(boxes: dict[str, set]) -> dict[str, set]:
    return {stem: {box[1:] for box in found} for stem, found in boxes.items()}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_each_format_imports_boxes_classes_and_splits(cli, tmp_path, fmt, no_network):
    src = WRITERS[fmt](tmp_path / "export")
    dest = tmp_path / "data"
    code, out, err = cli("data", "import", str(src), str(dest), "--format", fmt,
                         "--classes", ",".join(ORDER), "--map", RENAME, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["classes"] == ORDER
    assert yaml.safe_load((dest / "data.yaml").read_text())["names"] == dict(enumerate(ORDER))
    found, expected = read_yolo_boxes(dest, ORDER), expected_boxes()
    if fmt == "coco":  # one COCO file has no splits: they are drawn
        assert result["report"]["splits"] == "drawn: val 0.2, seed 42"
        found, expected = without_splits(found), without_splits(expected)
    else:
        assert result["report"]["splits"] == "kept from the source"
        assert result["images"] == {"train": 3, "val": 2}
    assert found == expected
    assert sum(check_detection_dataset(dest, len(ORDER)).values()) == 5
    block = result["dataset"]
    assert block == {"version": "data", "path": str(dest.resolve()), "image_count": 5,
                     "dvc_hash": dir_hash(dest).md5}
    assert read_dvc_file(dest.with_name("data.dvc")) == block["dvc_hash"]
    source_image = next((src if src.is_dir() else src.parent).rglob("cam1_0002.png"))
    assert next(dest.rglob("cam1_0002.png")).read_bytes() == source_image.read_bytes()
    assert no_network.attempts == []


def test_format_specific_cases_are_reported(cli, tmp_path):
    expectations = {"coco": "COCO crowd regions left out", "voc": "VOC difficult boxes kept",
                    "labelme": "LabelMe shapes other than rectangles left out"}
    for fmt, note in expectations.items():
        src = WRITERS[fmt](tmp_path / fmt)
        code, out, err = cli("data", "import", str(src), str(tmp_path / f"{fmt}-data"),
                             "--format", fmt, "--json")
        assert code == 0, err
        notes = json.loads(out)["report"]["notes"]
        assert notes[note] == (1 if fmt != "labelme" else len(TRUTH))


def test_source_class_order_is_kept_without_classes(cli, tmp_path):
    src = write_coco(tmp_path / "export")  # category ids: vest 3, hardhat 7, person 11
    code, out, _ = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "coco",
                       "--json")
    assert code == 0
    assert json.loads(out)["classes"] == ["vest", "hardhat", "person"]


def test_cvat_tasks_may_share_image_names(cli, tmp_path):
    same = (TrueImage("frame_000000.jpg", "train", (64, 48), (("vest", 1, 1, 20, 20),)),
            TrueImage("frame_000000.jpg", "val", (64, 48), (("person", 5, 5, 30, 40),)))
    src = WRITERS["cvat"](tmp_path / "export", same)
    code, out, err = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "cvat",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == {"train": 1, "val": 1}
    assert json.loads(out)["boxes"] == {"train": 1, "val": 1}


def cameras(count: int, per_camera: int) -> tuple[TrueImage, ...]:
    return tuple(TrueImage(f"site_cam{c:02d}_{k:04d}.jpg", "train", (64, 48),
                           (("vest", 2, 2, 30, 30),))
                 for c in range(count) for k in range(per_camera))


def split_of_cameras(dest: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for image in dest.glob("images/*/*.jpg"):
        found.setdefault(image.name.split("_")[1], set()).add(image.parent.name)
    return found


def test_group_by_keeps_every_camera_in_one_split(cli, tmp_path):
    src = write_coco(tmp_path / "export", cameras(7, 6))
    runs = []
    for attempt in ("a", "b"):
        dest = tmp_path / f"d{attempt}"
        code, out, err = cli("data", "import", str(src), str(dest), "--format", "coco",
                             "--group-by", r"cam(\d+)", "--val", "0.3", "--seed", "7", "--json")
        assert code == 0, err
        runs.append(split_of_cameras(dest))
        assert all(len(splits) == 1 for splits in runs[-1].values())
        assert json.loads(out)["images"]["val"] >= 0.3 * 42
    assert runs[0] == runs[1]  # same seed, same split
    assert {s for splits in runs[0].values() for s in splits} == {"train", "val"}


def test_random_split_when_the_source_has_none(cli, tmp_path):
    src = write_coco(tmp_path / "export", cameras(2, 10))
    code, out, _ = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "coco",
                       "--json")
    assert code == 0
    assert json.loads(out)["images"] == {"train": 16, "val": 4}
    assert json.loads(out)["report"]["splits"] == "drawn: val 0.2, seed 42"


def broken_source(root: Path) -> Path:
    """A COCO set with one of each problem, and one box partly outside its image."""
    truth = (*TRUTH[:3],
             TrueImage("outside.jpg", "val", (96, 64),
                       (("vest", 100, 10, 120, 20), ("vest", 80, 40, 120, 80))),
             TrueImage("flat.jpg", "val", (96, 64), (("vest", 10, 10, 10, 30),)))
    path = write_coco(root, truth)
    content = json.loads(path.read_text())
    content["images"].append({"id": 1, "file_name": "missing.jpg", "width": 9, "height": 9})
    (root / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    content["images"].append({"id": 2, "file_name": "broken.jpg", "width": 9, "height": 9})
    (root / "images" / "again.jpg").write_bytes((root / "images" / TRUTH[0].name).read_bytes())
    content["images"].append({"id": 3, "file_name": "again.jpg", "width": 96, "height": 64})
    path.write_text(json.dumps(content))
    return path


def test_problems_refuse_the_import_with_a_report(cli, tmp_path):
    src = broken_source(tmp_path / "export")
    dest = tmp_path / "data"
    code, _, err = cli("data", "import", str(src), str(dest), "--format", "coco")
    assert code == 2
    for kind in ("missing image: 1", "unreadable image: 1", "duplicate image: 1",
                 "box outside the image: 1", "box of zero or negative size: 1"):
        assert kind in err
    assert "missing.jpg" in err and "--skip-bad" in err
    assert not dest.exists() and not dest.with_name("data.dvc").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_skip_bad_imports_the_rest_and_records_it(cli, tmp_path):
    src = broken_source(tmp_path / "export")
    dest = tmp_path / "data"
    code, _out, err = cli("data", "import", str(src), str(dest), "--format", "coco",
                         "--skip-bad", "--val", "0.3", "--json")
    assert code == 0, err
    report = json.loads((dest / "import.json").read_text())
    assert report["problems"]["missing image"]["count"] == 1
    assert report["repaired"] == {"boxes partly outside their image, clipped": 1}
    boxes = read_yolo_boxes(dest, ["vest", "hardhat", "person"])
    assert {b[2:] for b in boxes["outside"]} == {(80, 40, 96, 64)}
    assert "flat" in boxes and not boxes["flat"]  # kept, without its empty box
    assert {"missing", "broken", "again"}.isdisjoint(boxes)


def test_unknown_classes_are_listed_with_counts_or_dropped(cli, tmp_path):
    src = write_coco(tmp_path / "export")
    code, _, err = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "coco",
                       "--classes", "vest")
    assert code == 2
    assert "hardhat (2 boxes)" in err and "person (2 boxes)" in err
    assert not (tmp_path / "d").exists()
    code, out, _ = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "coco",
                       "--classes", "vest", "--drop-unknown", "--json")
    assert code == 0
    assert json.loads(out)["report"]["dropped_labels"] == {"hardhat": 2, "person": 2}
    assert sum(json.loads(out)["boxes"].values()) == 2


@pytest.mark.parametrize("args, message", [
    (["--format", "coco", "--src-missing"], "no such file or folder"),
    (["--format", "kitti"], "unknown format 'kitti'"),
    (["--format", "voc"], "no Pascal VOC annotation XML"),
    (["--format", "coco", "--classes", "helmet,vest", "--map", "hardhat=helm,hat=helm"],
     "hardhat, hat -> helm"),
    (["--format", "coco", "--dest-taken"], "already exists and is not empty"),
])
def test_bad_input_exits_2_and_leaves_dest_untouched(cli, tmp_path, args, message):
    src = write_coco(tmp_path / "export").parent
    dest = tmp_path / "data"
    if "--src-missing" in args:
        src, args = tmp_path / "nothing", args[:-1]
    if "--dest-taken" in args:
        dest.mkdir()
        (dest / "other.txt").write_text("another dataset")
        args = args[:-1]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, _out, err = cli("data", "import", str(src), str(dest), *args)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_drawn_split_leaves_the_source_test_images_in_test(cli, tmp_path):
    truth = tuple(TrueImage(f"cam{k}_0001.jpg", "test" if k < 2 else "train", (64, 48),
                            (("vest", 2, 2, 30, 30),)) for k in range(10))
    src = WRITERS["yolo"](tmp_path / "export", truth)
    code, out, err = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "yolo",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == {"test": 2, "train": 6, "val": 2}
    assert result["report"]["splits"] == "drawn: val 0.2, seed 42, test kept from the source"
    assert sorted(p.name for p in (tmp_path / "d" / "images" / "test").iterdir()) == [
        "cam0_0001.jpg", "cam1_0001.jpg"]


def test_images_folder_given_apart_from_the_annotations(cli, tmp_path):
    path = write_coco(tmp_path / "export")
    moved = tmp_path / "elsewhere"
    (tmp_path / "export" / "images").rename(moved)
    code, _, err = cli("data", "import", str(path), str(tmp_path / "d"), "--format", "coco")
    assert code == 2 and "missing image: 5" in err
    code, out, err = cli("data", "import", str(path), str(tmp_path / "d"), "--format", "coco",
                         "--images", str(moved), "--json")
    assert code == 0, err
    assert json.loads(out)["dataset"]["image_count"] == 5


def test_official_coco_annotations_read_the_instances_and_name_the_rest(cli, tmp_path):
    root = write_coco_splits(tmp_path / "coco", year="2017")
    others = write_coco_other_tasks(root / "annotations")
    dest = tmp_path / "data"
    code, _, err = cli("data", "import", str(root / "annotations"), str(dest), "--format",
                       "coco", "--classes", ",".join(ORDER), "--map", RENAME)
    assert code == 0, err
    assert read_yolo_boxes(dest, ORDER) == expected_boxes()
    report = json.loads((dest / "import.json").read_text())
    assert (report["splits"], report["images"]) == ("kept from the source",
                                                    {"train": 3, "val": 2})
    assert report["skipped_files"] == {"COCO files other than instances_* left out": others}
    assert all(name in err for name in others)


def test_mmdetection_split_folders_beside_annotations(cli, tmp_path):
    root = write_coco_splits(tmp_path / "mmdet")  # instances_train.json, images in train/
    code, out, err = cli("data", "import", str(root), str(tmp_path / "a"), "--format", "coco",
                         "--classes", ",".join(ORDER), "--map", RENAME, "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == {"train": 3, "val": 2}
    assert read_yolo_boxes(tmp_path / "a", ORDER) == expected_boxes()
    moved = tmp_path / "elsewhere"  # one --images holding both splits' folders
    moved.mkdir()
    for split in ("train", "val"):
        (root / split).rename(moved / split)
    code, out, err = cli("data", "import", str(root / "annotations"), str(tmp_path / "b"),
                         "--format", "coco", "--images", str(moved), "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == {"train": 3, "val": 2}


def test_a_lone_split_file_finds_its_split_folder(cli, tmp_path):
    root = write_coco_splits(tmp_path / "coco", year="2017")
    (root / "annotations" / "instances_train2017.json").unlink()  # only val2017 downloaded
    code, out, err = cli("data", "import", str(root / "annotations" / "instances_val2017.json"),
                         str(tmp_path / "d"), "--format", "coco", "--json")
    assert code == 0, err
    assert sum(json.loads(out)["images"].values()) == 2


@pytest.mark.parametrize("lists", [True, False])
def test_darknet_yolo_as_cvat_exports_it(cli, tmp_path, lists):
    src = write_darknet(tmp_path / "export", lists=lists)
    dest = tmp_path / "data"
    code, out, err = cli("data", "import", str(src), str(dest), "--format", "yolo",
                         "--classes", ",".join(ORDER), "--map", RENAME, "--json")
    assert code == 0, err
    result = json.loads(out)
    found, expected = read_yolo_boxes(dest, ORDER), expected_boxes()
    if lists:  # train.txt and valid.txt say the splits
        assert result["report"]["splits"] == "kept from the source"
        assert result["images"] == {"train": 3, "val": 2}
    else:  # every image of obj_*_data/, splits drawn
        assert result["report"]["splits"] == "drawn: val 0.2, seed 42"
        found, expected = without_splits(found), without_splits(expected)
    assert found == expected
    code, out, _ = cli("data", "import", str(src), str(tmp_path / "own"), "--format", "yolo",
                       "--json")
    assert code == 0 and json.loads(out)["classes"] == CLASSES  # obj.names' order


def test_darknet_export_without_images_takes_them_from_images(cli, tmp_path):
    src = write_darknet(tmp_path / "export")
    flat = tmp_path / "frames"  # CVAT's export without "save images"
    flat.mkdir()
    for image in TRUTH:
        next(src.glob(f"obj_*_data/{image.name}")).rename(flat / image.name)
    code, out, err = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "yolo",
                         "--images", str(flat), "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == {"train": 3, "val": 2}
    assert sum(json.loads(out)["boxes"].values()) == 6


@pytest.mark.parametrize("damage, messages", [
    ("a list names a missing image", ["missing image: 1", "(valid.txt:3)",
                                      "obj_valid_data/gone.jpg"]),
    ("a class id beyond obj.names", ["unreadable box: 1", "obj_train_data/cam1_0001.txt",
                                     "class id 7: line 3: not one of the 3 class names"]),
])
def test_darknet_bad_input_exits_2_and_writes_nothing(cli, tmp_path, damage, messages):
    src = write_darknet(tmp_path / "export")
    if "missing" in damage:
        with (src / "valid.txt").open("a") as listing:
            listing.write("data/obj_valid_data/gone.jpg\n")
    else:
        with (src / "obj_train_data" / "cam1_0001.txt").open("a") as label:
            label.write("7 0.5 0.5 0.1 0.1\n")
    code, _, err = cli("data", "import", str(src), str(tmp_path / "data"), "--format", "yolo")
    assert code == 2
    assert all(message in err for message in messages), err
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
