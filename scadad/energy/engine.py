"""The energy engine: live meter figures, interval readings, daily rollups, feeder loss.

Like the alarm engine it is a listener of the tag table: every change of a meter's
tag (energy counters, power, PF, a generator's fuel level and running state) updates
that meter's open interval at once: counter steps are added as they come (rollover
and reset aware, `math.counter_delta`), power is integrated time-weighted (the
fallback when a meter has no counter, flagged estimated). When an interval ends
(aligned to the clock), `close_due` turns each open interval into a `meter_readings`
row, adds it to the local day (`energy_consumption`, `load_profiles`) and computes the
loss of every parent against its children (`power_loss_analysis`). All of it is plain
code driven by explicit times, so tests run it without a loop; the daemon calls
`close_due` every second and writes the rows on the store thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from scadad.clock import from_us, now_us
from scadad.config import EnergySettings
from scadad.energy.catalog import SOURCE_TYPES, EnergyCatalog, MeterRec
from scadad.energy.dg import FuelAnalysis, analyse_fuel, fuel_curve_lph
from scadad.energy.math import counter_delta, feeder_loss, interval_start, loss_status, pqs_from_phases
from scadad.store.database import Database
from scadad.tags.table import BAD, GOOD, UNCERTAIN, Change, TagTable

log = logging.getLogger("scadad.energy")

ROLES = (
    "power_total", "import_kwh", "export_kwh", "pf_total", "fuel_level", "running", "run_hours", "starts",
    "power_l1", "power_l2", "power_l3", "reactive_total",
)  # fmt: skip
PHASES = ("power_l1", "power_l2", "power_l3")
_RANK = {GOOD: 0, UNCERTAIN: 1, BAD: 2}
_QUALITY = (GOOD, UNCERTAIN, BAD)
US_H = 3_600_000_000


@dataclass(slots=True)
class Acc:
    """One meter's open interval."""

    start_us: int
    imp: float = 0.0
    exp: float = 0.0
    counted: bool = False  # a counter step was seen (else energy comes from power)
    p_int: float = 0.0  # kW x µs
    p_cov: int = 0  # µs of power known
    p_max: float | None = None
    quality: str = GOOD
    steps: set[str] = field(default_factory=set)


@dataclass(slots=True, frozen=True)
class LiveLoss:
    """A node's loss now, from the power flowing in and out (kW)."""

    parent_kw: float | None
    children_kw: float | None
    loss_kw: float | None
    pct: float | None
    status: str


@dataclass(slots=True)
class Reading:
    meter: str
    meter_id: int
    start_us: int
    interval_s: int
    import_kwh: float | None
    export_kwh: float
    avg_kw: float | None
    max_kw: float | None
    estimated: bool
    quality: str
    reason: str | None


@dataclass(slots=True)
class Live:
    """One meter at run time."""

    rec: MeterRec
    interval_us: int
    roles: dict[str, int]  # role -> tag id
    acc: Acc
    kw: float | None = None
    p_ts: int | None = None
    pf: float | None = None
    phase_kw: dict[str, float | None] = field(default_factory=dict)  # per-phase kW, for meters without a total
    kvar: float | None = None
    imp_last: float | None = None
    exp_last: float | None = None
    quality: dict[str, str] = field(default_factory=dict)  # role -> latest quality
    day: str = ""
    day_imp: float = 0.0
    day_exp: float = 0.0
    day_peak_kw: float | None = None
    day_peak_us: int | None = None
    day_intervals: int = 0
    profile: list[float | None] = field(default_factory=list)
    status: str = "offline"
    # generators: today's fuel level samples and running changes, and the fuel-curve litres
    fuel: list[tuple[int, float]] = field(default_factory=list)
    running: list[tuple[int, bool]] = field(default_factory=list)
    curve_l: float = 0.0
    run_us: int = 0  # time today the set ran (derived from its kW, for sets without a run-hours counter)
    # The day's fuel analysis as of the last closed interval: the tank-level series is
    # analysed once per interval, not on every Energy.Generators call.
    fuel_analysis: FuelAnalysis | None = None


class EnergyEngine:
    """Every meter's live state and open interval (loop thread)."""

    def __init__(self, db: Database, catalog: EnergyCatalog, table: TagTable, settings: EnergySettings) -> None:
        self.db = db
        self.catalog = catalog
        self.table = table
        self.settings = settings
        self.live: dict[str, Live] = {}
        self.by_tag: dict[int, list[tuple[Live, str]]] = {}
        self.pending: list[tuple[str, list[dict[str, Any]]]] = []
        self._task: asyncio.Task[None] | None = None
        self.readings_written = 0
        self.last_error: str | None = None
        self.interval_loss: set[str] = set()  # parents whose loss_pct tag holds an interval figure

    # ------------------------------------------------------------------ membership

    def rebuild(self, now: int | None = None) -> None:
        """(Re)build the live meters from the catalog, keeping open intervals of meters that stay."""
        now = now_us() if now is None else now
        old = self.live
        self.live = {}
        self.by_tag = {}
        for name, rec in self.catalog.meters.items():
            if not rec.spec.enabled:
                continue
            interval_us = rec.spec.interval_s * 1_000_000
            prev = old.get(name)
            roles = {}
            for role in ROLES:
                path = rec.spec.points.get(role)
                tag = self.table.by_path.get(path) if path else None
                if tag is not None:
                    roles[role] = tag.id
            if prev is not None and prev.interval_us == interval_us:
                lv = prev
                lv.rec, lv.roles = rec, roles
            else:
                lv = Live(rec, interval_us, roles, Acc(interval_start(now, rec.spec.interval_s)))
                lv.day = self._day(name, now)
                lv.profile = [None] * (86400 // rec.spec.interval_s)
                self._seed(lv)
            self.live[name] = lv
            for role, tid in roles.items():
                self.by_tag.setdefault(tid, []).append((lv, role))
        self.update_status(now)  # a new meter says online or offline at once, not after a second

    def _seed(self, lv: Live) -> None:
        """Take the tags' current values as the starting point (no energy counted for them)."""
        for role, tid in lv.roles.items():
            tag = self.table.by_id.get(tid)
            if tag is None or not tag.server_us:
                continue
            lv.quality[role] = tag.quality
            v = tag.value if tag.quality != BAD else None
            if role == "import_kwh":
                lv.imp_last = _num(v)
            elif role == "export_kwh":
                lv.exp_last = _num(v)
            elif role == "power_total":
                lv.kw, lv.p_ts = _num(v), tag.source_us
            elif role == "pf_total":
                lv.pf = _num(v)

    def _day(self, meter: str, us: int) -> str:
        return from_us(us).astimezone(ZoneInfo(self.catalog.tz_of(meter))).date().isoformat()

    # ------------------------------------------------------------------ values (hot path)

    def on_changes(self, changes: Sequence[Change]) -> None:
        """The tag table's listener."""
        by_tag = self.by_tag
        for c in changes:
            entries = by_tag.get(c[0].id)
            if entries is None:
                continue
            ts = c[5] or c[6]
            for lv, role in entries:
                if ts >= lv.acc.start_us + lv.interval_us:
                    # A value from after the interval's end: close what is due first, so
                    # energy lands in the interval its timestamp belongs to.
                    self.close_due(ts)
                self._apply(lv, role, c[1], c[2], ts)

    def _apply(self, lv: Live, role: str, value: Any, quality: str, ts: int) -> None:
        lv.quality[role] = quality
        acc = lv.acc
        energy_role = "import_kwh" if "import_kwh" in lv.roles else "power_total"
        if role == energy_role and _RANK[quality] > _RANK[acc.quality]:
            acc.quality = quality
        v = _num(value) if quality != BAD else None
        if role == "power_total":
            self._integrate(lv, ts)
            lv.kw, lv.p_ts = v, ts
            if v is not None and (acc.p_max is None or v > acc.p_max):
                acc.p_max = v
        elif role == "import_kwh":
            if v is not None:
                d = self._step(acc, lv.imp_last, v)
                if d is not None:
                    acc.imp += d
                    acc.counted = True
                lv.imp_last = v
        elif role == "export_kwh":
            if v is not None:
                acc.exp += self._step(acc, lv.exp_last, v) or 0.0
                lv.exp_last = v
        elif role == "pf_total":
            lv.pf = v
        elif role in PHASES:
            # A meter without a total: P is the sum of its phases (math.pqs_from_phases),
            # and PF follows from P and Q when it has no PF register either.
            lv.phase_kw[role] = v
            if "power_total" not in lv.roles and all(p in lv.roles for p in PHASES):
                pqs = pqs_from_phases([None] * 3, [None] * 3, [lv.phase_kw.get(p) for p in PHASES],
                                      [lv.kvar / 3 if lv.kvar is not None else None] * 3)  # fmt: skip
                self._apply(lv, "power_total", pqs.p_kw, quality, ts)
                if "pf_total" not in lv.roles and pqs.pf is not None:
                    lv.pf = pqs.pf
        elif role == "reactive_total":
            lv.kvar = v
        elif role == "fuel_level":
            if v is not None:
                lv.fuel.append((ts, v))
        elif role == "running":
            if value is not None and quality != BAD:
                lv.running.append((ts, bool(value)))

    def _step(self, acc: Acc, last: float | None, v: float) -> float | None:
        """The energy of one counter step (None: no usable step); odd steps are noted."""
        if last is None:
            return None
        step = counter_delta(last, v, max_step=self.settings.max_counter_step_kwh)
        if step.kind != "ok":
            acc.steps.add(step.kind)
        return step.delta

    def _integrate(self, lv: Live, until: int) -> None:
        """Add the held power since the last sample (or the interval start) up to `until`."""
        acc = lv.acc
        if lv.kw is None or lv.p_ts is None:
            return
        t0 = max(lv.p_ts, acc.start_us)
        if until <= t0:
            return
        dt = until - t0
        acc.p_int += lv.kw * dt
        acc.p_cov += dt
        g = self.catalog.generators.get(lv.rec.spec.name)
        if g is not None and lv.kw > 0:
            lv.curve_l += fuel_curve_lph(g.rated_kw, lv.kw, g.f0, g.f1) * dt / US_H
            if lv.kw >= 0.01 * g.rated_kw:  # running: above 1 % of rating (idle noise below)
                lv.run_us += dt
        lv.p_ts = until

    # ------------------------------------------------------------------ intervals

    def close_due(self, now: int) -> list[Reading]:
        """Close every open interval that ended by `now`; queue the rows; return the readings."""
        out: list[Reading] = []
        for lv in self.live.values():
            while now >= lv.acc.start_us + lv.interval_us:
                out.append(self._close(lv, lv.acc.start_us + lv.interval_us))
        if out:
            self._losses(out)
        return out

    def _close(self, lv: Live, end: int) -> Reading:
        acc = lv.acc
        self._integrate(lv, end)
        span = lv.interval_us
        has_counter = "import_kwh" in lv.roles
        quality = acc.quality
        reason = None
        # The energy's own source decides: the counter when there is one, else the power.
        role = "import_kwh" if has_counter else "power_total"
        if role in lv.roles and lv.quality.get(role, BAD) == BAD:
            quality, reason = BAD, f"{role} is BAD"
        if has_counter and lv.imp_last is None:
            quality, reason = BAD, reason or "no counter reading yet"
        avg = acc.p_int / acc.p_cov if acc.p_cov else None
        estimated = False
        if has_counter and (acc.counted or lv.imp_last is not None):
            imp: float | None = acc.imp
            if "reset" in acc.steps or "jump" in acc.steps:
                estimated = True
                reason = reason or f"counter {', '.join(sorted(acc.steps))}"
        elif _has_power(lv) and acc.p_cov:
            imp = max(acc.p_int, 0.0) / US_H
            estimated = True
            if acc.p_cov < span * 0.9:
                quality = UNCERTAIN if quality == GOOD else quality
                reason = reason or f"power known for {100 * acc.p_cov / span:.0f} % of the interval"
        else:
            imp, quality, reason = None, BAD, reason or "no energy or power reading"
        r = Reading(lv.rec.spec.name, lv.rec.id, acc.start_us, lv.interval_us // 1_000_000, imp, acc.exp, avg,
                    acc.p_max, estimated, quality, reason)  # fmt: skip
        self._to_day(lv, r, end)
        self._fuel_check(lv, end)
        lv.acc = Acc(end)
        if lv.kw is not None:
            lv.acc.p_max = lv.kw
        return r

    def _to_day(self, lv: Live, r: Reading, end: int) -> None:
        day = self._day(lv.rec.spec.name, r.start_us)
        if day != lv.day:
            lv.day = day
            lv.day_imp = lv.day_exp = 0.0
            lv.day_peak_kw = lv.day_peak_us = None
            lv.day_intervals = 0
            lv.profile = [None] * (86400 // r.interval_s)
            lv.fuel = lv.fuel[-1:]
            lv.running = lv.running[-1:]
            lv.curve_l = 0.0
            lv.run_us = 0
            lv.fuel_analysis = None
        lv.day_imp += r.import_kwh or 0.0
        lv.day_exp += r.export_kwh
        lv.day_intervals += 1
        if r.avg_kw is not None and (lv.day_peak_kw is None or r.avg_kw > lv.day_peak_kw):
            lv.day_peak_kw, lv.day_peak_us = r.avg_kw, r.start_us
        tz = ZoneInfo(self.catalog.tz_of(lv.rec.spec.name))
        local = from_us(r.start_us).astimezone(tz)
        idx = (local.hour * 3600 + local.minute * 60 + local.second) // r.interval_s
        if 0 <= idx < len(lv.profile):
            lv.profile[idx] = None if r.avg_kw is None else round(r.avg_kw, 3)
        ts = now_us()
        self.pending.append(("reading", [{
            "meter_id": r.meter_id, "s": r.start_us, "i": r.interval_s, "imp": r.import_kwh or 0.0,
            "exp": r.export_kwh, "net": (r.import_kwh or 0.0) - r.export_kwh, "avg": r.avg_kw, "max": r.max_kw,
            "est": r.estimated, "q": r.quality, "why": r.reason,
        }]))  # fmt: skip
        self.pending.append(("day", [{
            "meter_id": r.meter_id, "day": day, "imp": lv.day_imp, "exp": lv.day_exp, "net": lv.day_imp - lv.day_exp,
            "peak": lv.day_peak_kw, "peak_us": lv.day_peak_us, "n": lv.day_intervals, "ts": ts,
            "profile": json.dumps(lv.profile), "i": r.interval_s,
        }]))  # fmt: skip

    def _losses(self, readings: list[Reading]) -> None:
        """Loss of every parent whose interval just closed, against its (non-source) children."""
        by_key = {(r.meter, r.start_us): r for r in readings}
        s = self.settings
        ts = now_us()
        for r in readings:
            lv = self.live.get(r.meter)
            if lv is None:
                continue
            loads = self.loads_of(lv)
            if not loads:
                continue
            parent_kwh = self._in_kwh(lv, r, by_key)
            children = []
            for c in loads:
                cr = by_key.get((c, r.start_us))
                children.append((c, None if cr is None or cr.import_kwh is None else cr.import_kwh,
                                 cr.quality if cr else BAD))  # fmt: skip
            res = feeder_loss(parent_kwh, children, min_parent_kwh=s.loss_min_parent_kwh, warn_pct=s.loss_warn_pct,
                              alarm_pct=s.loss_alarm_pct, negative_tolerance_pct=s.loss_negative_tolerance_pct)  # fmt: skip
            self._set_alarm_tag(lv, "loss_pct", res.loss_pct, r.start_us + lv.interval_us, res.note)
            self.interval_loss.add(lv.rec.spec.name)
            self.pending.append(("loss", [{
                "p": lv.rec.id, "s": r.start_us, "i": r.interval_s, "pk": res.parent_kwh, "ck": res.children_kwh,
                "lk": res.loss_kwh, "lp": res.loss_pct, "st": res.status, "note": res.note or None, "ts": ts,
            }]))  # fmt: skip

    def _set_alarm_tag(self, lv: Live, name: str, value: float | None, at: int, why: str | None) -> None:
        """Hand a figure to its memory tag, where the Alarms engine watches it (None: BAD, with why)."""
        rec = lv.rec.spec
        tag = self.table.by_path.get(f"{rec.site or self.catalog.default_site}/energy/{rec.name}/{name}")
        if tag is None:
            return
        if value is None:
            self.table.set_value(tag, tag.value, BAD, "last_usable", why or "no figure for this interval", at)
        else:
            self.table.set_value(tag, round(value, 3), source_us=at)

    def _fuel_check(self, lv: Live, end: int) -> None:
        g = self.catalog.generators.get(lv.rec.spec.name)
        if g is None or not g.tank_l or len(lv.fuel) < 2:
            return
        fa = analyse_fuel(lv.fuel, lv.running, tank_l=g.tank_l)
        lv.fuel_analysis = fa
        self._set_alarm_tag(lv, "fuel_theft_l", sum(e.litres for e in fa.thefts), end, None)

    def _type(self, meter: str) -> str:
        rec = self.catalog.meters.get(meter)
        return rec.spec.type if rec else "load"

    def _in_kwh(self, lv: Live, r: Reading, by_key: dict[tuple[str, int], Reading]) -> float | None:
        """What entered a node: its own reading, or (a bus without one) what its sources delivered."""
        if "import_kwh" in lv.roles or _has_power(lv):
            return r.import_kwh if r.quality == GOOD else None
        total = 0.0
        sources = [c for c in lv.rec.children if self._type(c) in SOURCE_TYPES]
        if not sources:
            return None
        for c in sources:
            cr = by_key.get((c, r.start_us))
            if cr is None or cr.import_kwh is None or cr.quality != GOOD:
                return None
            total += cr.import_kwh
        return total

    # ------------------------------------------------------------------ live figures

    def kw_in(self, lv: Live) -> float | None:
        if _has_power(lv) or "import_kwh" in lv.roles:
            return lv.kw
        sources = [self.live.get(c) for c in lv.rec.children if self._type(c) in SOURCE_TYPES]
        if not sources or any(s is None or s.kw is None for s in sources):
            return None
        return sum(s.kw for s in sources if s is not None and s.kw is not None)

    def today_kwh(self, lv: Live, now: int, day: str | None = None) -> float:
        """kWh since local midnight: closed intervals of the day plus the open one
        (`day`: today's local date when the caller knows it, saving a zone conversion)."""
        if day is None:
            day = self._day(lv.rec.spec.name, now)
        closed = lv.day_imp if lv.day == day else 0.0
        return closed + self.open_kwh(lv)

    @staticmethod
    def open_kwh(lv: Live) -> float:
        """kWh of the interval still open: the counter steps so far, else integrated power."""
        acc = lv.acc
        return acc.imp if acc.counted else (acc.p_int / US_H if acc.p_cov else 0.0)

    def sources_of(self, lv: Live) -> list[Live]:
        """The live source meters feeding a bus that has no reading of its own."""
        out = []
        for c in lv.rec.children:
            if self._type(c) in SOURCE_TYPES and c in self.live:
                out.append(self.live[c])
        return out

    def meter_quality(self, lv: Live) -> str:
        q = [lv.quality.get(r, BAD) for r in ("power_total", "import_kwh") if r in lv.roles]
        if not lv.roles:
            q = [self.meter_quality(s) for s in self.sources_of(lv)]
        if not q:
            return BAD
        return max(q, key=lambda x: _RANK[x])

    def today_or_sources(self, lv: Live, now: int, day: str | None = None) -> float:
        """Today's kWh; for a bus without a reading of its own, what its sources delivered."""
        if lv.roles:
            return self.today_kwh(lv, now, day)
        return sum(self.today_kwh(s, now, day) for s in self.sources_of(lv))

    def loads_of(self, lv: Live) -> list[str]:
        """The meters a node feeds (its children that are not sources)."""
        return [c for c in lv.rec.children if self._type(c) not in SOURCE_TYPES]

    def live_loss(self, lv: Live) -> LiveLoss | None:
        """The loss of the power flowing now through a node that feeds others; None for a leaf.
        Unknown parts stay None (a child without a reading makes the loss unknown)."""
        loads = self.loads_of(lv)
        if not loads:
            return None
        pin = self.kw_in(lv)
        kws = [x.kw if (x := self.live.get(c)) is not None else None for c in loads]
        cin = None if any(k is None for k in kws) else sum(k for k in kws if k is not None)
        loss = None if pin is None or cin is None else pin - cin
        pct = None if loss is None or not pin else 100.0 * loss / pin
        s = self.settings
        status = "incomplete" if pct is None else loss_status(
            pct, warn_pct=s.loss_warn_pct, alarm_pct=s.loss_alarm_pct,
            negative_tolerance_pct=s.loss_negative_tolerance_pct,
        )  # fmt: skip
        return LiveLoss(pin, cin, loss, pct, status)

    def live_losses(self, now: int) -> None:
        """Until a parent's first interval closes, its loss_pct tag shows the loss of the
        power flowing now (the best figure there is), so it never starts out unknown."""
        for lv in self.live.values():
            name = lv.rec.spec.name
            if name in self.interval_loss:
                continue
            ll = self.live_loss(lv)
            if ll is None or ll.pct is None:
                continue
            pct = ll.pct
            rec = lv.rec.spec
            tag = self.table.by_path.get(f"{rec.site or self.catalog.default_site}/energy/{name}/loss_pct")
            if tag is not None and (tag.value is None or abs(tag.value - pct) >= 0.01 or tag.quality != GOOD):
                self.table.set_value(tag, round(pct, 3), source_us=now)

    def update_status(self, now: int) -> None:
        """online: every tag GOOD; degraded: some not; offline: none usable. Changes are journalled."""
        for lv in self.live.values():
            qs = [lv.quality.get(r, BAD) for r in lv.roles]
            if not qs:
                qs = [self.meter_quality(s) for s in self.sources_of(lv)]
            if not qs:
                continue
            bad = sum(1 for q in qs if q == BAD)
            status = "offline" if bad == len(qs) else "degraded" if bad or UNCERTAIN in qs else "online"
            if status != lv.status:
                why = ", ".join(f"{r} {lv.quality.get(r, BAD)}" for r in lv.roles if lv.quality.get(r, BAD) != GOOD)
                lv.status = status
                self.pending.append(("status", [{"m": lv.rec.id, "ts": now, "st": status, "why": why or None}]))

    # ------------------------------------------------------------------ background

    async def start(self) -> None:
        self.rebuild()
        self.table.listeners.append(self.on_changes)
        self._task = asyncio.create_task(self._loop(), name="energy intervals")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                now = now_us()
                self.close_due(now)
                self.update_status(now)
                self.live_losses(now)
                await self.flush()
            except Exception:  # noqa: BLE001 - retried next second; the live figures go on
                log.exception("energy intervals failed")

    async def flush(self) -> None:
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        try:
            await self.db.run(_write, self.db, rows)
            self.readings_written += sum(len(r) for k, r in rows if k == "reading")
        except Exception as exc:  # noqa: BLE001 - kept for the next try
            self.pending[:0] = rows
            self.last_error = str(exc)
            log.error("energy rows not written; retrying", extra={"fields": {"error": str(exc)}})

    async def stop(self) -> None:
        if self.on_changes in self.table.listeners:
            self.table.listeners.remove(self.on_changes)
        if self._task is not None:
            self._task.cancel()
        await self.flush()


_SQL = {
    "reading": (
        "INSERT INTO meter_readings (meter_id, interval_start_us, interval_s, import_kwh, export_kwh, net_kwh, avg_kw,"
        " max_kw, estimated, quality, quality_reason) VALUES (:meter_id, :s, :i, :imp, :exp, :net, :avg, :max, :est,"
        " :q, :why) ON CONFLICT (meter_id, interval_start_us) DO UPDATE SET import_kwh = excluded.import_kwh,"
        " export_kwh = excluded.export_kwh, net_kwh = excluded.net_kwh, avg_kw = excluded.avg_kw,"
        " max_kw = excluded.max_kw, estimated = excluded.estimated, quality = excluded.quality,"
        " quality_reason = excluded.quality_reason"
    ),
    "day": (
        "INSERT INTO energy_consumption (meter_id, day, import_kwh, export_kwh, net_kwh, peak_kw, peak_us, intervals,"
        " updated_us) VALUES (:meter_id, :day, :imp, :exp, :net, :peak, :peak_us, :n, :ts)"
        " ON CONFLICT (meter_id, day) DO UPDATE SET import_kwh = excluded.import_kwh,"
        " export_kwh = excluded.export_kwh, net_kwh = excluded.net_kwh, peak_kw = excluded.peak_kw,"
        " peak_us = excluded.peak_us, intervals = excluded.intervals, updated_us = excluded.updated_us"
    ),
    "profile": (
        "INSERT INTO load_profiles (meter_id, day, interval_s, demand_kw_json, peak_kw, peak_us, updated_us)"
        " VALUES (:meter_id, :day, :i, :profile, :peak, :peak_us, :ts) ON CONFLICT (meter_id, day) DO UPDATE SET"
        " interval_s = excluded.interval_s, demand_kw_json = excluded.demand_kw_json, peak_kw = excluded.peak_kw,"
        " peak_us = excluded.peak_us, updated_us = excluded.updated_us"
    ),
    "loss": (
        "INSERT INTO power_loss_analysis (parent_meter_id, interval_start_us, interval_s, parent_kwh, children_kwh,"
        " loss_kwh, loss_pct, status, note, computed_us) VALUES (:p, :s, :i, :pk, :ck, :lk, :lp, :st, :note, :ts)"
        " ON CONFLICT (parent_meter_id, interval_s, interval_start_us) DO UPDATE SET parent_kwh = excluded.parent_kwh,"
        " children_kwh = excluded.children_kwh, loss_kwh = excluded.loss_kwh, loss_pct = excluded.loss_pct,"
        " status = excluded.status, note = excluded.note, computed_us = excluded.computed_us"
    ),
    "status": (
        "INSERT INTO meter_status_history (meter_id, ts_us, status, reason) VALUES (:m, :ts, :st, :why)"
        " ON CONFLICT (meter_id, ts_us) DO UPDATE SET status = excluded.status, reason = excluded.reason"
    ),
}


def _write(db: Database, rows: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Write queued rows in one transaction; rows of meters deleted meanwhile are skipped."""
    with db.engine.begin() as conn:
        alive = {r[0] for r in conn.execute(text("SELECT id FROM energy_meters"))}
        for kind, batch in rows:
            key = "p" if kind == "loss" else "m" if kind == "status" else "meter_id"
            batch = [b for b in batch if b[key] in alive]
            if not batch:
                continue
            conn.execute(text(_SQL[kind]), batch)
            if kind == "day":
                conn.execute(text(_SQL["profile"]), batch)


def _has_power(lv: Live) -> bool:
    """A total power reading, or all three phases to add up."""
    return "power_total" in lv.roles or all(p in lv.roles for p in PHASES)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)) and v == v:
        return float(v)
    return None
