"""``siteml data``: import from labelling tools, dataset profiles, DVC hashes and synthetic
site data."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
import yaml

from siteml.cli.app import JsonOption, console, data_app, fail, print_json
from siteml.core.errors import EXIT_INVALID_INPUT, InvalidInputError
from siteml.core.tasks import TASK_CLASSES, TASK_TYPES
from siteml.data.dvc_hash import dvc_file


@data_app.command("hash")
def data_hash(
    folder: Annotated[Path, typer.Argument(help="Dataset folder.")],
    write: Annotated[bool, typer.Option(help="Also write FOLDER.dvc as `dvc add` would.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the hash `dvc add FOLDER` records (md5 with .dir), and check FOLDER.dvc if present."""
    from siteml.core.progress import progress_bar
    from siteml.data.dvc_hash import dir_hash, dvc_file, list_files, read_dvc_file, write_dvc_file

    if not folder.is_dir():
        raise fail(InvalidInputError(f"{folder}: not a folder"))
    files = list_files(folder)
    with progress_bar(f"hashing {folder.name}", len(files)) as advance:
        found = dir_hash(folder, files, advance)
    recorded_file = dvc_file(folder)
    recorded = read_dvc_file(recorded_file) if recorded_file.is_file() else None
    if write:
        write_dvc_file(folder, found)
    if as_json:
        print_json({"md5": found.md5, "size": found.size, "nfiles": found.nfiles,
                    "dvc_file": str(recorded_file) if recorded else None, "recorded": recorded})
    else:
        typer.echo(found.md5)
    if recorded and recorded != found.md5 and not write:
        typer.echo(f"{recorded_file} records {recorded}: the folder changed since it was "
                   "written", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT)


@data_app.command("synth")
def data_synth(
    folder: Annotated[Path, typer.Argument(help="Folder to create.")],
    task: Annotated[str, typer.Option(help="Task type: picks the classes and their look.")] = "ppe",
    classes: Annotated[str | None, typer.Option(
        help="Comma-separated class names (default: the task's).")] = None,
    train: Annotated[int, typer.Option(min=1, help="Training images.")] = 200,
    val: Annotated[int, typer.Option(min=1, help="Validation images.")] = 50,
    imgsz: Annotated[int, typer.Option(min=32, max=4096, help="Image size in pixels.")] = 320,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same dataset.")] = 0,
    cameras: Annotated[int, typer.Option(
        min=0, help="Name the images as the frames of this many cameras, camK_TIME.jpg (a "
        "site's frames to mine; their labels are what a labeller would draw).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Generate a deterministic synthetic detection dataset (YOLO layout) and FOLDER.dvc."""
    from siteml.core.progress import progress_bar
    from siteml.data.synth import synthesize

    if task not in TASK_CLASSES:
        raise fail(InvalidInputError(f"unknown task {task!r}; valid: {', '.join(TASK_TYPES)}"))
    names = [c.strip() for c in classes.split(",")] if classes else list(TASK_CLASSES[task])
    try:
        with progress_bar(f"generating {folder.name}", train + val) as advance:
            found = synthesize(folder, names, {"train": train, "val": val}, imgsz, seed,
                               progress=lambda _: advance(""), cameras=cameras)
    except FileExistsError as exc:
        raise fail(InvalidInputError(str(exc))) from None
    result = {"path": str(folder), "classes": names, "images": train + val, "md5": found.md5,
              "nfiles": found.nfiles, "size": found.size}
    if as_json:
        print_json(result)
    else:
        typer.echo(f"{folder}: {train} train + {val} val images of {', '.join(names)}; "
                   f"dvc hash {found.md5}")


MaxDistance = Annotated[int, typer.Option(
    min=0, max=32, help="Near-duplicate: pHashes at most this many bits apart.")]
FORMAT_HELP = "coco, voc, cvat, labelme or yolo (Ultralytics, or Darknet: CVAT's YOLO 1.1)."


@data_app.command("import")
def data_import(
    src: Annotated[Path, typer.Argument(help="The labelling tool's export: a file or folder.")],
    folder: Annotated[Path, typer.Argument(help="Dataset folder to create (YOLO layout).")],
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)],
    classes: Annotated[str | None, typer.Option(
        help="Class order, comma-separated (default: the source's).")] = None,
    mapping: Annotated[str | None, typer.Option(
        "--map", help='Renames, e.g. "hardhat=helmet,hi-vis=vest".')] = None,
    drop_unknown: Annotated[bool, typer.Option(
        help="Leave out boxes of classes not in the class list (else refused).")] = False,
    val: Annotated[float | None, typer.Option(
        min=0.01, max=0.9, help="Draw splits: this share to val (default 0.2 when the source "
        "has no train and val splits; given, it redraws them).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the split draw.")] = 42,
    group_by: Annotated[str | None, typer.Option(
        help="Regex over image paths (first group, else the match), e.g. 'cam\\d+': each "
        "group lands whole in one split.")] = None,
    skip_bad: Annotated[bool, typer.Option(
        help="Leave out what cannot be repaired (recorded in import.json) instead of "
        "refusing.")] = False,
    copy: Annotated[bool, typer.Option(
        help="Copy images instead of hard-linking them.")] = False,
    images: Annotated[Path | None, typer.Option(
        help="Folder the source's image paths are relative to (default: found beside it).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import labelled images into a checked YOLO dataset, write FOLDER.dvc, print the
    scenario's dataset: block."""
    from siteml.core.extras import MissingExtraError, check_installed
    from siteml.core.progress import progress_bar
    from siteml.data.classes import parse_plan
    from siteml.data.importer import ImportOptions, import_dataset

    try:
        check_installed("globox", "data")
        check_installed("pycocotools", "data")
        options = ImportOptions(fmt=fmt, plan=parse_plan(classes, mapping),
                                drop_unknown=drop_unknown, val=val, seed=seed,
                                group_by=group_by, skip_bad=skip_bad, copy=copy, images=images)
        with contextlib.ExitStack() as stack:
            result = import_dataset(src, folder, options, lambda total: stack.enter_context(
                progress_bar(f"checking {src.name}", total)))
    except (InvalidInputError, MissingExtraError) as exc:
        raise fail(exc) from None
    block = {"version": folder.name, **result.dataset_block()}
    if as_json:
        print_json({"dataset": block, "classes": result.classes, "images": result.images,
                    "boxes": result.boxes, "dvc_file": str(dvc_file(result.path)),
                    "report": result.report.to_dict()})
        return
    err = console(stderr=True)
    for line in result.report.lines():
        err.print(line, markup=False)
    err.print(f"{folder}: {', '.join(f'{n} {s}' for s, n in result.images.items())} images, "
              f"classes {', '.join(result.classes)}; splits {result.report.split_source}; "
              f"wrote {dvc_file(result.path)}", markup=False)
    typer.echo(yaml.safe_dump({"dataset": block}, sort_keys=False), nl=False)


@data_app.command("grow")
def data_grow(
    base: Annotated[Path, typer.Argument(help="The parent dataset version (with BASE.dvc).")],
    new: Annotated[Path, typer.Argument(help="The labelled increment (siteml label pull).")],
    out: Annotated[Path, typer.Option(help="The new version's folder (must not exist).")],
    val: Annotated[float | None, typer.Option(
        min=0.01, max=0.9, help="Draw whole cameras the parent lacks into val, about this "
        "share of their frames (default: they go to train).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of that draw.")] = 42,
    group_by: Annotated[str | None, typer.Option(
        help="Regex over image names finding the camera (first group, else the match), for "
        "the parent's images and frames pulled without one, e.g. 'cam\\d+'.")] = None,
    max_distance: MaxDistance = 4,
    copy: Annotated[bool, typer.Option(help="Copy files instead of hard-linking them.")
                    ] = False,
    as_json: JsonOption = False,
) -> None:
    """A new dataset version: the parent's files and the labelled frames, each frame where
    its camera (else its near-duplicates) already is; writes OUT.dvc and prints the scenario's
    dataset: block."""
    from siteml.core.extras import MissingExtraError, check_installed
    from siteml.core.progress import progress_bar
    from siteml.data.grow import GrowOptions, grow

    try:
        check_installed("imagehash", "data")
        with contextlib.ExitStack() as stack:
            result = grow(base, new, out, GrowOptions(val, seed, group_by, max_distance, copy),
                          lambda what, total: stack.enter_context(progress_bar(what, total)))
    except (InvalidInputError, MissingExtraError) as exc:
        raise fail(exc) from None
    block = {"version": out.name, **result.dataset_block()}
    if as_json:
        print_json({"dataset": block, **result.to_dict(), "dvc_file": str(dvc_file(out))})
        return
    console(stderr=True).print(
        f"{out}: {', '.join(f'{n} {s}' for s, n in result.images.items())} images, of which "
        f"new {', '.join(f'{n} {s}' for s, n in result.added.items())} (placed by "
        f"{', '.join(f'{why} {n}' for why, n in result.placed.items())}); "
        f"{result.reused} of the parent's hashes reused, {result.hashed} files hashed; "
        f"wrote {dvc_file(out)}", markup=False)
    if result.across:
        console(stderr=True).print(
            f"[yellow]warning:[/yellow] {result.across} new frames have a near-duplicate in "
            "another split than their camera's (see import.json)")
    typer.echo(yaml.safe_dump({"dataset": block}, sort_keys=False), nl=False)


@data_app.command("stats")
def data_stats(
    folder: Annotated[Path, typer.Argument(help="Dataset folder (YOLO layout).")],
    plot: Annotated[Path | None, typer.Option(help="Also draw the profile into this PNG.")
                    ] = None,
    max_distance: MaxDistance = 4,
    as_json: JsonOption = False,
) -> None:
    """Images and boxes per split and class, box sizes, and near-duplicates across splits."""
    from rich.table import Table

    from siteml.core.extras import MissingExtraError, check_installed
    from siteml.data.profile import plot_profile, profile_dataset

    if not (folder / "images").is_dir():
        raise fail(InvalidInputError(f"{folder}: not a dataset folder (no images/)"))
    try:
        check_installed("imagehash", "data")
    except MissingExtraError as exc:
        raise fail(exc) from None
    profile = profile_dataset(folder, max_distance)
    if plot:
        plot_profile(profile, plot)
    if as_json:
        print_json(profile)
        return
    out = console()
    table = Table("split", "images", "boxes", "without boxes", "small", "medium", "large",
                  *profile["classes"])
    for split, stats in profile["splits"].items():
        table.add_row(split, *(str(stats[k]) for k in ("images", "boxes", "images_without_boxes")),
                      *(str(v) for v in stats["box_sizes"].values()),
                      *(str(stats["boxes_per_class"].get(c, 0)) for c in profile["classes"]))
    out.print(table)
    near = profile["near_duplicates"]
    for pair, count in near["counts"].items():
        later, earlier = pair.split("~")
        style = "[yellow]" if count else ""
        out.print(f"{style}{count} {later} images have a near-duplicate in {earlier} "
                  f"(pHash within {near['max_distance']} bits)")
    for worst in near["worst_pairs"]:
        out.print(f"  {worst['distance']:2d} bits: {worst['a']}  ~  {worst['b']}", markup=False)
