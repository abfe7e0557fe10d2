"""The parallel local executor (``siteml run --jobs N``): a batch's independent steps in N
worker processes on this machine, each pinned to its own share of the cores, so that two
trainings or benchmarks never time each other (unless ``--share-cores``).

Workers are started once (``spawn``: no state copied from the driver) and each runs steps one
after another, paying its imports once. A step's run is tagged with its cores
(``siteml.cores``). Ctrl-C or SIGTERM: every running step is interrupted (its run KILLED). A
worker that dies (``kill -9``, out of memory) fails its step; its run stays RUNNING until a new
attempt or ``siteml runs --reap`` finds its process gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any

from siteml.core import interrupts, keys
from siteml.core.interrupts import Terminated
from siteml.core.progress import plain_bars
from siteml.lifecycle.batch import Step, run_step
from siteml.lifecycle.options import RunOptions
from siteml.lifecycle.outcomes import FAILED, KILLED, StepOutcome
from siteml.lifecycle.run import RunInterruptedError

CANCEL_WAIT_S = 60
_cores = ""
"""In a worker: the cores it is pinned to, as its runs are tagged."""


def _start_worker(shares: Any, pids: Any) -> None:
    """Pin this worker to a share of the cores; it ignores Ctrl-C between steps."""
    global _cores
    share = shares.get()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, share)
    _cores = ",".join(map(str, share))
    pids.put(os.getpid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    plain_bars()


def _in_worker(step: Step, options: RunOptions) -> StepOutcome:
    """A step in a worker, Ctrl-C and SIGTERM handled while it runs (``core.interrupts``);
    interrupted, a KILLED row."""
    with interrupts.handled():
        try:
            return run_step(step, replace(options, executor_tags={keys.CORES: _cores}))
        except (RunInterruptedError, KeyboardInterrupt, Terminated) as exc:
            return step.row(KILLED, str(exc) or "interrupted")


class LocalJobs:
    """Runs a step at once per share of the cores, in worker processes on this machine."""

    checks_data_here = True

    def __init__(self, steps: list[Step], options: RunOptions, shares: list[list[int]]):
        """``shares``: the cores of each worker (``core_shares``)."""
        self.steps, self.options, self.shares, self.capacity = steps, options, shares, len(shares)
        self.context = multiprocessing.get_context("spawn")
        self.pids = self.context.SimpleQueue()
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        shares = self.context.SimpleQueue()
        for share in self.shares:
            shares.put(share)
        return ProcessPoolExecutor(self.capacity, self.context, _start_worker,
                                   (shares, self.pids))

    def submit(self, index: int, pinned: dict[str, int]) -> Future:
        arguments = (_in_worker, self.steps[index], replace(self.options, pinned=pinned))
        try:
            future = self.pool.submit(*arguments)
        except BrokenProcessPool:  # a worker died earlier: start afresh
            self.pool.shutdown(wait=True)
            self.pool = self._new_pool()
            future = self.pool.submit(*arguments)
        future.index = index  # type: ignore[attr-defined]
        return future

    def wait(self, running: list[Future]) -> tuple[Future, StepOutcome]:
        done, _ = wait_for(running, return_when=FIRST_COMPLETED)
        future = next(iter(done))
        step = self.steps[future.index]  # type: ignore[attr-defined]
        try:
            return future, future.result()
        except BrokenProcessPool:
            return future, step.row(FAILED, "its worker process died (killed, or out of "
                                            "memory)")

    def cancel(self, running: list[Future]) -> None:
        """Interrupt the running steps (their runs end KILLED) and wait for them to end."""
        while not self.pids.empty():
            pid = self.pids.get()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
        wait_for(running, timeout=CANCEL_WAIT_S)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
