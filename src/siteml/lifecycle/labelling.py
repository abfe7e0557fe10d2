"""``siteml label push`` and ``pull``: a mine run's picked frames to a Label Studio project (or
a CVAT for images package, for a CVAT server siteml cannot reach) with the serving model's
detections as pre-annotations, and the finished annotations back (Label Studio's project, or
CVAT's export) as a labelled increment (YOLO labels beside the frames), checked like an import,
with how much the labellers corrected the model, per class, logged on the mine run.

A mine run is named as a run is shown, ``SITE/RUN_NAME``
(``acme-steel/ulsan-plant2/quant/ppe-yolov11n-mine-v1``): its newest FINISHED run. The project's
id and server are tags of the run, so ``pull`` needs the run only. Neither command prompts.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siteml.core import keys
from siteml.core.errors import InvalidInputError
from siteml.core.naming import customer_of
from siteml.data.cvat_package import PackagedFrame, write_package
from siteml.data.formats import cvat
from siteml.data.formats.source import SourceError
from siteml.data.labelstudio import LabelStudio, box_of, rectangle
from siteml.pipelines.canary import box_iou
from siteml.tracking.runs import find_experiment_id, open_client, runs_named
from siteml.tracking.store import Store, check_reachable, resolve_store
from siteml.tracking.workspaces import enter_customer

SAME_BOX_IOU = 0.95
"""A labeller's box at least this close to the model's (same class) was left as it was."""
MATCH_IOU = 0.5
"""Below it, a box of the same class is another object: one deleted, one added."""


@dataclass
class PushOutcome:
    run_id: str
    project: int
    url: str
    tasks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PullOutcome:
    run_id: str
    folder: str
    labelled: int
    unfinished: int
    boxes: int
    corrections: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per class: the model's boxes ``kept``, ``moved``, ``deleted``, and ``added`` ones."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mine_run(reference: str, store: Store, action: str) -> tuple[Any, Any]:
    """The client (in the site's customer's workspace) and the newest FINISHED mine run
    ``reference`` (``SITE/RUN_NAME``) names.

    Raises:
        InvalidInputError: a malformed reference, or no such run.
    """
    site, _, name = reference.rstrip("/").rpartition("/")
    if site.count("/") != 2 or not name:
        raise InvalidInputError(f"{reference!r}: name a mine run as SITE/RUN_NAME, e.g. "
                                "acme-steel/ulsan-plant2/quant/ppe-yolov11n-mine-v1")
    check_reachable(store)
    enter_customer(store, customer_of(site), action)
    client = open_client(store)
    experiment = find_experiment_id(client, site)
    found = [run for run in runs_named(client, experiment, name) if run.info.status ==
             "FINISHED" and run.data.tags.get(keys.EXPERIMENT_TYPE) == "mine"] if experiment else []
    if not found:
        raise InvalidInputError(f"no FINISHED mine run {name} at site {site}")
    return client, found[0]


def _download(client: Any, run: Any, scratch: Path) -> tuple[dict[str, Any], Path]:
    """The run's selection manifest and the folder of its picked frames."""
    folder = Path(client.download_artifacts(run.info.run_id, "mine", str(scratch)))
    return json.loads((folder / "selection.json").read_text(encoding="utf-8")), folder / "frames"


def _classes(run: Any) -> list[str]:
    """The mine run's task classes (its ``task.classes`` tag)."""
    return run.data.tags[f"{keys.TASK_PREFIX}classes"].split(",")


def _upload_name(frame: str) -> str:
    """A picked frame's name in Label Studio (which keeps file names, not folders)."""
    return frame.replace("/", "__")


def push(reference: str, title: str, url: str, key: str,
         store: Store | None = None) -> PushOutcome:
    """Make a Label Studio project of the mine run's picked frames, pre-annotated.

    Raises:
        InvalidInputError: a bad reference, a run pushed before, or Label Studio refusing.
        LabelStudioUnavailable: Label Studio does not answer.
    """
    client, run = _unpushed(reference, store)
    studio = LabelStudio(url, key)
    classes = _classes(run)
    with tempfile.TemporaryDirectory() as tmp:
        selection, frames = _download(client, run, Path(tmp))
        project = studio.create_project(title, classes, f"siteml mine run {reference} "
                                        f"({run.info.run_id}), model {selection['models']}")
        studio.upload(project, {_upload_name(pick["frame"]): frames / pick["frame"]
                                for pick in selection["picked"]})
        tasks = studio.tasks(project)
        studio.import_predictions(project, [{
            "task": tasks[_upload_name(pick["frame"])]["id"],
            "model_version": selection["models"]["source"],
            "result": [rectangle(box["box"], box["class"], pick["width"], pick["height"],
                                 box["score"]) for box in pick["detections"]]}
            for pick in selection["picked"]])
    _tag(client, run, "labelstudio", url, str(project))
    return PushOutcome(run.info.run_id, project, url, len(tasks))


def push_package(reference: str, title: str, out: Path,
                 store: Store | None = None) -> PushOutcome:
    """Write a CVAT for images package of the mine run's picked frames, pre-annotated, into
    the new folder ``out``.

    Raises:
        InvalidInputError: a bad reference, a run pushed before, or ``out`` there already.
    """
    client, run = _unpushed(reference, store)
    if out.exists():
        raise InvalidInputError(f"{out} exists: write the package into a new folder")
    classes = _classes(run)
    with tempfile.TemporaryDirectory() as tmp:
        selection, frames = _download(client, run, Path(tmp))
        write_package(out, title, classes, [PackagedFrame(
            _upload_name(pick["frame"]), frames / pick["frame"], pick["width"], pick["height"],
            [(box["class"], box["box"]) for box in pick["detections"]])
            for pick in selection["picked"]])
    _tag(client, run, "cvat", str(out.absolute()), title)
    return PushOutcome(run.info.run_id, 0, str(out.absolute()), len(selection["picked"]))


def _unpushed(reference: str, store: Store | None) -> tuple[Any, Any]:
    client, run = _mine_run(reference, store or resolve_store(), "write")
    tags = run.data.tags
    if keys.LABEL_PROJECT in tags:
        raise InvalidInputError(f"{reference} was pushed already ({tags[keys.LABEL_TOOL]} "
                                f"{tags[keys.LABEL_PROJECT]} at {tags[keys.LABEL_URL]}): pull it")
    return client, run


def _tag(client: Any, run: Any, tool: str, where: str, project: str) -> None:
    for name, value in {keys.LABEL_TOOL: tool, keys.LABEL_URL: where,
                        keys.LABEL_PROJECT: project}.items():
        client.set_tag(run.info.run_id, name, value)


def pull(reference: str, out: Path, key: str = "", take_unfinished: bool = False,
         export: Path | None = None, store: Store | None = None) -> PullOutcome:
    """Write the finished annotations into ``out`` (frames, YOLO labels, ``import.json``) and
    log the corrections on the mine run; nothing is written on an error. A run pushed to
    Label Studio reads its project; one packaged for CVAT reads CVAT's ``export``.

    Raises:
        InvalidInputError: a bad reference, a run never pushed, ``out`` there already,
            unfinished tasks (unless ``take_unfinished``), nothing labelled, an annotation
            of a class outside the task or off its image, no ``export`` for a CVAT run, or
            Label Studio refusing.
        LabelStudioUnavailable: Label Studio does not answer.
    """
    client, run = _mine_run(reference, store or resolve_store(), "write")
    tags = run.data.tags
    if keys.LABEL_PROJECT not in tags:
        raise InvalidInputError(f"{reference} was never pushed: siteml label push it first")
    if out.exists():
        raise InvalidInputError(f"{out} exists: pull into a new folder")
    tool, where, project = tags[keys.LABEL_TOOL], tags[keys.LABEL_URL], tags[keys.LABEL_PROJECT]
    classes = _classes(run)
    with tempfile.TemporaryDirectory() as tmp:
        selection, frames = _download(client, run, Path(tmp))
        picks = {_upload_name(pick["frame"]): pick for pick in selection["picked"]}
        found = (_from_cvat(export, picks) if tool == "cvat"
                 else _from_labelstudio(LabelStudio(where, key), int(project), picks))
        unfinished = len(picks) - len(found)
        if not found:
            raise InvalidInputError(f"nothing is labelled yet in {tool} {project} at {where} "
                                    f"({len(picks)} tasks)")
        if unfinished and not take_unfinished:
            raise InvalidInputError(f"{unfinished} of {len(picks)} tasks of {tool} {project} "
                                    "are not labelled yet: label them, or take the finished "
                                    "ones only with --take-unfinished")
        labelled = {name: _checked(boxes, picks[name], classes) for name, boxes in found.items()}
        corrections = _corrections(picks, labelled, classes)
        _write(out, frames, picks, labelled, classes, {
            "siteml_labelled": 1, "mine_run": reference, "mine_run_id": run.info.run_id,
            "tool": tool, "url": where, "project": project,
            "models": selection["models"], "selection_sha256": selection["sha256"],
            "frames": sorted(picks[name]["frame"] for name in labelled),
            "cameras": {name: picks[name]["camera"] for name in sorted(labelled)}})
    boxes = sum(len(found) for found in labelled.values())
    metrics = {keys.LABEL_LABELLED: float(len(labelled)), keys.LABEL_BOXES: float(boxes)}
    for name, counts in corrections.items():
        changed = counts["moved"] + counts["deleted"] + counts["added"]
        metrics[keys.label_corrected(name)] = changed / max(1, changed + counts["kept"])
    for name, value in metrics.items():
        client.log_metric(run.info.run_id, name, value)
    return PullOutcome(run.info.run_id, str(out), len(labelled), unfinished, boxes,
                       corrections)


def _from_labelstudio(studio: LabelStudio, project: int, picks: dict[str, dict[str, Any]]
                      ) -> dict[str, list[tuple[str, list[float]]]]:
    """The boxes of the project's finished tasks, in pixels, by frame."""
    found = {}
    for name, task in studio.tasks(project).items():
        result = _final(task) if name in picks else None
        if result is not None:
            found[name] = _rectangles(result, picks[name])
    return found


def _from_cvat(export: Path | None, picks: dict[str, dict[str, Any]]
               ) -> dict[str, list[tuple[str, list[float]]]]:
    """The boxes of CVAT's export (CVAT for images 1.1) for the picked frames it holds.

    Raises:
        InvalidInputError: no export named, or one CVAT's reader refuses.
    """
    if export is None:
        raise InvalidInputError("the run was packaged for CVAT: name CVAT's export of the task "
                                "(CVAT for images 1.1) with --from")
    try:
        dataset = cvat.read(export)
    except SourceError as exc:
        raise InvalidInputError(str(exc)) from None
    return {Path(image.name).name: [(box.label, [box.xmin, box.ymin, box.xmax, box.ymax])
                                    for box in image.boxes]
            for image in dataset.images if Path(image.name).name in picks}


def _final(task: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The result of a task's newest annotation that was not skipped, or None."""
    kept = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    return max(kept, key=lambda a: a["id"])["result"] if kept else None


def _rectangles(result: list[dict[str, Any]], pick: dict[str, Any]
                ) -> list[tuple[str, list[float]]]:
    """A Label Studio result's rectangles in pixels.

    Raises:
        InvalidInputError: a rectangle siteml cannot read (rotated, several labels).
    """
    found = []
    for item in result:
        if item.get("type") != "rectanglelabels":
            continue
        try:
            found.append(box_of(item, pick["width"], pick["height"]))
        except ValueError as exc:
            raise InvalidInputError(f"{pick['frame']}: {exc}") from None
    return found


def _checked(boxes: list[tuple[str, list[float]]], pick: dict[str, Any],
             classes: list[str]) -> list[tuple[str, list[float]]]:
    """A finished frame's boxes, checked: a class of the task, on the image (a pixel of
    slack, then clipped).

    Raises:
        InvalidInputError: naming the frame and the box.
    """
    width, height, found = pick["width"], pick["height"], []
    for label, box in boxes:
        if label not in classes:
            raise InvalidInputError(f"{pick['frame']}: class {label!r} is not a class of the "
                                    f"task ({', '.join(classes)})")
        x1, y1, x2, y2 = box
        if x2 <= x1 or y2 <= y1 or x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
            raise InvalidInputError(f"{pick['frame']}: box {[round(v, 1) for v in box]} of "
                                    f"{label} is off its {width}x{height} image")
        found.append((label, [max(0.0, x1), max(0.0, y1), min(width, x2), min(height, y2)]))
    return found


def _corrections(picks: dict[str, dict[str, Any]],
                 labelled: dict[str, list[tuple[str, list[float]]]],
                 classes: list[str]) -> dict[str, dict[str, int]]:
    """Per class, the model's boxes the labellers kept, moved or deleted, and the boxes they
    added, over the finished tasks."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in classes}
    for name, boxes in labelled.items():
        proposed = [(b["class"], b["box"]) for b in picks[name]["detections"]]
        unmatched = list(boxes)
        for label, box in proposed:
            same = [i for i, (other, _) in enumerate(unmatched) if other == label]
            overlaps = box_iou(np.array(box), np.array([unmatched[i][1] for i in same])
                               .reshape(-1, 4)) if same else np.zeros(0)
            if not len(overlaps) or overlaps.max() < MATCH_IOU:
                counts[label]["deleted"] += 1
                continue
            counts[label]["kept" if overlaps.max() >= SAME_BOX_IOU else "moved"] += 1
            del unmatched[same[int(overlaps.argmax())]]
        for label, _ in unmatched:
            counts[label]["added"] += 1
    return {name: {kind: counts[name][kind] for kind in ("kept", "moved", "deleted", "added")}
            for name in classes}


def _write(out: Path, frames: Path, picks: dict[str, dict[str, Any]],
           labelled: dict[str, list[tuple[str, list[float]]]], classes: list[str],
           lineage: dict[str, Any]) -> None:
    """The increment beside ``out``, then renamed into place: ``images/``, ``labels/`` (YOLO:
    class, centre and size as fractions of the image), ``classes.txt``, ``import.json``."""
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    (partial / "labels").mkdir()
    for name, boxes in labelled.items():
        pick = picks[name]
        shutil.copy2(frames / pick["frame"], partial / "images" / name)
        width, height = pick["width"], pick["height"]
        lines = [f"{classes.index(label)} {(x1 + x2) / 2 / width:.6f} "
                 f"{(y1 + y2) / 2 / height:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
                 for label, (x1, y1, x2, y2) in boxes]
        (partial / "labels" / Path(name).with_suffix(".txt")).write_text(
            "".join(f"{line}\n" for line in lines), encoding="utf-8")
    (partial / "classes.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    (partial / "import.json").write_text(json.dumps(lineage, indent=1) + "\n", encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(out)
