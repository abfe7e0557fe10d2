"""Running an ``mlflow server`` as siteml's child in the foreground (``siteml ui``, ``siteml
server start``): wait until it answers, pass signals on, return its exit code."""

from __future__ import annotations

import os
from collections.abc import Callable

SERVER_DEFAULTS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""MLflow 3.17's server starts a job runner with seven huey consumers for its GenAI jobs (trace
judges and rollups), which siteml does not use: they cost CPU at every start and outlive the
server when it is stopped with SIGTERM (measured: orphaned, still running). Off unless the
user sets it."""


def answers(host: str, port: int) -> bool:
    """Whether something already listens there: siteml would otherwise take that server's
    health for its own and print links into another store."""
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def serve(command: list[str], url: str, ready: Callable[[], None],
          env: dict[str, str] | None = None) -> int:
    """Run ``mlflow server`` as a child (in ``env``), rather than exec it, so that siteml can
    call ``ready`` once it answers (print the links, open a browser); return its exit code.

    Its output goes to stderr: stdout carries the links. Ctrl-C reaches both processes (one
    process group) and a SIGTERM to siteml is passed on; either way siteml waits for it to stop.
    """
    import signal
    import subprocess
    import time

    from siteml.tracking.store import Store, TrackingUnavailableError, check_reachable

    env = {**SERVER_DEFAULTS, **(os.environ if env is None else env)}
    env.pop("MLFLOW_WORKSPACE", None)  # client-only: MLflow's server refuses to start with it
    proc = subprocess.Popen(command, stdout=2, env=env)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        while proc.poll() is None:
            try:
                check_reachable(Store(url), timeout=2)
            except TrackingUnavailableError:
                time.sleep(0.5)
                continue
            ready()
            break
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
