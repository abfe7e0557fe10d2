"""A run that survives its tracking server blinking: while the server (or its database) does
not answer, metrics wait in memory and training goes on; every other call of the run waits for
the server, up to a bound, and then the run ends with an error that says exactly what was lost.

Metrics keep the timestamp and step they were logged with, so a batch sent twice (the server
stored it, the answer was lost) is the same row again, not a second value: MLflow's SQL store
keys a metric value by run, key, step, timestamp and value.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from siteml.tracking.store import TrackingUnavailableError

T = TypeVar("T")
WAIT_VARIABLE = "SITEML_SERVER_WAIT_S"
DEFAULT_WAIT_S = 120.0
"""How long a run waits for a server that went away before it gives up (a restart of the server
or of PostgreSQL takes well under a minute)."""
RETRY_EVERY_S = 5.0


def server_away(exc: BaseException) -> bool:
    """Whether ``exc`` says the server did not answer (no connection, a timeout, or 5xx after
    MLflow's own retries), rather than refusing the request."""
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return False
    return ("failed with exception" in str(exc)
            or exc.error_code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"))


def wait_limit() -> float:
    return float(os.environ.get(WAIT_VARIABLE, DEFAULT_WAIT_S))


class Patience:
    """Buffered metrics and patient calls for one run.

    Args:
        send: Sends one batch of metrics (at most MLflow's batch size).
        batch: That batch size.
    """

    def __init__(self, send: Callable[[list[Any]], None], batch: int) -> None:
        self._send, self._batch = send, batch
        self.pending: list[Any] = []
        self.away_since: float | None = None
        self.lost = False
        self._next_try = 0.0

    def add(self, metrics: list[Any]) -> None:
        """Queue ``metrics`` and send what is queued, unless the server is away (then they wait,
        and a retry is tried at most every few seconds, so training does not slow down)."""
        self.pending.extend(metrics)
        if self.away_since is None or time.monotonic() >= self._next_try:
            self._try(self._flush)

    def call(self, action: Callable[[], T]) -> T:
        """``action`` once the queued metrics are sent, waiting up to the limit for a server
        that is away; then ``TrackingUnavailableError`` naming what was not recorded."""
        deadline = time.monotonic() + (0 if self.lost else wait_limit())
        while True:
            done, value = self._try(lambda: (self._flush(), action())[1])
            if done:
                return value
            if time.monotonic() >= deadline:
                self.lost = True
                raise TrackingUnavailableError(self.loss())
            time.sleep(RETRY_EVERY_S)

    def loss(self) -> str:
        away = time.monotonic() - (self.away_since or time.monotonic())
        steps = sorted({m.step for m in self.pending})
        unsent = (f"{len(self.pending)} metric values of steps {steps[0]}-{steps[-1]} were not "
                  "recorded" if steps else "no metric value was lost")
        return f"the tracking server has not answered for {away:.0f} s; {unsent}"

    def _flush(self) -> None:
        while self.pending:
            self._send(self.pending[:self._batch])
            del self.pending[:self._batch]

    def _try(self, action: Callable[[], T]) -> tuple[bool, T | None]:
        """Run ``action``; (True, its value), or (False, None) if the server is away."""
        try:
            value = action()
        except Exception as exc:
            if not server_away(exc):
                raise
            now = time.monotonic()
            if self.away_since is None:
                self.away_since = now
                print(f"warning: the tracking server does not answer; metrics wait in memory "
                      f"(up to {wait_limit():.0f} s)", file=sys.stderr)
            self._next_try = now + RETRY_EVERY_S
            return False, None
        if self.away_since is not None:
            print(f"the tracking server is back after {time.monotonic() - self.away_since:.0f} "
                  "s; the waiting metrics were sent", file=sys.stderr)
            self.away_since = None
        return True, value
