"""``siteml data``: DVC hashes of dataset folders and synthetic site data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siteml.cli.app import JsonOption, data_app, fail, print_json
from siteml.core.errors import EXIT_INVALID_INPUT, InvalidInputError
from siteml.core.tasks import TASK_CLASSES, TASK_TYPES


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
                               progress=lambda _: advance(""))
    except FileExistsError as exc:
        raise fail(InvalidInputError(str(exc))) from None
    result = {"path": str(folder), "classes": names, "images": train + val, "md5": found.md5,
              "nfiles": found.nfiles, "size": found.size}
    if as_json:
        print_json(result)
    else:
        typer.echo(f"{folder}: {train} train + {val} val images of {', '.join(names)}; "
                   f"dvc hash {found.md5}")
