"""The energy subsystem against a real store (SQLite and PostgreSQL): meters from a
template with CT/PT, readings, daily rollups, load profiles, feeder loss rows, targets
and generators written and read back through the API services, with explicit times
(intervals are closed by the test, not by waiting a quarter of an hour)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from scadad.api.energy_messages import (
    ConsumptionParams,
    GeneratorSpec,
    LossParams,
    MeterDelete,
    MeterSpec,
    MeterUpdate,
    TargetsParams,
    TargetSpec,
)
from scadad.api.errors import FailedPrecondition, InvalidArgument
from scadad.api.registry import CallContext, Peer
from scadad.api.tag_messages import DeviceSpec, TagSpec
from scadad.bus import Bus
from scadad.clock import from_us, to_us
from scadad.config import EnergySettings
from scadad.energy.service import Energy, EnergyService, MetersService
from scadad.sites import PlantModel
from scadad.store import migrations
from scadad.store.database import Database
from scadad.tags.catalog import Catalog, Changed
from scadad.tags.table import LiveTag, TagTable

T0 = to_us(datetime(2026, 3, 2, 4, 30, tzinfo=UTC))  # 10:00 in Kolkata
MIN = 60_000_000
Q = 15 * MIN
CTX = CallContext(Peer(1, 0, 0), 1, 1, "test")


class FakeAcq:
    """Stands in for the pollers: keeps the live table in step with the tag catalog."""

    def __init__(self, tags: Catalog, table: TagTable) -> None:
        self.tags, self.table = tags, table

    def apply(self, changed: Changed) -> None:
        for tid in changed.tags:
            rec = self.tags.tags_by_id.get(tid)
            if rec is not None and tid not in self.table.by_id:
                self.table.add(LiveTag(tid, rec.spec))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scada.db'}"
    return request.getfixturevalue("pg_schema")


def build(url: str) -> tuple[Energy, TagTable, Catalog]:
    db = Database(url)
    migrations.migrate(db)
    plant = PlantModel(db)
    plant.load()
    tags = Catalog(db)
    tags.load()
    table = TagTable(Bus())
    energy = Energy(db, tags, plant, table, FakeAcq(tags, table), EnergySettings(), "works", "Asia/Kolkata")  # type: ignore[arg-type]
    energy.load()
    return energy, table, tags


def write(table: TagTable, path: str, value: Any, at: int) -> None:
    table.set_value(table.by_path[path], value, source_us=at)


def test_meters_readings_losses_targets_round_trip(store: str) -> None:
    async def main() -> None:
        energy, table, tags = build(store)
        meters, svc = MetersService(energy), EnergyService(energy)
        # A PM5xxx-style incomer read through its template: CT 200/5 and PT 11000/110.
        _, ch = await tags.create_device(DeviceSpec(name="pm1", protocol="modbus_tcp", host="127.0.0.1", port=1502))
        m = await meters.create(CTX, MeterSpec(name="incomer", type="main", template="schneider-pm5xxx", device="pm1",
                                               ct_primary=200, ct_secondary=5, pt_primary=11000, pt_secondary=110))  # fmt: skip
        assert m.points["import_kwh"] == "works/energy/incomer/import_kwh" and m.site == "works"
        current = tags.tags["works/energy/incomer/current_l1"].spec
        assert current.eng_high is not None and current.raw_high is not None
        assert current.eng_high / current.raw_high == pytest.approx(40.0)
        # Two feeders on memory tags.
        for f in ("f1", "f2"):
            for q in ("import_kwh", "power_total"):
                rec, ch = await tags.create_tag(TagSpec(path=f"works/{f}/{q}", data_type="float64", source="memory"))
                energy.applied(ch)
            await meters.create(CTX, MeterSpec(name=f, type="feeder", parent="incomer",
                                               points={"import_kwh": f"works/{f}/import_kwh",
                                                       "power_total": f"works/{f}/power_total"}))  # fmt: skip
        energy.applied(Changed(tags=set(tags.tags_by_id)))
        energy.engine.rebuild(T0)
        table.listeners.append(energy.engine.on_changes)
        # Two quarter hours: the incomer delivers 103 kWh for every 100 kWh the feeders take.
        counters = {"works/energy/incomer/import_kwh": 0.0, "works/f1/import_kwh": 0.0, "works/f2/import_kwh": 0.0}
        for path, v in counters.items():
            write(table, path, v, T0)
        for k in range(1, 3):
            t = T0 + k * Q - 1
            write(table, "works/f1/import_kwh", 60.0 * k, t)
            write(table, "works/f2/import_kwh", 40.0 * k, t)
            write(table, "works/energy/incomer/import_kwh", 103.0 * k, t)
            write(table, "works/f1/power_total", 240.0, t)
            energy.engine.close_due(T0 + k * Q)
        await energy.engine.flush()

        end = from_us(T0 + 2 * Q)
        cons = await svc.consumption(CTX, ConsumptionParams(start=from_us(T0), end=end, by="interval"))
        by_meter = {s.meter: s for s in cons.series}
        assert [p.import_kwh for p in by_meter["f1"].points] == [60.0, 60.0]
        assert by_meter["incomer"].total_kwh == pytest.approx(206.0)
        hourly = await svc.consumption(CTX, ConsumptionParams(meters=["f2"], start=from_us(T0), end=end, by="hour"))
        [pt] = hourly.series[0].points
        assert pt.import_kwh == 80.0 and pt.intervals == 2 and pt.start == from_us(T0)  # 10:00 local is on the hour
        loss = await svc.loss(CTX, LossParams(parent="incomer", start=from_us(T0), end=end))
        assert [(r.status, r.loss_kwh, round(r.loss_pct or 0, 2)) for r in loss.rows] == [("ok", 3.0, 2.91)] * 2

        # Targets: a month budget for f1 counts what f1 read in the month so far.
        await svc.set_target(CTX, TargetSpec(meter="f1", period="month", start=date(2026, 3, 1), target_kwh=10_000))
        [t] = (await svc.targets(CTX, TargetsParams(meter="f1", current=False))).targets
        assert t.consumed_kwh >= 120.0 and t.end == date(2026, 4, 1)

        # Meter refusals name the field; a parent with children cannot go.
        with pytest.raises(InvalidArgument) as e:
            await meters.create(CTX, MeterSpec(name="x", type="load", parent="nope"))
        assert e.value.details["field"] == "params.parent"
        with pytest.raises(InvalidArgument) as e:
            await meters.update(CTX, MeterUpdate(name="incomer", parent="f1"))
        assert e.value.details["field"] == "params.parent"
        with pytest.raises(FailedPrecondition):
            await meters.delete(CTX, MeterDelete(name="incomer"))
        with pytest.raises(InvalidArgument):
            await svc.set_generator(CTX, GeneratorSpec(meter="f1", rated_kw=100))

        # Everything reads back the same from the store.
        again, _, _ = build(store)
        assert {n: r.spec for n, r in again.catalog.meters.items()} == {
            n: r.spec for n, r in energy.catalog.meters.items()
        }
        assert list(again.catalog.targets) == [("f1", "month", date(2026, 3, 1))]
        energy.db.close()
        again.db.close()

    asyncio.run(main())
