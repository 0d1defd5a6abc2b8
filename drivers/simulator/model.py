"""Deterministic signal models behind the simulated devices (pure, stdlib only).

Every value is a function of (device index, seed, simulated time): the same
three give the same numbers on any machine, so a test with a fixed clock and
seed knows exactly what a device must answer.

* Curves are shaped by the hour of day (UTC plus an optional offset): a daily
  load profile (night base, morning ramp, midday plateau with a lunch dip,
  evening peak) and a solar bell (zero at night, sin^2 between 06:00 and 18:00).
* Noise comes from ``random.Random`` seeded with (seed, index, whole second):
  it changes once per simulated second and repeats exactly for the same second.
* Energy counters are closed-form integrals of the noise-free curves since a
  fixed reference epoch (``ENERGY_EPOCH``), so they are monotonic whatever the
  update cadence, and still a pure function of time.
* The diesel generator and the pump station have state that only time and
  commands change (running, fuel, run hours, tank level): ``update(t)``
  integrates it from the previous call's time. Two models fed the same clock
  readings and the same writes agree exactly.

Each model has ``update(t) -> dict`` (all signals at time t) and
``apply(signal, value)`` (a client write to a writable point, taken into
account at the next ``update``).
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable

__all__ = [
    "DAY",
    "ENERGY_EPOCH",
    "LOAD_SHAPE",
    "Clock",
    "DieselGeneratorModel",
    "InverterModel",
    "MeterModel",
    "PumpStationModel",
    "create_model",
    "filler_values",
    "load_energy_hours",
    "load_fraction",
    "solar_energy_hours",
    "solar_fraction",
    "tick_rng",
]

Clock = Callable[[], float]
"""Returns simulated time as epoch seconds (``time.time`` in production, a fixed or stepped value in tests)."""

DAY = 86400.0
ENERGY_EPOCH = 1735689600.0
"""2025-01-01T00:00Z: counters start at their per-device base here (constant before it)."""

# ---------------------------------------------------------------------------
# Curves by hour of day.

LOAD_SHAPE: tuple[tuple[float, float], ...] = (
    (0.0, 0.30),  # night base
    (5.0, 0.30),
    (6.5, 0.45),  # morning ramp
    (9.0, 0.85),
    (12.0, 0.90),  # midday plateau
    (13.0, 0.80),  # lunch dip
    (16.0, 0.85),
    (18.0, 1.00),  # evening peak
    (21.0, 0.95),
    (23.0, 0.45),
    (24.0, 0.30),
)
"""Breakpoints (hour, fraction of the device's rated power); linear in between."""

_LOAD_HOURS = [h for h, _ in LOAD_SHAPE]
_LOAD_CUM = [0.0]
for (h0, f0), (h1, f1) in zip(LOAD_SHAPE, LOAD_SHAPE[1:], strict=False):
    _LOAD_CUM.append(_LOAD_CUM[-1] + (h1 - h0) * (f0 + f1) / 2)
LOAD_DAY_HOURS = _LOAD_CUM[-1]
"""Full-load-equivalent hours per day of the load shape."""

SUNRISE, SUNSET = 6.0, 18.0
SOLAR_DAY_HOURS = (SUNSET - SUNRISE) / 2  # integral of sin^2 over one half period


def load_fraction(hour: float) -> float:
    """The load shape at ``hour`` (0 <= hour <= 24), as a fraction of rated power."""
    i = min(max(bisect.bisect_right(_LOAD_HOURS, hour) - 1, 0), len(LOAD_SHAPE) - 2)
    (h0, f0), (h1, f1) = LOAD_SHAPE[i], LOAD_SHAPE[i + 1]
    return f0 + (f1 - f0) * (hour - h0) / (h1 - h0)


def load_energy_hours(hour: float) -> float:
    """Integral of ``load_fraction`` from 00:00 to ``hour``: exact (trapezoids of a linear curve)."""
    i = min(max(bisect.bisect_right(_LOAD_HOURS, hour) - 1, 0), len(LOAD_SHAPE) - 2)
    h0 = LOAD_SHAPE[i][0]
    return _LOAD_CUM[i] + (hour - h0) * (LOAD_SHAPE[i][1] + load_fraction(hour)) / 2


def solar_fraction(hour: float) -> float:
    """Clear-sky bell: sin^2 between sunrise and sunset, zero at night."""
    if hour <= SUNRISE or hour >= SUNSET:
        return 0.0
    return math.sin(math.pi * (hour - SUNRISE) / (SUNSET - SUNRISE)) ** 2


def solar_energy_hours(hour: float) -> float:
    """Integral of ``solar_fraction`` from 00:00 to ``hour`` (closed form)."""
    x = min(max(hour, SUNRISE), SUNSET) - SUNRISE
    period = SUNSET - SUNRISE
    return x / 2 - period * math.sin(2 * math.pi * x / period) / (4 * math.pi)


def _day_and_hour(t: float, utc_offset_h: float) -> tuple[int, float]:
    local = t + utc_offset_h * 3600
    day = math.floor(local / DAY)
    return day, (local - day * DAY) / 3600


def _energy_since_epoch(t: float, utc_offset_h: float, day_hours: float, cum: Callable[[float], float]) -> float:
    """Full-load hours accumulated by a daily shape between ``ENERGY_EPOCH`` and ``t`` (0 before it)."""
    if t <= ENERGY_EPOCH:
        return 0.0
    d1, h1 = _day_and_hour(t, utc_offset_h)
    d0, h0 = _day_and_hour(ENERGY_EPOCH, utc_offset_h)
    return (d1 - d0) * day_hours + cum(h1) - cum(h0)


def tick_rng(seed: int, index: int, t: float, salt: int = 0) -> random.Random:
    """The noise source for one device during one simulated second."""
    tick = math.floor(t)
    # Mix into one int: Random seeds ints exactly (no hash randomisation).
    return random.Random(((seed * 1_000_003 + index) * 1_000_033 + salt) * 10_000_000_019 + tick)


def _device_rng(kind: str, seed: int, index: int) -> random.Random:
    # A str seed is hashed with SHA-512 by Random: stable across runs and machines.
    return random.Random(f"{kind}:{seed}:{index}")


# ---------------------------------------------------------------------------
# Models.


class MeterModel:
    """A three-phase energy meter on a feeder following the daily load curve.

    Signals: voltage_l1..3 (V), current_l1..3 (A), power_l1..3 and
    power_total (kW), pf_total, frequency (Hz), import_kwh, export_kwh and
    total_kwh (import + export; export from a small rooftop PV share).
    """

    kind = "meter"
    writable: frozenset[str] = frozenset()

    def __init__(self, index: int, seed: int, utc_offset_h: float = 0.0) -> None:
        self.index, self.seed, self.utc_offset_h = index, seed, utc_offset_h
        rng = _device_rng(self.kind, seed, index)
        self.rated_kw = rng.uniform(20.0, 150.0)
        self.pv_kw = rng.uniform(0.0, 0.2) * self.rated_kw
        self.import_base = rng.uniform(1_000.0, 50_000.0)
        self.export_base = rng.uniform(0.0, 500.0)
        shares = [1.0 + rng.uniform(-0.06, 0.06) for _ in range(3)]
        total = sum(shares)
        self.shares = [s / total for s in shares]
        self.v_nominal = [230.0 + rng.uniform(-3.0, 3.0) for _ in range(3)]

    def apply(self, signal: str, value: float | int | bool) -> None:
        raise KeyError(f"meter signal {signal!r} is not writable")

    def update(self, t: float) -> dict[str, float]:
        _, hour = _day_and_hour(t, self.utc_offset_h)
        noise = tick_rng(self.seed, self.index, t)
        load = load_fraction(hour)
        p_total = self.rated_kw * load * (1.0 + 0.02 * (noise.random() - 0.5))
        pf = min(0.999, 0.90 + 0.06 * load + 0.01 * (noise.random() - 0.5))
        out: dict[str, float] = {}
        for i in range(3):
            v = self.v_nominal[i] * (1.0 + 0.01 * (noise.random() - 0.5))
            p = p_total * self.shares[i]
            out[f"voltage_l{i + 1}"] = v
            out[f"power_l{i + 1}"] = p
            out[f"current_l{i + 1}"] = p * 1000.0 / (v * pf)
        out["power_total"] = p_total
        out["pf_total"] = pf
        out["frequency"] = 50.0 + 0.04 * (noise.random() - 0.5)
        imp = self.import_base + self.rated_kw * _energy_since_epoch(
            t, self.utc_offset_h, LOAD_DAY_HOURS, load_energy_hours
        )
        # A fifth of the rooftop PV is exported; the rest is self-consumed.
        exp = self.export_base + 0.2 * self.pv_kw * _energy_since_epoch(
            t, self.utc_offset_h, SOLAR_DAY_HOURS, solar_energy_hours
        )
        out["import_kwh"] = imp
        out["export_kwh"] = exp
        out["total_kwh"] = imp + exp
        return out


class InverterModel:
    """A PV inverter following the clear-sky bell.

    Signals: ac_power_kw, dc_voltage (V), dc_current (A), daily_kwh (since
    local midnight), total_kwh, status (SunSpec St: 2 sleeping, 4 MPPT),
    temperature (degC).
    """

    kind = "inverter"
    writable: frozenset[str] = frozenset()
    EFFICIENCY = 0.97

    def __init__(self, index: int, seed: int, utc_offset_h: float = 0.0) -> None:
        self.index, self.seed, self.utc_offset_h = index, seed, utc_offset_h
        rng = _device_rng(self.kind, seed, index)
        self.rated_kw = rng.uniform(10.0, 100.0)
        self.total_base = rng.uniform(10_000.0, 200_000.0)
        self.mpp_voltage = rng.uniform(550.0, 650.0)

    def apply(self, signal: str, value: float | int | bool) -> None:
        raise KeyError(f"inverter signal {signal!r} is not writable")

    def update(self, t: float) -> dict[str, float | int]:
        _, hour = _day_and_hour(t, self.utc_offset_h)
        noise = tick_rng(self.seed, self.index, t)
        sun = solar_fraction(hour)
        n1, n2 = noise.random() - 0.5, noise.random() - 0.5
        ac = self.rated_kw * sun * (1.0 + 0.03 * n1) if sun > 0 else 0.0
        dc_v = self.mpp_voltage * (0.9 + 0.1 * sun) * (1.0 + 0.005 * n2) if sun > 0 else 0.0
        dc_a = ac * 1000.0 / self.EFFICIENCY / dc_v if dc_v > 0 else 0.0
        total = self.total_base + self.rated_kw * _energy_since_epoch(
            t, self.utc_offset_h, SOLAR_DAY_HOURS, solar_energy_hours
        )
        return {
            "ac_power_kw": ac,
            "dc_voltage": dc_v,
            "dc_current": dc_a,
            "daily_kwh": self.rated_kw * solar_energy_hours(hour),
            "total_kwh": total,
            "status": 4 if ac > 0 else 2,
            "temperature": 25.0 + 20.0 * sun + 0.5 * (noise.random() - 0.5),
        }


class DieselGeneratorModel:
    """A standby diesel generator, started and stopped by command.

    State: running, run seconds, kWh, fuel level, start count. While running
    it carries a share of the site load, burns fuel (idle burn plus
    ~0.21 L/kWh) and shuts down on low fuel (5 %). Commands arrive as a
    key/complement pair (``control_key``, ``control_check``) and are
    cleared once acted on, like a Deep Sea controller's control registers.

    Signals: running, low_fuel_alarm, oil_pressure_kpa, fuel_level (%),
    rpm, frequency (Hz), power_kw, engine_hours, energy_kwh, start_count,
    control_key, control_check.
    """

    kind = "dg"
    writable = frozenset({"control_key", "control_check"})
    START, STOP = 35705, 35700
    LOW_FUEL_ALARM, LOW_FUEL_SHUTDOWN = 10.0, 5.0

    def __init__(self, index: int, seed: int, utc_offset_h: float = 0.0) -> None:
        self.index, self.seed, self.utc_offset_h = index, seed, utc_offset_h
        rng = _device_rng(self.kind, seed, index)
        self.rated_kw = rng.uniform(100.0, 500.0)
        self.tank_litres = rng.uniform(500.0, 2000.0)
        self.fuel_level = rng.uniform(60.0, 95.0)
        self.run_seconds = float(rng.randrange(100, 5000) * 3600)
        self.energy_kwh = rng.uniform(10_000.0, 500_000.0)
        self.start_count = rng.randrange(50, 500)
        self.running = False
        self.control_key = 0
        self.control_check = 0
        self._last_t: float | None = None

    def apply(self, signal: str, value: float | int | bool) -> None:
        if signal == "control_key":
            self.control_key = int(value)
        elif signal == "control_check":
            self.control_check = int(value)
        else:
            raise KeyError(f"dg signal {signal!r} is not writable")

    def _power(self, t: float, noise: float) -> float:
        _, hour = _day_and_hour(t, self.utc_offset_h)
        return self.rated_kw * (0.35 + 0.5 * load_fraction(hour)) * (1.0 + 0.02 * noise)

    def update(self, t: float) -> dict[str, float | int | bool]:
        noise = tick_rng(self.seed, self.index, t)
        n_power, n_rpm, n_oil, n_freq = (noise.random() - 0.5 for _ in range(4))
        power = self._power(t, n_power)
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        if self.running and dt > 0:
            self.run_seconds += dt
            self.energy_kwh += power * dt / 3600
            litres_per_h = 0.05 * self.rated_kw + 0.21 * power
            self.fuel_level = max(0.0, self.fuel_level - litres_per_h * dt / 3600 / self.tank_litres * 100)
        if self.control_key and self.control_check == 0xFFFF - self.control_key:
            if self.control_key == self.START and not self.running and self.fuel_level > self.LOW_FUEL_SHUTDOWN:
                self.running = True
                self.start_count += 1
            elif self.control_key == self.STOP:
                self.running = False
        # A key the controller does not accept (or a wrong complement) is dropped, not kept pending.
        self.control_key = self.control_check = 0
        if self.running and self.fuel_level <= self.LOW_FUEL_SHUTDOWN:
            self.running = False
        run = self.running
        return {
            "running": run,
            "low_fuel_alarm": self.fuel_level < self.LOW_FUEL_ALARM,
            "oil_pressure_kpa": 400.0 + 20.0 * n_oil if run else 0.0,
            "fuel_level": self.fuel_level,
            "rpm": 1500.0 + 6.0 * n_rpm if run else 0.0,
            "frequency": 50.0 + 0.2 * n_freq if run else 0.0,
            "power_kw": power if run else 0.0,
            "engine_hours": self.run_seconds / 3600,
            "energy_kwh": self.energy_kwh,
            "start_count": self.start_count,
            "control_key": self.control_key,
            "control_check": self.control_check,
        }


class PumpStationModel:
    """A tank filled by a transfer pump and drained by a demand following the load curve.

    In auto the pump starts when the level is at or below ``level_low_sp`` and
    stops at or above ``level_high_sp``; ``manual_run`` forces it on up to the
    98 % high-high interlock. Setpoints are clamped to 0..100 %.

    Signals: level (%), flow (pump, m3/h), outflow (m3/h), running,
    manual_run, level_high_sp, level_low_sp, low_level_alarm (< 10 %),
    high_level_alarm (> 95 %).
    """

    kind = "pump"
    writable = frozenset({"level_high_sp", "level_low_sp", "manual_run"})
    HIGH_HIGH = 98.0

    def __init__(self, index: int, seed: int, utc_offset_h: float = 0.0) -> None:
        self.index, self.seed, self.utc_offset_h = index, seed, utc_offset_h
        rng = _device_rng(self.kind, seed, index)
        self.tank_m3 = rng.uniform(50.0, 200.0)
        self.pump_m3h = rng.uniform(40.0, 80.0)
        self.level = rng.uniform(40.0, 70.0)
        self.level_high_sp = 80.0
        self.level_low_sp = 30.0
        self.manual_run = False
        self.running = False
        self._last_t: float | None = None

    def apply(self, signal: str, value: float | int | bool) -> None:
        if signal == "manual_run":
            self.manual_run = bool(value)
        elif signal in ("level_high_sp", "level_low_sp"):
            setattr(self, signal, min(max(float(value), 0.0), 100.0))
        else:
            raise KeyError(f"pump signal {signal!r} is not writable")

    def _outflow(self, t: float) -> float:
        _, hour = _day_and_hour(t, self.utc_offset_h)
        return self.pump_m3h * (0.2 + 0.6 * load_fraction(hour))

    def update(self, t: float) -> dict[str, float | bool]:
        noise = tick_rng(self.seed, self.index, t)
        n_flow = noise.random() - 0.5
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        outflow = self._outflow(t)
        if dt > 0:
            inflow = self.pump_m3h if self.running else 0.0
            self.level += (inflow - outflow) * dt / 3600 / self.tank_m3 * 100
            self.level = min(max(self.level, 0.0), 100.0)
        if self.manual_run:
            self.running = self.level < self.HIGH_HIGH
        elif self.level <= self.level_low_sp:
            self.running = True
        elif self.level >= self.level_high_sp:
            self.running = False
        return {
            "level": self.level,
            "flow": self.pump_m3h * (1.0 + 0.02 * n_flow) if self.running else 0.0,
            "outflow": outflow,
            "running": self.running,
            "manual_run": self.manual_run,
            "level_high_sp": self.level_high_sp,
            "level_low_sp": self.level_low_sp,
            "low_level_alarm": self.level < 10.0,
            "high_level_alarm": self.level > 95.0,
        }


Model = MeterModel | InverterModel | DieselGeneratorModel | PumpStationModel

_MODELS: dict[str, type[Model]] = {
    "meter": MeterModel,
    "inverter": InverterModel,
    "dg": DieselGeneratorModel,
    "pump": PumpStationModel,
}


def create_model(model: str, index: int, seed: int, utc_offset_h: float = 0.0) -> Model:
    """A fresh model of kind ``model`` ("meter", "inverter", "dg", "pump") for device ``index``."""
    try:
        cls = _MODELS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r} (one of {', '.join(sorted(_MODELS))})") from None
    return cls(index, seed, utc_offset_h)


def filler_values(index: int, seed: int, t: float, count: int) -> list[float]:
    """``count`` slowly varying float values for the filler tags of device ``index`` at ``t``.

    Each tag k is a sine around its own level with a 10-minute period plus
    per-second noise: cheap enough for hundreds of devices with hundreds of
    tags, and deterministic like everything else here.
    """
    if count <= 0:
        return []
    noise = tick_rng(seed, index, t, salt=1)
    phase = 2 * math.pi * (t % 600.0) / 600.0
    rnd = noise.random
    sin = math.sin
    return [100.0 + (10.0 * k) % 900.0 + 5.0 * sin(phase + k) + (rnd() - 0.5) for k in range(count)]
