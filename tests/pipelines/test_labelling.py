"""The labelling round trip against a real Label Studio server (CI starts one from its own
virtual environment: SITEML_TEST_LABEL_STUDIO_URL and _KEY): a mine run's frames pushed with
the serving model's detections as pre-annotations, annotated through Label Studio's API as a
labeller would (a box moved, one deleted, one added, one task left), pulled back equal to the
pixel with the corrections per class; unfinished tasks, a class outside the task, a refused key
and a server that is down refused before anything is written. And the CVAT package out, CVAT's
export (as its server would write it) back, and grown into the tiny dataset (the frames are
its val images again: they stay in val)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import requests

from siteml.core import keys
from siteml.data.labelstudio import LabelStudio, LabelStudioUnavailable
from tests.conftest import invoke
from tests.pipelines.conftest import SITE_PATH, mine

pytestmark = pytest.mark.slow  # the tiny store's models, a Label Studio server


def label(tiny_store, monkeypatch, studio, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_store.uri)
    monkeypatch.setenv("LABEL_STUDIO_URL", studio[0])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", studio[1])
    return invoke("label", *args)


def annotate(studio: tuple[str, str], task: dict, result: list[dict]) -> None:
    """What a labeller's submit sends."""
    done = requests.post(f"{studio[0]}/api/tasks/{task['id']}/annotations/",
                         headers={"Authorization": f"Token {studio[1]}"},
                         json={"result": result, "was_cancelled": False}, timeout=30)
    assert done.status_code == 201, done.text


def pixels(result: dict) -> tuple[str, list[float]]:
    value, width, height = result["value"], result["original_width"], result["original_height"]
    x, y = value["x"] * width / 100, value["y"] * height / 100
    return value["rectanglelabels"][0], [x, y, x + value["width"] * width / 100,
                                         y + value["height"] * height / 100]


def test_frames_go_to_label_studio_and_come_back_to_the_pixel(tiny_store, frames, studio,
                                                             monkeypatch, tmp_path):
    code, outcome, err = mine(tiny_store, "v20", frames, budget=4, novelty_images=16)
    assert code == 0, err
    run = f"{SITE_PATH}/ppe-yolov11n-mine-v20"
    project = f"bays {os.urandom(3).hex()}"
    code, out, err = label(tiny_store, monkeypatch, studio, "push", run, "--to", "labelstudio",
                           "--project", project, "--json")
    assert code == 0, err
    pushed = json.loads(out)
    assert pushed["tasks"] == 4
    client = tiny_store.client()
    tags = client.get_run(outcome["run_id"]).data.tags
    assert tags[keys.LABEL_PROJECT] == str(pushed["project"])
    assert studio[1] not in json.dumps(tags) and studio[1] not in out + err
    code, _, err = label(tiny_store, monkeypatch, studio, "push", run, "--to", "labelstudio",
                         "--project", project)
    assert code == 2 and "was pushed already" in err
    code, _, err = label(tiny_store, monkeypatch, studio, "pull", run, "--out",
                         str(tmp_path / "none"))
    assert code == 2 and "nothing is labelled yet" in err
    exported = requests.get(f"{studio[0]}/api/projects/{pushed['project']}/export",
                            params={"exportType": "JSON", "download_all_tasks": "true"},
                            headers={"Authorization": f"Token {studio[1]}"}, timeout=30).json()
    assert len(exported) == 4
    proposals = {task["id"]: requests.get(  # the export lists predictions by id only
        f"{studio[0]}/api/tasks/{task['id']}", headers={"Authorization": f"Token {studio[1]}"},
        timeout=30).json()["predictions"][0]["result"] for task in exported}
    assert sum(map(len, proposals.values())) > 0, "the tiny model proposes boxes"
    with_boxes = sorted((task for task in exported if proposals[task["id"]]),
                        key=lambda task: task["id"])
    moved, deleted = with_boxes[0], with_boxes[-1]
    added, untouched = [task for task in exported if task not in (moved, deleted)][:2]
    expected = {}
    for task in exported:
        result = copy.deepcopy(proposals[task["id"]])
        for item in result:
            item.pop("score", None)
        if task is moved:
            result[0]["value"]["x"] += 2 * 100 / result[0]["original_width"]  # 2 px right
        elif task is deleted:
            result = result[1:]
        elif task is added:
            result.append({"type": "rectanglelabels", "from_name": "label", "to_name": "image",
                           "original_width": 96, "original_height": 96, "image_rotation": 0,
                           "value": {"x": 10.0, "y": 20.0, "width": 25.0, "height": 12.5,
                                     "rotation": 0, "rectanglelabels": ["vest"]}})
        if task is untouched:
            continue
        annotate(studio, task, result)
        expected[task["data"]["image"].rsplit("-", 1)[-1]] = sorted(map(pixels, result))
    folder = tmp_path / "labelled"
    code, _, err = label(tiny_store, monkeypatch, studio, "pull", run, "--out", str(folder))
    assert code == 2 and "1 of 4 tasks" in err and not folder.exists()
    code, out, err = label(tiny_store, monkeypatch, studio, "pull", run, "--out", str(folder),
                           "--take-unfinished", "--json")
    assert code == 0, err
    pulled = json.loads(out)
    assert (pulled["labelled"], pulled["unfinished"]) == (3, 1)
    names = ["helmet", "vest", "person"]
    for name, boxes in expected.items():
        stem = next(p for p in (folder / "images").iterdir() if p.name.endswith(name)).stem
        rows = [line.split() for line in (folder / "labels" / f"{stem}.txt").read_text()
                .splitlines()]
        got = sorted((names[int(c)], [(float(cx) - float(w) / 2) * 96, (float(cy) - float(h) / 2)
                                      * 96, (float(cx) + float(w) / 2) * 96,
                                      (float(cy) + float(h) / 2) * 96])
                     for c, cx, cy, w, h in rows)
        assert [label for label, _ in got] == [label for label, _ in boxes]
        for (_, mine_box), (_, their_box) in zip(got, boxes, strict=True):
            assert mine_box == pytest.approx(their_box, abs=0.01)  # equal to the pixel
    lineage = json.loads((folder / "import.json").read_text())
    assert lineage["mine_run_id"] == outcome["run_id"]
    assert lineage["project"] == str(pushed["project"])
    counts = {kind: sum(c[kind] for c in pulled["corrections"].values())
              for kind in ("moved", "deleted", "added")}
    assert counts == {"moved": 1, "deleted": 1, "added": 1}
    assert pulled["corrections"]["vest"]["added"] >= 1
    metrics = client.get_run(outcome["run_id"]).data.metrics
    assert metrics[keys.LABEL_LABELLED] == 3
    assert max(metrics[keys.label_corrected(name)] for name in names) > 0
    annotate(studio, untouched, [{"type": "rectanglelabels", "from_name": "label",
                                  "to_name": "image", "original_width": 96,
                                  "original_height": 96, "image_rotation": 0,
                                  "value": {"x": 1, "y": 1, "width": 5, "height": 5,
                                            "rotation": 0, "rectanglelabels": ["forklift"]}}])
    code, _, err = label(tiny_store, monkeypatch, studio, "pull", run, "--out",
                         str(tmp_path / "again"))
    assert code == 2 and "class 'forklift' is not a class of the task" in err
    assert not (tmp_path / "again").exists()
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-the-key")
    code, _, err = invoke("label", "pull", run, "--out", str(tmp_path / "again"))
    assert code == 2 and "refused the key" in err and "not-the-key" not in err
    with pytest.raises(LabelStudioUnavailable, match="does not answer"):
        LabelStudio("http://127.0.0.1:9", studio[1])  # nothing listens there


def test_a_cvat_package_goes_out_and_cvats_export_comes_back(tiny_store, frames, monkeypatch,
                                                            tmp_path):
    """CVAT's server cannot run here: its side is the XML it imports and exports."""
    import xml.etree.ElementTree as ET

    code, _, err = mine(tiny_store, "v21", frames, budget=3, novelty_images=16)
    assert code == 0, err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_store.uri)
    run, package = f"{SITE_PATH}/ppe-yolov11n-mine-v21", tmp_path / "package"
    code, out, err = invoke("label", "push", run, "--to", "cvat", "--project", "bays",
                            "--out", str(package), "--json")
    assert code == 0, err
    assert json.loads(out)["tasks"] == 3 and len(list((package / "images").iterdir())) == 3
    tree = ET.parse(package / "annotations.xml")
    assert [n.text for n in tree.iterfind("meta/task/labels/label/name")] == [
        "helmet", "vest", "person"]
    images = tree.getroot().findall("image")
    proposed = [box for image in images for box in image.findall("box")]
    assert proposed and all(box.get("source") == "auto" for box in proposed)
    code, _, err = invoke("label", "pull", run, "--out", str(tmp_path / "x"))
    assert code == 2 and "--from" in err
    first = next(image for image in images if image.findall("box"))
    first.remove(first.findall("box")[0])  # what the labellers did in CVAT, then exported
    ET.SubElement(first, "box", label="person", source="manual", occluded="0", xtl="5.5",
                  ytl="6", xbr="30.25", ybr="40", z_order="0")
    tree.write(tmp_path / "export.xml")
    folder = tmp_path / "labelled"
    code, out, err = invoke("label", "pull", run, "--from", str(tmp_path / "export.xml"),
                            "--out", str(folder), "--json")
    assert code == 0, err
    pulled = json.loads(out)
    assert pulled["labelled"] == 3 and pulled["unfinished"] == 0
    assert sum(c["deleted"] for c in pulled["corrections"].values()) == 1
    assert pulled["corrections"]["person"]["added"] >= 1
    rows = (folder / "labels" / Path(first.get("name")).with_suffix(".txt").name).read_text()
    width, height = int(first.get("width")), int(first.get("height"))
    assert f"2 {(5.5 + 30.25) / 2 / width:.6f} {23 / height:.6f}" in rows
    assert json.loads((folder / "import.json").read_text())["tool"] == "cvat"

    # the frames are the val images again: the grown version keeps them in val
    code, out, err = invoke("data", "grow", str(tiny_store.dataset), str(folder), "--out",
                            str(tmp_path / "grown"), "--json")
    assert code == 0, err
    grown = json.loads(out)
    assert (grown["added"], grown["placed"]) == ({"val": 3}, {"near-duplicate": 3})
