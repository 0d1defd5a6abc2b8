"""The drivers' wall clock: timestamps of reads and device health (stdlib only).

Drivers stamp what they read with the wall-clock time (UTC microseconds since the
epoch). The owner of the drivers can stand that clock still (`set_fixed`) so a whole
daemon, simulated plant included, produces the same timestamps on every run; the
daemon does this for its `[simulator] fixed_clock` setting. Only timestamps freeze:
timeouts, latencies and schedules use monotonic clocks and keep running.
"""

from __future__ import annotations

import time

__all__ = ["fixed_us", "now_s", "now_us", "set_fixed"]

_fixed_us: int | None = None


def now_us() -> int:
    """Wall-clock time in UTC microseconds since the epoch, or the fixed instant if one is set."""
    fixed = _fixed_us
    return time.time_ns() // 1000 if fixed is None else fixed


def now_s() -> float:
    """`now_us` in seconds, for clocks that want a float (the simulator's models)."""
    return now_us() / 1_000_000


def set_fixed(us: int | None) -> None:
    """Stand the clock still at ``us`` (microseconds since the epoch); None lets it run again."""
    global _fixed_us
    _fixed_us = None if us is None else int(us)


def fixed_us() -> int | None:
    """The fixed instant, or None while the clock runs."""
    return _fixed_us
