"""Mining pipeline: score a site's unlabelled frames with the model that serves there and its
FP32 source (``frame_scores``), pick the ones to label (``frame_selection``) and log them.

Both models see each frame as the box does (``timing_frame``'s letterbox at the model's input
size); the source gives its features in the same pass (traced once, run by OpenVINO in f32).
Logged: ``mine/frames.csv`` (every frame, its scores, hash and why it was or was not picked),
``mine/selection.json`` (settings, the models read, every frame's sha256, the frames picked with
the serving model's detections on them in image pixels: the labellers' pre-annotations) and the
picked frames under ``mine/frames/``. The selection's sha256 (tag
``siteml.mine.selection_sha256``) is the same for the same frames, models and settings on the
same machine.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from siteml.backends import pytorch
from siteml.backends import registry as backends
from siteml.backends.base import LoadOptions
from siteml.backends.ultralytics import offline_ultralytics
from siteml.core import keys
from siteml.core.digests import sha256
from siteml.core.extras import check_installed
from siteml.core.models import PipelineResult, Tracker
from siteml.core.progress import progress_bar
from siteml.data.frames import Frame, FramesError, list_frames
from siteml.data.layout import open_image
from siteml.data.profile import perceptual_hash
from siteml.pipelines import frame_scores
from siteml.pipelines.canary import CONF, IOU, detections
from siteml.pipelines.checks import Problem
from siteml.pipelines.frame_selection import Candidate, select
from siteml.pipelines.images import letterboxed, sample_images, timing_frame
from siteml.scenario.schema import MiningScenario

SCORES = ("uncertainty", "disagreement", "novelty", "flicker")


def check(scenario: MiningScenario) -> Problem:
    """PyTorch (the source's features) and imagehash are installed; the frames folder holds
    images whose names the pattern reads."""
    backends.check_installed_for(backends.SOURCE_BACKEND)
    check_installed("imagehash", "data")
    try:
        list_frames(scenario.mine.frames, scenario.mine.name_pattern)
    except FramesError as exc:
        return "mine.frames", str(exc)
    return None


def check_models(scenario: MiningScenario, read: Mapping[str, Mapping[str, str]]) -> Problem:
    """The reference is the FP32 PyTorch model; the serving model takes the scenario's input
    size, and its runtime is installed."""
    reference = read.get("baseline", {}).get(keys.MODEL_BACKEND)
    if reference not in (None, backends.SOURCE_BACKEND):
        return ("mine.reference", f"the reference is a {reference} model; it must be the "
                f"FP32 {backends.SOURCE_BACKEND} model the serving variant was made from")
    size = read.get("source", {}).get(keys.MODEL_INPUT_SIZE)
    if size and int(size) != scenario.model.input_size:
        return ("model.input_size", f"is {scenario.model.input_size}, but the serving model "
                f"takes {size} px frames: mine at the size it serves")
    backends.check_installed_for(read.get("source", {}).get(keys.MODEL_BACKEND)
                                 or backends.SOURCE_BACKEND)
    return None


def run(scenario: MiningScenario, tracker: Tracker) -> PipelineResult:
    """Score every frame, pick down to the budget, log the selection."""
    params, size = scenario.mine, scenario.model.input_size
    offline_ultralytics(tracker.workdir)
    frames = list_frames(params.frames, params.name_pattern)
    first = timing_frame(frames[0].path, size)
    serving = _serving(tracker, first)
    reference = pytorch.with_features(backends.find_model(tracker.source_model("baseline").path),
                                      first)
    train = sample_images(scenario.dataset.path, "train", params.novelty_images,
                          scenario.environment.seed)
    with progress_bar("features of train images", len(train)) as advance:
        train_features = np.vstack([_features(reference, image, size, advance)
                                    for image in train])
    started = time.perf_counter()
    seen = _look(frames, serving, reference, size, params.band)
    seconds = time.perf_counter() - started
    rows = _scores(frames, seen, train_features, params)
    classes = scenario.task.classes
    candidates = [Candidate(row["frame"], row["score"], row["phash"],
                            frozenset(classes[c] for c in row["classes"]), seen[i]["features"])
                  for i, row in enumerate(rows)]
    picked = select(candidates, params.budget, dict(params.quotas), params.max_hash_bits)
    for index, why in picked.why.items():
        rows[index]["why"] = why
    folder = tracker.workdir / "mine"
    selection = _selection(scenario, tracker, frames, seen, picked.chosen, size)
    _write(folder, rows, selection, {_name(frames[i], params.frames): frames[i].path
                                     for i in picked.chosen})
    tracker.log_artifact(folder, "mine")
    tracker.set_tags({keys.MINE_SELECTION_SHA256: selection["sha256"]})
    metrics = {keys.MINE_FRAMES: float(len(frames)), keys.MINE_SELECTED: float(len(
        picked.chosen)), keys.MINE_NEAR_DUPLICATES: float(sum(
            why.startswith("near-duplicate") for why in picked.why.values())),
        keys.MINE_FRAMES_PER_S: len(frames) / seconds,
        **{keys.mine_mean(name): float(np.mean([row[name] for row in rows]))
           for name in SCORES}}
    return PipelineResult(metrics=metrics)


def _serving(tracker: Tracker, frame: Any) -> Any:
    """The serving model, loaded with its own runtime at its precision."""
    model = tracker.source_model("source")
    precision = backends.execution_precision(model.tags.get(keys.MODEL_PRECISION))
    return backends.load(backends.find_model(model.path), frame, LoadOptions(precision))


def _features(reference: Any, image: Path, size: int, advance: Any) -> np.ndarray:
    advance("")
    return reference(timing_frame(image, size))[1]


def _look(frames: list[Frame], serving: Any, reference: Any, size: int,
          band: float) -> list[dict[str, Any]]:
    """Each frame through both models: their detections (down to the band), the source's
    features, the frame's perceptual hash and size."""
    seen = []
    with progress_bar("mining frames", len(frames)) as advance:
        for frame in frames:
            with open_image(frame.path) as opened:
                picture = opened.convert("RGB")
            pixels = letterboxed(picture, size)
            raw, features = reference(pixels)
            phash, shape = perceptual_hash(picture), picture.size
            seen.append({"serving": detections(serving.predict(pixels), CONF - band, IOU),
                         "reference": detections(raw, CONF - band, IOU),
                         "features": features[0], "phash": phash, "size": shape})
            advance(frame.path.name)
    return seen


def _scores(frames: list[Frame], seen: list[dict[str, Any]], train: np.ndarray,
            params: Any) -> list[dict[str, Any]]:
    """One row per frame: its scores, their weighted mean, hash and the classes detected."""
    novelty = frame_scores.novelty(np.stack([s["features"] for s in seen]), train,
                                   frame_scores.typical_distance(train))
    flicker = np.zeros(len(frames))
    by_camera: dict[str, list[int]] = {}
    for index, frame in enumerate(frames):
        by_camera.setdefault(frame.camera, []).append(index)
    for indices in by_camera.values():
        flicker[indices] = frame_scores.flicker([seen[i]["serving"] for i in indices], CONF)
    weights = params.weights.model_dump()
    rows = []
    for index, (frame, look) in enumerate(zip(frames, seen, strict=True)):
        scores = {"uncertainty": frame_scores.uncertainty(look["serving"], CONF, params.band),
                  "disagreement": frame_scores.disagreement(look["serving"],
                                                            look["reference"], CONF),
                  "novelty": float(novelty[index]), "flicker": float(flicker[index])}
        total = sum(weights[k] * v for k, v in scores.items()) / sum(weights.values())
        classes = {int(c) for c in np.concatenate([look["serving"][:, 5],
                                                    look["reference"][:, 5]])}
        rows.append({"frame": _name(frame, params.frames), "camera": frame.camera,
                     "time": frame.time, "score": round(total, 6),
                     **{k: round(v, 6) for k, v in scores.items()},
                     "phash": look["phash"], "classes": classes, "why": ""})
    return rows


def _name(frame: Frame, folder: Path) -> str:
    return frame.path.relative_to(folder).as_posix()


def _selection(scenario: MiningScenario, tracker: Tracker, frames: list[Frame],
               seen: list[dict[str, Any]], chosen: list[int], size: int) -> dict[str, Any]:
    """The manifest of the selection, with its sha256 over everything but itself."""
    classes = scenario.task.classes
    models = {role: f"{tracker.source_model(role).name}/{tracker.source_model(role).version}"
              for role in ("source", "baseline")}
    manifest = {
        "siteml_selection": 1,
        "settings": scenario.mine.model_dump(mode="json", exclude={"frames"}),
        "models": models,
        "frames": {_name(frame, scenario.mine.frames): sha256(frame.path) for frame in frames},
        "picked": [{"frame": _name(frames[i], scenario.mine.frames),
                    "camera": frames[i].camera, "time": frames[i].time,
                    "width": seen[i]["size"][0], "height": seen[i]["size"][1],
                    "detections": _in_pixels(seen[i]["serving"], seen[i]["size"], size, classes)}
                   for i in chosen],
    }
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return {**manifest, "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _in_pixels(found: np.ndarray, shape: tuple[int, int], size: int,
               classes: list[str]) -> list[dict[str, Any]]:
    """Detections scored at the threshold or more, out of the letterbox into image pixels."""
    width, height = shape
    scale = min(size / width, size / height)
    left, top = (size - round(width * scale)) // 2, (size - round(height * scale)) // 2
    boxes = []
    for x1, y1, x2, y2, score, cls in found[found[:, 4] >= CONF].tolist():
        corners = [(x1 - left) / scale, (y1 - top) / scale, (x2 - left) / scale,
                   (y2 - top) / scale]
        boxes.append({"class": classes[int(cls)], "score": round(score, 4),
                      "box": [round(min(max(v, 0), limit), 2) for v, limit in
                              zip(corners, (width, height, width, height), strict=True)]})
    return boxes


def _write(folder: Path, rows: list[dict[str, Any]], selection: dict[str, Any],
           picked: dict[str, Path]) -> None:
    """The table, the manifest, and the picked frames under their names in the folder."""
    (folder / "frames").mkdir(parents=True)
    with (folder / "frames.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "phash": f"{row['phash']:016x}",
                             "classes": " ".join(map(str, sorted(row["classes"])))})
    (folder / "selection.json").write_text(json.dumps(selection, indent=1) + "\n",
                                           encoding="utf-8")
    for name, path in picked.items():
        (folder / "frames" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, folder / "frames" / name)
