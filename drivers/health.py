"""Per-device communication health and the reconnect backoff (pure, stdlib only).

A technician commissioning a device needs to see at a glance whether it answers,
how fast, and what goes wrong when it doesn't; the poller needs to know how long
to wait before trying a dead device again. Both are plain code here so they can be
tested without a device or an event loop.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from drivers import clock

__all__ = ["DeviceHealth", "DeviceState", "HealthSnapshot", "backoff_delay"]

# Enough samples for a stable p99 at one request per second over the last ~8 minutes.
LATENCY_SAMPLES = 512


class DeviceState(StrEnum):
    DISABLED = "disabled"  # configured off
    CONNECTING = "connecting"  # first attempt, or trying again after a backoff
    ONLINE = "online"  # the last scan answered
    DEGRADED = "degraded"  # connected, but some points fail (exceptions, bad config)
    OFFLINE = "offline"  # the last attempt failed; waiting out a backoff


def backoff_delay(
    attempt: int, base_s: float = 0.25, cap_s: float = 4.0, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (1 = the first retry).

    Exponential (base * 2^(attempt-1)), capped, with jitter drawn from the upper
    half [d/2, d] so a plant's worth of devices that dropped together do not all
    knock at once, while the wait never exceeds the cap. The cap (default 4 s)
    bounds how long a device that comes back stays unread.
    """
    if attempt < 1:
        return 0.0
    d = min(cap_s, base_s * (2 ** min(attempt - 1, 30)))
    return d * (0.5 + 0.5 * rand())


def _percentile(sorted_values: list[float], q: float) -> float:
    # Nearest-rank: the value a person can find in the data, not an interpolation.
    idx = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[idx]


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    state: str
    since_us: int
    last_good_us: int | None
    last_error: str
    last_error_us: int | None
    errors: dict[str, int]
    requests: int
    reconnects: int
    consecutive_failures: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(slots=True)
class DeviceHealth:
    """Counters and recent response times of one device, updated on every request."""

    state: DeviceState = DeviceState.CONNECTING
    since_us: int = 0
    last_good_us: int | None = None
    last_error: str = ""
    last_error_us: int | None = None
    errors: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    reconnects: int = 0
    consecutive_failures: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def set_state(self, state: DeviceState, now_us: int) -> bool:
        """Move to ``state``; True when it changed (the caller publishes device.state)."""
        if state is self.state:
            return False
        self.state = state
        self.since_us = now_us
        return True

    def request_ok(self, seconds: float, now_us: int) -> None:
        self.requests += 1
        # A fixed clock (repeatable runs, console snapshots) stands durations still too:
        # a response time that varies run to run would be the one moving figure.
        self.latencies.append(seconds if clock.fixed_us() is None else 0.0)
        self.last_good_us = now_us
        self.consecutive_failures = 0

    def request_failed(self, kind: str, detail: str, now_us: int) -> None:
        """Count a failed request; ``kind`` is the Reason (or a finer word such as ``timeout``)."""
        self.requests += 1
        self.errors[kind] += 1
        self.last_error = detail
        self.last_error_us = now_us
        self.consecutive_failures += 1

    def percentiles(self) -> tuple[float | None, float | None]:
        """(p50, p99) response time in milliseconds over the recent requests."""
        if not self.latencies:
            return None, None
        ordered = sorted(self.latencies)
        return round(_percentile(ordered, 0.50) * 1000, 3), round(_percentile(ordered, 0.99) * 1000, 3)

    def snapshot(self) -> HealthSnapshot:
        p50, p99 = self.percentiles()
        return HealthSnapshot(
            state=str(self.state),
            since_us=self.since_us,
            last_good_us=self.last_good_us,
            last_error=self.last_error,
            last_error_us=self.last_error_us,
            errors=dict(self.errors),
            requests=self.requests,
            reconnects=self.reconnects,
            consecutive_failures=self.consecutive_failures,
            p50_ms=p50,
            p99_ms=p99,
        )
