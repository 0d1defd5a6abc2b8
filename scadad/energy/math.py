"""Energy arithmetic: CT/PT scaling, P/Q/S from phases, counters, intervals, loss, targets, carbon.

Everything here is a pure function over plain numbers: no I/O, no clock, no asyncio. Times
are UTC integer microseconds since the epoch (`*_us`); units are kW, kWh, kvar, kVA, V, A,
litres, % and kg and are written into the names where a number could be mistaken.

Missing data is `None`, never a silent 0: a value that a missing input feeds is `None` too,
and a result that had to guess says so (`estimated`, `coverage`, `steps`, `status`).

The hot paths (`interval_energy`, `feeder_loss`) run about 200,000 times for a day of 2,000
meters, so they avoid per-call allocations beyond their small result object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import sqrt
from typing import Literal

US_PER_S = 1_000_000
US_PER_H = 3_600_000_000

# --------------------------------------------------------------------------- CT / PT ratios

RatioClass = Literal["current", "voltage", "power", "energy", "none"]


def ratio_factor(
    ratio_class: str,
    ct_primary: float,
    ct_secondary: float,
    pt_primary: float,
    pt_secondary: float,
    applied_in_meter: bool,
) -> float:
    """The factor that turns a meter's secondary-side reading into a primary-side value.

    `ratio_class` says what the reading is:

    - ``"current"``: CT ratio, ``ct_primary / ct_secondary`` (200/5 → 40);
    - ``"voltage"``: PT ratio, ``pt_primary / pt_secondary`` (11000/110 → 100);
    - ``"power"`` and ``"energy"`` (kW, kvar, kVA, kWh…): CT × PT (→ 4,000);
    - ``"none"``: power factor, frequency, counts, anything ratio-free → 1.

    When `applied_in_meter` is true the meter was programmed with the ratios and already
    reports primary values, so the factor is 1 whatever the class (scaling twice is the
    classic commissioning mistake this flag exists to prevent).

    Raises ValueError for an unknown class or a non-positive ratio term, because a wrong
    factor silently multiplies every reading of the meter.
    """
    if ratio_class == "none":
        return 1.0
    if ratio_class not in ("current", "voltage", "power", "energy"):
        raise ValueError(f"unknown ratio class {ratio_class!r}: expected current, voltage, power, energy or none")
    if applied_in_meter:
        return 1.0
    if ratio_class == "current":
        return _ratio("CT", ct_primary, ct_secondary)
    if ratio_class == "voltage":
        return _ratio("PT", pt_primary, pt_secondary)
    return _ratio("CT", ct_primary, ct_secondary) * _ratio("PT", pt_primary, pt_secondary)


def _ratio(name: str, primary: float, secondary: float) -> float:
    if not primary > 0 or not secondary > 0:
        raise ValueError(f"{name} ratio {primary}/{secondary} must have positive primary and secondary")
    return primary / secondary


def apply_ratio(value: float | None, factor: float) -> float | None:
    """`value × factor`; `None` (no reading) stays `None`."""
    return None if value is None else value * factor


# --------------------------------------------------------------------------- P, Q, S from phases


@dataclass(frozen=True, slots=True)
class PQS:
    """Three-phase totals. Any field is None when an input it depends on is missing."""

    p_kw: float | None
    q_kvar: float | None
    s_kva: float | None
    pf: float | None


def _total(values: Sequence[float | None] | None) -> float | None:
    if values is None:
        return None
    total = 0.0
    for x in values:
        if x is None:
            return None
        total += x
    return total


def pqs_from_phases(
    v: Sequence[float | None],
    i: Sequence[float | None],
    p: Sequence[float | None] | None = None,
    q: Sequence[float | None] | None = None,
) -> PQS:
    """Totals for a meter that reports per-phase values but no totals.

    - `v`: phase-to-neutral volts, `i`: amps, `p`: kW, `q`: kvar, one entry per phase.
    - P and Q totals are the per-phase sums; P is unknown (None) unless `p` is given.
    - S: with P and Q both known, ``sqrt(P² + Q²)`` (vector sum); otherwise
      ``Σ V·I / 1000`` (arithmetic sum) when every V and I is present; else None.
    - PF = P / S, carrying the sign of P (negative = exporting); None when S == 0 or
      either is unknown. Clamped to [-1, 1] because P and S from separate measurements
      can disagree by a rounding step and |PF| > 1 means nothing to an operator.

    A missing phase (None) makes None of everything it feeds: a 2-of-3 sum would look
    like a plausible but wrong total.
    """
    n = len(v)
    if len(i) != n or (p is not None and len(p) != n) or (q is not None and len(q) != n):
        raise ValueError("v, i, p and q must have one entry per phase")
    p_kw = _total(p)
    q_kvar = _total(q)
    s_kva: float | None = None
    if p_kw is not None and q_kvar is not None:
        s_kva = sqrt(p_kw * p_kw + q_kvar * q_kvar)
    else:
        s = 0.0
        for vv, ii in zip(v, i, strict=True):
            if vv is None or ii is None:
                s = None
                break
            s += vv * ii
        if s is not None:
            s_kva = s / 1000.0
    pf: float | None = None
    if p_kw is not None and s_kva:
        pf = max(-1.0, min(1.0, p_kw / s_kva))
    return PQS(p_kw, q_kvar, s_kva, pf)


# --------------------------------------------------------------------------- counters

StepKind = Literal["ok", "rollover", "reset", "jump"]


@dataclass(frozen=True, slots=True)
class CounterStep:
    """One step between two readings of a cumulative counter; `delta` None = not usable."""

    delta: float | None
    kind: StepKind


_OK_ZERO = CounterStep(0.0, "ok")


def counter_delta(
    prev: float,
    cur: float,
    *,
    rollover_at: float | None = None,
    max_step: float | None = None,
) -> CounterStep:
    """Classify the step `prev → cur` of a cumulative counter and give the energy it means.

    The rule, in order:

    1. ``cur >= prev``: ``"ok"`` with ``delta = cur - prev`` — unless `max_step` is given
       and the delta exceeds it: ``"jump"`` with ``delta = None`` (a comms glitch, a
       wrong register or a mis-scaled value; counting it would corrupt the total).
    2. ``cur < prev`` and `rollover_at` is given (the modulus: the value at which the
       register wraps back to 0, e.g. 1,000,000.0 for a 999,999.9 display): the wrapped
       delta ``rollover_at - prev + cur`` is ``"rollover"`` if it is plausible — below
       `max_step` when given, else below half the register range (a counter that needs
       more than half its range between two polls is not a counter we can trust).
    3. Otherwise ``"reset"``: the meter was replaced or cleared, and ``delta = cur`` — the
       energy since the reset, assuming it restarted from 0 (never negative). If `max_step`
       is given and `cur` exceeds it, the new meter did not start from 0 and the step is a
       ``"jump"`` (delta None) instead.

    Energy between the last reading before a reset and the reset itself is lost; callers
    treat a reset as making their total an estimate.
    """
    d = cur - prev
    if d >= 0:
        if max_step is not None and d > max_step:
            return CounterStep(None, "jump")
        return CounterStep(d, "ok") if d else _OK_ZERO
    if rollover_at is not None:
        wrapped = rollover_at - prev + cur
        limit = max_step if max_step is not None else rollover_at / 2
        if 0 <= wrapped < limit:
            return CounterStep(wrapped, "rollover")
    if max_step is not None and cur > max_step:
        return CounterStep(None, "jump")
    return CounterStep(cur if cur > 0 else 0.0, "reset")


# --------------------------------------------------------------------------- intervals


def interval_start(ts_us: int, interval_s: int) -> int:
    """Start of the interval holding `ts_us`, aligned to the UTC epoch.

    Because every whole- and half-hour time zone is a multiple of 15 minutes from UTC,
    15-minute (and 5-, 30-minute in whole/half-hour zones) boundaries here are the same
    instants as the local ones. Daily or hourly intervals in a half-hour zone are not: align
    those in local time instead.
    """
    step = interval_s * US_PER_S
    return ts_us - ts_us % step


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of one interval.

    - `kwh`: None when there is nothing to compute it from.
    - `estimated`: true when the value is not a plain counter difference (a reset, a jump,
      a missing base reading, or any integration of power).
    - `steps`: the unusual counter steps met, in order (``"rollover"``, ``"reset"``,
      ``"jump"``) or ``"gap"`` for a power gap; empty when clean.
    - `coverage`: fraction 0..1 of the interval backed by data.
    """

    kwh: float | None
    estimated: bool
    steps: list[str] = field(default_factory=list)
    coverage: float = 1.0


def interval_energy(
    samples: Sequence[tuple[int, float]],
    start_us: int,
    end_us: int,
    *,
    prev: tuple[int, float] | None = None,
    rollover_at: float | None = None,
    max_step: float | None = None,
) -> IntervalEnergy:
    """Energy in [start_us, end_us) from readings `(ts_us, kWh counter)` sorted by time.

    The energy is the sum of counter deltas (see `counter_delta`) from the base reading
    through the last reading inside the interval. The base is `prev`, the last reading
    before the interval; readings before `start_us` in `samples` also serve (the latest one
    wins), so a caller may pass a wider slice. Readings at or after `end_us` are ignored:
    they belong to the next interval, whose base is this interval's last reading, so
    consecutive intervals add up to the counter's total exactly.

    Without any base the first reading inside the interval is the base and the result is
    `estimated` (the energy between the interval start and that reading is missing). With
    no reading inside the interval `kwh` is None and `coverage` 0. Rollovers are exact;
    resets and jumps make the result `estimated`.

    A clean run of readings is computed as last − base (one subtraction), so no rounding
    accumulates over many small steps.
    """
    base = prev[1] if prev is not None else None
    base_ts = prev[0] if prev is not None else None
    last: float | None = None
    estimated = False
    steps: list[str] = []
    total = 0.0
    seg_base = 0.0
    for ts, value in samples:
        if ts < start_us:
            if base_ts is None or ts >= base_ts:
                base, base_ts = value, ts
            continue
        if ts >= end_us:
            break
        if last is None:
            if base is None:
                estimated = True
                seg_base = last = value
                continue
            seg_base = last = base
        if value >= last:
            if max_step is not None and value - last > max_step:
                # Keep what the segment had, restart counting from the jumped value.
                total += last - seg_base
                seg_base = value
                steps.append("jump")
                estimated = True
        else:
            step = counter_delta(last, value, rollover_at=rollover_at, max_step=max_step)
            total += last - seg_base
            steps.append(step.kind)
            if step.kind == "rollover":
                # The wrap adds (rollover_at - last); the new segment counts up from 0.
                total += rollover_at - last
                seg_base = 0.0
            elif step.kind == "reset":
                seg_base = 0.0
                estimated = True
            else:
                seg_base = value
                estimated = True
        last = value
    if last is None:
        return IntervalEnergy(None, True, steps, 0.0)
    total += last - seg_base
    return IntervalEnergy(total, estimated, steps)


def _integrate(
    samples: Sequence[tuple[int, float | None]],
    start_us: int,
    end_us: int,
    trapezoid: bool,
    max_gap_us: int | None,
) -> tuple[float, int, float | None, int]:
    """∫ kW dt over [start, end) → (kW·µs, covered µs, max kW seen, number of gaps)."""
    if end_us <= start_us:
        raise ValueError("interval end must be after its start")
    area = 0.0
    covered = 0
    peak: float | None = None
    gaps = 0
    n = len(samples)
    for k in range(n):
        t0, v0 = samples[k]
        if t0 >= end_us:
            break
        t1, v1 = samples[k + 1] if k + 1 < n else (end_us, None)
        last_one = k + 1 >= n
        if t1 <= start_us:
            continue
        if v0 is None:
            gaps += 1
            continue
        if max_gap_us is not None and t1 - t0 > max_gap_us:
            # Too long since the reading: hold it for max_gap only, the rest is a gap.
            t1, v1 = t0 + max_gap_us, None
            gaps += 1
            if t1 <= start_us:
                continue
        a = t0 if t0 > start_us else start_us
        b = t1 if t1 < end_us else end_us
        if b <= a:
            continue
        if trapezoid and v1 is not None and not last_one and t1 > t0:
            slope = (v1 - v0) / (t1 - t0)
            va = v0 + slope * (a - t0)
            vb = v0 + slope * (b - t0)
            area += (va + vb) * 0.5 * (b - a)
            hi = va if va > vb else vb
        else:
            area += v0 * (b - a)
            hi = v0
        covered += b - a
        if peak is None or hi > peak:
            peak = hi
    return area, covered, peak, gaps


def integrate_power(
    samples: Sequence[tuple[int, float | None]],
    start_us: int,
    end_us: int,
    *,
    method: Literal["trapezoid", "step"] = "trapezoid",
    max_gap_s: float | None = None,
) -> IntervalEnergy:
    """kWh over [start_us, end_us) from instantaneous kW readings `(ts_us, kW | None)`.

    For a meter without an energy counter. Readings must be sorted by time; readings
    before the interval give the value at its start and later ones the value at its end.

    - ``method="trapezoid"``: kW varies linearly between readings (exact for a ramp);
      ``"step"``: each reading holds until the next (what a polled value means literally).
    - The last reading holds until `end_us`; `max_gap_s`, when given, limits how long any
      reading may be held, the rest counting as a gap.
    - A None reading starts a gap that lasts until the next reading: gaps are not zero
      power, they reduce `coverage` and add ``"gap"`` to `steps`. Time before the first
      reading is a gap too.

    `kwh` is the energy over the covered time only (not scaled up to the full interval);
    None when nothing is covered. Always `estimated`.
    """
    area, covered, _peak, gaps = _integrate(
        samples,
        start_us,
        end_us,
        method == "trapezoid",
        None if max_gap_s is None else int(max_gap_s * US_PER_S),
    )
    steps = ["gap"] * gaps
    if not covered:
        return IntervalEnergy(None, True, steps, 0.0)
    return IntervalEnergy(area / US_PER_H, True, steps, covered / (end_us - start_us))


def demand_stats(
    samples: Sequence[tuple[int, float | None]],
    start_us: int,
    end_us: int,
    *,
    method: Literal["trapezoid", "step"] = "trapezoid",
    max_gap_s: float | None = None,
) -> tuple[float | None, float | None]:
    """(time-weighted average kW, maximum kW) over [start_us, end_us).

    Same reading rules as `integrate_power`. The average is over the covered time only,
    so a gap does not drag it toward zero; the maximum is the highest value held or
    interpolated inside the interval. (None, None) when nothing is covered.
    """
    area, covered, peak, _gaps = _integrate(
        samples,
        start_us,
        end_us,
        method == "trapezoid",
        None if max_gap_s is None else int(max_gap_s * US_PER_S),
    )
    if not covered:
        return None, None
    return area / covered, peak


# --------------------------------------------------------------------------- feeder loss

LossStatus = Literal["incomplete", "ok", "warning", "alarm", "suspect_ct"]


@dataclass(frozen=True, slots=True)
class LossResult:
    """Loss between a parent meter and the sum of its children for one interval."""

    status: LossStatus
    parent_kwh: float | None
    children_kwh: float | None
    loss_kwh: float | None
    loss_pct: float | None
    note: str


def feeder_loss(
    parent_kwh: float | None,
    children: Sequence[tuple[str, float | None, str]],
    *,
    min_parent_kwh: float = 1.0,
    warn_pct: float = 3.0,
    alarm_pct: float = 6.0,
    negative_tolerance_pct: float = 1.0,
) -> LossResult:
    """Classify the loss of a feeder: parent energy against the sum of its children.

    `children` are ``(name, kwh, quality)`` with quality ``"GOOD"``, ``"UNCERTAIN"`` or
    ``"BAD"``; a parent without a reading is ``parent_kwh=None``.
    ``loss = parent − Σ children`` and ``loss_pct = 100 · loss / parent``. Status, in order:

    - ``"incomplete"``: the parent or a child has no reading, or a child is not GOOD. A
      loss from partial data would be a false alarm or hide a real one, so the loss fields
      are None and `note` names every such meter and why.
    - ``"ok"`` with `loss_pct` None and note "parent below minimum" when the parent is
      below `min_parent_kwh` (or not positive): a few Wh of meter rounding would read as
      tens of percent. `loss_kwh` is still given.
    - ``"suspect_ct"``: loss_pct < −negative_tolerance_pct. Children cannot consume more
      than their feeder delivers; a reversed or mis-ratioed CT is the usual cause.
    - ``"alarm"`` when loss_pct >= alarm_pct, ``"warning"`` when >= warn_pct, else ``"ok"``.
    """
    problems: list[str] | None = None
    if parent_kwh is None:
        problems = ["parent: no reading"]
    total = 0.0
    for name, kwh, quality in children:
        if kwh is None:
            (problems := problems or []).append(f"{name}: no reading")
        elif quality != "GOOD":
            (problems := problems or []).append(f"{name}: quality {quality}")
        else:
            total += kwh
    if problems:
        return LossResult("incomplete", parent_kwh, None, None, None, "; ".join(problems))
    loss = parent_kwh - total
    if parent_kwh < min_parent_kwh or parent_kwh <= 0:
        return LossResult("ok", parent_kwh, total, loss, None, "parent below minimum")
    pct = 100.0 * loss / parent_kwh
    status = loss_status(pct, warn_pct=warn_pct, alarm_pct=alarm_pct, negative_tolerance_pct=negative_tolerance_pct)
    note = (
        "children read more than the parent: check for a reversed or mis-ratioed CT" if status == "suspect_ct" else ""
    )
    return LossResult(status, parent_kwh, total, loss, pct, note)


def loss_status(
    pct: float, *, warn_pct: float = 3.0, alarm_pct: float = 6.0, negative_tolerance_pct: float = 1.0
) -> LossStatus:
    """The verdict on a loss percentage: suspect_ct below -tolerance, else alarm, warning, ok."""
    if pct < -negative_tolerance_pct:
        return "suspect_ct"
    if pct >= alarm_pct:
        return "alarm"
    if pct >= warn_pct:
        return "warning"
    return "ok"


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class TargetProgress:
    """Where consumption stands against a period's energy target (all kWh unless named)."""

    consumed: float
    target: float
    variance_kwh: float
    variance_pct: float | None
    projected_kwh: float | None
    projected_variance_pct: float | None
    on_track: bool


def target_progress(
    target_kwh: float,
    consumed_kwh: float,
    period_start_us: int,
    period_end_us: int,
    now_us: int,
) -> TargetProgress:
    """Progress against an energy target (a budget: consuming less is better).

    - elapsed fraction = (now − start) / (end − start), clamped to 0..1;
    - ``variance_kwh = consumed − target × fraction`` (positive = over the pro-rata
      budget), `variance_pct` relative to that pro-rata target (None when it is 0);
    - ``projected_kwh = consumed / fraction`` — a straight-line projection, None before
      1 % of the period has passed (dividing by a tiny fraction projects noise);
      `projected_variance_pct` = 100 · (projected − target) / target (None when target <= 0);
    - `on_track`: projected <= target; before a projection exists, consumed <= target.
    """
    span = period_end_us - period_start_us
    if span <= 0:
        raise ValueError("period end must be after its start")
    fraction = (now_us - period_start_us) / span
    fraction = 0.0 if fraction < 0 else 1.0 if fraction > 1 else fraction
    pro_rata = target_kwh * fraction
    variance = consumed_kwh - pro_rata
    variance_pct = 100.0 * variance / pro_rata if pro_rata else None
    projected = consumed_kwh / fraction if fraction >= 0.01 else None
    projected_var = 100.0 * (projected - target_kwh) / target_kwh if projected is not None and target_kwh > 0 else None
    on_track = projected <= target_kwh if projected is not None else consumed_kwh <= target_kwh
    return TargetProgress(consumed_kwh, target_kwh, variance, variance_pct, projected, projected_var, on_track)


# --------------------------------------------------------------------------- renewables and carbon

# Tailpipe CO2 of burnt diesel, kg per litre (≈ 2.68 in IPCC 2006 defaults and the UK
# government's conversion factors for diesel; biodiesel blends are lower).
DIESEL_CO2_KG_PER_L = 2.68

# Grid emission factors: key → (kg CO2 per kWh, where it comes from). Only factors whose
# value and source are known exactly are listed; add a site's own with its source text.
GRID_FACTORS: dict[str, tuple[float, str]] = {
    "IN-CEA-2023-24": (
        0.727,
        "India CEA CO2 Baseline Database for the Indian Power Sector v20.0 (Dec 2024), FY2023-24, "
        "weighted average emission rate incl. RE, kg CO2/kWh",
    ),
    "UK-DESNZ-2023": (
        0.207074,
        "UK DESNZ Government GHG conversion factors for company reporting 2023, UK electricity "
        "generated (scope 2), kg CO2e/kWh",
    ),
}
DEFAULT_GRID_FACTOR = "IN-CEA-2023-24"


def carbon_offset_kg(kwh: float, factor_kg_per_kwh: float) -> float:
    """CO2 avoided by `kwh` of renewable energy displacing grid energy: kWh × factor."""
    return kwh * factor_kg_per_kwh


def diesel_avoided_l(kwh: float, specific_l_per_kwh: float) -> float:
    """Diesel not burnt because `kwh` came from elsewhere: kWh × the set's L/kWh."""
    return kwh * specific_l_per_kwh
