"""The cores this process may run on, and how a parallel batch shares them out."""

from __future__ import annotations

import os

from siteml.core.errors import InvalidInputError


def usable_cores() -> list[int]:
    """The cores this process may run on: its affinity (a job of ``siteml run --jobs N`` is
    pinned to its share), every core where the platform has none."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def core_shares(jobs: int, share: bool = False) -> list[list[int]]:
    """``jobs`` disjoint sets of the usable cores, as even as they split; every core for each
    job when ``share`` is asked and the jobs outnumber the cores.

    Raises:
        InvalidInputError: fewer cores than jobs and ``share`` not asked, or ``jobs`` < 1.
    """
    cores = usable_cores()
    if jobs < 1:
        raise InvalidInputError(f"--jobs {jobs}: give 1 or more")
    if jobs > len(cores):
        if not share:
            raise InvalidInputError(
                f"--jobs {jobs}: this process may use {len(cores)} cores, so jobs would share "
                "cores and time each other's trainings and benchmarks; give --jobs "
                f"{len(cores)} or fewer, or --share-cores")
        return [cores] * jobs
    size, extra = divmod(len(cores), jobs)
    bounds = [n * size + min(n, extra) for n in range(jobs + 1)]
    return [cores[bounds[n]:bounds[n + 1]] for n in range(jobs)]
