"""The synthetic dataset generator: deterministic, valid YOLO labels, per-task classes."""

import json

from siteml.data.dvc_hash import read_dvc_file
from siteml.data.layout import check_detection_dataset, count_images
from siteml.data.synth import synthesize


def test_same_seed_same_dataset(tmp_path):
    a = synthesize(tmp_path / "a", ["x", "y"], {"train": 5, "val": 2}, imgsz=64, seed=1)
    b = synthesize(tmp_path / "b", ["x", "y"], {"train": 5, "val": 2}, imgsz=64, seed=1)
    c = synthesize(tmp_path / "c", ["x", "y"], {"train": 5, "val": 2}, imgsz=64, seed=2)
    assert a.md5 == b.md5 != c.md5
    assert read_dvc_file(tmp_path / "a.dvc") == a.md5
    assert check_detection_dataset(tmp_path / "a", 2) == {"train": 5, "val": 2}
    labels = (tmp_path / "a" / "labels" / "train").glob("*.txt")
    assert all(p.read_text().strip() for p in labels), "every image has at least one object"


def test_cli_synth_uses_the_task_classes(cli, tmp_path):
    code, out, _ = cli("data", "synth", str(tmp_path / "fire"), "--task", "fire", "--train", "4",
                       "--val", "2", "--imgsz", "64", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["classes"] == ["fire", "smoke"]
    assert count_images(tmp_path / "fire") == 6
    code, _, err = cli("data", "synth", str(tmp_path / "fire"), "--task", "fire")
    assert code == 2 and "already holds a dataset" in err
    code, _, err = cli("data", "synth", str(tmp_path / "x"), "--task", "smoke")
    assert code == 2 and "valid: ppe, fall, fire, collision, stuck" in err
