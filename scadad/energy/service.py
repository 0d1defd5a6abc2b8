"""MeterTemplates.*, Meters.* and Energy.*: the API face of the energy subsystem."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text

from scadad.acquisition import Acquisition
from scadad.api.alarm_messages import AlarmRuleSpec
from scadad.api.energy_messages import (
    ConsumptionParams,
    ConsumptionPoint,
    ConsumptionResult,
    ConsumptionSeries,
    EnergySummary,
    EnergyWatch,
    FuelEventInfo,
    GeneratorList,
    GeneratorSpec,
    GeneratorStatus,
    LossNow,
    LossParams,
    LossResult,
    LossRow,
    Meter,
    MeterDelete,
    MeterList,
    MeterNow,
    MeterRef,
    MeterSpec,
    MeterStatusChange,
    MeterStatusHistory,
    MeterTemplate,
    MeterTemplateImport,
    MeterTemplateList,
    MeterTemplateRef,
    MeterUpdate,
    RenewableList,
    RenewablesParams,
    RenewableSpec,
    RenewableStatus,
    SummaryParams,
    TargetList,
    TargetRef,
    TargetsParams,
    TargetSpec,
    TargetStatus,
    TemplatePointInfo,
)
from scadad.api.errors import InvalidArgument
from scadad.api.messages import Deleted, Empty
from scadad.api.registry import CallContext, Service, rpc
from scadad.api.tag_messages import TagSpec
from scadad.clock import from_us, now_us, to_us
from scadad.config import EnergySettings
from scadad.energy.catalog import SOURCE_TYPES, EnergyCatalog, MeterRec, TemplateRec
from scadad.energy.dg import co2_kg, specific_consumption
from scadad.energy.dg import run_hours as dg_run_hours
from scadad.energy.engine import US_H, EnergyEngine, Live
from scadad.energy.math import carbon_offset_kg, diesel_avoided_l, target_progress
from scadad.sites import PlantModel
from scadad.store.database import Database
from scadad.tags.catalog import Catalog, Changed
from scadad.tags.table import TagTable

__all__ = ["Energy", "EnergyService", "MetersService", "MeterTemplatesService"]


class Energy:
    """The energy subsystem: catalog and engine, loaded with the plant."""

    def __init__(
        self,
        db: Database,
        tags: Catalog,
        plant: PlantModel,
        table: TagTable,
        acq: Acquisition,
        settings: EnergySettings,
        site: str,
        tz: str,
    ) -> None:
        self.db = db
        self.acq = acq
        self.settings = settings
        self.catalog = EnergyCatalog(db, tags, plant, site, tz)
        self.engine = EnergyEngine(db, self.catalog, table, settings)
        self.started = False
        self.tags = tags
        # Set by the daemon: adds alarm rules (the Alarms engine raises loss and theft alarms).
        self.add_alarms: Callable[[list[AlarmRuleSpec]], Awaitable[None]] | None = None

    async def ensure_alarm_tags(self, names: Iterable[str | None] | None = None) -> None:
        """Every parent meter gets a loss_pct tag and every generator a fuel_theft_l tag,
        each with alarm rules, so feeder loss and fuel theft are ordinary alarms. `names`
        limits the look to the meters a change touched (default: all, at start)."""
        s = self.settings
        specs: list[TagSpec] = []
        rules: list[AlarmRuleSpec] = []
        meters = self.catalog.meters
        picked = meters.items() if names is None else [(n, meters[n]) for n in set(names) if n in meters]
        for name, rec in picked:
            base = f"{rec.spec.site or self.catalog.default_site}/energy/{name}"
            loads = [c for c in rec.children if self.catalog.meters[c].spec.type not in SOURCE_TYPES]
            if loads:
                path = f"{base}/loss_pct"
                specs.append(TagSpec(path=path, data_type="float64", source="memory", units="%",
                                     description=f"{name}: loss against its children, last interval"))  # fmt: skip
                area = rec.spec.site or self.catalog.default_site
                rules += [
                    AlarmRuleSpec(tag=path, kind="hi", limit=s.loss_warn_pct, priority="medium", area=area,
                                  message=f"{name} loss {{value}} % (warning above {s.loss_warn_pct:g} %)"),
                    AlarmRuleSpec(tag=path, kind="hihi", limit=s.loss_alarm_pct, priority="high", area=area,
                                  message=f"{name} loss {{value}} % (alarm above {s.loss_alarm_pct:g} %)"),
                    AlarmRuleSpec(tag=path, kind="lo", limit=-s.loss_negative_tolerance_pct, priority="medium",
                                  area=area, message=f"{name}: children read more than the meter ({{value}} %):"
                                  " a reversed or mis-ratioed CT?"),
                ]  # fmt: skip
            if name in self.catalog.generators:
                path = f"{base}/fuel_theft_l"
                specs.append(TagSpec(path=path, data_type="float64", source="memory", units="L", initial_value="0",
                                     description=f"{name}: fuel lost while stopped today (theft or leak)"))  # fmt: skip
                rules.append(AlarmRuleSpec(tag=path, kind="hi", limit=0.0, priority="high",
                                           area=rec.spec.site or self.catalog.default_site,
                                           message=f"{name}: {{value}} L of fuel gone while stopped (theft or leak?)"))  # fmt: skip
        missing = [t for t in specs if t.path not in self.tags.tags]
        if missing:
            # New tags go live; the engine re-resolves through on_catalog_change.
            _, changed = await self.tags.import_tags(missing, update=False, dry_run=False)
            self.acq.apply(changed)
        if self.add_alarms is not None and rules:
            await self.add_alarms(rules)

    def load(self) -> None:
        self.catalog.load()

    async def start(self) -> None:
        await self.engine.start()
        self.started = True
        await self.ensure_alarm_tags()

    async def stop(self) -> None:
        if self.started:
            self.engine.close_due(now_us())
            await self.engine.stop()

    def on_catalog_change(self, changed: Changed) -> None:
        """Tags created, renamed or deleted: meters re-resolve their points."""
        if self.started and changed.tags:
            self.engine.rebuild()

    def applied(self, changed: Changed) -> None:
        """A meter change is in the catalog: its tags go live and the engine follows. Tag
        changes reach on_catalog_change (which rebuilds); a change of meters alone does not."""
        self.acq.apply(changed)
        if self.started and not changed.tags:
            self.engine.rebuild()

    async def changed_meters(self, changed: Changed, touched: Iterable[str | None]) -> None:
        """After a meter change: its tags go live, and the loss / theft alarm tags of the
        meters it touched (itself, its parents old and new) follow the tree."""
        self.applied(changed)
        await self.ensure_alarm_tags(touched)

    # ------------------------------------------------------------------ views

    def meter(self, rec: MeterRec, depth: int | None = None) -> Meter:
        s = rec.spec
        if depth is None:
            depth = dict((r.spec.name, d) for r, d in self.catalog.tree()).get(s.name, 0)
        lv = self.engine.live.get(s.name)
        return Meter(
            id=rec.id, name=s.name, type=s.type, parent=s.parent, site=s.site or self.catalog.default_site,
            description=s.description, template=s.template, device=s.device, tag_prefix=s.tag_prefix,
            points=dict(s.points), ct_primary=s.ct_primary, ct_secondary=s.ct_secondary, pt_primary=s.pt_primary,
            pt_secondary=s.pt_secondary, ratio_applied_in_meter=s.ratio_applied_in_meter,
            nominal_voltage=s.nominal_voltage, tariff_zone=s.tariff_zone, interval_s=s.interval_s, enabled=s.enabled,
            children=list(rec.children), depth=depth, status=lv.status if lv else "offline",
            created_at=from_us(rec.created_us), updated_at=from_us(rec.updated_us),
        )  # fmt: skip

    def now_of(self, lv: Live | None, rec: MeterRec, depth: int, now: int, day: str | None = None) -> MeterNow:
        kw = self.engine.kw_in(lv) if lv else None
        return MeterNow(
            name=rec.spec.name, type=rec.spec.type, parent=rec.spec.parent, depth=depth, kw=_r(kw),
            pf=_r(lv.pf, 3) if lv else None,
            today_kwh=_r(self.engine.today_or_sources(lv, now, day)) if lv else None,
            quality=self.engine.meter_quality(lv) if lv else "BAD", status=lv.status if lv else "offline",
        )  # fmt: skip

    def summary(self, site: str | None = None) -> EnergySummary:
        now = now_us()
        meters: list[MeterNow] = []
        losses: list[LossNow] = []
        sources: list[MeterNow] = []
        today = 0.0
        days: dict[str, str] = {}  # site -> its local date now
        for rec, depth in self.catalog.tree():
            if site is not None and rec.spec.site != site:
                continue
            lv = self.engine.live.get(rec.spec.name)
            msite = rec.spec.site or ""
            day = days.get(msite)
            if day is None:
                day = days[msite] = self.engine._day(rec.spec.name, now)
            m = self.now_of(lv, rec, depth, now, day)
            meters.append(m)
            if rec.spec.type in SOURCE_TYPES:
                sources.append(m)
                today += m.today_kwh or 0.0
            ll = self.engine.live_loss(lv) if lv is not None else None
            if ll is not None:
                losses.append(LossNow(parent=rec.spec.name, parent_kw=_r(ll.parent_kw), children_kw=_r(ll.children_kw),
                                      loss_kw=_r(ll.loss_kw), loss_pct=_r(ll.pct, 2), status=ll.status))  # fmt: skip
        source_kw = sum(m.kw or 0.0 for m in sources)
        loss_kw = sum(x.loss_kw or 0.0 for x in losses)
        return EnergySummary(
            time=from_us(now), site=site or self.catalog.default_site, source_kw=_r(source_kw) or 0.0,
            load_kw=_r(source_kw - loss_kw) or 0.0, loss_kw=_r(loss_kw) or 0.0, sources=sources, meters=meters,
            losses=losses, today_kwh=_r(today) or 0.0,
        )  # fmt: skip

    def tz(self, meter: str | None = None) -> ZoneInfo:
        return ZoneInfo(self.catalog.tz_of(meter or ""))

    def midnight_us(self, meter: str | None = None) -> int:
        tz = self.tz(meter)
        local = from_us(now_us()).astimezone(tz)
        return to_us(local.replace(hour=0, minute=0, second=0, microsecond=0))


class MeterTemplatesService(Service):
    """MeterTemplates.*: register maps of meter models (etc/meter-templates and imported)."""

    name = "MeterTemplates"

    def __init__(self, energy: Energy) -> None:
        self.energy = energy

    def _view(self, rec: TemplateRec) -> MeterTemplate:
        t = rec.template
        return MeterTemplate(
            name=t.name, manufacturer=t.manufacturer, model=t.model, description=t.description,
            points=[TemplatePointInfo(quantity=p.quantity, address=p.address, function=p.function, type=p.data_type,
                                      unit=p.unit, scale=p.scale, ratio=p.ratio, word_order=p.word_order,
                                      sentinels=list(p.sentinels), transform=p.transform) for p in t.points],
            source_toml=rec.source_toml, shipped=rec.shipped,
            meters=sum(1 for m in self.energy.catalog.meters.values() if m.spec.template == t.name),
        )  # fmt: skip

    @rpc(permission="energy.read")
    async def list(self, ctx: CallContext, params: Empty) -> MeterTemplateList:
        """Every meter template, by name."""
        self.energy.catalog.require()
        cat = self.energy.catalog
        return MeterTemplateList(templates=[self._view(cat.templates[n]) for n in sorted(cat.templates)])

    @rpc(permission="energy.read")
    async def get(self, ctx: CallContext, params: MeterTemplateRef) -> MeterTemplate:
        """One template with its points and TOML source."""
        return self._view(self.energy.catalog.template(params.name))

    @rpc(permission="energy.configure", mutates=True)
    async def import_(self, ctx: CallContext, params: MeterTemplateImport) -> MeterTemplate:
        """Add (or with update, replace) a template from its TOML text; errors name the line."""
        return self._view(await self.energy.catalog.import_template(params.toml, params.update))

    @rpc(permission="energy.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: MeterTemplateRef) -> Deleted:
        """Remove a template no meter uses."""
        await self.energy.catalog.delete_template(params.name)
        return Deleted()


class MetersService(Service):
    """Meters.*: the meter hierarchy, CT/PT ratios, templates and tags."""

    name = "Meters"

    def __init__(self, energy: Energy) -> None:
        self.energy = energy

    @rpc(permission="energy.read")
    async def list(self, ctx: CallContext, params: Empty) -> MeterList:
        """Every meter in tree order (parents first, depth-first)."""
        self.energy.catalog.require()
        return MeterList(meters=[self.energy.meter(r, d) for r, d in self.energy.catalog.tree()])

    @rpc(permission="energy.read")
    async def get(self, ctx: CallContext, params: MeterRef) -> Meter:
        """One meter with its points (quantity -> tag)."""
        return self.energy.meter(self.energy.catalog.meter(params.name))

    @rpc(permission="energy.configure", mutates=True)
    async def create(self, ctx: CallContext, params: MeterSpec) -> Meter:
        """Add a meter; with a template its tags are created and polled at once."""
        rec, changed = await self.energy.catalog.create_meter(params)
        await self.energy.changed_meters(changed, (rec.spec.name, rec.spec.parent))
        return self.energy.meter(rec)

    @rpc(permission="energy.configure", mutates=True)
    async def update(self, ctx: CallContext, params: MeterUpdate) -> Meter:
        """Change a meter (ratios re-scale its template tags)."""
        old_parent = self.energy.catalog.meter(params.name).spec.parent
        rec, changed = await self.energy.catalog.update_meter(params)
        await self.energy.changed_meters(changed, (rec.spec.name, rec.spec.parent, old_parent))
        return self.energy.meter(rec)

    @rpc(permission="energy.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: MeterDelete) -> Deleted:
        """Remove a meter without children (with `tags`, the tags its template created)."""
        changed = await self.energy.catalog.delete_meter(params.name, params.tags)
        self.energy.applied(changed)
        return Deleted()

    @rpc(permission="energy.read")
    async def status_history(self, ctx: CallContext, params: MeterRef) -> MeterStatusHistory:
        """The meter's online / degraded / offline changes, newest last (up to 1000)."""
        rec = self.energy.catalog.meter(params.name)
        await self.energy.engine.flush()

        def q() -> list[Any]:
            with self.energy.db.engine.connect() as conn:
                return list(
                    conn.execute(
                        text(
                            "SELECT ts_us, status, reason FROM meter_status_history WHERE meter_id = :m"
                            " ORDER BY ts_us DESC LIMIT 1000"
                        ),
                        {"m": rec.id},
                    ).all()
                )

        rows = await self.energy.db.run(q)
        return MeterStatusHistory(
            meter=params.name,
            changes=[MeterStatusChange(time=from_us(r[0]), status=r[1], reason=r[2]) for r in reversed(rows)],
        )


class EnergyService(Service):
    """Energy.*: the site now, consumption, losses, generators, renewables, targets."""

    name = "Energy"

    def __init__(self, energy: Energy) -> None:
        self.energy = energy

    @rpc(permission="energy.read")
    async def summary(self, ctx: CallContext, params: SummaryParams) -> EnergySummary:
        """The site now: sources, meters in tree order with live kW, PF and today's kWh, losses."""
        self.energy.catalog.require()
        return self.energy.summary(params.site)

    @rpc(permission="energy.read", stream=True)
    async def watch(self, ctx: CallContext, params: EnergyWatch) -> AsyncIterator[EnergySummary]:
        """The site summary every interval_ms."""
        self.energy.catalog.require()
        while True:
            yield self.energy.summary(params.site)
            await asyncio.sleep(params.interval_ms / 1000)

    @rpc(permission="energy.read")
    async def consumption(self, ctx: CallContext, params: ConsumptionParams) -> ConsumptionResult:
        """Energy per meter per interval, hour or local day, from the stored readings."""
        cat = self.energy.catalog
        cat.require()
        names = params.meters or [r.spec.name for r, _ in cat.tree()]
        for i, n in enumerate(names):
            cat.meter(n, f"params.meters[{i}]")
        end = to_us(params.end) if params.end else now_us() + 1
        start = to_us(params.start) if params.start else self.energy.midnight_us()
        if start >= end:
            raise InvalidArgument("start must be before end", "params.start")
        await self.energy.engine.flush()
        ids = {cat.meters[n].id: n for n in names}

        def q() -> list[Any]:
            stmt = text(
                "SELECT meter_id, interval_start_us, interval_s, import_kwh, export_kwh, avg_kw, max_kw, estimated,"
                " quality FROM meter_readings WHERE meter_id IN :ids AND interval_start_us >= :s"
                " AND interval_start_us < :e ORDER BY meter_id, interval_start_us"
            ).bindparams(bindparam("ids", expanding=True))
            with self.energy.db.engine.connect() as conn:
                return list(conn.execute(stmt, {"ids": list(ids) or [0], "s": start, "e": end}).all())

        rows = await self.energy.db.run(q)
        series: dict[str, list[ConsumptionPoint]] = {n: [] for n in names}
        tz = self.energy.tz()
        buckets: dict[tuple[str, int], list[Any]] = {}
        for r in rows:
            name = ids[r[0]]
            key = r[1]
            if params.by != "interval":
                local = from_us(r[1]).astimezone(tz)
                local = local.replace(minute=0, second=0, microsecond=0)
                if params.by == "day":
                    local = local.replace(hour=0)
                key = to_us(local)
            buckets.setdefault((name, key), []).append(r)
        for (name, key), rs in sorted(buckets.items()):
            imp = sum(r[3] for r in rs)
            exp = sum(r[4] for r in rs)
            avgs = [(r[5], r[2]) for r in rs if r[5] is not None]
            avg = sum(a * s for a, s in avgs) / sum(s for _, s in avgs) if avgs else None
            mx = max((r[6] for r in rs if r[6] is not None), default=None)
            worst = max((r[8] for r in rs), key=lambda q: ("GOOD", "UNCERTAIN", "BAD").index(q))
            series[name].append(ConsumptionPoint(
                start=from_us(key), import_kwh=round(imp, 4), export_kwh=round(exp, 4), net_kwh=round(imp - exp, 4),
                avg_kw=_r(avg), max_kw=_r(mx), estimated=any(bool(r[7]) for r in rs), quality=worst,
                intervals=len(rs),
            ))  # fmt: skip
        return ConsumptionResult(series=[
            ConsumptionSeries(meter=n, points=series[n], total_kwh=round(sum(p.import_kwh for p in series[n]), 4))
            for n in names
        ])  # fmt: skip

    @rpc(permission="energy.read")
    async def loss(self, ctx: CallContext, params: LossParams) -> LossResult:
        """Feeder loss per parent and interval: parent against the sum of its children."""
        cat = self.energy.catalog
        cat.require()
        end = to_us(params.end) if params.end else now_us() + 1
        start = to_us(params.start) if params.start else end - 86_400_000_000
        if start >= end:
            raise InvalidArgument("start must be before end", "params.start")
        pid = cat.meter(params.parent, "params.parent").id if params.parent else None
        await self.energy.engine.flush()
        names = {r.id: n for n, r in cat.meters.items()}

        def q() -> list[Any]:
            where = "interval_start_us >= :s AND interval_start_us < :e"
            args: dict[str, Any] = {"s": start, "e": end}
            if pid is not None:
                where += " AND parent_meter_id = :p"
                args["p"] = pid
            stmt = text(
                "SELECT parent_meter_id, interval_start_us, interval_s, parent_kwh, children_kwh, loss_kwh, loss_pct,"
                f" status, note FROM power_loss_analysis WHERE {where} ORDER BY interval_start_us, parent_meter_id"
            )
            with self.energy.db.engine.connect() as conn:
                return list(conn.execute(stmt, args).all())

        rows = await self.energy.db.run(q)
        out = [
            LossRow(
                parent=names.get(r[0], "?"),
                start=from_us(r[1]),
                interval_s=r[2],
                parent_kwh=r[3],
                children_kwh=r[4],
                loss_kwh=r[5],
                loss_pct=r[6],
                status=r[7],
                note=r[8],
            )  # fmt: skip
            for r in rows
            if not params.status or r[7] in params.status
        ]
        return LossResult(rows=out)

    @rpc(permission="energy.read")
    async def generators(self, ctx: CallContext, params: Empty) -> GeneratorList:
        """Diesel sets now and today: running, load %, fuel, run hours, L/kWh, CO2, refuels and thefts."""
        cat = self.energy.catalog
        cat.require()
        return GeneratorList(generators=[self._generator(g) for _, g in sorted(cat.generators.items())])

    def _generator(self, g: GeneratorSpec) -> GeneratorStatus:
        eng = self.energy.engine
        lv = eng.live.get(g.meter)
        now = now_us()
        table = eng.table

        def value(role: str) -> Any:
            if lv is None or role not in lv.roles:
                return None
            t = table.by_id.get(lv.roles[role])
            return None if t is None or t.quality == "BAD" else t.value

        running = value("running")
        kw = lv.kw if lv else None
        level = value("fuel_level")
        events: list[FuelEventInfo] = []
        used = None
        fa = lv.fuel_analysis if lv is not None and g.tank_l else None
        if fa is not None:
            used = fa.consumed_l
            for e in [*fa.refuels, *fa.thefts]:
                events.append(FuelEventInfo(kind=e.kind, start=from_us(e.start_us), end=from_us(e.end_us),
                                            litres=round(e.litres, 1)))  # fmt: skip
        kwh = eng.today_kwh(lv, now) if lv else None
        run_today = starts_today = None
        if lv is not None:
            midnight = self.energy.midnight_us(g.meter)
            if lv.running:
                run_today = dg_run_hours(lv.running, midnight, now)
                # Only real changes: the first entry is the state found at start or at
                # midnight, not a start.
                r = lv.running
                starts_today = sum(1 for i in range(1, len(r)) if r[i][1] and not r[i - 1][1] and r[i][0] >= midnight)
            else:
                run_today = lv.run_us / US_H
        curve = lv.curve_l if lv else None
        litres = used if used is not None else curve
        spec = specific_consumption(litres, kwh) if litres is not None and kwh is not None else None
        return GeneratorStatus(
            meter=g.meter, running=None if running is None else bool(running), kw=_r(kw),
            load_pct=_r(100.0 * kw / g.rated_kw, 1) if kw is not None else None, fuel_level_pct=_r(level, 1),
            fuel_l=_r(level * g.tank_l / 100.0, 1) if level is not None and g.tank_l else None,
            run_hours=_r(value("run_hours"), 1), starts=int(value("starts")) if value("starts") is not None else None,
            run_hours_today=_r(run_today, 2), starts_today=starts_today,
            kwh_today=_r(kwh), fuel_used_today_l=_r(used, 1), fuel_curve_today_l=_r(curve, 1),
            l_per_kwh=_r(spec, 3), co2_today_kg=_r(co2_kg(litres, g.co2_kg_per_l), 1) if litres is not None else None,
            events=sorted(events, key=lambda e: e.start), rated_kw=g.rated_kw, tank_l=g.tank_l,
        )  # fmt: skip

    @rpc(permission="energy.configure", mutates=True)
    async def set_generator(self, ctx: CallContext, params: GeneratorSpec) -> GeneratorStatus:
        """Describe a diesel set (rated kW, tank, fuel curve, CO2 factor) for its generator meter."""
        await self.energy.catalog.set_generator(params)
        await self.energy.ensure_alarm_tags([params.meter])
        return self._generator(params)

    @rpc(permission="energy.read")
    async def renewables(self, ctx: CallContext, params: RenewablesParams) -> RenewableList:
        """Renewable kWh over [start, end), the CO2 it avoided and the diesel it displaced."""
        cat = self.energy.catalog
        cat.require()
        start = to_us(params.start) if params.start else self.energy.midnight_us()
        end = to_us(params.end) if params.end else now_us() + 1
        result = await self.energy_of([r.meter for r in cat.renewables.values()], start, end)
        dg_spec = [x for x in (self._generator(g) for g in cat.generators.values()) if x.l_per_kwh]
        l_per_kwh = dg_spec[0].l_per_kwh if dg_spec else None
        s = self.energy.settings
        out = []
        for name, r in sorted(cat.renewables.items()):
            kwh = result.get(name, 0.0)
            factor = r.emission_factor_kg_per_kwh if r.emission_factor_kg_per_kwh is not None else (
                s.grid_emission_factor_kg_per_kwh)  # fmt: skip
            src = r.factor_source or s.grid_factor_source
            lv = self.energy.engine.live.get(name)
            out.append(RenewableStatus(
                meter=name, kind=r.kind, capacity_kwp=r.capacity_kwp, kw=_r(lv.kw) if lv else None, kwh=round(kwh, 3),
                co2_avoided_kg=round(carbon_offset_kg(kwh, factor), 2),
                diesel_avoided_l=round(diesel_avoided_l(kwh, l_per_kwh), 1) if l_per_kwh else None,
                emission_factor_kg_per_kwh=factor, factor_source=src,
            ))  # fmt: skip
        return RenewableList(start=from_us(start), end=from_us(end), sources=out)

    async def energy_of(self, meters: list[str], start: int, end: int) -> dict[str, float]:
        """kWh per meter in [start, end): stored readings plus the open interval if it falls inside."""
        cat = self.energy.catalog
        await self.energy.engine.flush()
        ids = {cat.meters[n].id: n for n in meters if n in cat.meters}
        if not ids:
            return {}

        def q() -> list[Any]:
            stmt = text(
                "SELECT meter_id, SUM(import_kwh) FROM meter_readings WHERE meter_id IN :ids"
                " AND interval_start_us >= :s AND interval_start_us < :e GROUP BY meter_id"
            ).bindparams(bindparam("ids", expanding=True))
            with self.energy.db.engine.connect() as conn:
                return list(conn.execute(stmt, {"ids": list(ids), "s": start, "e": end}).all())

        out = {ids[r[0]]: float(r[1] or 0.0) for r in await self.energy.db.run(q)}
        for n in ids.values():
            lv = self.energy.engine.live.get(n)
            if lv is not None and start <= lv.acc.start_us < end:
                out[n] = out.get(n, 0.0) + self.energy.engine.open_kwh(lv)
        return out

    @rpc(permission="energy.configure", mutates=True)
    async def set_renewable(self, ctx: CallContext, params: RenewableSpec) -> RenewableStatus:
        """Describe a renewable source (kind, kWp, grid emission factor and its source)."""
        await self.energy.catalog.set_renewable(params)
        res = await self.renewables(ctx, RenewablesParams())
        return next(s for s in res.sources if s.meter == params.meter)

    def _period(self, meter: str, period: str, start: date) -> tuple[int, int, date]:
        tz = self.energy.tz(meter)
        if period == "day":
            end = start + timedelta(days=1)
        elif period == "week":
            end = start + timedelta(days=7)
        elif period == "month":
            end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            end = start.replace(year=start.year + 1)
        s = to_us(datetime(start.year, start.month, start.day, tzinfo=tz))
        e = to_us(datetime(end.year, end.month, end.day, tzinfo=tz))
        return s, e, end

    @rpc(permission="energy.configure", mutates=True)
    async def set_target(self, ctx: CallContext, params: TargetSpec) -> TargetStatus:
        """Set a meter's kWh budget for a day, week, month or year starting on `start`."""
        s, _, _ = self._period(params.meter, params.period, params.start)
        await self.energy.catalog.set_target(params.meter, params.period, params.start, s, params.target_kwh)
        [t] = [x for x in (await self._targets(params.meter, False)) if x.period == params.period
               and x.start == params.start]  # fmt: skip
        return t

    @rpc(permission="energy.configure", mutates=True)
    async def delete_target(self, ctx: CallContext, params: TargetRef) -> Deleted:
        """Remove a target."""
        s, _, _ = self._period(params.meter, params.period, params.start)
        await self.energy.catalog.delete_target(params.meter, params.period, params.start, s)
        return Deleted()

    @rpc(permission="energy.read")
    async def targets(self, ctx: CallContext, params: TargetsParams) -> TargetList:
        """Targets with consumption so far, variance against the pro-rata budget and the projection."""
        self.energy.catalog.require()
        if params.meter:
            self.energy.catalog.meter(params.meter, "params.meter")
        return TargetList(targets=await self._targets(params.meter, params.current))

    async def _targets(self, meter: str | None, current: bool) -> list[TargetStatus]:
        now = now_us()
        out = []
        for (m, period, start), t in sorted(self.energy.catalog.targets.items()):
            if meter and m != meter:
                continue
            s, e, end = self._period(m, period, start)
            if current and not s <= now < e:
                continue
            consumed = (await self.energy_of([m], s, e)).get(m, 0.0)
            p = target_progress(t.target_kwh, consumed, s, e, now)
            out.append(TargetStatus(
                meter=m, period=period, start=start, end=end, target_kwh=t.target_kwh, consumed_kwh=round(consumed, 3),
                variance_kwh=round(p.variance_kwh, 3), variance_pct=_r(p.variance_pct, 2),
                projected_kwh=_r(p.projected_kwh), projected_variance_pct=_r(p.projected_variance_pct, 2),
                on_track=p.on_track,
            ))  # fmt: skip
        return out


def _r(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)
