"""The daemon's one time format: UTC integer microseconds since the epoch, in memory and
in storage; aware datetimes only at the edges (wire, display).

`now_us` is the daemon's wall clock. `set_fixed` stands it still, together with the
drivers' clock (`drivers.clock`), for `[simulator] fixed_clock`: every timestamp the
daemon hands out is then that instant, so runs are byte-for-byte repeatable. Waiting and
scheduling never read this clock (they use monotonic time), so nothing stalls or spins.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from drivers import clock as drivers_clock

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_fixed_us: int | None = None


def now_us() -> int:
    """Wall-clock time in UTC microseconds since the epoch, or the fixed instant if one is set."""
    fixed = _fixed_us
    return time.time_ns() // 1000 if fixed is None else fixed


def now() -> datetime:
    """`now_us` as an aware UTC datetime."""
    return from_us(now_us())


def set_fixed(us: int | None) -> None:
    """Stand the daemon's and the drivers' wall clocks still at ``us``; None lets them run."""
    global _fixed_us
    _fixed_us = None if us is None else int(us)
    drivers_clock.set_fixed(_fixed_us)


def fixed_us() -> int | None:
    """The fixed instant, or None while the clock runs."""
    return _fixed_us


def from_us(us: int) -> datetime:
    """Microseconds since the epoch to an aware UTC datetime (exact, no float rounding)."""
    return EPOCH + timedelta(microseconds=us)


def to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: the daemon only handles aware (UTC) times")
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
