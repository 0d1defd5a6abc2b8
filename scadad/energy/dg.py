"""Diesel generator (DG) arithmetic: fuel curve, tank-level analysis, run hours, starts.

Pure functions over plain data, like `scadad.energy.math`: times are UTC integer
microseconds (`*_us`), fuel in litres, tank levels in % of the tank, energy in kWh.

Running state is given as a list of changes ``(ts_us, running)`` sorted by time. Before
the first entry the set is taken to be in the opposite state (the first entry *is* a
change); an empty list means the set never ran.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scadad.energy.math import DIESEL_CO2_KG_PER_L, US_PER_H, US_PER_S

# Rises slower than this are not a refuel (a tanker or a jerrycan takes minutes; a rise
# over hours is fuel warming up or the sensor drifting).
REFUEL_MAX_S = 1800.0


def fuel_curve_lph(rated_kw: float, load_kw: float, f0: float = 0.08415, f1: float = 0.246) -> float:
    """Fuel burn in litres/hour at `load_kw`: ``F = f0 · P_rated + f1 · P``.

    The defaults are the widely used linear approximation of manufacturers' (Caterpillar-
    style) consumption tables, as published by Jakhrani et al. and used in hybrid-system
    sizing tools: `f0` L/h per rated kW is the no-load burn, `f1` L/h per delivered kW the
    marginal burn. They suit a typical high-speed set; edit them per set from its data
    sheet or from measured fuel and kWh (see `specific_consumption`).
    """
    if rated_kw <= 0:
        raise ValueError("rated_kw must be positive")
    if load_kw < 0:
        raise ValueError("load_kw must not be negative")
    return f0 * rated_kw + f1 * load_kw


@dataclass(frozen=True, slots=True)
class FuelEvent:
    """A refuel or a theft/leak: litres added or lost between `start_us` and `end_us`."""

    start_us: int
    end_us: int
    litres: float
    kind: Literal["refuel", "theft"]


@dataclass(frozen=True, slots=True)
class FuelAnalysis:
    """Result of `analyse_fuel`; `smoothed` is the tank content in litres, one per level sample."""

    consumed_l: float
    refuels: list[FuelEvent]
    thefts: list[FuelEvent]
    smoothed: list[tuple[int, float]]


def _smooth(ts: list[int], vals: list[float], half_us: int) -> list[float]:
    """Centred rolling median over ±half_us, then a centred rolling mean of that.

    The median throws away spikes and short sloshing waves without blurring a step; the
    mean then takes out the median's quantisation ripple. Centred windows keep events in
    place in time (no lag), which an offline analysis can afford.
    """
    n = len(vals)
    if half_us <= 0 or n < 3:
        return list(vals)
    med: list[float] = []
    window: list[float] = []
    lo = hi = 0
    for k in range(n):
        t = ts[k]
        while hi < n and ts[hi] <= t + half_us:
            insort(window, vals[hi])
            hi += 1
        while ts[lo] < t - half_us:
            del window[bisect_left(window, vals[lo])]
            lo += 1
        m = len(window)
        med.append(window[m // 2] if m % 2 else (window[m // 2 - 1] + window[m // 2]) * 0.5)
    out: list[float] = []
    total = 0.0
    lo = hi = 0
    for k in range(n):
        t = ts[k]
        while hi < n and ts[hi] <= t + half_us:
            total += med[hi]
            hi += 1
        while ts[lo] < t - half_us:
            total -= med[lo]
            lo += 1
        out.append(total / (hi - lo))
    return out


def _swings(vals: list[float], lo: int, hi: int, reversal: float) -> list[tuple[int, int]]:
    """Pivot-to-pivot swings of vals[lo:hi] (a zigzag): a new swing starts only once the
    level has turned back by at least `reversal`, so residual noise never splits a move."""
    out: list[tuple[int, int]] = []
    if hi - lo < 2:
        return out
    start = min_i = max_i = lo
    trend = 0
    ext = lo
    for k in range(lo + 1, hi):
        v = vals[k]
        if trend == 0:
            if v < vals[min_i]:
                min_i = k
            if v > vals[max_i]:
                max_i = k
            if v - vals[min_i] >= reversal:
                start, trend, ext = min_i, 1, k
            elif vals[max_i] - v >= reversal:
                start, trend, ext = max_i, -1, k
        elif trend == 1:
            if v > vals[ext]:
                ext = k
            elif vals[ext] - v >= reversal:
                out.append((start, ext))
                start, trend, ext = ext, -1, k
        else:
            if v < vals[ext]:
                ext = k
            elif v - vals[ext] >= reversal:
                out.append((start, ext))
                start, trend, ext = ext, 1, k
    if trend:
        out.append((start, ext))
    return out


def _at(ts: list[int], vals: list[float], t: int) -> float:
    """The series at time t, linearly interpolated (held at the ends)."""
    k = bisect_left(ts, t)
    if k <= 0:
        return vals[0]
    if k >= len(ts):
        return vals[-1]
    t0, t1 = ts[k - 1], ts[k]
    return vals[k - 1] + (vals[k] - vals[k - 1]) * (t - t0) / (t1 - t0)


# How far back (and forward) the level on either side of an event or a run is read:
# long enough to average the sensor noise away, short enough to stay clear of other events.
_TREND_US = 600 * US_PER_S


def _event(
    ts: list[int],
    vals: list[float],
    i0: int,
    i1: int,
    kind: Literal["refuel", "theft"],
    pad_us: int,
    spans: list[tuple[int, int, bool]],
) -> FuelEvent:
    """The swing i0→i1 as an event, timed from 5 % to 95 % of the move.

    Pivot times alone would be misleading: on a flat tank the pivot is wherever the noise
    happened to peak, possibly hours from the fill. The litres are not pivot to pivot
    either: smoothing rounds the corners and a running set keeps burning during a refuel,
    so the level on each side is read `pad_us` clear of the smoothing, over up to
    `_TREND_US` inside the running-state span holding the event (a set that starts or
    stops changes the slope): a mean when the set is stopped, else the trend extended to
    the middle of the event.
    """
    v0 = vals[i0]
    amount = abs(vals[i1] - v0)
    t_start, t_end = ts[i0], ts[i1]
    found_start = False
    for k in range(i0, i1 + 1):
        moved = abs(vals[k] - v0)
        if not found_start and moved >= 0.05 * amount:
            t_start, found_start = ts[k], True
        if moved >= 0.95 * amount:
            t_end = ts[k]
            break
    mid = (t_start + t_end) // 2
    lo, hi, flat = ts[0], ts[-1], True
    for a, b, on in spans:
        if a <= mid < b:
            lo, hi, flat = max(lo, a), min(hi, b), not on
            break
    edge_before, far_before = max(lo, t_start - pad_us), max(lo, t_start - pad_us - _TREND_US)
    edge_after, far_after = min(hi, t_end + pad_us), min(hi, t_end + pad_us + _TREND_US)
    before = after = None
    if flat:
        # A stopped tank does not move: a mean beats a fitted slope, whose noise the
        # extrapolation would multiply.
        before = _flat_level(ts, vals, far_before, edge_before)
        after = _flat_level(ts, vals, edge_after, far_after)
    if before is None:
        before = _trend_at(ts, vals, edge_before, far_before, mid)
    if after is None:
        after = _trend_at(ts, vals, edge_after, far_after, mid)
    return FuelEvent(t_start, t_end, abs(after - before), kind)


def _flat_level(ts: list[int], vals: list[float], t0: int, t1: int) -> float | None:
    """Mean of the series over [t0, t1]; None when that is under a minute of data."""
    if t1 - t0 < 60 * US_PER_S:
        return None
    lo, hi = bisect_left(ts, t0), bisect_left(ts, t1 + 1)
    return sum(vals[lo:hi]) / (hi - lo) if hi - lo else None


def _trend_at(ts: list[int], vals: list[float], t_edge: int, t_far: int, t_mid: int) -> float:
    """The line through the series at t_far and t_edge, evaluated at t_mid (flat if too short)."""
    v_edge = _at(ts, vals, t_edge)
    if abs(t_edge - t_far) < 60 * US_PER_S:
        return v_edge
    slope = (v_edge - _at(ts, vals, t_far)) / (t_edge - t_far)
    return v_edge + slope * (t_mid - t_edge)


def _state_spans(running: Sequence[tuple[int, bool]], start_us: int, end_us: int) -> list[tuple[int, int, bool]]:
    """(from, to, running) spans covering [start_us, end_us) from a list of state changes."""
    state = (not running[0][1]) if running else False
    spans: list[tuple[int, int, bool]] = []
    t = start_us
    for ts, on in running:
        if ts >= end_us:
            break
        if ts > t and on != state:
            spans.append((t, ts, state))
            t = ts
        state = on
    if end_us > t:
        spans.append((t, end_us, state))
    return spans


def analyse_fuel(
    levels: Sequence[tuple[int, float]],
    running: Sequence[tuple[int, bool]],
    *,
    tank_l: float,
    smooth_s: float = 120,
    refuel_min_l: float = 20,
    theft_min_l: float = 10,
) -> FuelAnalysis:
    """Consumption, refuels and thefts/leaks from a tank-level series.

    `levels` are ``(ts_us, level %)`` sorted by time, converted to litres with `tank_l`;
    `running` the set's state changes (see the module docstring). Thresholds:

    - `smooth_s`: width of the centred rolling median (then mean) applied first, so sensor
      noise and sloshing never count as an event. Events are timed on the smoothed
      series, so their start and end are blurred by about ±smooth_s/2.
    - Moves are found as zigzag swings with a reversal of half the smaller of
      `refuel_min_l` and `theft_min_l`: smaller wiggles cannot end a move.
    - Refuel: a rise of at least `refuel_min_l` litres taking at most `REFUEL_MAX_S`
      (30 min, from 5 % to 95 % of the rise), running or not.
    - Theft/leak: a drop of at least `theft_min_l` litres while the set is stopped, however
      slow (a stopped set burns nothing). Fuel cooling overnight also shrinks by ~0.1 %
      per °C: keep `theft_min_l` above that for the tank. A theft while running cannot be
      told from consumption here and counts as consumption.
    - Event litres are not pivot to pivot: the level on each side is read `smooth_s`
      clear of the event over up to 10 min (a mean if the set is stopped, the trend
      extended to mid-event if running, so fuel burnt during a refuel is not lost).
    - Consumption: over each running span, level at its start − level at its end + the
      refuels within it (a refuel is not negative consumption); never below 0 per span.
      The end levels are means over up to 10 min of the stopped tank on either side (clear
      of events), else the smoothed level at the edge of the data.
    """
    if tank_l <= 0:
        raise ValueError("tank_l must be positive")
    if not levels:
        return FuelAnalysis(0.0, [], [], [])
    ts = [t for t, _ in levels]
    litres = [pct * tank_l / 100.0 for _, pct in levels]
    sm = _smooth(ts, litres, int(smooth_s * US_PER_S / 2))
    reversal = min(refuel_min_l, theft_min_l) / 2
    n = len(ts)

    pad_us = int(smooth_s * US_PER_S)
    spans = _state_spans(running, ts[0], ts[-1] + 1)
    refuels: list[FuelEvent] = []
    for i0, i1 in _swings(sm, 0, n, reversal):
        if sm[i1] - sm[i0] >= refuel_min_l:
            ev = _event(ts, sm, i0, i1, "refuel", pad_us, spans)
            if ev.end_us - ev.start_us <= REFUEL_MAX_S * US_PER_S and ev.litres >= refuel_min_l:
                refuels.append(ev)

    thefts: list[FuelEvent] = []
    for a, b, on in spans:
        lo, hi = bisect_left(ts, a), bisect_left(ts, b)
        if on or hi - lo < 2:
            continue
        for i0, i1 in _swings(sm, lo, hi, reversal):
            if sm[i0] - sm[i1] >= theft_min_l:
                ev = _event(ts, sm, i0, i1, "theft", pad_us, spans)
                if ev.litres >= theft_min_l:
                    thefts.append(ev)

    # The level at each end of a run is read from the stopped side where there is one:
    # a stopped tank is flat, so a mean over up to _TREND_US (clear of the smoothing
    # corner and of any event) is far steadier than one smoothed sample at the edge.
    events = sorted(refuels + thefts, key=lambda e: e.start_us)
    consumed = 0.0
    for k, (a, b, on) in enumerate(spans):
        if not on:
            continue
        level_a = level_b = None
        if k > 0:
            lo_t = max(spans[k - 1][0], a - pad_us - _TREND_US)
            for e in events:
                if e.end_us < a:
                    lo_t = max(lo_t, e.end_us + pad_us)
            level_a = _flat_level(ts, sm, lo_t, a - pad_us)
        if k + 1 < len(spans):
            hi_t = min(spans[k + 1][1], b + pad_us + _TREND_US)
            for e in events:
                if e.start_us >= b:
                    hi_t = min(hi_t, e.start_us - pad_us)
            level_b = _flat_level(ts, sm, b + pad_us, hi_t)
        if level_a is None:
            level_a = _at(ts, sm, a)
        if level_b is None:
            level_b = _at(ts, sm, min(b, ts[-1]))
        added = sum(e.litres for e in refuels if a <= (e.start_us + e.end_us) // 2 < b)
        used = level_a - level_b + added
        consumed += used if used > 0 else 0.0
    return FuelAnalysis(consumed, refuels, thefts, list(zip(ts, sm, strict=True)))


def run_hours(running: Sequence[tuple[int, bool]], start_us: int, end_us: int) -> float:
    """Hours the set ran within [start_us, end_us), from its state changes."""
    if end_us <= start_us:
        return 0.0
    on_us = sum(b - a for a, b, on in _state_spans(running, start_us, end_us) if on)
    return on_us / US_PER_H


def starts(running: Sequence[tuple[int, bool]], start_us: int | None = None, end_us: int | None = None) -> int:
    """Number of off → on transitions, optionally only those in [start_us, end_us).

    Repeated entries of the same state are not transitions; a first entry of True counts
    as a start (it is a change from off).
    """
    count = 0
    prev = False
    for ts, on in running:
        if on and not prev and (start_us is None or ts >= start_us) and (end_us is None or ts < end_us):
            count += 1
        prev = on
    return count


def specific_consumption(litres: float, kwh: float) -> float | None:
    """Litres per kWh delivered; None when no energy was delivered (kwh <= 0)."""
    return litres / kwh if kwh > 0 else None


def co2_kg(litres: float, factor: float = DIESEL_CO2_KG_PER_L) -> float:
    """CO2 from burning `litres` of diesel, kg (default 2.68 kg/L)."""
    return litres * factor
