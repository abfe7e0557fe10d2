"""Progress bars on the terminal (stderr) for the steps that take more than a few seconds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_live = True


def plain_bars() -> None:
    """Print each bar once, when it ends, instead of redrawing it: for processes that share a
    terminal (the jobs of ``siteml run --jobs N``)."""
    global _live
    _live = False


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar; yields ``advance(info)`` that moves it one step and shows ``info``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    console = Console(stderr=True, force_terminal=None if _live else False)
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(info: str = "") -> None:
            progress.update(task, advance=1, info=info)

        yield advance


def note(message: str) -> None:
    """One status line on stderr, for a step that must not share the CPU with a live bar (a
    timed loop: the bar's refresh thread would show up in the latencies)."""
    from rich.console import Console

    Console(stderr=True).print(message, highlight=False)
