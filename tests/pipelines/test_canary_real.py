"""Canaries on the tiny store's real models: the numpy NMS against Ultralytics' own, the INT8
OpenVINO variant registered and exported with its canary, and an edge box's check of the
export, passing as exported and failing once its weights are changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from siteml.backends.base import LoadOptions
from siteml.backends.registry import EXECUTION_PRECISION, find_model, load
from siteml.data.layout import split_images
from siteml.lifecycle.repository import MANIFEST
from siteml.pipelines.canary import CANARY_IMAGES, check_canary, detections, read_canary
from siteml.pipelines.images import timing_frame
from siteml.tracking.model_resolve import download_version
from tests.conftest import needs
from tests.pipelines.conftest import SITE_PATH, candidate, source_version

pytestmark = pytest.mark.slow  # trains and quantizes (the session's tiny store)
needs("ultralytics", "train")
needs("openvino", "quantize")
needs("nncf", "quantize")


def test_numpy_detections_are_ultralytics_nms_on_real_outputs(tiny_store, tmp_path):
    from siteml.backends.ultralytics import nms

    source = download_version(source_version(tiny_store), tmp_path, tiny_store.uri)
    images = split_images(tiny_store.dataset, "val")
    model = load(find_model(source.path), timing_frame(images[0], tiny_store.imgsz))
    found = 0
    for image in images:
        output = model.predict(timing_frame(image, tiny_store.imgsz))
        for conf in (0.25, 0.01):  # 0.01: many more boxes for NMS to suppress
            ours, theirs = detections(output, conf, 0.7), nms(output, conf, 0.7)
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-4, err_msg=image.name)
            found += len(theirs)
    assert found > 2 * len(images)


def test_the_int8_variant_is_registered_with_its_canary(tiny_store, tmp_path):
    version = candidate(tiny_store, "openvino", "int8")
    files = download_version(version, tmp_path, tiny_store.uri).path
    first = [p.name for p in split_images(tiny_store.dataset, "val")[:CANARY_IMAGES]]
    assert sorted(p.name for p in (files / "canary").iterdir()) == sorted(
        [*first, "canary.json"])
    stored = read_canary(files / "canary")
    assert list(stored["images"]) == first and stored["size"] == tiny_store.imgsz
    assert any(stored["images"].values()), "the tiny model detects something on the canary"
    model = find_model(files)  # the IR beside MLmodel, never a canary file
    assert (files / "MLmodel").is_file()
    assert model.relative_to(files).parts[0] == "artifacts" and any(model.glob("*.xml"))


@pytest.fixture(scope="module")
def exported(tiny_store, tmp_path_factory) -> Path:
    """The INT8 OpenVINO variant exported into an OVMS repository: its version folder."""
    version = candidate(tiny_store, "openvino", "int8")
    root = tmp_path_factory.mktemp("box")
    code, out, err = tiny_store.invoke("export", f"{SITE_PATH}/ppe__openvino_int8/"
                                       f"{version.version}", str(root), "--json")
    assert code == 0, err
    return Path(json.loads(out)["folder"])


def box_check(folder: Path):
    """What an edge box checks before serving the version in ``folder``: its own OpenVINO
    load of the served IR, against the canary there."""
    stored = read_canary(folder / "canary")
    frame = timing_frame(folder / "canary" / next(iter(stored["images"])), stored["size"])
    model = load(folder / "model.xml", frame, LoadOptions(precision=EXECUTION_PRECISION["int8"]))
    return check_canary(model.predict, folder / "canary")


def test_the_export_carries_the_canary_and_the_box_finds_the_same(tiny_store, exported):
    manifest = json.loads((exported / MANIFEST).read_text())
    stored = read_canary(exported / "canary")
    assert manifest["canary"] == {"folder": "canary", "size": tiny_store.imgsz, "conf": 0.25,
                                  "iou": 0.7, "images": stored["images"]}
    assert {f"canary/{name}" for name in [*stored["images"], "canary.json"]} <= set(
        manifest["files"])
    code, out, err = tiny_store.invoke("export", "--verify", str(exported.parents[1]), "--json")
    assert code == 0, err
    assert json.loads(out) == {"versions": 1, "problems": []}
    check = box_check(exported)
    assert check.ok, check.problem
    assert check.matched == 1.0 and check.compared > 0
    assert check.max_shift < 0.1 and check.max_conf_delta < 0.1 and check.p50_ms > 0


def int8_weights(xml: Path) -> list[tuple[int, int]]:
    """Offset and size in the ``.bin`` of each INT8 weight constant of an IR (its shape and axis
    constants changed would break the IR, not its detections)."""
    from xml.etree import ElementTree

    return [(int(data.get("offset")), int(data.get("size")))
            for layer in ElementTree.parse(xml).getroot().iter("layer")
            if layer.get("type") == "Const" and (data := layer.find("data")) is not None
            and data.get("element_type") == "i8"]


def damage_weights(xml: Path) -> None:
    """Flip the bits of the INT8 weight constants nearest the middle of the IR's ``.bin``, 5%
    of the file: a model that loads and runs, and detects otherwise."""
    weights = xml.with_suffix(".bin")
    data = bytearray(weights.read_bytes())
    changed, middle = 0, len(data) // 2
    for offset, size in sorted(int8_weights(xml), key=lambda found: abs(found[0] - middle)):
        data[offset:offset + size] = bytes(b ^ 0x5A for b in data[offset:offset + size])
        changed += size
        if changed >= len(data) // 20:
            break
    weights.write_bytes(bytes(data))


def test_changed_weights_fail_the_check_naming_an_image(exported, tmp_path):
    broken = Path(shutil.copytree(exported, tmp_path / "broken"))
    damage_weights(broken / "model.xml")
    check = box_check(broken)
    assert not check.ok and check.matched < 1
    assert any(f"canary {name}: " in check.problem
               for name in read_canary(broken / "canary")["images"]), check.problem
