"""ISA-18.2 / EEMUA 191 alarm-system figures over a period [start, end), from journal rows.

Pure functions of data: the journal module reads the rows, the API hands the result to
`scadactl alarm kpi`, and the tests call `compute_kpis` directly. These definitions are
what the CLI prints:

activations
    Journal rows whose event is "activated" with start <= time < end. Every other event
    (acknowledged, cleared, shelved...) and every row outside the period is ignored.
windows
    Fixed 10-minute windows counted from start: [start, start+10 min), ... The last one
    may be partial. windows = ceil((end - start) / 10 min).
per_operator_per_10min_avg
    activations / windows / operators.
per_operator_per_10min_max
    The largest count of activations in one window / operators.
per_operator_per_day
    activations / ((end - start) / 24 h) / operators.
flood_windows, flood_pct
    A flood window has more than 10 activations per operator (EEMUA 191): count /
    operators > 10, so exactly 10 is not a flood. flood_pct = 100 * flood_windows /
    windows.
bad_actors
    The `top` alarms with the most activations, most first, ties by name ascending.
    An alarm is a (tag, kind) pair, named "<tag>:<kind>" (just "<tag>" when the row
    has no kind); its priority is that of its latest activation in the period.
chattering
    Alarms with 3 or more activations within less than 60 s (activations i and i+2 of
    the alarm, in time order, less than 60 s apart: exactly 60 s is not chattering).
    count is the most activations of the alarm within any span shorter than 60 s.
    Sorted by count, most first, then by name.
standing
    Alarms active at end that have been active for 24 h or more (active_since <=
    end - 24 h); hours = (end - active_since) in hours, to 0.1. Longest first, then
    by name.
priority_counts, priority_distribution
    Activations per priority; critical, high, medium and low are always present (0
    when none), "unknown" counts rows without a priority and is present only when
    there are some (an unexpected priority keeps its own name). The distribution is
    each count's percentage of all activations, to 0.1 (all 0.0 with no activations).

Rates (the three per-operator figures and flood_pct) are rounded to 2 decimals.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from scadad.api.alarm_messages import PRIORITIES, AlarmCount, AlarmKpis, StandingAlarm
from scadad.clock import from_us

WINDOW_US = 600_000_000  # 10 min
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
FLOOD_PER_OPERATOR = 10  # EEMUA 191: more than 10 alarms per 10 min per operator
CHATTER_SPAN_US = 60_000_000
CHATTER_MIN = 3
STANDING_US = DAY_US
UNKNOWN_PRIORITY = "unknown"


@dataclass(slots=True, frozen=True)
class JournalRow:
    """One alarm_events row, as the journal module reads it (time in UTC µs)."""

    ts_us: int
    rule_id: int | None
    tag: str
    kind: str | None
    event: str  # activated, acknowledged, cleared, shelved, ... (only "activated" counts)
    priority: str | None


@dataclass(slots=True, frozen=True)
class ActiveAlarm:
    """An alarm active at the end of the period, for the standing-alarm figure."""

    tag: str
    kind: str | None
    priority: str | None
    active_since_us: int


@dataclass(slots=True)
class _Tally:
    """One alarm's activations in the period."""

    times: list[int]
    last_us: int
    priority: str | None


def alarm_name(tag: str, kind: str | None) -> str:
    """The alarm's name as the API prints it: "<tag>:<kind>", or the tag when there is no kind."""
    return tag if kind is None else f"{tag}:{kind}"


def compute_kpis(
    rows: Iterable[JournalRow],
    start_us: int,
    end_us: int,
    *,
    operators: int = 1,
    top: int = 10,
    active: Iterable[ActiveAlarm] = (),
) -> AlarmKpis:
    """The alarm KPIs over [start_us, end_us) from journal rows in any order (see the
    module docstring for the definitions). `active` are the alarms active at end_us."""
    if end_us <= start_us:
        raise ValueError(f"end ({from_us(end_us).isoformat()}) must be after start ({from_us(start_us).isoformat()})")
    if operators < 1:
        raise ValueError(f"operators must be at least 1, not {operators}")
    if top < 0:
        raise ValueError(f"top must not be negative, not {top}")

    tallies: dict[tuple[str, str | None], _Tally] = {}
    per_window: dict[int, int] = {}
    per_priority: dict[str | None, int] = {}
    # One pass, touching each activation a handful of times: this runs over a day or a
    # month of journal (a million rows must take well under 2 s).
    for row in rows:
        if row.event != "activated":
            continue
        ts = row.ts_us
        if ts < start_us or ts >= end_us:
            continue
        key = (row.tag, row.kind)
        tally = tallies.get(key)
        if tally is None:
            tallies[key] = _Tally([ts], ts, row.priority)
        else:
            tally.times.append(ts)
            if ts >= tally.last_us:
                tally.last_us = ts
                tally.priority = row.priority
        window = (ts - start_us) // WINDOW_US
        per_window[window] = per_window.get(window, 0) + 1
        priority = row.priority
        per_priority[priority] = per_priority.get(priority, 0) + 1

    activations = sum(per_window.values())
    windows = -(-(end_us - start_us) // WINDOW_US)
    busiest = max(per_window.values(), default=0)
    flood_windows = sum(1 for count in per_window.values() if count > FLOOD_PER_OPERATOR * operators)

    counts = [
        AlarmCount(name=alarm_name(tag, kind), tag=tag, kind=kind, priority=tally.priority, count=len(tally.times))
        for (tag, kind), tally in tallies.items()
    ]
    bad_actors = heapq.nsmallest(top, counts, key=lambda c: (-c.count, c.name))

    chattering = []
    for alarm in counts:
        most = _most_within_span(tallies[(alarm.tag, alarm.kind)].times)
        if most >= CHATTER_MIN:
            chattering.append(
                AlarmCount(name=alarm.name, tag=alarm.tag, kind=alarm.kind, priority=alarm.priority, count=most)
            )
    chattering.sort(key=lambda c: (-c.count, c.name))

    standing = [
        StandingAlarm(
            name=alarm_name(a.tag, a.kind),
            tag=a.tag,
            kind=a.kind,
            priority=a.priority,
            active_since=from_us(a.active_since_us),
            hours=round((end_us - a.active_since_us) / HOUR_US, 1),
        )
        for a in active
        if a.active_since_us <= end_us - STANDING_US
    ]
    standing.sort(key=lambda s: (s.active_since, s.name))

    priority_counts = {p: per_priority.pop(p, 0) for p in PRIORITIES}
    unknown = per_priority.pop(None, 0)
    priority_counts.update(sorted((p, n) for p, n in per_priority.items() if p is not None))
    if unknown:
        priority_counts[UNKNOWN_PRIORITY] = unknown
    priority_distribution = {
        p: round(100 * n / activations, 1) if activations else 0.0 for p, n in priority_counts.items()
    }

    return AlarmKpis(
        start=from_us(start_us),
        end=from_us(end_us),
        operators=operators,
        activations=activations,
        per_operator_per_10min_avg=round(activations / windows / operators, 2),
        per_operator_per_10min_max=round(busiest / operators, 2),
        per_operator_per_day=round(activations * DAY_US / (end_us - start_us) / operators, 2),
        flood_pct=round(100 * flood_windows / windows, 2),
        flood_windows=flood_windows,
        windows=windows,
        bad_actors=bad_actors,
        chattering=chattering,
        standing=standing,
        priority_distribution=priority_distribution,
        priority_counts=priority_counts,
    )


def _most_within_span(times: list[int]) -> int:
    """The most of `times` within any span shorter than CHATTER_SPAN_US, or 0 when that
    is fewer than CHATTER_MIN (the common case, decided without the full scan)."""
    if len(times) < CHATTER_MIN:
        return 0
    times.sort()  # already in order when the journal is read oldest first: linear then
    gap = CHATTER_MIN - 1
    # Each activation against the one CHATTER_MIN - 1 later; the shorter list ends the pairs.
    pairs = zip(times, times[gap:], strict=False)
    if not any(later - earlier < CHATTER_SPAN_US for earlier, later in pairs):
        return 0
    most = first = 0
    for last, ts in enumerate(times):
        while ts - times[first] >= CHATTER_SPAN_US:
            first += 1
        most = max(most, last - first + 1)
    return most
