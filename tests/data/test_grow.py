"""``siteml data grow``: a new version = parent + labelled frames, each where its camera (else
its near-duplicates) already is, hashed at the increment's cost with a hash that a cold hash of
the whole folder agrees with, and the lineage; bad input refused and an interrupt while writing,
both with nothing written. The real ``dvc add`` on a grown folder is in test_import_real.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from siteml.data.dvc_hash import dir_hash, read_dvc_file
from tests.conftest import needs
from tests.data.grown import CLASSES, GROUP_BY, fresh_frames, increment, parent_dataset

needs("imagehash", "data")
BOX = "0 0.5 0.5 0.2 0.2\n"


@pytest.fixture
def parent(tmp_path):
    return parent_dataset(tmp_path / "v1")


def grow(cli, *args: str) -> tuple[int, dict, str]:
    code, out, err = cli("data", "grow", *map(str, args), "--json")
    return code, json.loads(out) if code == 0 else {}, err


def test_each_frame_goes_where_its_camera_or_its_near_duplicate_is(cli, parent, tmp_path,
                                                                   monkeypatch):
    new = fresh_frames(tmp_path / "pool", 5)
    val_image = sorted((parent / "images" / "val").iterdir())[0]
    frames = {"camA__1.jpg": (new[0], "2 0.5 0.5 0.2 0.2\n"),  # person, in the increment's order
              "camB__1.jpg": (new[1], BOX),
              "camC__1.jpg": (new[2], BOX), "camC__2.jpg": (new[3], ""),
              "camD__1.jpg": (new[4], BOX),
              "door__7.jpg": (val_image, BOX)}  # no camera; a near-duplicate of a val image
    inc = increment(tmp_path / "inc", frames, {"camA__1.jpg": "camA"},
                    classes=["vest", "helmet", "person"])
    out = tmp_path / "v2"
    code, result, err = grow(cli, parent, inc, "--out", out, "--group-by", GROUP_BY,
                             "--val", "0.4", "--seed", "1")
    assert code == 0, err

    meta = json.loads((out / "import.json").read_text())
    where = {name: frame["split"] for name, frame in meta["frames"].items()}
    assert where["camA__1.jpg"] == "train" and where["camB__1.jpg"] == "val"
    assert where["door__7.jpg"] == "val"
    assert meta["frames"]["door__7.jpg"]["why"].startswith("near-duplicate")
    assert where["camC__1.jpg"] == where["camC__2.jpg"]  # a new camera stays whole
    assert "val" in {where["camC__1.jpg"], where["camD__1.jpg"]}  # drawn with --val
    assert result["placed"] == {"camera": 2, "near-duplicate": 1, "new camera": 3}
    # the increment's class 2 (person) is the parent's class 2; its class 0 (vest) is 1
    assert (out / "labels/train/camA__1.txt").read_text() == "2 0.5 0.5 0.2 0.2\n"
    assert (out / "labels/val/camB__1.txt").read_text() == "1 0.5 0.5 0.2 0.2\n"
    assert result["images"] == {"train": 12 + list(where.values()).count("train"),
                                "val": 4 + list(where.values()).count("val")}

    # the lineage: parent and increment
    assert meta["parent"] == {"version": "v1", "dvc_hash": read_dvc_file(parent.with_name(
        "v1.dvc")), "path": str(parent.resolve())}
    assert meta["increment"]["mine_run"].endswith("ppe-yolov11n-mine-v1")
    assert meta["increment"]["project"] == "7"
    assert result["dataset"]["dvc_hash"] == read_dvc_file(out.with_name("v2.dvc"))

    # the cost is the increment: the parent's files linked, their hashes reused, and right
    parent_image = sorted((parent / "images" / "train").iterdir())[0]
    assert (out / "images/train" / parent_image.name).stat().st_ino == parent_image.stat().st_ino
    assert result["hashes_reused"] == 2 * 16 + 1 and result["files_hashed"] == len(frames)
    monkeypatch.setenv("SITEML_CACHE_DIR", str(tmp_path / "cold"))
    assert dir_hash(out).md5 == result["dataset"]["dvc_hash"]


def test_a_second_grow_knows_the_cameras_the_first_added(cli, parent, tmp_path):
    new = fresh_frames(tmp_path / "pool", 3)
    first = increment(tmp_path / "inc1", {"camC__1.jpg": (new[0], BOX)}, {"camC__1.jpg": "camC"})
    assert grow(cli, parent, first, "--out", tmp_path / "v2", "--val", "0.5")[0] == 0
    assert (tmp_path / "v2/images/val/camC__1.jpg").is_file()  # the one new camera, drawn
    second = increment(tmp_path / "inc2", {"camC__2.jpg": (new[1], BOX)}, {"camC__2.jpg": "camC"})
    code, result, err = grow(cli, tmp_path / "v2", second, "--out", tmp_path / "v3")
    assert code == 0, err
    meta = json.loads((tmp_path / "v3/import.json").read_text())
    assert meta["frames"]["camC__2.jpg"] == {"split": "val", "camera": "camC",
                                             "why": "camera: camC is in val"}
    assert [a["version"] for a in meta["ancestors"]] == ["v1", "v2"]
    assert meta["ancestors"][1]["mine_run"].endswith("mine-v1")
    assert result["images"] == {"train": 12, "val": 6}


def _case(case: str, parent: Path, tmp_path: Path) -> tuple[Path, str]:
    """The increment of a bad input (after spoiling the parent or the output where the case
    is theirs), and what the error says."""
    image, label, name, classes = fresh_frames(tmp_path / "pool", 1)[0], BOX, "camC__1.jpg", CLASSES
    needle = {"not-an-increment": "not a labelled increment", "class-outside": "forklift",
              "already-there": "labelled twice", "bad-label": "class 7",
              "not-an-image": "camC__1.jpg", "unversioned-parent": "no v1.dvc",
              "parent-changed": "changed since", "out-exists": "exists"}[case]
    if case == "not-an-increment":
        return parent, needle
    if case == "parent-changed":  # the same size, other content: the kept md5 is stale
        spoilt = sorted((parent / "labels" / "train").iterdir())[0]
        spoilt.write_text(spoilt.read_text().replace("0", "1", 1))
    elif case == "unversioned-parent":
        parent.with_name("v1.dvc").unlink()
    elif case == "out-exists":
        (tmp_path / "v2").mkdir()
    elif case == "not-an-image":
        image = tmp_path / "notes.jpg"
        image.write_text("not an image")
    classes = ["forklift"] if case == "class-outside" else classes
    name = "camA_train_00001.jpg" if case == "already-there" else name
    label = "7 1 1 1 1\n" if case == "bad-label" else label
    return increment(tmp_path / "inc", {name: (image, label)}, {}, classes), needle


@pytest.mark.parametrize("case", ["not-an-increment", "class-outside", "already-there",
                                  "bad-label", "not-an-image", "unversioned-parent",
                                  "parent-changed", "out-exists"])
def test_bad_input_is_refused_and_nothing_written(cli, parent, tmp_path, case):
    inc, needle = _case(case, parent, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = grow(cli, parent, inc, "--out", tmp_path / "v2")
    assert code == 2
    assert needle in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case != "out-exists":
        assert not (tmp_path / "v2").exists()


def test_an_interrupt_while_writing_leaves_no_version(parent, tmp_path, monkeypatch):
    import siteml.data.grow as grow_module
    from siteml.data.grow import GrowOptions

    new = fresh_frames(tmp_path / "pool", 1)
    inc = increment(tmp_path / "inc", {"camC__1.jpg": (new[0], BOX)}, {})
    placed = []

    def interrupted(source, target, copy):  # Ctrl-C while the fifth file is linked
        if len(placed) == 4:
            raise KeyboardInterrupt
        placed.append(target)
        os.link(source, target)

    monkeypatch.setattr(grow_module, "place_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grow_module.grow(parent, inc, tmp_path / "v2", GrowOptions())
    assert len(placed) == 4
    assert not (tmp_path / "v2").exists() and not (tmp_path / "v2.dvc").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".v2")]
