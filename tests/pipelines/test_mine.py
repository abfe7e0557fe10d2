"""Mining on the tiny store with its INT8 variant (serving) and the FP32 model it was made from:
a camera's frames scored, a near-duplicate left out, the budget kept, the serving model's
detections as pre-annotations in image pixels, the same selection hash twice; bad frames and
another customer's model refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from siteml.core import keys
from tests.pipelines.conftest import SITE_PATH, mine

pytestmark = pytest.mark.slow  # the tiny store's models on every frame


def test_mining_picks_down_to_the_budget_and_hashes_the_selection(tiny_store, frames, tmp_path):
    code, outcome, err = mine(tiny_store, "v1", frames, budget=6, novelty_images=32)
    assert code == 0, err
    client = tiny_store.client()
    run = client.get_run(outcome["run_id"])
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics[keys.MINE_FRAMES] == 17 and metrics[keys.MINE_SELECTED] == 6
    assert metrics[keys.MINE_NEAR_DUPLICATES] >= 1 and metrics[keys.MINE_FRAMES_PER_S] > 0
    assert tags[keys.role_tag("source", "model_name")].endswith("ppe__openvino_int8")
    assert tags[keys.role_tag("baseline", "model_name")].endswith(".ppe")  # made from it
    folder = Path(client.download_artifacts(run.info.run_id, "mine", str(tmp_path)))
    selection = json.loads((folder / "selection.json").read_text())
    assert len(selection["picked"]) == 6 and len(selection["frames"]) == 17
    assert sorted(p.name for p in (folder / "frames").iterdir()) == sorted(
        pick["frame"] for pick in selection["picked"])
    assert not {"cam0_20261130.jpg", "cam0_2026112" + "00.jpg"} <= {
        pick["frame"] for pick in selection["picked"]}  # never both twins
    boxes = [box for pick in selection["picked"] for box in pick["detections"]]
    assert boxes, "the tiny model finds objects on val images"
    for pick in selection["picked"]:
        for box in pick["detections"]:
            x1, y1, x2, y2 = box["box"]
            assert 0 <= x1 < x2 <= pick["width"] and 0 <= y1 < y2 <= pick["height"]
            assert box["class"] in ("helmet", "vest", "person") and box["score"] >= 0.25
    table = (folder / "frames.csv").read_text().splitlines()
    assert table[0].startswith("frame,camera,time,score,uncertainty,disagreement,novelty,")
    assert len(table) == 18 and sum("near-duplicate of" in row for row in table) >= 1
    assert tags[keys.MINE_SELECTION_SHA256] == selection["sha256"]
    code, again, err = mine(tiny_store, "v2", frames, budget=6, novelty_images=32)
    assert code == 0, err
    assert client.get_run(again["run_id"]).data.tags[keys.MINE_SELECTION_SHA256] == (
        selection["sha256"])


@pytest.mark.parametrize(("damage", "says"), [
    ("not-an-image", "is not an image Pillow reads"),
    ("empty", "holds no frames"),
    ("bad-name", "does not match mine.name_pattern"),
])
def test_bad_frames_are_refused_before_anything_is_written(tiny_store, frames, damage, says):
    if damage == "not-an-image":
        (frames / "cam0_20261201.jpg").write_bytes(b"no jpeg")
    elif damage == "empty":
        shutil.rmtree(frames)
        frames.mkdir()
    else:
        shutil.copy2(next(frames.iterdir()), frames / "snapshot.jpg")
    before = len(tiny_store.runs_named("ppe-yolov11n-mine-v9"))
    code, _, err = tiny_store.run("mine", "v9", source=f"{SITE_PATH}/ppe__openvino_int8/1",
                                  frames=str(frames), budget=3)
    assert code == 2, err
    assert says in err and "mine.frames" in err
    assert len(tiny_store.runs_named("ppe-yolov11n-mine-v9")) == before


def test_another_customers_model_and_a_zero_budget_are_refused(tiny_store, frames):
    code, _, err = tiny_store.run("mine", "v9", source="other-co/a-b/c/ppe__openvino_int8/1",
                                  frames=str(frames), budget=3)
    assert code == 2 and "belongs to customer 'other-co'" in err
    code, _, err = tiny_store.run("mine", "v9", source=f"{SITE_PATH}/ppe__openvino_int8/1",
                                  frames=str(frames), budget=0)
    assert code == 2 and "mine.budget" in err
