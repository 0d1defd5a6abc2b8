"""Diesel generator analysis replayed on a synthetic, noisy tank-level series."""

from __future__ import annotations

import math
import random

import pytest

from scadad.energy.dg import (
    FuelEvent,
    analyse_fuel,
    co2_kg,
    fuel_curve_lph,
    run_hours,
    specific_consumption,
    starts,
)

S = 1_000_000
T0 = 1_700_000_000 * S
TANK_L = 1000.0
RATED_KW = 100.0
LOAD_KW = 50.0
BURN_LPH = fuel_curve_lph(RATED_KW, LOAD_KW)  # 8.415 + 12.3 = 20.715 L/h

# Seconds from T0. Stopped, run 1 h, stopped (200 L refuel), run 1 h, stopped (40 L theft).
RUNS = [(1800, 5400), (9000, 12600)]
REFUEL = (6000, 6300, 200.0)
THEFT = (13500, 13620, 40.0)
END = 16200


def true_litres(t: float) -> float:
    level = 550.0
    for a, b in RUNS:
        level -= BURN_LPH * max(0.0, min(t, b) - a) / 3600
    for a, b, litres, sign in (REFUEL + (1,), THEFT + (-1,)):
        level += sign * litres * max(0.0, min(1.0, (t - a) / (b - a)))
    return level


def synthetic_series(seed: int = 7) -> tuple[list[tuple[int, float]], list[tuple[int, bool]]]:
    """~1 Hz level samples in %, ±0.3 % uniform sensor noise, sloshing while running."""
    rng = random.Random(seed)
    levels = []
    t = 0.0
    while t < END:
        running = any(a <= t < b for a, b in RUNS)
        slosh = 0.2 * math.sin(2 * math.pi * t / 7.0) if running else 0.0
        pct = true_litres(t) / TANK_L * 100 + rng.uniform(-0.3, 0.3) + slosh
        levels.append((T0 + int(t * S), pct))
        t += rng.uniform(0.7, 1.3)
    changes = []
    for a, b in RUNS:
        changes += [(T0 + a * S, True), (T0 + b * S, False)]
    return levels, changes


@pytest.fixture(scope="module")
def analysis():
    levels, changes = synthetic_series()
    return analyse_fuel(levels, changes, tank_l=TANK_L)


def test_fuel_curve_default_coefficients():
    assert BURN_LPH == pytest.approx(20.715)
    assert fuel_curve_lph(100, 0) == pytest.approx(8.415)  # no-load burn
    assert fuel_curve_lph(100, 50, f0=0.1, f1=0.25) == pytest.approx(22.5)
    with pytest.raises(ValueError):
        fuel_curve_lph(0, 10)


def test_refuel_found_with_litres_within_2_percent(analysis):
    assert len(analysis.refuels) == 1
    ev = analysis.refuels[0]
    assert ev.kind == "refuel"
    assert ev.litres == pytest.approx(200.0, rel=0.02)
    # Timed on the smoothed series: within the smoothing window of the true fill.
    assert T0 + (REFUEL[0] - 120) * S <= ev.start_us < ev.end_us <= T0 + (REFUEL[1] + 120) * S


def test_theft_found_while_stopped_with_litres_within_2_percent(analysis):
    assert len(analysis.thefts) == 1
    ev = analysis.thefts[0]
    assert ev.kind == "theft"
    assert ev.litres == pytest.approx(40.0, rel=0.02)
    assert T0 + (THEFT[0] - 120) * S <= ev.start_us < ev.end_us <= T0 + (THEFT[1] + 120) * S


def test_consumption_and_specific_consumption_match_hand_calculation(analysis):
    expected_l = 2 * BURN_LPH  # two hours at 50 kW: 41.43 L
    assert analysis.consumed_l == pytest.approx(expected_l, rel=0.02)
    kwh = 2 * LOAD_KW  # 100 kWh delivered
    assert specific_consumption(analysis.consumed_l, kwh) == pytest.approx(0.4143, rel=0.02)
    assert specific_consumption(10.0, 0.0) is None
    assert co2_kg(expected_l) == pytest.approx(41.43 * 2.68)


def test_smoothed_series_is_in_litres_and_quiet(analysis):
    levels, _ = synthetic_series()
    assert len(analysis.smoothed) == len(levels)
    # On a flat stretch the ±3 L sensor noise is gone.
    flat = [v for ts, v in analysis.smoothed if T0 + 300 * S <= ts < T0 + 1500 * S]
    assert max(flat) - min(flat) < 1.0
    assert sum(flat) / len(flat) == pytest.approx(550.0, abs=0.5)


def test_noise_alone_is_not_an_event():
    rng = random.Random(3)
    levels = [(T0 + k * S, 50.0 + rng.uniform(-0.3, 0.3) + (2.0 if k % 97 == 0 else 0.0)) for k in range(7200)]
    result = analyse_fuel(levels, [], tank_l=TANK_L)
    assert result.refuels == [] and result.thefts == [] and result.consumed_l == 0.0


def test_refuel_while_running_is_not_negative_consumption():
    # 1 Hz, running throughout at 36 L/h, a 100 L refuel over 2 minutes half way.
    levels = []
    for k in range(7200):
        litres = 600.0 - 0.01 * k + 100.0 * max(0.0, min(1.0, (k - 3600) / 120))
        levels.append((T0 + k * S, litres / 10))
    result = analyse_fuel(levels, [(T0, True)], tank_l=TANK_L)
    assert [round(e.litres) for e in result.refuels] == [100]
    assert result.thefts == []
    assert result.consumed_l == pytest.approx(72.0, rel=0.02)


def test_run_hours_and_starts_exact():
    _, changes = synthetic_series()
    assert run_hours(changes, T0, T0 + END * S) == 2.0
    assert starts(changes) == 2
    # Windows cut a run; the state before the first change is "off".
    assert run_hours(changes, T0 + 3600 * S, T0 + 10800 * S) == pytest.approx(1.0)
    assert starts(changes, T0 + 3600 * S, T0 + END * S) == 1
    # A change list that begins with "off" means the set was running before it.
    assert run_hours([(T0 + 1800 * S, False)], T0, T0 + 3600 * S) == 0.5
    assert starts([(T0, True), (T0 + S, True), (T0 + 2 * S, False), (T0 + 3 * S, True)]) == 2
    assert run_hours([], T0, T0 + S) == 0.0


def test_fuel_event_is_a_small_value():
    assert FuelEvent(1, 2, 3.0, "refuel") == FuelEvent(1, 2, 3.0, "refuel")
