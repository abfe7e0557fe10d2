"""``siteml data grow``: a new dataset version = its parent + a labelled increment (what ``siteml
label pull`` writes), with ``DIR.dvc`` and the lineage in ``import.json``.

The cost is the increment's: the parent's files are hard-linked into the new version (copied
across file systems), and their md5s and pHashes come from the file state where siteml read
them before (``file_state``); from those the parent is checked against ``PARENT.dvc``.

Where a new frame goes: where its camera already is (the split holding most of the camera's
images); the frames of a camera the parent lacks go together where their near-duplicates in
the parent are; the rest go to train, or with ``val`` whole new cameras are drawn into val.
Everything is checked before the first write; a refusal writes nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siteml.core import keys
from siteml.core.errors import InvalidInputError
from siteml.data.dvc_hash import (
    DirHash,
    dataset_block,
    dvc_file,
    file_md5,
    hash_entries,
    hashed,
    list_files,
    read_dvc_file,
    write_dvc_file,
    write_hashed,
)
from siteml.data.file_state import Known, remember
from siteml.data.layout import (
    IMAGE_ERRORS,
    IMAGE_SUFFIXES,
    REQUIRED_SPLITS,
    label_problems,
    open_image,
    place_file,
    yaml_names,
)
from siteml.data.profile import DEFAULT_MAX_DISTANCE, closest, perceptual_hash
from siteml.data.splits import compile_pattern, draw_groups, group_of

LINEAGE = "import.json"
GROWN, LABELLED = "siteml_grown", "siteml_labelled"
MAX_EXAMPLES = 5
Progress = Callable[[str, int], Callable[[str], None]]
"""Given what is being done and to how many files, the callback each file calls."""


@dataclass(frozen=True)
class GrowOptions:
    """How the new frames are placed, and how the files are written."""

    val: float | None = None
    seed: int = 42
    group_by: str | None = None
    max_distance: int = DEFAULT_MAX_DISTANCE
    copy: bool = False


@dataclass(frozen=True)
class NewFrame:
    """A labelled frame of the increment, checked: its label lines, camera and pHash."""

    name: str
    image: Path
    lines: list[tuple[int, str]]
    camera: str | None
    phash: int


@dataclass(frozen=True)
class GrowResult:
    """The grown version, its parent, where the new frames went and what was read."""

    path: Path
    hash: DirHash
    parent: dict[str, str]
    images: dict[str, int]
    added: dict[str, int]
    placed: dict[str, int]
    across: int
    """New frames with a near-duplicate in a split other than the one they went to."""
    hashed: int
    reused: int

    def dataset_block(self) -> dict[str, object]:
        """The scenario's ``dataset:`` fields, ready to paste (``version`` is the user's)."""
        return dataset_block(self.path, self.hash, self.images)

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "images": self.images, "added": self.added,
                "placed": self.placed, "near_duplicates_in_other_split": self.across,
                "files_hashed": self.hashed, "hashes_reused": self.reused}


def grow(base: Path, increment: Path, out: Path, options: GrowOptions,
         progress: Progress | None = None) -> GrowResult:
    """Write ``out``: every file of ``base`` and the labelled frames of ``increment``.

    Raises:
        InvalidInputError: ``out`` exists, ``base`` is no versioned dataset or changed since its
            ``.dvc`` was written, ``increment`` is no labelled increment or holds a bad
            frame, a class ``base`` lacks or a frame ``base`` holds already; nothing is
            written then.
    """
    if out.exists():
        raise InvalidInputError(f"{out} exists: grow into a new folder (a dataset version is "
                                "never overwritten)")
    pattern = compile_pattern(options.group_by) if options.group_by else None
    lineage, classes, frames = _increment(increment, pattern, progress)
    parent = _parent_meta(base)
    files = list_files(base)
    images = {relpath: split for relpath in files if (split := _split_of(relpath))}
    _refuse_collisions(base, images, frames)
    theirs, index = _class_index(base, parent, classes)
    hashes, read = hashed([_under(base, relpath) for relpath in files],
                          progress(f"hashing {base.name}", len(files)) if progress else None)
    known = dict(zip(files, hashes.values(), strict=True))
    found = hash_entries([(relpath, str(k.md5), k.stat.st_size) for relpath, k in known.items()])
    recorded = read_dvc_file(dvc_file(base))
    if found.md5 != recorded:
        raise InvalidInputError(f"{base} changed since {dvc_file(base)} was written: it records "
                                f"{recorded}, the folder hashes to {found.md5}")
    placement, across = _placement(images, _phashes(base, images, known, progress), frames,
                                   parent, pattern, options)
    added = Counter(split for split, _ in placement.values())
    counts = dict(sorted((Counter(images.values()) + added).items()))
    meta = {GROWN: 1, "version": out.name, "classes": theirs,
            "images": counts, "added": dict(sorted(added.items())),
            **_lineage(base, str(recorded), parent, increment, lineage),
            "frames": {f.name: {"split": placement[f.name][0], "camera": f.camera,
                                "why": placement[f.name][1]} for f in frames},
            "cameras": {**parent.get("cameras", {}), **{
                f"images/{placement[f.name][0]}/{f.name}": f.camera for f in frames
                if f.camera}}}
    grown = _write(base, out, known, frames, placement, index, meta, options.copy)
    return GrowResult(out, grown, {"version": base.name, "dvc_hash": str(recorded)},
                      counts, dict(sorted(added.items())),
                      dict(Counter(why.split(":")[0] for _, why in placement.values())),
                      across, read + len(frames), len(files) - read)


def lineage_tags(root: Path) -> dict[str, str]:
    """A grown dataset's parent, mine run and labelling project, as run tags; none for a
    dataset that was not grown."""
    try:
        meta = json.loads((root / LINEAGE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(meta, dict) or not meta.get(GROWN):
        return {}
    step = meta["increment"]
    return {keys.DATA_PARENT_VERSION: meta["parent"]["version"],
            keys.DATA_PARENT_HASH: meta["parent"]["dvc_hash"],
            keys.DATA_MINE_RUN: str(step.get("mine_run")),
            keys.DATA_LABEL_PROJECT: f"{step.get('tool')} {step.get('project')} at "
                                     f"{step.get('url')}"}


def _increment(folder: Path, pattern: re.Pattern[str] | None, progress: Progress | None
               ) -> tuple[dict[str, Any], list[str], list[NewFrame]]:
    """The increment's lineage, classes and frames, every frame and label checked."""
    try:
        lineage = json.loads((folder / LINEAGE).read_text(encoding="utf-8"))
        classes = [name.strip() for name in (folder / "classes.txt").read_text(
            encoding="utf-8").splitlines() if name.strip()]
    except (OSError, ValueError):
        lineage, classes = {}, []
    if not isinstance(lineage, dict) or not lineage.get(LABELLED) or not classes:
        raise InvalidInputError(f"{folder}: not a labelled increment (siteml label pull writes "
                                f"one: images/, labels/, classes.txt, {LINEAGE})")
    images = sorted(p for p in (folder / "images").iterdir()
                    if p.is_file() and not p.name.startswith(".")) \
        if (folder / "images").is_dir() else []
    if not images:
        raise InvalidInputError(f"{folder}/images holds no frames")
    cameras = lineage.get("cameras", {})
    frames, problems = [], []
    advance = progress("checking the new frames", len(images)) if progress else None
    for image in images:
        label = folder / "labels" / image.with_suffix(".txt").name
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(f"{image}: not an image")
        elif not label.is_file():
            problems.append(f"{image}: no label file {label}")
        elif found := label_problems(label, len(classes)):
            problems += found
        else:
            try:
                with open_image(image) as opened:
                    phash = perceptual_hash(opened)
            except IMAGE_ERRORS as exc:
                problems.append(f"{image}: not an image Pillow reads ({exc})")
                continue
            lines = [(int(line.split()[0]), line.split(maxsplit=1)[1])
                     for line in label.read_text(encoding="utf-8").splitlines() if line.split()]
            camera = cameras.get(image.name) or (group_of(pattern, image.name) if pattern
                                                 else None)
            frames.append(NewFrame(image.name, image, lines, camera, phash))
        if advance:
            advance("")
    if problems:
        raise InvalidInputError(f"{folder}: {len(problems)} problem(s), nothing written:\n  "
                                + "\n  ".join(problems[:MAX_EXAMPLES]))
    return lineage, classes, frames


def _parent_meta(base: Path) -> dict[str, Any]:
    """The parent's own lineage (empty for a dataset that was not grown)."""
    if not all((base / "images" / split).is_dir() for split in REQUIRED_SPLITS):
        raise InvalidInputError(f"{base}: not a dataset folder (images/train and images/val)")
    if not dvc_file(base).is_file() or not read_dvc_file(dvc_file(base)):
        raise InvalidInputError(f"{base}: no {dvc_file(base).name}; version the parent first "
                                f"(dvc add {base}, or siteml data hash --write {base})")
    try:
        meta = json.loads((base / LINEAGE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _classes(base: Path, parent: dict[str, Any], increment: list[str]) -> list[str]:
    """The parent's classes (``data.yaml``, else its lineage), else the increment's: a dataset
    made for the same task numbers its classes in the task's order."""
    data_yaml = base / "data.yaml"
    names = yaml_names(data_yaml) if data_yaml.is_file() else None
    return names or parent.get("classes") or increment


def _class_index(base: Path, parent: dict[str, Any], classes: list[str]
                 ) -> tuple[list[str], dict[int, int]]:
    """The parent's classes, and the increment's class numbers -> the parent's.

    Raises:
        InvalidInputError: a class of the increment the parent lacks.
    """
    theirs = _classes(base, parent, classes)
    missing = [name for name in classes if name not in theirs]
    if missing:
        raise InvalidInputError(f"the increment's classes {', '.join(missing)} are not classes "
                                f"of {base} ({', '.join(theirs)})")
    return theirs, {number: theirs.index(name) for number, name in enumerate(classes)}


def _refuse_collisions(base: Path, images: dict[str, str], frames: list[NewFrame]) -> None:
    stems = {os.path.splitext(_name(relpath))[0] for relpath in images}
    taken = [frame.name for frame in frames if Path(frame.name).stem in stems]
    if taken:
        raise InvalidInputError(f"{len(taken)} new frame(s) are in {base} already (labelled "
                                f"twice?): {', '.join(taken[:MAX_EXAMPLES])}")


def _phashes(base: Path, images: dict[str, str], known: dict[str, Known],
             progress: Progress | None) -> list[tuple[str, int]]:
    """(relative path, pHash) of each parent image: the file state's, else computed (and kept
    there)."""
    missing = [path for path in images if known[path].phash is None]
    advance = progress(f"pHashing {base.name}", len(missing)) if progress and missing else None
    learned = []
    for relpath in missing:
        try:
            with open_image(_under(base, relpath)) as opened:
                known[relpath] = Known(known[relpath].stat, known[relpath].md5,
                                       perceptual_hash(opened))
        except IMAGE_ERRORS:
            continue  # no near-duplicate to find in an unreadable image
        learned.append(known[relpath])
        if advance:
            advance("")
    remember(learned)
    return [(relpath, phash) for relpath in images
            if (phash := known[relpath].phash) is not None]


def _placement(images: dict[str, str], hashes: list[tuple[str, int]],
               frames: list[NewFrame], parent: dict[str, Any], pattern: re.Pattern[str] | None,
               options: GrowOptions) -> tuple[dict[str, tuple[str, str]], int]:
    """New frame -> (split, why), and how many have a near-duplicate in another split."""
    by_camera: dict[str, Counter[str]] = defaultdict(Counter)
    for relpath, camera in parent.get("cameras", {}).items():
        by_camera[camera][relpath.split("/")[1]] += 1
    if pattern:
        for relpath, split in images.items():
            if (camera := group_of(pattern, _name(relpath))) is not None:
                by_camera[camera][split] += 1
    nearest = {name: relpath.split("/")[1] for _, relpath, name in closest(
        hashes, [(f.name, f.phash) for f in frames], options.max_distance)}
    placed: dict[str, tuple[str, str]] = {}
    unplaced: dict[str, list[str]] = defaultdict(list)
    for frame in frames:
        if frame.camera in by_camera:
            split = _most(by_camera[frame.camera])
            placed[frame.name] = (split, f"camera: {frame.camera} is in {split}")
        else:
            unplaced[frame.camera or frame.name].append(frame.name)
    drawn: dict[str, list[str]] = {}
    for camera, names in unplaced.items():
        votes = Counter(nearest[name] for name in names if name in nearest)
        if votes:
            split = _most(votes)
            placed.update(dict.fromkeys(names, (split, f"near-duplicate: of a {split} image")))
        else:
            drawn[camera] = names
    splits = draw_groups(drawn, options.val, options.seed) if options.val and drawn else {}
    for names in drawn.values():
        for name in names:
            split = splits.get(name, "train")
            placed[name] = (split, f"new camera: {'drawn into ' if options.val else ''}{split}")
    return placed, sum(nearest[n] != placed[n][0] for n in nearest)


def _most(counts: Counter[str]) -> str:
    """The split holding most (train before val on a tie)."""
    return max(sorted(counts), key=lambda split: (counts[split], split == "train"))


def _lineage(base: Path, recorded: str, parent: dict[str, Any], increment: Path,
             lineage: dict[str, Any]) -> dict[str, Any]:
    """The parent, the increment (its mine run and labelling project) and the ancestors."""
    step = parent.get("increment", {})
    ancestor: dict[str, Any] = {
        "version": base.name, "dvc_hash": recorded,
        **{k: step[k] for k in ("mine_run", "tool", "project") if k in step},
        **{k: parent[k] for k in ("source", "format") if k in parent}}
    return {"parent": {"version": base.name, "dvc_hash": recorded, "path": str(base.resolve())},
            "increment": {**{k: lineage.get(k) for k in ("mine_run", "mine_run_id", "tool",
                                                        "url", "project", "selection_sha256")},
                          "path": str(increment.resolve())},
            "ancestors": [*parent.get("ancestors", []), ancestor]}


def _write(base: Path, out: Path, known: dict[str, Known], frames: list[NewFrame],
           placement: dict[str, tuple[str, str]], index: dict[int, int],
           meta: dict[str, Any], copy: bool) -> DirHash:
    """The version beside ``out``, then renamed into place, and ``out.dvc``; the file state
    learns the new frames (and the copies, which are new files)."""
    staging = out.with_name(f".{out.name}.growing-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    made: set[str] = set()
    entries, learned = [], []
    try:
        for relpath, parents in known.items():
            if relpath != LINEAGE:
                _link(_under(base, relpath), _under(staging, relpath), made, copy)
                entries.append((relpath, str(parents.md5), parents.stat.st_size))
                if copy:
                    learned.append((relpath, parents))
        for frame in frames:
            split = placement[frame.name][0]
            relpath = f"images/{split}/{frame.name}"
            _link(str(frame.image), _under(staging, relpath), made, copy)
            new = Known(frame.image.stat(), file_md5(frame.image), frame.phash)
            entries.append((relpath, str(new.md5), new.stat.st_size))
            learned.append((relpath, new))
            entries.append(write_hashed(staging, f"labels/{split}/{Path(frame.name).stem}.txt",
                                        "".join(f"{index[cls]} {rest}\n"
                                                for cls, rest in frame.lines)))
        entries.append(write_hashed(staging, LINEAGE, json.dumps(meta, indent=1) + "\n"))
        found = hash_entries(entries)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_dvc_file(out, found)
    remember(Known(os.stat(os.path.join(out, relpath)), k.md5, k.phash)
             for relpath, k in learned)
    return found


def _link(source: str, target: str, made: set[str], copy: bool) -> None:
    folder = os.path.dirname(target)
    if folder not in made:
        os.makedirs(folder, exist_ok=True)
        made.add(folder)
    place_file(source, target, copy)


def _under(root: Path, relpath: str) -> str:
    """``root/relpath`` as a string (``os.path.join`` costs seconds on a 100k-file dataset)."""
    return f"{root}{os.sep}{relpath}"


def _name(relpath: str) -> str:
    return relpath.rsplit("/", 1)[-1]


def _split_of(relpath: str) -> str | None:
    """``train`` of ``images/train/...``; None for a file outside ``images/<split>/``."""
    parts = relpath.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "images" \
        and os.path.splitext(relpath)[1].lower() in IMAGE_SUFFIXES else None
