"""Trend arithmetic without Textual: which History.Query to ask for a span, and pens.

A trend asks the historian for time-weighted averages per bucket, sized so that a span
fills a wide screen with about 240 buckets (1 h → 15 s, 8 h → 2 min, 24 h → 6 min,
7 d → 42 min); the last hour is then tailed live from `Tags.Watch`.

The historian's signal is a step function and it leaves out buckets with no sample
inside them (the value held through them is carried into the next bucket). A pen made
from history therefore shows the held value across such holes, and a gap only where
the tag was BAD (`avg` None, or a hole after a bucket that ended BAD): a gap is None,
never drawn as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from tui.format import parse_time

TARGET_BUCKETS = 240
SPANS: dict[str, float] = {"1h": 3600, "8h": 8 * 3600, "24h": 86400, "7d": 7 * 86400}
# Spans up to this long end "now" and follow live values; longer ones are re-queried.
LIVE_SPAN_S = 3600.0


@dataclass
class Pen:
    """One line on a trend: (epoch seconds, value) points; None is a gap (BAD)."""

    label: str
    units: str = ""
    times: list[float] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    # Live samples merged into the last point (see `add_live`); 0 when it came from history.
    _live_n: int = field(default=0, repr=False)

    def append(self, t: float, value: float | None, keep_after: float | None = None) -> None:
        """Add a live point (kept in time order); drop points older than ``keep_after``."""
        if self.times and t < self.times[-1]:
            return
        self.times.append(t)
        self.values.append(value)
        self._live_n = 0
        if keep_after is not None:
            self.trim(keep_after)

    def trim(self, keep_after: float) -> None:
        """Drop the points older than ``keep_after`` (the window slid past them)."""
        cut = 0
        while cut < len(self.times) and self.times[cut] < keep_after:
            cut += 1
        if cut:
            del self.times[:cut], self.values[:cut]

    def add_live(self, t: float, value: float | None, every_s: int, keep_after: float | None = None) -> None:
        """Merge a live sample into the bucket of width ``every_s`` it falls in.

        The tail keeps the resolution of the history it continues: samples inside one
        bucket are averaged into one point at the bucket start (a BAD sample opens a gap
        only if the bucket has no value yet). Late samples (before the last bucket) are
        dropped.
        """
        start = math.floor(t / every_s) * every_s
        if self.times and start < self.times[-1]:
            return
        if self.times and start == self.times[-1]:
            if value is None:
                return
            old = self.values[-1]
            if old is None:
                self.values[-1], self._live_n = value, 1
            else:
                n = max(1, self._live_n)  # a partial bucket from history counts as one sample
                self.values[-1], self._live_n = (old * n + value) / (n + 1), n + 1
        else:
            self.times.append(float(start))
            self.values.append(value)
            self._live_n = 0 if value is None else 1
        if keep_after is not None:
            self.trim(keep_after)

    def last(self) -> tuple[float, float] | None:
        """The newest point with a value, or None."""
        for t, v in zip(reversed(self.times), reversed(self.values), strict=True):
            if v is not None:
                return t, v
        return None

    def points_between(self, start: float, end: float) -> int:
        """How many points with a value lie in [start, end]."""
        return sum(1 for t, v in zip(self.times, self.values, strict=True) if v is not None and start <= t <= end)


def bucket_s(span_s: float) -> int:
    """Bucket width for a span: span / 240, at least 1 s, rounded to a whole second."""
    return max(1, round(span_s / TARGET_BUCKETS))


def history_params(path: str, start: float, end: float) -> dict[str, Any]:
    """`History.Query` params for one pen over [start, end] in epoch seconds.

    The historian's windows are half-open; a trend ending "now" wants a sample stamped
    exactly now too (always so under a fixed clock), so the end moves 1 ms later.
    """
    return {
        "path": path,
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": datetime.fromtimestamp(end + 0.001, UTC).isoformat(),
        "every_s": bucket_s(end - start),
    }


def _epoch(value: Any) -> float:
    t = parse_time(value)
    return t.timestamp() if t else 0.0


def pen_from_history(result: dict[str, Any], label: str | None = None) -> Pen:
    """A pen from a `History.Query` result (buckets' averages, or raw samples).

    A bucket whose `avg` is None (BAD throughout) is a gap. Buckets the historian left
    out (nothing recorded inside them) hold the previous bucket's `last` value: drawn
    flat across the hole, or as a gap if that bucket ended BAD.
    """
    pen = Pen(label or result["path"], result.get("units", ""))
    buckets = result.get("buckets") or []
    every = result.get("every_s")
    if buckets and every:
        prev_end: float | None = None
        held: float | None = None
        for b in buckets:
            t = _epoch(b["time"])
            if prev_end is not None and t > prev_end:
                pen.times.append(prev_end)
                pen.values.append(held)
                if held is not None and t - every > prev_end:
                    pen.times.append(t - every)
                    pen.values.append(held)
            pen.times.append(t)
            pen.values.append(b.get("avg"))
            prev_end, held = t + every, b.get("last")
    elif buckets:
        for b in buckets:
            pen.times.append(_epoch(b["time"]))
            pen.values.append(b.get("avg"))
    else:
        for s in result.get("samples", []):
            pen.times.append(_epoch(s["time"]))
            pen.values.append(s.get("value"))
    return pen


def merge_tail(fresh: Pen, old: Pen) -> Pen:
    """``fresh`` (just queried) continued by the points of ``old`` that are newer than it.

    Live values that arrived while the query ran are not lost.
    """
    last = fresh.times[-1] if fresh.times else float("-inf")
    for t, v in zip(old.times, old.values, strict=True):
        if t > last:
            fresh.times.append(t)
            fresh.values.append(v)
    return fresh


def numeric(value: Any) -> float | None:
    """A live value as a trend number: bools as 0/1, None for text and non-finite."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def live_point(v: dict[str, Any]) -> tuple[float, float | None] | None:
    """A `TagValue` from `Tags.Watch` as (epoch seconds, value); value None when BAD.

    None when the value cannot be drawn at all (text, or no time).
    """
    t = parse_time(v.get("server_time") or v.get("source_time"))
    if t is None:
        return None
    if v.get("quality") == "BAD" or v.get("value") is None:
        return t.timestamp(), None
    x = numeric(v.get("value"))
    return None if x is None else (t.timestamp(), x)


def span_label(span_s: float) -> str:
    """A span or bucket width for people: 15 s, 2 min, 1 h, 7 d, 1 h 30 min."""
    s = int(round(span_s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min" if not r else f"{m} min {r} s"
    if s < 86400:
        h, r = divmod(s, 3600)
        return f"{h} h" if not r else f"{h} h {r // 60} min"
    d, r = divmod(s, 86400)
    return f"{d} d" if not r else f"{d} d {r // 3600} h"


def local_midnight(now: float, tz: tzinfo) -> float:
    """Epoch seconds of the last local midnight (start of "today" at the site)."""
    local = datetime.fromtimestamp(now, tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def time_ticks(start: float, end: float, tz: tzinfo, max_ticks: int) -> tuple[list[float], list[str]]:
    """Round local times inside [start, end] for an x axis, with labels.

    Steps are whole local minutes, hours or days (a 7 d trend is labelled by weekday and
    day, a day by hours, an hour by ten-minute marks); at most ``max_ticks`` of them.
    """
    span = end - start
    if span <= 0 or max_ticks < 1:
        return [], []
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080]  # minutes
    step_min = next((m for m in steps if span / (m * 60) <= max_ticks), steps[-1])
    first = datetime.fromtimestamp(start, tz)
    if step_min >= 1440:
        cur = first.replace(hour=0, minute=0, second=0, microsecond=0)
        form = "%a %d" if span > 2 * 86400 else "%d %b"
    else:
        midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
        minutes = (first.hour * 60 + first.minute) // step_min * step_min
        cur = midnight + timedelta(minutes=minutes)
        form = "%H:%M"
    positions: list[float] = []
    labels: list[str] = []
    step = timedelta(minutes=step_min)
    naive = cur.replace(tzinfo=None)
    while True:
        t = naive.replace(tzinfo=tz).timestamp()
        if t > end:
            break
        if t >= start:
            local = datetime.fromtimestamp(t, tz)
            label = local.strftime(form)
            if form == "%H:%M" and span > 86400 / 2 and local.hour == 0 and local.minute == 0:
                label = local.strftime("%d %b")  # mark the date change on a day-long trend
            positions.append(t)
            labels.append(label)
        naive += step
    return positions, labels


def value_ticks(lo: float, hi: float, max_ticks: int) -> tuple[float, float, list[float]]:
    """A padded range and round tick values for a y axis showing [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0, [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    max_ticks = max(2, max_ticks)
    raw = (hi - lo) / (max_ticks - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), 10 * mag)
    low = math.floor(lo / step) * step
    high = math.ceil(hi / step) * step
    if high == low:
        high = low + step
    ticks = []
    k = 0
    while low + k * step <= high + step / 1000:
        ticks.append(round(low + k * step, 12))
        k += 1
    return low, high, ticks


def tick_label(value: float, step: float) -> str:
    """A y tick with as many decimals as the step needs (1260310, 18.35, 0.25)."""
    decimals = 0
    while step > 0 and decimals < 9 and abs(round(step, decimals) - step) > step * 1e-6:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if float(text) == 0 else text
