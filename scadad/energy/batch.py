"""A whole day of interval figures from counter samples, in one pass: the recompute path
(after a comms gap, a corrected CT ratio, or history imported from elsewhere) and what
`bench/energy.py` times. The live engine computes the same figures incrementally.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scadad.energy.math import feeder_loss, interval_energy

SOURCES = frozenset({"grid", "generator", "solar"})


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    parent: str | None
    type: str


@dataclass(slots=True)
class DayResult:
    readings: dict[str, list[float | None]]  # meter -> kWh per interval (None: no figure)
    estimated: dict[str, list[bool]]
    losses: dict[str, list[tuple[str, float | None, float | None, str]]]  # parent -> (status, kWh, %, note)
    totals: dict[str, float]  # meter -> kWh of the day (intervals with a figure)


def compute_day(
    nodes: Sequence[Node],
    samples: Mapping[str, Sequence[tuple[int, float]]],
    day_start_us: int,
    interval_s: int = 900,
    intervals: int = 96,
    *,
    min_parent_kwh: float = 1.0,
    warn_pct: float = 3.0,
    alarm_pct: float = 6.0,
    negative_tolerance_pct: float = 1.0,
) -> DayResult:
    """Readings per meter and interval from time-sorted counter samples (kWh), then the
    loss of every parent against its non-source children, per interval. A bus without
    samples of its own takes what its sources delivered."""
    step = interval_s * 1_000_000
    bounds = [day_start_us + k * step for k in range(intervals + 1)]
    readings: dict[str, list[float | None]] = {}
    estimated: dict[str, list[bool]] = {}
    for node in nodes:
        s = samples.get(node.name)
        if not s:
            continue
        times = [t for t, _ in s]
        out: list[float | None] = []
        est: list[bool] = []
        lo = bisect_left(times, bounds[0])
        prev = s[lo - 1] if lo > 0 else None
        for k in range(intervals):
            hi = bisect_left(times, bounds[k + 1], lo)
            e = interval_energy(s[lo:hi], bounds[k], bounds[k + 1], prev=prev)
            out.append(e.kwh)
            est.append(e.estimated)
            if hi > lo:
                prev = s[hi - 1]
            lo = hi
        readings[node.name] = out
        estimated[node.name] = est
    children: dict[str, list[Node]] = {}
    for node in nodes:
        if node.parent is not None:
            children.setdefault(node.parent, []).append(node)
    losses: dict[str, list[tuple[str, float | None, float | None, str]]] = {}
    for node in nodes:
        kids = children.get(node.name)
        if not kids:
            continue
        loads = [c for c in kids if c.type not in SOURCES]
        if not loads:
            continue
        own = readings.get(node.name)
        srcs = [readings.get(c.name) for c in kids if c.type in SOURCES]
        rows = []
        for k in range(intervals):
            if own is not None:
                pin = own[k]
            elif srcs and all(x is not None and x[k] is not None for x in srcs):
                pin = sum(x[k] for x in srcs)  # type: ignore[index,misc]
            else:
                pin = None
            kidvals = []
            for c in loads:
                r = readings.get(c.name)
                v = r[k] if r is not None else None
                kidvals.append((c.name, v, "GOOD" if v is not None else "BAD"))
            res = feeder_loss(pin, kidvals, min_parent_kwh=min_parent_kwh, warn_pct=warn_pct, alarm_pct=alarm_pct,
                              negative_tolerance_pct=negative_tolerance_pct)  # fmt: skip
            rows.append((res.status, res.loss_kwh, res.loss_pct, res.note))
        losses[node.name] = rows
    totals = {n: sum(v for v in r if v is not None) for n, r in readings.items()}
    return DayResult(readings, estimated, losses, totals)
