"""``siteml data import``: a labelling tool's export -> a checked dataset in the YOLO layout,
written beside DIR and renamed into place only when everything passed, then ``DIR.dvc``.

Order: read the source (a format reader), check every image and box, resolve classes and
splits, and refuse (exit 2, nothing written) while anything cannot be repaired, unless asked to
skip it; only then write. Images are hard-linked (copied across file systems, or with
``copy``), never re-encoded; their md5 from the checks feeds the DVC hash, so no file is read
twice.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from siteml.core.errors import InvalidInputError
from siteml.data.classes import ClassPlan, resolve, unknown_message
from siteml.data.dvc_hash import (
    DirHash,
    dataset_block,
    hash_entries,
    write_dvc_file,
    write_hashed,
)
from siteml.data.file_state import Known, remember
from siteml.data.formats import read_source
from siteml.data.formats.source import SourceBox
from siteml.data.image_checks import CheckedImage, Findings, check_images
from siteml.data.layout import place_file
from siteml.data.splits import draw_splits

MAX_EXAMPLES = 3
DEFAULT_VAL = 0.2


@dataclass(frozen=True)
class ImportOptions:
    """Everything ``siteml data import`` was asked, beside the source and destination."""

    fmt: str
    plan: ClassPlan
    drop_unknown: bool = False
    val: float | None = None
    seed: int = 42
    group_by: str | None = None
    skip_bad: bool = False
    copy: bool = False
    images: Path | None = None


@dataclass
class ImportReport:
    """What the import found and did; ``problems`` are kind -> every example, and
    ``skipped_files`` why -> the source files the reader did not read."""

    problems: dict[str, list[str]]
    repaired: dict[str, int]
    notes: dict[str, int]
    split_source: str = ""
    dropped_labels: dict[str, int] = field(default_factory=dict)
    skipped_files: dict[str, list[str]] = field(default_factory=dict)

    def problem_lines(self, limit: int = MAX_EXAMPLES) -> list[str]:
        """One line per kind of problem with its count, then a few examples."""
        out = []
        for kind, examples in self.problems.items():
            out.append(f"{kind}: {len(examples)}")
            out += [f"  {e}" for e in examples[:limit]]
            if len(examples) > limit:
                out.append(f"  ... and {len(examples) - limit} more")
        return out

    def lines(self) -> list[str]:
        """The whole report as text: problems, repairs, notes, files and labels left out."""
        out = self.problem_lines()
        out += [f"{kind}: {n}" for kind, n in {**self.repaired, **self.notes}.items() if n]
        out += [f"{why}: {', '.join(files)}" for why, files in self.skipped_files.items()]
        out += [f"labels left out (--drop-unknown): {label} ({n} boxes)"
                for label, n in self.dropped_labels.items()]
        return out

    def to_dict(self) -> dict[str, object]:
        return {"problems": {k: {"count": len(v), "examples": v} for k, v in
                             self.problems.items()},
                "repaired": self.repaired, "notes": self.notes, "splits": self.split_source,
                "dropped_labels": self.dropped_labels, "skipped_files": self.skipped_files}


class ImportRefused(InvalidInputError):
    """Problems that cannot be repaired (without ``--skip-bad``) or labels of unknown classes
    (without ``--drop-unknown``): nothing is written."""

    def __init__(self, src: Path, report: ImportReport, unknown: Counter[str]):
        self.report = report
        lines = report.problem_lines()
        if report.problems:
            lines.append("(--skip-bad leaves these out and records them in import.json)")
        if unknown:
            lines.append(unknown_message(unknown))
        super().__init__(f"{src}: import refused, nothing written:\n  " + "\n  ".join(lines))


@dataclass(frozen=True)
class ImportResult:
    """The imported dataset: the scenario's ``dataset:`` block and what the import did."""

    path: Path
    hash: DirHash
    classes: list[str]
    images: dict[str, int]
    boxes: dict[str, int]
    report: ImportReport

    def dataset_block(self) -> dict[str, object]:
        """The scenario's ``dataset:`` fields, ready to paste (``version`` is the user's)."""
        return dataset_block(self.path, self.hash, self.images)


def import_dataset(src: Path, dest: Path, options: ImportOptions,
                   progress: Callable[[int], Callable[[str], None]] | None = None
                   ) -> ImportResult:
    """Import ``src`` into ``dest`` (which must not exist or be empty).

    Args:
        progress: Given the number of images, returns the callback each checked image calls.

    Raises:
        InvalidInputError: a bad source, destination or option (``ImportRefused`` for problems
            in the data); ``dest`` is then untouched.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInputError(f"{dest}: already exists and is not empty; import into a new "
                                "folder (a dataset version is never overwritten)")
    source = read_source(src, options.fmt, options.images)
    findings = Findings()
    checked = check_images(source, findings, progress(len(source.images)) if progress else None)
    used = Counter(box.label for image in checked for box in image.boxes)
    classes, unknown = resolve(options.plan, source.classes, used)
    report = ImportReport(dict(findings.problems), dict(findings.repaired), dict(source.notes),
                          dropped_labels=dict(unknown), skipped_files=source.skipped_files)
    if (findings.problems and not options.skip_bad) or (unknown and not options.drop_unknown):
        raise ImportRefused(src, report, unknown if not options.drop_unknown else Counter())
    splits, report.split_source = _splits(checked, options)
    index = {label: classes.index(options.plan.name(label)) for label in used
             if label not in unknown}
    staging = dest.with_name(f".{dest.name}.importing-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        entries, counts, boxes = _write(staging, checked, splits, index, options)
        entries.append(write_hashed(staging, "data.yaml", yaml.safe_dump(
            {"train": "images/train", "val": "images/val", "names": dict(enumerate(classes))},
            sort_keys=False)))
        entries.append(write_hashed(staging, "import.json", json.dumps({
            "source": str(src), "format": options.fmt, "classes": classes,
            "images": counts, "boxes": boxes, **report.to_dict()}, indent=1, sort_keys=True)))
        found = hash_entries(entries)
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_dvc_file(dest, found)
    return ImportResult(dest, found, classes, counts, boxes, report)


def _splits(checked: list[CheckedImage], options: ImportOptions) -> tuple[dict[str, str], str]:
    """Image name -> split, and how the splits were made. The source's own are kept when they
    name train and val and nothing asks to redraw; a drawn split leaves the source's test
    images in test."""
    own = {image.source.name: image.source.split for image in checked}
    asked = options.val is not None or options.group_by is not None
    if not asked and all(own.values()) and {"train", "val"} <= set(own.values()):
        return {name: str(split) for name, split in own.items()}, "kept from the source"
    val = DEFAULT_VAL if options.val is None else options.val
    test = {name: "test" for name, split in own.items() if split == "test"}
    drawn = draw_splits(sorted(set(own) - set(test)), val, options.seed, options.group_by)
    how = f"drawn: val {val:g}, seed {options.seed}"
    if options.group_by:
        how += f", whole groups by {options.group_by!r}"
    return {**drawn, **test}, how + (", test kept from the source" if test else "")


def _write(root: Path, checked: list[CheckedImage], splits: dict[str, str],
           index: dict[str, int], options: ImportOptions
           ) -> tuple[list[tuple[str, str, int]], dict[str, int], dict[str, int]]:
    entries, learned = [], []
    counts: Counter[str] = Counter()
    boxes: Counter[str] = Counter()
    for image in checked:
        split = splits[image.source.name]
        relpath = f"images/{split}/{image.source.name}"
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        place_file(image.source.path, target, options.copy)
        entries.append((relpath, image.md5, image.nbytes))
        learned.append(Known(target.stat(), image.md5))
        lines = [_yolo_line(index[b.label], b, image.size) for b in image.boxes if b.label in index]
        label = f"labels/{split}/{image.source.label_name}"
        entries.append(write_hashed(root, label, "".join(f"{line}\n" for line in lines)))
        counts[split] += 1
        boxes[split] += len(lines)
    remember(learned)  # the md5s the checks read, for the next hash of the dataset
    return entries, dict(sorted(counts.items())), dict(sorted(boxes.items()))


def _yolo_line(cls: int, box: SourceBox, size: tuple[int, int]) -> str:
    """``class x_center y_center width height``, normalized to the image, 6 decimals."""
    width, height = size
    values = ((box.xmin + box.xmax) / 2 / width, (box.ymin + box.ymax) / 2 / height,
              (box.xmax - box.xmin) / width, (box.ymax - box.ymin) / height)
    return f"{cls} " + " ".join(f"{v:.6f}" for v in values)
