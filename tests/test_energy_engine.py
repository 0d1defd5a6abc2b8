"""The energy engine driven by explicit times, without a loop or a store: a meter
hierarchy with a known injected loss, a counter rollover, a BAD child, power-only
meters, and the day rollup."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from scadad.api.energy_messages import GeneratorSpec, MeterSpec
from scadad.api.tag_messages import TagSpec
from scadad.bus import Bus
from scadad.clock import to_us
from scadad.config import EnergySettings
from scadad.energy.catalog import MeterRec
from scadad.energy.engine import EnergyEngine, Reading
from scadad.tags.table import BAD, LiveTag, TagTable

T0 = to_us(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
MIN = 60_000_000
Q = 15 * MIN


@dataclass
class FakeCatalog:
    """What the engine reads of the energy catalog."""

    meters: dict[str, MeterRec] = field(default_factory=dict)
    generators: dict[str, GeneratorSpec] = field(default_factory=dict)

    def tz_of(self, meter: str) -> str:
        return "Asia/Kolkata"


class Plant:
    def __init__(self, tree: list[tuple[str, str, str | None, list[str]]]) -> None:
        """tree: (name, type, parent, roles) with roles among import_kwh, power_total."""
        self.table = TagTable(Bus())
        self.cat = FakeCatalog()
        self.tags: dict[str, LiveTag] = {}
        next_id = 1
        for i, (name, kind, parent, roles) in enumerate(tree):
            points = {}
            for role in roles:
                path = f"p/{name}/{role}"
                tag = LiveTag(next_id, TagSpec(path=path, data_type="float64", source="memory"))
                next_id += 1
                self.table.add(tag)
                self.tags[path] = tag
                points[role] = path
            spec = MeterSpec(name=name, type=kind, parent=parent, points=points, site="p")  # type: ignore[arg-type]
            self.cat.meters[name] = MeterRec(i + 1, spec, 0, 0)
        for rec in self.cat.meters.values():
            if rec.spec.parent:
                self.cat.meters[rec.spec.parent].children.append(rec.spec.name)
        self.engine = EnergyEngine(None, self.cat, self.table, EnergySettings())  # type: ignore[arg-type]
        self.engine.rebuild(T0)
        self.table.listeners.append(self.engine.on_changes)

    def write(self, path: str, value: Any, at: int, quality: str = "GOOD") -> None:
        self.table.set_value(self.tags[path], value, quality, None if quality == "GOOD" else "comm_failure", "",
                             source_us=at)  # fmt: skip

    def losses(self) -> list[dict[str, Any]]:
        return [row for kind, rows in self.engine.pending if kind == "loss" for row in rows]


def by_meter(readings: list[Reading]) -> dict[str, Reading]:
    return {r.meter: r for r in readings}


def test_known_injected_loss_is_reported_to_a_tenth_of_a_percent() -> None:
    p = Plant([
        ("main", "main", None, ["import_kwh"]),
        ("f1", "feeder", "main", ["import_kwh"]),
        ("f2", "feeder", "main", ["import_kwh"]),
        ("f3", "feeder", "main", ["import_kwh"]),
    ])  # fmt: skip
    base = {"main": 5000.0, "f1": 1000.0, "f2": 2000.0, "f3": 3000.0}
    for m, v in base.items():
        p.write(f"p/{m}/import_kwh", v, T0)
    # 15 minutes in 1-minute steps: feeders take 10, 20, 30 kWh/min; the main delivers
    # 2.5 % more than they take (the loss we injected).
    for k in range(1, 16):
        t = T0 + k * MIN - 1
        took = {"f1": 10.0 * k, "f2": 20.0 * k, "f3": 30.0 * k}
        for m, v in took.items():
            p.write(f"p/{m}/import_kwh", base[m] + v, t)
        p.write("p/main/import_kwh", base["main"] + 60.0 * k / (1 - 0.025), t)
    readings = by_meter(p.engine.close_due(T0 + Q))
    assert readings["f1"].import_kwh == pytest.approx(150.0)
    assert readings["main"].import_kwh == pytest.approx(900.0 / 0.975)
    [loss] = p.losses()
    assert loss["st"] == "ok" and loss["lp"] == pytest.approx(2.5, abs=0.1)
    assert loss["pk"] == pytest.approx(923.077, abs=1e-3) and loss["ck"] == pytest.approx(900.0)


def test_a_counter_rollover_is_never_negative_consumption() -> None:
    p = Plant([("m", "load", None, ["import_kwh"])])
    p.write("p/m/import_kwh", 999_990.0, T0)
    p.write("p/m/import_kwh", 999_999.5, T0 + 5 * MIN)
    p.write("p/m/import_kwh", 4.5, T0 + 10 * MIN)  # the register wrapped at 1,000,000
    p.write("p/m/import_kwh", 12.0, T0 + 14 * MIN)
    [r] = p.engine.close_due(T0 + Q)
    assert r.import_kwh is not None and r.import_kwh >= 0
    # The 9.5 kWh before the wrap and everything after it are counted; the unknown bit
    # across the wrap makes the reading an estimate, said so.
    assert r.import_kwh == pytest.approx(9.5 + 4.5 + 7.5)
    assert r.estimated and "reset" in (r.reason or "")


def test_an_interval_with_a_bad_child_has_no_loss_figure_and_says_why() -> None:
    p = Plant([
        ("main", "main", None, ["import_kwh"]),
        ("f1", "feeder", "main", ["import_kwh"]),
        ("f2", "feeder", "main", ["import_kwh"]),
    ])  # fmt: skip
    for m in ("main", "f1", "f2"):
        p.write(f"p/{m}/import_kwh", 100.0, T0)
    p.write("p/main/import_kwh", 200.0, T0 + 5 * MIN)
    p.write("p/f1/import_kwh", 150.0, T0 + 5 * MIN)
    p.write("p/f2/import_kwh", 120.0, T0 + 6 * MIN)
    p.write("p/f2/import_kwh", 120.0, T0 + 7 * MIN, quality=BAD)  # f2's meter stopped answering
    readings = by_meter(p.engine.close_due(T0 + Q))
    assert readings["f2"].quality == BAD and "BAD" in (readings["f2"].reason or "")
    [loss] = p.losses()
    assert loss["st"] == "incomplete" and loss["lp"] is None and loss["lk"] is None
    assert "f2" in loss["note"]


def test_power_only_meter_integrates_and_is_flagged_estimated() -> None:
    p = Plant([("m", "load", None, ["power_total"])])
    p.write("p/m/power_total", 40.0, T0)
    p.write("p/m/power_total", 80.0, T0 + 5 * MIN)  # 40 kW for 5 min, then 80 kW for 10 min
    [r] = p.engine.close_due(T0 + Q)
    assert r.import_kwh == pytest.approx(40 * 5 / 60 + 80 * 10 / 60)
    assert r.estimated and r.avg_kw == pytest.approx((40 * 5 + 80 * 10) / 15)
    assert r.max_kw == 80.0 and r.quality == "GOOD"


def test_bus_without_its_own_meter_balances_its_sources_against_its_feeders() -> None:
    p = Plant([
        ("bus", "main", None, []),
        ("grid", "grid", "bus", ["import_kwh"]),
        ("pv", "solar", "bus", ["import_kwh"]),
        ("f1", "feeder", "bus", ["import_kwh"]),
    ])  # fmt: skip
    for m in ("grid", "pv", "f1"):
        p.write(f"p/{m}/import_kwh", 0.0, T0)
    p.write("p/grid/import_kwh", 70.0, T0 + 10 * MIN)
    p.write("p/pv/import_kwh", 32.0, T0 + 10 * MIN)
    p.write("p/f1/import_kwh", 100.0, T0 + 10 * MIN)
    p.engine.close_due(T0 + Q)
    [loss] = p.losses()
    assert loss["pk"] == pytest.approx(102.0) and loss["ck"] == pytest.approx(100.0)
    assert loss["lp"] == pytest.approx(100 * 2 / 102)


def test_day_rollup_and_load_profile_follow_the_local_day() -> None:
    p = Plant([("m", "load", None, ["import_kwh", "power_total"])])
    p.write("p/m/import_kwh", 0.0, T0)
    for k in range(4):  # four quarter hours: 10, 20, 30, 40 kWh
        p.write("p/m/power_total", 40.0 * (k + 1), T0 + k * Q)
        p.write("p/m/import_kwh", 10.0 * (k + 1) * (k + 2) / 2, T0 + k * Q + Q - 1)
    p.engine.close_due(T0 + 4 * Q)  # the first three closed as later values arrived
    readings = [row for kind, rows in p.engine.pending if kind == "reading" for row in rows]
    assert [r["imp"] for r in readings] == pytest.approx([10, 20, 30, 40])
    assert [r["s"] for r in readings] == [T0, T0 + Q, T0 + 2 * Q, T0 + 3 * Q]
    days = [row for kind, rows in p.engine.pending if kind == "day" for row in rows]
    last = days[-1]
    assert last["day"] == "2026-03-02" and last["imp"] == pytest.approx(100.0) and last["n"] == 4
    assert last["peak"] == pytest.approx(160.0)
    lv = p.engine.live["m"]
    # 10:00 UTC is 15:30 in Kolkata: quarter hours 62..65 of the local day.
    assert lv.profile[62:66] == [40.0, 80.0, 120.0, 160.0]


def test_compute_day_finds_the_injected_loss_in_every_interval() -> None:
    from scadad.energy.batch import Node, compute_day

    nodes = [Node("bus", None, "main"), Node("grid", "bus", "grid"), Node("f1", "bus", "feeder"),
             Node("f2", "bus", "feeder"), Node("l1", "f1", "load")]  # fmt: skip
    samples: dict[str, list[tuple[int, float]]] = {n: [] for n in ("grid", "f1", "f2", "l1")}
    c = {"grid": 500.0, "f1": 100.0, "f2": 999_990.0, "l1": 10.0}
    for m in range(24 * 60 + 1):
        t = T0 + m * MIN
        for name in samples:
            samples[name].append((t, c[name]))
        c["l1"] += 1.0
        c["f1"] += 1.0 * 1.04  # f1 loses 4 % of what it delivers to l1... warning band
        c["f2"] += 2.0
        c["grid"] += (1.04 + 2.0) * 1.02
    res = compute_day(nodes, samples, T0, 900, 96)
    assert len(res.readings["f2"]) == 96 and all(r is not None and r >= 0 for r in res.readings["f2"])
    # The day's last reading inside [00:00, 24:00) is at 23:59: 1439 one-minute steps.
    assert res.totals["l1"] == pytest.approx(1439.0)
    bus = res.losses["bus"]
    assert all(s == "ok" and p == pytest.approx(100 * 0.02 / 1.02, abs=0.1) for s, _, p, _ in bus)
    f1 = res.losses["f1"]
    assert all(s == "warning" and p == pytest.approx(100 * 0.04 / 1.04, abs=0.1) for s, _, p, _ in f1)


def test_a_meter_without_totals_adds_its_phases() -> None:
    p = Plant([("m", "load", None, ["power_l1", "power_l2", "power_l3", "reactive_total"])])
    p.write("p/m/reactive_total", 30.0, T0)
    for ph, kw in (("power_l1", 10.0), ("power_l2", 12.0), ("power_l3", 18.0)):
        p.write(f"p/m/{ph}", kw, T0)
    lv = p.engine.live["m"]
    assert lv.kw == pytest.approx(40.0)
    assert lv.pf == pytest.approx(40.0 / 50.0)  # S = sqrt(40² + 30²) = 50 kVA
    [r] = p.engine.close_due(T0 + Q)
    assert r.import_kwh == pytest.approx(10.0) and r.estimated  # 40 kW for a quarter hour


def test_generator_run_time_and_fuel_curve_come_from_its_power() -> None:
    p = Plant([("dg", "generator", None, ["power_total"])])
    p.cat.generators["dg"] = GeneratorSpec(meter="dg", rated_kw=200.0, f0=0.08, f1=0.25)
    p.write("p/dg/power_total", 0.5, T0)  # idle noise below 1 % of the rating: not running
    p.write("p/dg/power_total", 100.0, T0 + 5 * MIN)
    p.write("p/dg/power_total", 0.0, T0 + 35 * MIN)
    lv = p.engine.live["dg"]
    assert lv.run_us == 30 * MIN
    # 30 min at 100 kW: (0.08 x 200 + 0.25 x 100) L/h x 0.5 h, plus 5 min of idling at 0.5 kW
    assert lv.curve_l == pytest.approx((16 + 25) * 0.5 + (16 + 0.125) * 5 / 60)
