"""Crashed runs, found: a running siteml process sets a heartbeat tag on its run at a fixed
interval, beside its host and pid. A RUNNING run is stale when its heartbeat (or, for a run
from before heartbeats, its start) is older than a threshold, or when its process on this host
is gone; reaping marks it KILLED with the reason as a tag.

``SITEML_HEARTBEAT_S`` sets the interval (default 20 s); a run counts as stale after
``SITEML_STALE_AFTER_S`` (default 90 s) without one.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from siteml.core import keys
from siteml.core.clock import seconds_of, stamp, stamp_at

if TYPE_CHECKING:  # the box agent beats without importing MLflow
    from mlflow import MlflowClient

INTERVAL_VARIABLE, STALE_VARIABLE = "SITEML_HEARTBEAT_S", "SITEML_STALE_AFTER_S"


def interval_s() -> float:
    return float(os.environ.get(INTERVAL_VARIABLE) or 20)


def stale_after_s() -> float:
    return float(os.environ.get(STALE_VARIABLE) or 90)




def process_tags() -> dict[str, str]:
    """The run's process (its host is ``env.hostname``) and its first heartbeat."""
    return {keys.PID: str(os.getpid()), keys.HEARTBEAT: stamp()}


class Heartbeat:
    """A daemon thread that calls ``beat`` with the time every ``interval`` seconds until
    stopped; a beat that fails (the server away) is dropped, the next one tries again."""

    def __init__(self, beat: Callable[[str], None], interval: float | None = None):
        self._beat, self._interval = beat, interval or interval_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="siteml-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat(stamp())
            except Exception:  # a missed beat only ages the run
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)


@dataclass
class StaleRun:
    """A RUNNING run whose process is gone, with why siteml thinks so."""

    run_id: str
    site: str
    run_name: str
    host: str | None
    pid: int | None
    last_seen: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staleness(run: Any, older_than: float, now: float | None = None) -> str | None:
    """Why a RUNNING run's process is gone, or None while it may still be alive."""
    if run.info.status != "RUNNING":
        return None
    tags = run.data.tags
    beat = tags.get(keys.HEARTBEAT)
    seen = seconds_of(beat) or run.info.start_time / 1000
    host, pid = tags.get(keys.ENV_HOSTNAME), tags.get(keys.PID)
    if host == platform.node() and pid and pid.isdigit() and not _alive(int(pid)):
        return f"its process {pid} on {host} is gone"
    age = (now or time.time()) - seen
    if age > older_than:
        what = "heartbeat" if beat else "heartbeat (none since it started)"
        return f"no {what} for {age:.0f} s (threshold {older_than:.0f} s)"
    return None


def stale(run: Any, site: str, reason: str) -> StaleRun:
    tags = run.data.tags
    pid = tags.get(keys.PID)
    beat = tags.get(keys.HEARTBEAT) or stamp_at(run.info.start_time / 1000)
    return StaleRun(run.info.run_id, site, run.info.run_name, tags.get(keys.ENV_HOSTNAME),
                    int(pid) if pid and pid.isdigit() else None, beat, reason)


def reap(client: MlflowClient, found: StaleRun) -> None:
    """Mark a stale run KILLED, with the reason as its ``siteml.reaped`` tag."""
    client.set_tag(found.run_id, keys.REAPED, found.reason)
    client.set_terminated(found.run_id, "KILLED")
