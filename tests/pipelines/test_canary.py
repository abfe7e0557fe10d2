"""Canary detections without PyTorch: the numpy decode and NMS on hand-made raw outputs, the
check against a stand-in runtime that detects the same, a little off, or wrongly, and the canary
registered with plain model files. ``test_canary_real.py`` runs them on the real models."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from siteml.core import keys
from siteml.core.digests import file_hashes
from siteml.core.models import ProducedModel
from siteml.pipelines.canary import (
    CanaryError,
    Tolerance,
    check_canary,
    detections,
    read_canary,
    write_canary,
)

SIZE = 64


def raw(*found: tuple[int, float, float, float, float, float], nc: int = 3,
        anchors: int = 12) -> np.ndarray:
    """A detect head's output ``(1, 4 + nc, anchors)`` holding ``(class, score, x1, y1, x2,
    y2)`` boxes, one an anchor (the others score nothing)."""
    output = np.zeros((1, 4 + nc, anchors), dtype=np.float32)
    for anchor, (cls, score, x1, y1, x2, y2) in enumerate(found):
        output[0, :4, anchor] = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        output[0, 4 + cls, anchor] = score
    return output


def test_detections_decode_threshold_and_suppress_within_a_class():
    output = raw((0, 0.9, 10, 10, 50, 50), (0, 0.8, 12, 10, 52, 50),  # IoU 0.9: suppressed
                 (1, 0.7, 12, 10, 52, 50),  # the same box, another class: kept
                 (2, 0.25, 0, 0, 8, 8), (2, 0.26, 30, 0, 38, 8))  # 0.25 is not above conf
    found = detections(output)
    assert found.dtype == np.float32
    np.testing.assert_allclose(found, [[10, 10, 50, 50, 0.9, 0], [12, 10, 52, 50, 0.7, 1],
                                       [30, 0, 38, 8, 0.26, 2]], rtol=1e-6)
    assert detections(output, conf=0.5).shape == (2, 6)
    assert len(detections(output, iou=0.95)) == 4  # IoU 0.9 is under a 0.95 threshold
    assert len(detections(output, max_det=1)) == 1
    assert detections(raw()).shape == (0, 6)


def test_detections_take_each_anchors_best_class():
    output = raw((0, 0.6, 10, 10, 50, 50))
    output[0, 5, 0] = 0.7  # the same anchor scores class 1 higher
    np.testing.assert_allclose(detections(output), [[10, 10, 50, 50, 0.7, 1]], rtol=1e-6)


REGISTERED = {
    "a.png": [(0, 0.9, 10, 10, 50, 50), (1, 0.8, 20, 5, 60, 45), (2, 0.3, 0, 0, 20, 20)],
    "b.png": [(1, 0.8, 5, 5, 45, 45)],
}
"""What the registering machine detected; class 2 on a.png is in the band around 0.25."""


class Runtime:
    """A stand-in runtime detecting ``found[image]``; it tells the images by their grey."""

    def __init__(self, found: dict[str, list[tuple]]) -> None:
        self.found = found
        self.calls = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        assert frame.shape == (1, 3, SIZE, SIZE) and frame.dtype == np.float32
        self.calls += 1
        name = GREYS[round(float(frame[0, 0, 0, 0]) * 255)]
        return raw(*self.found[name])


GREYS = {40: "a.png", 80: "b.png"}


@pytest.fixture
def canary(tmp_path) -> Path:
    """The canary of ``REGISTERED``, in ``tmp_path/registered/canary``."""
    images = []
    for grey, name in GREYS.items():
        images.append(tmp_path / "val" / name)
        images[-1].parent.mkdir(exist_ok=True)
        Image.new("RGB", (SIZE, SIZE), (grey,) * 3).save(images[-1])
    return write_canary(Runtime(REGISTERED), images, SIZE, tmp_path / "registered")


def test_write_canary_keeps_the_images_and_their_detections(canary, tmp_path):
    assert canary == tmp_path / "registered" / "canary"
    assert sorted(p.name for p in canary.iterdir()) == ["a.png", "b.png", "canary.json"]
    stored = json.loads((canary / "canary.json").read_text())
    assert stored == read_canary(canary)
    assert {k: stored[k] for k in ("siteml_canary", "size", "conf", "iou")} == {
        "siteml_canary": 1, "size": SIZE, "conf": 0.25, "iou": 0.7}
    assert stored["images"] == {
        "a.png": [[10, 10, 50, 50, 0.9, 0], [20, 5, 60, 45, 0.8, 1], [0, 0, 20, 20, 0.3, 2]],
        "b.png": [[5, 5, 45, 45, 0.8, 1]]}
    twins = [tmp_path / "val" / "a.png", canary / "a.png"]
    with pytest.raises(CanaryError, match="distinct file names"):
        write_canary(Runtime(REGISTERED), twins, SIZE, tmp_path / "other")


def test_the_same_detections_pass_with_their_figures(canary):
    runtime = Runtime(REGISTERED)
    check = check_canary(runtime, canary)
    assert check.ok and check.problem is None
    assert (check.matched, check.compared) == (1.0, 6)  # 3 registered and 3 found, above 0.35
    assert check.max_shift == pytest.approx(0, abs=1e-6)
    assert check.max_conf_delta == pytest.approx(0, abs=1e-6)
    assert runtime.calls == 3 * 2 and check.p50_ms > 0
    assert check.metrics() == {keys.CANARY_MATCHED: 1.0, keys.CANARY_MAX_SHIFT: check.max_shift,
                               keys.CANARY_MAX_CONF_DELTA: check.max_conf_delta,
                               keys.CANARY_P50: check.p50_ms}


def moved(found: dict[str, list[tuple]], dx: float = 0, score: float = 0) -> dict:
    return {name: [(c, s + score, x1 + dx, y1, x2 + dx, y2) for c, s, x1, y1, x2, y2 in rows]
            for name, rows in found.items()}


def test_a_few_pixels_and_a_few_points_of_score_pass(canary):
    check = check_canary(Runtime(moved(REGISTERED, dx=2, score=-0.05)), canary)
    assert check.ok, check.problem
    assert 0.05 < check.max_shift < 0.1  # 2 px on a 40 px box: IoU 0.905
    assert check.max_conf_delta == pytest.approx(0.05, abs=1e-4)


def test_detections_in_the_band_around_the_threshold_may_come_and_go(canary):
    found = {"a.png": [*REGISTERED["a.png"][:2], (0, 0.3, 40, 40, 60, 60)],  # 0.3 gone, one new
             "b.png": REGISTERED["b.png"]}
    check = check_canary(Runtime(found), canary)
    assert check.ok, check.problem
    assert (check.matched, check.compared) == (1.0, 6)


@pytest.mark.parametrize(("found", "says", "matched"), [
    ({"a.png": REGISTERED["a.png"][::2], "b.png": REGISTERED["b.png"]},
     "canary a.png: 1 of 2 registered detections not found (class 1 at 20,5,60,45 score 0.80)",
     4 / 5),
    ({"a.png": REGISTERED["a.png"], "b.png": [(2, 0.8, 5, 5, 45, 45)]},
     "canary b.png: 1 of 1 registered detections not found (class 1 at 5,5,45,45 score 0.80); "
     "1 of 1 detections of this runtime not registered (class 2 at 5,5,45,45 score 0.80)", 4 / 6),
    (moved(REGISTERED, dx=8), "canary a.png: 2 of 2 registered detections not found", 0),
    ({"a.png": REGISTERED["a.png"], "b.png": [(1, 0.65, 5, 5, 45, 45)]},
     "canary b.png: 1 of 1 registered detections not found", 4 / 6),
], ids=["missing", "class-flip", "shifted", "score-drop"])
def test_a_runtime_that_detects_otherwise_fails_naming_the_image(canary, found, says, matched):
    check = check_canary(Runtime(found), canary)
    assert not check.ok
    assert says in check.problem
    assert check.matched == pytest.approx(matched)


def test_an_unreadable_canary_is_an_error_naming_the_file(canary):
    (canary / "b.png").write_bytes(b"not a png")
    with pytest.raises(CanaryError, match=r"canary image .*b\.png cannot be read"):
        check_canary(Runtime(REGISTERED), canary)
    (canary / "b.png").unlink()
    with pytest.raises(CanaryError, match=r"lists images that are not in .*: b\.png"):
        read_canary(canary)
    stored = json.loads((canary / "canary.json").read_text())
    for broken, says in [("{", "cannot be read"), ("[]", "siteml_canary"),
                         (json.dumps({**stored, "size": "96"}), "size '96'"),
                         (json.dumps({**stored, "images": {"../a.png": []}}), "'../a.png'")]:
        (canary / "canary.json").write_text(broken)
        with pytest.raises(CanaryError, match=says):
            read_canary(canary)
    (canary / "canary.json").unlink()
    with pytest.raises(CanaryError, match=r"canary\.json cannot be read"):
        check_canary(Runtime(REGISTERED), canary)


def test_a_tolerance_the_canary_cannot_check_is_refused():
    with pytest.raises(ValueError, match="conf_delta <= margin"):
        Tolerance(conf_delta=0.2, margin=0.1)
    with pytest.raises(ValueError, match="max_slowdown > 0"):
        Tolerance(max_slowdown=0)


def test_a_version_much_slower_than_the_one_serving_fails_timed_in_turns(canary):
    runtime = Runtime(REGISTERED)

    def taking(seconds: float):
        def predict(frame):
            time.sleep(seconds)
            return runtime(frame)
        return predict

    check = check_canary(taking(0.05), canary, Tolerance(max_slowdown=2), taking(0.001))
    assert not check.ok and check.matched == 1.0
    assert check.p50_ms >= 50 and check.slowdown > 2
    assert "x the" in check.problem and "of the version serving now" in check.problem
    assert check.metrics()[keys.CANARY_SLOWDOWN] == check.slowdown
    assert runtime.calls == 2 * 3 * 2  # both, in turns, on every image of every round
    faster = check_canary(taking(0.001), canary, Tolerance(max_slowdown=2), taking(0.05))
    assert faster.ok, faster.problem
    assert faster.slowdown < 1 and faster.reference_p50_ms >= 50


def test_plain_model_files_are_registered_with_their_canary_beside_them(canary, sqlite_uri,
                                                                        tmp_path):
    """A pyfunc model carries it the same way (``test_canary_real.py``)."""
    from mlflow import MlflowClient

    from siteml.backends.registry import find_model
    from siteml.tracking.model_register import register
    from siteml.tracking.model_resolve import DamagedDownloadError, download_version

    client = MlflowClient(sqlite_uri, sqlite_uri)
    experiment = client.create_experiment(
        "canary", artifact_location=(tmp_path / "artifacts").as_uri())  # not ./mlruns
    weights = tmp_path / "run" / "best.pt"
    ir = tmp_path / "run" / "best_openvino_model"
    ir.mkdir(parents=True)
    weights.write_bytes(b"weights")
    (ir / "best.xml").write_text("<net/>")
    for model in (weights, ir):
        run = client.create_run(experiment).info.run_id
        version = register(client, experiment_id=experiment, run_id=run,
                           model=ProducedModel(model, canary=canary), name="a.b.c.ppe",
                           logged_name="ppe", model_tags={}, version_tags={}, description="")
        files = download_version(version, tmp_path / f"v{version.version}", sqlite_uri).path
        assert read_canary(files / "canary") == read_canary(canary)
        assert find_model(files) == (files / "best.pt" if model == weights else files)
        assert json.loads(version.tags[keys.MODEL_FILES]) == file_hashes(files)
    assert sorted(p.name for p in ir.iterdir()) == ["best.xml"]  # the run's files as they were
    [stored] = (tmp_path / "artifacts").rglob("best.pt")
    stored.write_bytes(b"weighTs")  # a byte flipped in the registry's own copy
    with pytest.raises(DamagedDownloadError, match=r"differ from the ones registered, twice "
                       r"\(changed: .*best\.pt"):
        download_version(client.get_model_version("a.b.c.ppe", "1"), tmp_path / "again",
                         sqlite_uri)
