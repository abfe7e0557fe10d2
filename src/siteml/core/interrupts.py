"""Ctrl-C and SIGTERM as a recorded fact, not only an exception.

Python turns a signal into an exception wherever the main thread happens to be, and that
exception can be lost: raised inside a ``__del__`` or a weakref callback (which torch runs all
the time) it is printed ("Exception ignored in ...") and dropped, and a library's ``except
BaseException`` may drop it too. A run that only relied on the exception would train on and end
FINISHED. So the handlers first record the request; the lifecycle checks it before it registers
or ends a run FINISHED, and a choke point every epoch passes (``RunRecorder.log_metrics``)
raises it again, so that a lost one still stops the work.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

EXIT_SIGINT = 130
EXIT_SIGTERM = 143
_EXIT_CODES = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}


class Terminated(BaseException):
    """SIGTERM, raised in the main thread (as ``KeyboardInterrupt`` is for SIGINT)."""


class _State:
    requested: int | None = None
    """The exit code of the first interrupt received (130 SIGINT, 143 SIGTERM), or None."""
    deferring = False
    """While True, a signal is recorded but not raised (a run being created)."""


def request(exit_code: int) -> None:
    """Record an interrupt (the first one counts)."""
    if _State.requested is None:
        _State.requested = exit_code


def requested() -> int | None:
    """The exit code of the interrupt received, or None."""
    return _State.requested


def raise_if_requested() -> None:
    """Raise the interrupt received, again if it was raised before and lost."""
    if _State.requested is not None:
        raise Terminated() if _State.requested == EXIT_SIGTERM else KeyboardInterrupt()


def exit_code(exc: BaseException) -> int:
    """The exit code of an interruption: the one recorded, else from the exception raised."""
    return _State.requested or (EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT)


def _handler(signum: int, frame: Any) -> None:
    """Record the signal; raise it the first time only, so that a second Ctrl-C (from the
    terminal and from a batch's driver) does not cut short the marking of a run KILLED."""
    first = _State.requested is None
    request(_EXIT_CODES[signal.Signals(signum)])
    if first and not _State.deferring:
        raise_if_requested()


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM recorded and raised (see ``_handler``) in the main thread while the
    block runs; the request ends with the outermost block (a worker process runs one step
    after another)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _EXIT_CODES}
    for signum in _EXIT_CODES:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if _handler not in previous.values():
            _State.requested = None


@contextmanager
def deferred() -> Iterator[None]:
    """Record a signal without raising it until the block is done: a run that is being
    created has no handle yet by which it could be marked KILLED."""
    _State.deferring = True
    try:
        yield
    finally:
        _State.deferring = False
    raise_if_requested()
