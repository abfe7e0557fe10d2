"""The fleet of edge boxes: ``deploy`` (the version a box should serve), ``box run`` (the
agent on a box), ``fleet`` (what every box serves)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siteml.cli.app import (
    JsonOption,
    SiteOption,
    SitesDirOption,
    app,
    console,
    print_json,
    read_client,
    reporting_errors,
    site_option,
)
from siteml.cli.render import DEPLOY_COLUMNS, FLEET_COLUMNS, print_table

box_app = typer.Typer(help="The agent of one edge box.", no_args_is_help=True)
app.add_typer(box_app, name="box")


@app.command()
def deploy(
    model_ref: Annotated[str, typer.Argument(
        help="The version, e.g. customer/region-plant/zone/ppe__openvino_int8/3 or …@champion "
             "(resolved now: the boxes get that number).")],
    box: Annotated[list[str], typer.Option(
        "--box", help="A box of the site file's boxes: list. Repeatable.")],
    sites_dir: SitesDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Say which version boxes should serve: the alias box-<name> on the variant (MLflow's UI
    shows it), each move in siteml models --history; the boxes' agents pull it.

    Exit codes: 0 moved, 1 tracking unavailable, 2 invalid input (nothing moved).
    """
    import getpass

    from siteml.lifecycle.deploy import deploy as deploy_boxes

    with reporting_errors():
        moves = deploy_boxes(model_ref, box, getpass.getuser(), sites_dir=sites_dir)
    rows = [move.to_dict() for move in moves]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, DEPLOY_COLUMNS)


@box_app.command("run")
def box_run(
    box: Annotated[str, typer.Option("--box", help="This box's name (the site file's).")],
    site: Annotated[str, typer.Option(help="Site path customer/region-plant/zone.")],
    repo: Annotated[Path, typer.Option(help="The inference server's model repository.")],
    layout: Annotated[str, typer.Option(help="ovms or triton.")] = "ovms",
    interval: Annotated[float, typer.Option(
        min=0.5, help="Seconds between cycles (a box is stale after three missed).")] = 30.0,
    cameras: Annotated[int, typer.Option(min=0, help="Cameras the box serves.")] = 0,
    fps: Annotated[float, typer.Option(min=0, help="Frames per second it serves.")] = 0.0,
    max_slowdown: Annotated[float, typer.Option(
        min=0.01, help="Refuse a version this many times slower than the one it replaces "
        "(timed in turns on the canary images).")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="One cycle, then exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Serve what the registry says this box should: pull each new version, check it on this
    box's runtime against the detections registered for its canary images, switch the server
    to it atomically, and report what the box serves to the site's experiment.

    Exit codes: 0 stopped (Ctrl-C, SIGTERM) or --once done, 1 tracking unavailable or a
    failed --once cycle, 2 invalid input.
    """
    import threading

    from siteml.core.errors import InvalidInputError
    from siteml.core.interrupts import Terminated, handled
    from siteml.lifecycle.box_agent import Agent, Box, run_agent
    from siteml.scenario.schema import BOX_LAYOUTS
    from siteml.tracking.store import resolve_store

    site = site_option(site) or ""
    err = console(stderr=True)
    with reporting_errors():
        if layout not in BOX_LAYOUTS:
            raise InvalidInputError(f"--layout {layout!r}: use one of {', '.join(BOX_LAYOUTS)}")
        agent = Agent(Box(box, site, repo.absolute(), layout, interval, cameras, fps,
                          max_slowdown),
                      resolve_store())

        def report(changes: list) -> None:
            for change in changes:
                if as_json:
                    print_json(change.to_dict())
                else:
                    err.print(f"{change.model}/{change.version}: {change.status}"
                              + (f" ({change.reason})" if change.reason else ""),
                              markup=False, highlight=False)

        try:
            with handled():
                run_agent(agent, threading.Event(), once, report,
                          lambda line: err.print(line, markup=False, highlight=False))
        except (KeyboardInterrupt, Terminated):  # the box serves on; its runs stay RUNNING
            err.print(f"box {box}: agent stopped", markup=False, highlight=False)


@box_app.command("switch", hidden=True)
def box_switch(
    box_json: Annotated[str, typer.Option("--box-json", help="The box, as the agent has it.")],
    model: Annotated[str, typer.Option(help="Registered (dotted) name.")],
    version: Annotated[int, typer.Option(help="The version to serve.")],
) -> None:
    """One switch of the box agent, run as its child: the outcome as one line of JSON."""
    import json

    from siteml.lifecycle.box_agent import Box
    from siteml.lifecycle.box_switch import switch

    spec = json.loads(box_json)
    with reporting_errors():
        change = switch(Box(**{**spec, "repo": Path(spec["repo"])}), model, version)
    typer.echo(json.dumps(change.to_dict()))


@app.command()
def rollout(
    model_ref: Annotated[str, typer.Argument(help="The version to roll out (…/N or …@alias).")],
    site: Annotated[Path, typer.Option(
        "--site", exists=True, dir_okay=False, help="The site file listing its boxes.")],
    rings: Annotated[str, typer.Option(
        help="Cumulative ring sizes, box counts or percentages of the site's boxes, in the "
             "site file's order; the last is 100%.")] = "1,25%,100%",
    max_failed: Annotated[int, typer.Option(
        min=0, help="Failed boxes tolerated (a refusal, a stale box, a ring's time up) before "
        "the rollout stops and puts every box it moved back.")] = 0,
    ring_timeout: Annotated[float, typer.Option(
        min=1, help="Seconds a ring may take to serve the version.")] = 600.0,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between looks at the fleet.")
                    ] = 2.0,
    as_json: JsonOption = False,
) -> None:
    """Roll a version out over a site's boxes ring by ring: each ring's boxes must serve it
    and report healthy before the next; past --max-failed failures every moved box is put
    back on its previous version. Run the same command again to resume an interrupted one.

    Exit codes: 0 every box serves it, 1 rolled back (or tracking unavailable), 2 invalid
    input (nothing moved).
    """
    import getpass

    from siteml.lifecycle.rollout import RolloutPlan
    from siteml.lifecycle.rollout import rollout as roll_out

    err = console(stderr=True)
    plan = RolloutPlan(model_ref, site, rings, max_failed, ring_timeout, poll)
    with reporting_errors():
        outcome = roll_out(plan, getpass.getuser(),
                           say=lambda line: err.print(line, markup=False, highlight=False))
    if as_json:
        print_json(outcome.to_dict())
    elif outcome.status == "finished":
        typer.echo(f"{outcome.model}/{outcome.version}: all {len(outcome.moved)} boxes serve "
                   f"it ({outcome.seconds:g} s)")
    if outcome.status != "finished":
        err.print(f"rolled back: {outcome.reason()}; {len(outcome.moved)} boxes put back on "
                  f"their previous version in {outcome.rollback_s:g} s", markup=False,
                  highlight=False)
        raise typer.Exit(1)


@app.command()
def fleet(site: SiteOption = None, as_json: JsonOption = False) -> None:
    """Every box of the sites you may see: the version it should serve and the one it serves,
    its last report, health (ok, updating, refused, stale after three missed intervals, not
    reporting), cameras, FPS, and whether it is behind the site's @champion."""
    site = site_option(site)
    store, client = read_client(as_json, [], site)
    from siteml.tracking.fleet import fleet as fleet_rows
    from siteml.tracking.workspaces import across_customers

    with reporting_errors():
        rows = across_customers(store, lambda: fleet_rows(client, site))
    if as_json:
        print_json(rows)
    elif not rows:
        typer.echo("no boxes" + (f" at {site}" if site else ""))
    else:
        print_table(rows, FLEET_COLUMNS)
