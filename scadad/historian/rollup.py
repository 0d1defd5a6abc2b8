"""Bucket arithmetic and time-weighted aggregation: pure functions, no I/O.

The signal is a step function (see `Aggregate`). Aggregation is split in two steps so
stored rollups stay independent of their neighbours:

* `summarize` turns points into `Partial`s: what the samples *inside* each bucket say,
  from the bucket's first sample to its end. A partial never depends on data before its
  bucket, so a late sample changes exactly one stored row.
* `finish` adds the value carried in from before each bucket (the previous bucket's
  `last`, or the caller's carry for the first one) and yields `Aggregate`s.

`merge` coarsens partials (minute -> hour, hour -> day) exactly as if the coarse buckets
had been summarized from the raw points, which is how hour rollups are built from minute
rollups and how a 6-hour query is answered from hour rollups.

Points are `(ts_us, value, quality)` tuples with `quality` the stored integer: the
database rows feed these functions directly, without building a `Sample` per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from scadad.historian.model import Aggregate, Quality

Point = tuple[int, float | None, int]

_BAD = int(Quality.BAD)


class Partial(msgspec.Struct, gc=False):
    """What the samples inside one bucket say, ignoring any value carried in from before it.

    Same fields as `Aggregate` plus `first_us` (time of the first sample in the bucket), which
    `finish` needs to weight the carried-in value. min/max/avg/held_us cover
    [first_us, bucket end); `last` is the value held at the bucket end (None if BAD).
    The field order is the column order of the rollup tables.
    """

    bucket_us: int
    first_us: int
    count: int
    bad_count: int
    min: float | None
    max: float | None
    avg: float | None
    last: float | None
    held_us: int


def bucket_start(ts_us: int, width_us: int, offset_us: int = 0) -> int:
    """Start of the bucket holding `ts_us`: buckets are [offset + k*width, offset + (k+1)*width).

    With offset 0 the buckets are aligned on the epoch (a 1-hour bucket starts on the UTC hour).
    Correct for times before 1970 too (Python's % is never negative for a positive width).
    """
    return ts_us - (ts_us - offset_us) % width_us


def held_value(value: float | None, quality: int) -> float | None:
    """The value a sample holds for aggregation, or None if it is not usable (BAD, missing, NaN)."""
    if quality == _BAD or value is None or value != value:
        return None
    return value


def summarize(points: Iterable[Point], width_us: int, offset_us: int = 0) -> list[Partial]:
    """One `Partial` per bucket that contains at least one point.

    `points` are one tag's samples in ascending time order, one per timestamp (the storage
    key guarantees it); a point out of order raises ValueError rather than giving a wrong
    average.
    """
    if width_us <= 0:
        raise ValueError(f"bucket width must be positive, got {width_us} us")
    out: list[Partial] = []
    bucket = end = first = 0
    started = False
    count = bad = held = 0
    lo: float | None = None
    hi: float | None = None
    wsum = 0.0
    prev_ts = 0
    prev: float | None = None  # value held by the previous point, None if it was not usable
    for ts, value, quality in points:
        v = None if quality == _BAD or value is None or value != value else value
        if started and ts < prev_ts:
            raise ValueError(f"points out of time order at ts_us={ts}")
        if not started or ts >= end:
            if started:
                if prev is not None:
                    dt = end - prev_ts
                    wsum += prev * dt
                    held += dt
                out.append(Partial(bucket, first, count, bad, lo, hi, wsum / held if held else None, prev, held))
            started = True
            bucket = ts - (ts - offset_us) % width_us
            end = bucket + width_us
            first = ts
            count = bad = held = 0
            lo = hi = None
            wsum = 0.0
        elif prev is not None:
            dt = ts - prev_ts
            wsum += prev * dt
            held += dt
        if v is None:
            bad += 1
        else:
            count += 1
            if lo is None or v < lo:
                lo = v
            if hi is None or v > hi:
                hi = v
        prev_ts = ts
        prev = v
    if started:
        if prev is not None:
            dt = end - prev_ts
            wsum += prev * dt
            held += dt
        out.append(Partial(bucket, first, count, bad, lo, hi, wsum / held if held else None, prev, held))
    return out


def merge(partials: Sequence[Partial], sub_width_us: int, width_us: int, offset_us: int = 0) -> list[Partial]:
    """Coarsen `partials` of width `sub_width_us` (ascending, one tag) into buckets of `width_us`.

    Exact: between two sub-buckets the previous one's `last` holds, which is what the raw
    samples say. The coarse grid must line up with the fine one (width a multiple of the
    sub-width, offset a multiple of it), otherwise a sub-bucket would straddle two buckets.
    """
    if width_us % sub_width_us or offset_us % sub_width_us:
        raise ValueError(
            f"cannot build {width_us} us buckets (offset {offset_us} us) from {sub_width_us} us rollups: "
            "the width and the offset must be multiples of the rollup width"
        )
    out: list[Partial] = []
    bucket = first = 0
    started = False
    count = bad = held = 0
    lo: float | None = None
    hi: float | None = None
    wsum = 0.0
    prev_end = 0
    prev: float | None = None
    for p in partials:
        b = p.bucket_us - (p.bucket_us - offset_us) % width_us
        if not started or b != bucket:
            if started:
                tail = bucket + width_us - prev_end
                if prev is not None and tail > 0:
                    wsum += prev * tail
                    held += tail
                out.append(Partial(bucket, first, count, bad, lo, hi, wsum / held if held else None, prev, held))
            started = True
            bucket = b
            first = p.first_us
            count = bad = held = 0
            lo = hi = None
            wsum = 0.0
        else:
            # The gap since the previous sub-bucket is held by its `last`. That value is one of
            # its own samples, already in its min/max, so only the weights change here.
            gap = p.first_us - prev_end
            if prev is not None and gap > 0:
                wsum += prev * gap
                held += gap
        count += p.count
        bad += p.bad_count
        if p.min is not None and (lo is None or p.min < lo):
            lo = p.min
        if p.max is not None and (hi is None or p.max > hi):
            hi = p.max
        if p.held_us and p.avg is not None:
            wsum += p.avg * p.held_us
            held += p.held_us
        prev_end = p.bucket_us + sub_width_us
        prev = p.last
    if started:
        tail = bucket + width_us - prev_end
        if prev is not None and tail > 0:
            wsum += prev * tail
            held += tail
        out.append(Partial(bucket, first, count, bad, lo, hi, wsum / held if held else None, prev, held))
    return out


def finish(partials: Iterable[Partial], carry: float | None) -> list[Aggregate]:
    """Aggregates from ascending partials, adding the value carried into each bucket.

    `carry` is the value held just before the first partial's bucket (from the last sample
    before it, see `held_value`), or None if there was none or it was not usable. Each later
    bucket's carry is the previous partial's `last`.
    """
    out: list[Aggregate] = []
    for p in partials:
        lo, hi, avg, held = p.min, p.max, p.avg, p.held_us
        lead = p.first_us - p.bucket_us
        if carry is not None and lead > 0:
            wsum = (avg * held if avg is not None else 0.0) + carry * lead
            held += lead
            avg = wsum / held
            if lo is None or carry < lo:
                lo = carry
            if hi is None or carry > hi:
                hi = carry
        out.append(Aggregate(p.bucket_us, lo, hi, avg, p.last, p.count, p.bad_count, held))
        carry = p.last
    return out


def aggregate(
    points: Iterable[Point], width_us: int, carry: float | None = None, offset_us: int = 0
) -> list[Aggregate]:
    """Time-weighted aggregates of one tag's ascending points in buckets of `width_us`.

    `carry` is the value held before the first point (None if unknown or BAD).
    """
    return finish(summarize(points, width_us, offset_us), carry)
