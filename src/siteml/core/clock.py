"""Heartbeat times as runs carry them: UTC, ISO 8601, to the second. Pure."""

from __future__ import annotations

import time
from datetime import UTC, datetime

STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp_at(seconds: float) -> str:
    """Epoch ``seconds`` as a heartbeat says it."""
    return datetime.fromtimestamp(seconds, UTC).strftime(STAMP_FORMAT)


def stamp() -> str:
    """Now, as a heartbeat says it."""
    return stamp_at(time.time())


def seconds_of(text: str | None) -> float | None:
    """A heartbeat's epoch seconds, or None for none."""
    return datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=UTC).timestamp() if text else None
