"""The daemon's one time format: UTC integer microseconds since the epoch, in memory and
in storage; aware datetimes only at the edges (wire, display)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def from_us(us: int) -> datetime:
    """Microseconds since the epoch to an aware UTC datetime (exact, no float rounding)."""
    return EPOCH + timedelta(microseconds=us)


def to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: the daemon only handles aware (UTC) times")
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
