"""``siteml label push`` and ``pull``: a mine run's picked frames to Label Studio (or a CVAT
package) and the finished annotations back. Label Studio's server and key come from
``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` (its own names); nothing prompts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from siteml.cli.app import JsonOption, app, console, print_json, reporting_errors

label_app = typer.Typer(help="Labelling a mine run's frames in Label Studio or CVAT.",
                        no_args_is_help=True)
app.add_typer(label_app, name="label")

MineRun = Annotated[str, typer.Argument(
    help="The mine run, SITE/RUN_NAME, e.g. acme-steel/ulsan-plant2/quant/ppe-yolov11n-mine-v1.")]


def _key() -> str:
    return os.environ.get("LABEL_STUDIO_API_KEY", "")


@label_app.command("push")
def push(
    mine_run: MineRun,
    to: Annotated[str, typer.Option("--to", help="labelstudio, or cvat (a package to import).")],
    project: Annotated[str, typer.Option(help="The new project's (or CVAT task's) title.")],
    url: Annotated[str | None, typer.Option(
        help="Label Studio's address (default: LABEL_STUDIO_URL).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="cvat: the new folder for the package (images/, annotations.xml).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Make a project of the run's picked frames, the serving model's detections on them as
    pre-annotations (Label Studio), or a CVAT for images 1.1 package of them (--to cvat --out
    DIR: make a CVAT task of images/, then upload annotations.xml as CVAT 1.1); the project
    goes on the run.

    Exit codes: 0 pushed, 1 Label Studio or the tracking server unavailable, 2 invalid input
    (a run pushed before, a key refused).
    """
    from siteml.core.errors import InvalidInputError
    from siteml.lifecycle.labelling import push as push_frames
    from siteml.lifecycle.labelling import push_package

    with reporting_errors():
        if to == "cvat":
            if out is None:
                raise InvalidInputError("--to cvat writes a package: name its folder with --out")
            outcome = push_package(mine_run, project, out)
        elif to == "labelstudio":
            address = url or os.environ.get("LABEL_STUDIO_URL") or "http://localhost:8080"
            outcome = push_frames(mine_run, project, address, _key())
        else:
            raise InvalidInputError(f"--to {to!r}: use labelstudio or cvat")
    if as_json:
        print_json(outcome.to_dict())
    else:
        where = f"project {outcome.project} at " if outcome.project else ""
        console().print(f"{outcome.tasks} frames in {where}{outcome.url}")


@label_app.command("pull")
def pull(
    mine_run: MineRun,
    out: Annotated[Path, typer.Option(help="The new folder for the labelled frames.")],
    take_unfinished: Annotated[bool, typer.Option(
        "--take-unfinished", help="Take the finished tasks when some are not.")] = False,
    export: Annotated[Path | None, typer.Option(
        "--from", help="A CVAT run: CVAT's export of the task (CVAT for images 1.1: "
        "annotations.xml, or its folder).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the finished annotations as a labelled increment (frames, YOLO labels,
    import.json with the lineage) and log on the run how much the labellers corrected the
    model per class.

    Exit codes: 0 pulled, 1 Label Studio or the tracking server unavailable, 2 invalid input
    (unfinished tasks, nothing labelled, a class outside the task; nothing written).
    """
    from siteml.lifecycle.labelling import pull as pull_labels

    with reporting_errors():
        outcome = pull_labels(mine_run, out, _key(), take_unfinished, export)
    if as_json:
        print_json(outcome.to_dict())
    else:
        console().print(f"{outcome.labelled} frames, {outcome.boxes} boxes into {outcome.folder}"
                        + (f" ({outcome.unfinished} unfinished left)" if outcome.unfinished
                           else ""))
        for name, counts in outcome.corrections.items():
            console().print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
