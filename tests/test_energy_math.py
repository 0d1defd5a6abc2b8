"""Energy arithmetic: hand-calculated cases for scaling, counters, intervals, loss and targets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from math import sqrt

import pytest

from scadad.energy.math import (
    DEFAULT_GRID_FACTOR,
    DIESEL_CO2_KG_PER_L,
    GRID_FACTORS,
    PQS,
    CounterStep,
    apply_ratio,
    carbon_offset_kg,
    counter_delta,
    demand_stats,
    diesel_avoided_l,
    feeder_loss,
    integrate_power,
    interval_energy,
    interval_start,
    pqs_from_phases,
    ratio_factor,
    target_progress,
)

MIN_US = 60_000_000
T0 = 1_700_000_100 * 1_000_000 - (1_700_000_100 * 1_000_000) % (15 * MIN_US)  # a quarter-hour boundary

# A blank-5 meter on an 11 kV feeder: CT 200/5, PT 11000/110.
CT = (200, 5)
PT = (11000, 110)


def factor(cls: str, applied: bool = False) -> float:
    return ratio_factor(cls, *CT, *PT, applied)


# --------------------------------------------------------------------------- CT / PT


def test_blank5_meter_scales_current_voltage_power_and_energy():
    assert factor("current") == 40
    assert factor("voltage") == 100
    assert factor("power") == 4000
    assert factor("energy") == 4000
    assert apply_ratio(2.5, factor("current")) == 100.0
    assert apply_ratio(110.0, factor("voltage")) == 11000.0
    assert apply_ratio(1.25, factor("energy")) == 5000.0


def test_ratio_free_values_and_meter_applied_ratios_are_unchanged():
    assert factor("none") == 1
    for cls in ("current", "voltage", "power", "energy", "none"):
        assert factor(cls, applied=True) == 1
    assert apply_ratio(None, 40) is None


def test_bad_ratio_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown ratio class"):
        factor("frequency")
    with pytest.raises(ValueError, match="CT ratio"):
        ratio_factor("current", 200, 0, 1, 1, False)


# --------------------------------------------------------------------------- P, Q, S


def test_pqs_from_per_phase_p_and_q():
    r = pqs_from_phases([230, 231, 229], [10, 11, 9], p=[2.0, 2.2, 1.8], q=[1.0, 1.1, 0.9])
    assert r.p_kw == pytest.approx(6.0)
    assert r.q_kvar == pytest.approx(3.0)
    assert r.s_kva == pytest.approx(sqrt(45))
    assert r.pf == pytest.approx(6 / sqrt(45))


def test_pqs_from_v_and_i_only():
    r = pqs_from_phases([230.0, 240.0, 250.0], [10.0, 20.0, 30.0])
    # 2300 + 4800 + 7500 = 14600 VA
    assert r == PQS(None, None, pytest.approx(14.6), None)
    r = pqs_from_phases([230.0, 240.0, 250.0], [10.0, 20.0, 30.0], p=[2.0, 4.0, 6.6])
    assert r.s_kva == pytest.approx(14.6)
    assert r.pf == pytest.approx(12.6 / 14.6)


def test_pqs_export_gives_negative_pf_and_missing_phase_gives_none():
    r = pqs_from_phases([230] * 3, [10] * 3, p=[-2.0] * 3, q=[0.0] * 3)
    assert r.pf == pytest.approx(-1.0)
    r = pqs_from_phases([230, None, 230], [10, 10, 10])
    assert r == PQS(None, None, None, None)
    r = pqs_from_phases([230, None, 230], [10, 10, 10], p=[1.0, None, 1.0], q=[0.5, 0.5, 0.5])
    assert r.p_kw is None and r.s_kva is None and r.pf is None
    assert r.q_kvar == pytest.approx(1.5)
    r = pqs_from_phases([0.0] * 3, [0.0] * 3, p=[0.0] * 3)
    assert r.s_kva == 0 and r.pf is None


# --------------------------------------------------------------------------- counters


def test_counter_ok_and_jump():
    assert counter_delta(100.0, 112.5) == CounterStep(12.5, "ok")
    assert counter_delta(100.0, 100.0) == CounterStep(0.0, "ok")
    assert counter_delta(100.0, 5100.0, max_step=1000) == CounterStep(None, "jump")


def test_counter_rollover_at_999999_9_is_not_negative():
    step = counter_delta(999_990.0, 5.0, rollover_at=1_000_000.0)
    assert step == CounterStep(15.0, "rollover")
    step = counter_delta(999_999.9, 0.3, rollover_at=1_000_000.0)
    assert step.kind == "rollover" and step.delta == pytest.approx(0.4)


def test_counter_reset_gives_energy_since_reset():
    # Far from the wrap point: a replaced meter, not a rollover.
    assert counter_delta(500_000.0, 3.0, rollover_at=1_000_000.0) == CounterStep(3.0, "reset")
    assert counter_delta(1234.0, 2.0) == CounterStep(2.0, "reset")
    # A rollover bigger than max_step is implausible → reset.
    assert counter_delta(999_000.0, 5.0, rollover_at=1_000_000.0, max_step=100).kind == "reset"
    # A replacement meter that starts far from 0 cannot be trusted with max_step given.
    assert counter_delta(1234.0, 800.0, max_step=100) == CounterStep(None, "jump")


# --------------------------------------------------------------------------- intervals


def test_interval_start_aligns_to_quarter_hours():
    assert interval_start(T0 + 7 * MIN_US + 123, 900) == T0
    assert interval_start(T0, 900) == T0
    assert interval_start(T0 - 1, 900) == T0 - 15 * MIN_US
    # 2023-11-14 22:13:20 UTC is 03:43:20 IST (+05:30) and 17:13:20 EST: the UTC quarter
    # start is the local quarter start in both.
    ts = 1_700_000_000 * 1_000_000
    start_s = interval_start(ts, 900) // 1_000_000
    ist = datetime.fromtimestamp(start_s, timezone(timedelta(hours=5, minutes=30)))
    est = datetime.fromtimestamp(start_s, timezone(timedelta(hours=-5)))
    assert (ist.hour, ist.minute, ist.second) == (3, 30, 0)
    assert (est.hour, est.minute, est.second) == (17, 0, 0)
    assert interval_start(ts, 900) == (1_700_000_000 - 13 * 60 - 20) * 1_000_000


def test_interval_energy_clean_and_with_base():
    samples = [(T0 + k * MIN_US, 100.0 + 0.5 * k) for k in range(15)]
    r = interval_energy(samples, T0, T0 + 15 * MIN_US, prev=(T0 - MIN_US, 99.5))
    assert r.kwh == pytest.approx(7.5) and not r.estimated and r.steps == [] and r.coverage == 1.0
    r = interval_energy(samples, T0, T0 + 15 * MIN_US)
    assert r.kwh == pytest.approx(7.0) and r.estimated
    # Readings before the start serve as the base; readings at the end belong to the next interval.
    wider = [(T0 - MIN_US, 99.5), *samples, (T0 + 15 * MIN_US, 107.5)]
    assert interval_energy(wider, T0, T0 + 15 * MIN_US).kwh == pytest.approx(7.5)
    assert interval_energy([], T0, T0 + 15 * MIN_US, prev=(T0 - MIN_US, 1.0)).kwh is None


def test_interval_energy_across_rollover_equals_true_energy():
    true_counter = [999_990.0 + 1.5 * k for k in range(15)]  # crosses 1,000,000 at k≈7
    samples = [(T0 + k * MIN_US, c % 1_000_000.0) for k, c in enumerate(true_counter)]
    r = interval_energy(samples, T0, T0 + 15 * MIN_US, prev=(T0 - MIN_US, 999_988.5), rollover_at=1_000_000.0)
    assert r.kwh == pytest.approx(true_counter[-1] - 999_988.5)
    assert r.steps == ["rollover"] and not r.estimated


def test_interval_energy_reset_and_jump_are_estimates():
    samples = [(T0, 10.0), (T0 + MIN_US, 12.0), (T0 + 2 * MIN_US, 1.0), (T0 + 3 * MIN_US, 3.0)]
    r = interval_energy(samples, T0, T0 + 15 * MIN_US, prev=(T0 - MIN_US, 9.0))
    assert r.kwh == pytest.approx(3.0 + 3.0) and r.steps == ["reset"] and r.estimated
    samples = [(T0, 10.0), (T0 + MIN_US, 5000.0), (T0 + 2 * MIN_US, 5002.0)]
    r = interval_energy(samples, T0, T0 + 15 * MIN_US, prev=(T0 - MIN_US, 9.0), max_step=100)
    assert r.kwh == pytest.approx(1.0 + 2.0) and r.steps == ["jump"] and r.estimated


def test_integrate_power_ramp_trapezoid_and_step():
    # 0 → 60 kW linearly over an hour, a reading a minute (the last at 59 min).
    start, end = T0, T0 + 60 * MIN_US
    samples = [(T0 + k * MIN_US, float(k)) for k in range(60)] + [(end, 60.0)]
    r = integrate_power(samples, start, end)
    assert r.kwh == pytest.approx(30.0) and r.coverage == 1.0 and r.estimated
    # Holding each reading for its minute undercounts by half a minute of each step: 29.5.
    assert integrate_power(samples, start, end, method="step").kwh == pytest.approx(29.5)
    avg, peak = demand_stats(samples, start, end)
    assert avg == pytest.approx(30.0) and peak == pytest.approx(60.0)
    # A sub-interval clipped from the ramp: 15..30 min → ∫ = (15+30)/2 kW × 0.25 h.
    r = integrate_power(samples, T0 + 15 * MIN_US, T0 + 30 * MIN_US)
    assert r.kwh == pytest.approx(5.625)


def test_integrate_power_gaps_lower_coverage_not_energy_to_zero():
    start, end = T0, T0 + 60 * MIN_US
    samples = [(T0 + k * 10 * MIN_US, 12.0) for k in range(6)]
    assert integrate_power(samples, start, end).kwh == pytest.approx(12.0)
    gappy = list(samples)
    gappy[2] = (T0 + 20 * MIN_US, None)  # a 10-minute gap
    r = integrate_power(gappy, start, end, method="step")
    assert r.coverage == pytest.approx(50 / 60) and r.kwh == pytest.approx(10.0) and r.steps == ["gap"]
    assert demand_stats(gappy, start, end, method="step") == (pytest.approx(12.0), 12.0)
    # Data starting late is a gap too; nothing at all → None.
    r = integrate_power(samples[3:], start, end)
    assert r.coverage == pytest.approx(0.5)
    assert integrate_power([], start, end).kwh is None
    assert demand_stats([], start, end) == (None, None)
    # max_gap_s limits how long a reading is held.
    r = integrate_power([(T0, 12.0)], start, end, max_gap_s=300)
    assert r.coverage == pytest.approx(5 / 60) and r.kwh == pytest.approx(1.0)


# --------------------------------------------------------------------------- feeder loss


def test_feeder_loss_known_injected_loss():
    children_true = [("F1", 1200.0), ("F2", 850.0), ("F3", 430.0), ("F4", 95.5)]
    children_sum = sum(k for _, k in children_true)
    parent = children_sum / (1 - 0.025)  # 2.5 % lost in the feeder
    r = feeder_loss(parent, [(n, k, "GOOD") for n, k in children_true])
    assert r.status == "ok"
    assert r.loss_pct == pytest.approx(2.5, abs=0.1)
    assert r.children_kwh == pytest.approx(children_sum)
    assert r.loss_kwh == pytest.approx(parent - children_sum)


def test_feeder_loss_incomplete_names_the_meter():
    r = feeder_loss(100.0, [("F1", 50.0, "GOOD"), ("F2", 40.0, "BAD")])
    assert r.status == "incomplete" and "F2" in r.note and "BAD" in r.note
    assert r.loss_kwh is None and r.loss_pct is None and r.children_kwh is None
    r = feeder_loss(None, [("F1", 50.0, "GOOD"), ("F2", None, "GOOD"), ("F3", 1.0, "UNCERTAIN")])
    assert r.status == "incomplete"
    assert "parent" in r.note and "F2: no reading" in r.note and "F3: quality UNCERTAIN" in r.note


def test_feeder_loss_negative_beyond_tolerance_is_suspect_ct():
    r = feeder_loss(100.0, [("F1", 60.0, "GOOD"), ("F2", 41.5, "GOOD")])
    assert r.status == "suspect_ct" and r.loss_pct == pytest.approx(-1.5) and "CT" in r.note
    # Within tolerance it is metering noise.
    assert feeder_loss(100.0, [("F1", 101.0, "GOOD")]).status == "ok"


def test_feeder_loss_thresholds_at_exact_boundaries():
    def status(children_kwh: float) -> str:
        return feeder_loss(100.0, [("F1", children_kwh, "GOOD")]).status

    assert status(97.5) == "ok"  # 2.5 %
    assert status(97.0) == "warning"  # exactly 3 %
    assert status(94.5) == "warning"  # 5.5 %
    assert status(94.0) == "alarm"  # exactly 6 %
    assert status(80.0) == "alarm"


def test_feeder_loss_parent_below_minimum():
    r = feeder_loss(0.5, [("F1", 0.2, "GOOD")])
    assert r.status == "ok" and r.loss_pct is None and r.note == "parent below minimum"
    assert r.loss_kwh == pytest.approx(0.3)
    assert feeder_loss(0.0, [("F1", 0.0, "GOOD")], min_parent_kwh=0.0).loss_pct is None


# --------------------------------------------------------------------------- targets


def test_target_progress_hand_numbers():
    day = 24 * 3_600_000_000
    # A 30-day 30,000 kWh budget, 12 days in, 13,200 kWh used.
    r = target_progress(30_000.0, 13_200.0, 0, 30 * day, 12 * day)
    assert r.consumed == 13_200.0 and r.target == 30_000.0
    assert r.variance_kwh == pytest.approx(1_200.0)  # pro rata 12,000
    assert r.variance_pct == pytest.approx(10.0)
    assert r.projected_kwh == pytest.approx(33_000.0)
    assert r.projected_variance_pct == pytest.approx(10.0)
    assert r.on_track is False
    r = target_progress(30_000.0, 9_000.0, 0, 30 * day, 12 * day)
    assert r.projected_kwh == pytest.approx(22_500.0) and r.on_track is True


def test_target_progress_too_early_to_project():
    r = target_progress(1000.0, 5.0, 0, 100_000, 500)  # 0.5 % of the period
    assert r.projected_kwh is None and r.projected_variance_pct is None and r.on_track is True
    r = target_progress(1000.0, 5.0, 0, 100_000, 0)
    assert r.variance_pct is None and r.variance_kwh == 5.0


# --------------------------------------------------------------------------- renewables


def test_carbon_and_diesel_avoided():
    kg_per_kwh, source = GRID_FACTORS[DEFAULT_GRID_FACTOR]
    assert kg_per_kwh == 0.727 and "CEA" in source and "2023-24" in source
    assert carbon_offset_kg(1000.0, kg_per_kwh) == pytest.approx(727.0)
    assert diesel_avoided_l(1000.0, 0.28) == pytest.approx(280.0)
    assert DIESEL_CO2_KG_PER_L == 2.68
    for value, text in GRID_FACTORS.values():
        assert 0 < value < 1.5 and text
