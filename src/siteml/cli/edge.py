"""``siteml export``: a registered version into the edge box's model repository, and the check
of a repository against its manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siteml.cli.app import JsonOption, app, console, fail, print_json, reporting_errors
from siteml.core.errors import InvalidInputError


@app.command()
def export(
    arguments: Annotated[list[str], typer.Argument(
        metavar="MODEL_REF DIR", help="The version (customer/region-plant/zone/task[__variant]"
        "@alias or /N) and the repository folder; with --verify, the folder only.")],
    layout: Annotated[str, typer.Option(
        help="ovms (OpenVINO Model Server: DIR/<model>/<version>/ and DIR/config.json), "
             "triton (DIR/<model>/config.pbtxt and DIR/<model>/<version>/) or plain (the "
             "files only).")] = "ovms",
    verify: Annotated[bool, typer.Option(
        "--verify", help="Rehash every exported version in DIR against its manifest (exit 1 "
        "on a changed, missing or unlisted file).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Export a registered version for the site's inference server, with a manifest (lineage,
    classes, input size, precision, metrics, the sha256 of every file); exporting it again
    changes nothing.

    Exit codes: 0 exported (or already there), 1 --verify found a mismatch or tracking
    unavailable, 2 invalid input (nothing written).
    """
    if len(arguments) != (1 if verify else 2):
        raise fail(InvalidInputError(
            "give DIR with --verify" if verify else "give MODEL_REF and DIR"))
    if verify:
        _verify(Path(arguments[0]), as_json)
        return
    from siteml.lifecycle.export import export_version

    with reporting_errors():
        outcome = export_version(arguments[0], Path(arguments[1]), layout)
    if as_json:
        print_json(outcome.to_dict())
        return
    console().print(f"{outcome.status} {outcome.registered_model} version {outcome.version} "
                    f"-> {outcome.folder} ({outcome.layout}, {len(outcome.files)} files)",
                    markup=False, highlight=False)


def _verify(root: Path, as_json: bool) -> None:
    from siteml.lifecycle.repository import verify

    count, problems = verify(root)
    if not count:
        raise fail(InvalidInputError(f"{root}: no exported version (no siteml-manifest.json "
                                     "in DIR/<model>/<version>/)"))
    if as_json:
        print_json({"versions": count, "problems": problems})
    else:
        out = console(stderr=bool(problems))
        for line in problems:
            out.print(line, markup=False, highlight=False)
        out.print(f"{count} exported versions checked: "
                  f"{len(problems) or 'no'} problem(s)", markup=False, highlight=False)
    if problems:
        raise typer.Exit(1)
