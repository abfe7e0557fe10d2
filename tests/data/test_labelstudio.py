"""Label Studio's shapes without a server: boxes to rectangles in percent and back, the
labelling interface, a server that is not there; how a pull counts the labellers'
corrections against the model's pre-annotations; a CVAT package read back by the importer."""

from __future__ import annotations

import pytest

from siteml.data.labelstudio import (
    LabelStudio,
    LabelStudioRefused,
    LabelStudioUnavailable,
    box_of,
    label_config,
    rectangle,
)
from siteml.lifecycle.labelling import _corrections


def test_a_box_goes_to_percent_and_back_to_the_pixel():
    result = rectangle([12.5, 30, 62.25, 90], "vest", 640, 480, score=0.8)
    assert result["value"]["x"] == pytest.approx(100 * 12.5 / 640)
    assert result["value"]["height"] == pytest.approx(100 * 60 / 480)
    assert result["score"] == 0.8 and result["value"]["rectanglelabels"] == ["vest"]
    label, box = box_of(result, 640, 480)
    assert label == "vest" and box == pytest.approx([12.5, 30, 62.25, 90], abs=1e-9)


def test_only_unrotated_rectangles_with_one_label_are_read():
    rotated = rectangle([0, 0, 10, 10], "vest", 100, 100)
    rotated["value"]["rotation"] = 30
    with pytest.raises(ValueError, match="rotated"):
        box_of(rotated, 100, 100)
    twice = rectangle([0, 0, 10, 10], "vest", 100, 100)
    twice["value"]["rectanglelabels"] = ["vest", "person"]
    with pytest.raises(ValueError, match="one label"):
        box_of(twice, 100, 100)


def test_the_interface_names_every_class():
    config = label_config(["hard hat", "vest"])
    assert '<Label value="hard hat"/><Label value="vest"/>' in config
    assert '<RectangleLabels name="label" toName="image">' in config


def test_a_server_that_is_not_there_is_unavailable_and_no_key_is_refused():
    with pytest.raises(LabelStudioUnavailable, match="does not answer"):
        LabelStudio("http://127.0.0.1:9", "a-key")
    with pytest.raises(LabelStudioRefused, match="LABEL_STUDIO_API_KEY is not set"):
        LabelStudio("http://127.0.0.1:9", "")


def test_corrections_count_kept_moved_deleted_and_added_boxes():
    picks = {"a.jpg": {"detections": [
        {"class": "vest", "box": [0, 0, 40, 40]},       # kept
        {"class": "vest", "box": [50, 50, 90, 90]},     # moved 4 px
        {"class": "person", "box": [0, 50, 20, 90]}]}}  # deleted
    labelled = {"a.jpg": [("vest", [0, 0, 40, 40]), ("vest", [54, 50, 94, 90]),
                          ("person", [60, 0, 90, 30])]}  # added
    counts = _corrections(picks, labelled, ["vest", "person"])
    assert counts == {"vest": {"kept": 1, "moved": 1, "deleted": 0, "added": 0},
                      "person": {"kept": 0, "moved": 0, "deleted": 1, "added": 1}}


def test_a_cvat_package_reads_back_as_cvat_writes_it(tmp_path):
    from PIL import Image

    from siteml.data.cvat_package import PackagedFrame, write_package
    from siteml.data.formats import cvat

    Image.new("RGB", (64, 48)).save(tmp_path / "a.jpg")
    frame = PackagedFrame("cam0__a.jpg", tmp_path / "a.jpg", 64, 48,
                          [("vest", [1.5, 2, 30.25, 40]), ("person", [0, 0, 64, 48])])
    write_package(tmp_path / "package", "bays", ["vest", "person"], [frame])
    dataset = cvat.read(tmp_path / "package")
    assert dataset.classes == ["vest", "person"]
    [image] = dataset.images
    assert image.path == tmp_path / "package" / "images" / "cam0__a.jpg"
    assert [(b.label, [b.xmin, b.ymin, b.xmax, b.ymax]) for b in image.boxes] == frame.boxes
    assert not list(tmp_path.glob(".*.partial"))
