"""``siteml data stats``: counts per split and class, COCO box sizes, and near-duplicates across
splits found by a perceptual hash."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from siteml.data.profile import profile_dataset, val_leaks
from tests.conftest import needs
from tests.data.label_files import WRITERS

needs("imagehash", "data")
needs("globox", "data")


@pytest.fixture
def imported(cli, tmp_path) -> Path:
    src = WRITERS["yolo"](tmp_path / "export")
    code, _, err = cli("data", "import", str(src), str(tmp_path / "data"), "--format", "yolo")
    assert code == 0, err
    return tmp_path / "data"


def test_counts_classes_sizes_and_empty_images(imported):
    profile = profile_dataset(imported)
    train, val = profile["splits"]["train"], profile["splits"]["val"]
    assert (train["images"], train["boxes"], val["images"], val["boxes"]) == (3, 4, 2, 2)
    assert train["boxes_per_class"] == {"hardhat": 1, "vest": 2, "person": 1}
    assert val["images_without_boxes"] == 1
    # areas: 26x34, 50x50 (medium), 40x55 (medium), 78x61 (medium) px; val: 24x30, 40x58
    assert train["box_sizes"] == {"small": 1, "medium": 3, "large": 0}
    assert val["box_sizes"] == {"small": 1, "medium": 1, "large": 0}
    assert profile["near_duplicates"]["counts"] == {"val~train": 0}


def test_a_val_image_close_to_a_train_image_is_found(imported):
    train = imported / "images" / "train" / "cam1_0001.jpg"
    pixels = np.asarray(Image.open(train), dtype=np.int16)
    near = imported / "images" / "val" / "near.png"
    Image.fromarray(np.clip(pixels + 6, 0, 255).astype(np.uint8)).save(near)
    profile = profile_dataset(imported)
    assert val_leaks(profile) == 1
    worst = profile["near_duplicates"]["worst_pairs"][0]
    assert (worst["a"], worst["b"]) == ("images/train/cam1_0001.jpg", "images/val/near.png")
    assert worst["distance"] <= profile["near_duplicates"]["max_distance"]


def test_cli_json_and_plot(cli, imported, tmp_path):
    plot = tmp_path / "profile.png"
    code, out, err = cli("data", "stats", str(imported), "--json", "--plot", str(plot))
    assert code == 0, err
    assert json.loads(out)["classes"] == ["hardhat", "vest", "person"]
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 400
    code, out, _ = cli("data", "stats", str(imported))
    assert code == 0
    assert "0 val images have a near-duplicate in train" in out


def test_not_a_dataset_exits_2(cli, tmp_path):
    code, _, err = cli("data", "stats", str(tmp_path))
    assert code == 2
    assert "not a dataset folder" in err


@pytest.mark.slow  # imports Ultralytics, which patches Pillow for the rest of the process
def test_a_broken_image_is_reported_even_after_ultralytics_patched_pillow(cli, imported,
                                                                          tmp_path, no_network):
    needs("ultralytics", "train")
    import ultralytics.utils.patches  # noqa: F401  (replaces PIL.Image.open for the process)

    no_network.attempts.clear()  # Ultralytics' own online probe when first imported

    (imported / "images" / "val" / "broken.jpg").write_bytes(b"not really a jpeg")
    assert profile_dataset(imported)["unreadable"] == ["images/val/broken.jpg"]
    src = WRITERS["voc"](tmp_path / "voc")
    (src / "JPEGImages" / "cam1_0001.jpg").write_bytes(b"not really a jpeg")
    code, _, err = cli("data", "import", str(src), str(tmp_path / "d"), "--format", "voc")
    assert code == 2 and "unreadable image: 1" in err
    assert no_network.attempts == []
