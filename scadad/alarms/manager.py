"""The alarm subsystem: rules, engine, journal and notifier, behind one object the
API services and the daemon talk to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from scadad.alarms import state as sm
from scadad.alarms.conditions import render_message
from scadad.alarms.engine import PRIORITY_RANK, AlarmEngine
from scadad.alarms.notify import Notifier
from scadad.alarms.rules import RuleBook, RuleRec, name_of
from scadad.alarms.state import AlarmState, Transition
from scadad.alarms.store import EventRow
from scadad.api.alarm_messages import (
    Alarm,
    AlarmCounts,
    AlarmEvent,
    AlarmRef,
    AlarmRule,
    AlarmRuleSpec,
    AlarmRuleUpdate,
)
from scadad.api.errors import AlreadyExists, InvalidArgument
from scadad.bus import Bus
from scadad.clock import from_us, now_us
from scadad.config import AlarmSettings, SmtpSettings
from scadad.store.database import Database
from scadad.tags.catalog import Catalog, Changed
from scadad.tags.table import TagTable, compile_pattern


class Alarms:
    """Everything alarms: loaded with the plant, started with the pollers."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        table: TagTable,
        bus: Bus,
        settings: AlarmSettings,
        smtp: SmtpSettings,
        site: str,
        tz: ZoneInfo,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.table = table
        self.settings = settings
        self.book = RuleBook(catalog)
        self.notifier = Notifier(
            smtp, settings.email, site=site, tz=tz, journal=self._journal_notice, is_unacked=self._is_unacked
        )
        self.engine = AlarmEngine(db, table, bus, notify=self.notifier.offer if self.notifier.enabled else None)
        self.loaded = False
        self._states: dict[int, AlarmState] = {}
        self._notify_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> None:
        """Read rules and alarm states (store thread, after the catalog loaded)."""
        self.book = RuleBook(self.catalog)
        for rule_id, row, created, updated in self.engine.store.load_rules():
            spec = self.book.spec_from_row(row)
            if spec is not None:
                self.book.put(RuleRec(rule_id, spec, created, updated))
        self._states = self.engine.store.load_states()
        self.loaded = True

    async def start(self) -> None:
        """Install the rules with their restored state, hook into the tag table, start."""
        self.engine.install((self.book.compile(r) for r in self.book.recs.values()), self._states)
        self.table.listeners.append(self.engine.on_changes)
        await self.engine.start()
        if self.notifier.enabled:
            self._notify_task = asyncio.create_task(self.notifier.run(), name="alarm e-mail")
        # Suppression conditions and tags that already have a value decide at once.
        self.engine.evaluate_now(list(self.engine.rules))

    async def stop(self) -> None:
        if self.engine.on_changes in self.table.listeners:
            self.table.listeners.remove(self.engine.on_changes)
        # The notifier first: what it journals while closing goes out with the last flush.
        if self._notify_task is not None:
            await self.notifier.close()
            self._notify_task.cancel()
        await self.engine.stop()

    def on_catalog_change(self, changed: Changed) -> None:
        """Tags renamed or deleted: rules follow (the store cascades deletions itself)."""
        for tag_id in changed.tags:
            rec = self.catalog.tags_by_id.get(tag_id)
            for rule in list(self.engine.by_tag.get(tag_id, ())):
                if rec is None:
                    self.engine.remove(rule.id)
                    self.book.drop(rule.id)
                elif rule.tag_path != rec.spec.path:
                    old = self.book.recs[rule.id]
                    self.book.drop(rule.id)
                    self.engine.rename_tag(tag_id, rec.spec.path)
                    spec = msgspec.structs.replace(old.spec, tag=rec.spec.path)
                    self.book.put(RuleRec(old.id, spec, old.created_us, old.updated_us))
            for rule in list(self.engine.by_setpoint.get(tag_id, ())):
                if rec is None:
                    rule.setpoint_tag_id = None
                else:
                    rule.setpoint_path = rec.spec.path

    # ------------------------------------------------------------------ rules

    def _require(self) -> None:
        self.catalog._require_loaded()

    async def create(self, spec: AlarmRuleSpec) -> RuleRec:
        self._require()
        spec = self.book.check(spec)
        if name_of(spec) in self.book.by_name:
            raise _exists(name_of(spec))
        ts = now_us()
        [rule_id] = await self.db.run(self.engine.store.write_rules, [self.book.row(spec)], [], ts)
        rec = RuleRec(rule_id, spec, ts, ts)
        self._install([rec])
        return rec

    async def update(self, p: AlarmRuleUpdate) -> RuleRec:
        self._require()
        old = self.book.get(p.alarm)
        spec = self.book.merge(old, p)
        if spec == old.spec:
            return old
        ts = now_us()
        await self.db.run(self.engine.store.write_rules, [], [(old.id, self.book.row(spec))], ts)
        rec = RuleRec(old.id, spec, old.created_us, ts)
        self._install([rec])
        return rec

    async def delete(self, ref: AlarmRef) -> None:
        self._require()
        rec = self.book.get(ref)
        await self.engine.flush()  # the journal keeps this alarm's last rows with their rule id
        await self.db.run(self.engine.store.delete_rule, rec.id)
        self.book.drop(rec.id)
        self.engine.remove(rec.id)

    async def import_rules(self, specs: list[AlarmRuleSpec], update: bool, dry_run: bool) -> dict[str, list[str]]:
        self._require()
        created, updated, unchanged = self.book.plan_import(specs, update)
        names = {
            "created": [name_of(s) for s in created],
            "updated": [name_of(s) for _, s in updated],
            "unchanged": unchanged,
        }
        if dry_run or not (created or updated):
            return names
        ts = now_us()
        ids = await self.db.run(
            self.engine.store.write_rules,
            [self.book.row(s) for s in created],
            [(old.id, self.book.row(s)) for old, s in updated],
            ts,
        )
        recs = [RuleRec(i, s, ts, ts) for i, s in zip(ids, created, strict=True)]
        recs += [RuleRec(old.id, s, old.created_us, ts) for old, s in updated]
        self._install(recs)
        return names

    def _install(self, recs: list[RuleRec]) -> None:
        for rec in recs:
            self.book.put(rec)
            a = self.engine.states.get(rec.id)
            if a is not None and not rec.spec.enabled and a.state != sm.NORMAL:
                # A disabled rule cannot be acknowledged away later: it leaves the list now.
                a.state, a.condition, a.raw, a.pending_us = sm.NORMAL, False, False, None
                a.active_since_us = None
                self.engine._emit([Transition(rec.id, now_us(), "cleared", sm.NORMAL, a.value, None, "rule disabled")])
        self.engine.install(self.book.compile(r) for r in recs)
        self.engine.evaluate_now([r.id for r in recs])

    def rule(self, rec: RuleRec) -> AlarmRule:
        s = rec.spec
        return AlarmRule(
            id=rec.id, tag=s.tag, kind=s.kind, limit=s.limit, discrete_op=s.discrete_op, setpoint_tag=s.setpoint_tag,
            deadband=s.deadband, on_delay_ms=s.on_delay_ms, off_delay_ms=s.off_delay_ms, priority=s.priority,
            latching=s.latching, message=s.message, area=s.area, open_work_order=s.open_work_order,
            suppress_when=s.suppress_when, enabled=s.enabled, created_at=from_us(rec.created_us),
            updated_at=from_us(rec.updated_us),
        )  # fmt: skip

    def rules(self, pattern: str = "**", area: str | None = None) -> list[RuleRec]:
        match = compile_pattern(pattern)
        recs = [r for r in self.book.recs.values() if match(r.spec.tag) and _in_area(r.spec.area, area)]
        return sorted(recs, key=lambda r: (r.spec.tag, r.spec.kind))

    # ------------------------------------------------------------------ alarms

    def resolve(self, refs: Iterable[AlarmRef], field: str = "params.alarms") -> list[int]:
        return [self.book.get(ref, f"{field}[{i}]").id for i, ref in enumerate(refs)]

    def alarm(self, rule_id: int) -> Alarm:
        rule = self.engine.rules[rule_id]
        a = self.engine.states[rule_id]
        return Alarm(
            id=rule_id, name=rule.name, tag=rule.tag_path, kind=rule.kind, priority=rule.priority, area=rule.area,
            state=a.state, active=a.condition, annunciated=a.annunciated, message=render_message(rule, a.value),
            value=a.value if not isinstance(a.value, bool) else float(a.value), limit=rule.limit, units=rule.units,
            active_since=_dt(a.active_since_us), last_change=_dt(a.last_change_us), acked_by=a.acked_by,
            acked_at=_dt(a.acked_us), shelved_until=_dt(a.shelved_until_us), shelved_by=a.shelved_by,
            shelve_reason=a.shelve_reason, suppressed=a.suppressed, out_of_service=a.out_of_service,
            oos_reason=a.oos_reason, open_work_order=rule.open_work_order,
        )  # fmt: skip

    def selected(
        self,
        pattern: str = "**",
        area: str | None = None,
        priorities: list[str] | None = None,
        everything: bool = False,
        include_normal: bool = False,
    ) -> list[int]:
        """Rule ids matching the filters, most urgent first (priority, then newest)."""
        match = compile_pattern(pattern)
        out = []
        for rid, rule in self.engine.rules.items():
            a = self.engine.states[rid]
            if not include_normal:
                hidden = a.shelved or a.suppressed or a.out_of_service
                if a.state == sm.NORMAL and not (everything and hidden):
                    continue
                if hidden and not everything:
                    continue
            if priorities and rule.priority not in priorities:
                continue
            if not _in_area(rule.area, area) or not match(rule.tag_path):
                continue
            out.append(rid)
        states = self.engine.states
        out.sort(
            key=lambda r: (
                PRIORITY_RANK[self.engine.rules[r].priority],
                -(states[r].active_since_us or states[r].last_change_us or 0),
                self.engine.rules[r].name,
            )
        )
        return out

    def counts(self) -> AlarmCounts:
        c = self.engine.counts()
        return AlarmCounts(
            active=c.active, unacked=c.unacked, unacked_by_priority=dict(c.unacked_by_priority), shelved=c.shelved,
            suppressed=c.suppressed, out_of_service=c.out_of_service,
        )  # fmt: skip

    def acknowledge(self, ids: list[int], user: str | None, comment: str) -> list[int]:
        now = now_us()
        return self.engine.act(lambda a, r: sm.acknowledge(a, user, comment, now), ids)

    def shelve(self, ids: list[int], user: str, duration_s: int, reason: str) -> list[int]:
        limit = self.settings.max_shelve_hours * 3600
        if duration_s > limit:
            raise InvalidArgument(
                f"shelving is limited to {self.settings.max_shelve_hours:g} h ([alarms] max_shelve_hours)",
                "params.duration_s",
            )
        now = now_us()
        until = now + duration_s * 1_000_000
        return self.engine.act(lambda a, r: sm.shelve(a, user, until, reason, now), ids)

    def unshelve(self, ids: list[int], user: str | None) -> list[int]:
        now = now_us()
        return self.engine.act(lambda a, r: sm.unshelve(a, user, now), ids)

    def comment(self, rule_id: int, user: str | None, text: str) -> None:
        now = now_us()
        self.engine.act(lambda a, r: sm.comment(a, user, text, now), [rule_id])

    def out_of_service(self, rule_id: int, oos: bool, user: str | None, reason: str) -> bool:
        now = now_us()
        changed = self.engine.act(lambda a, r: sm.set_out_of_service(a, oos, user, reason, now), [rule_id])
        if changed and not oos:
            self.engine.evaluate_now([rule_id])
        return bool(changed)

    # ------------------------------------------------------------------ notifier hooks

    def _journal_notice(self, rule_id: int, event: str, detail: str) -> None:
        self.engine.journal_extra(rule_id, event, detail)

    def _is_unacked(self, rule_id: int) -> bool:
        a = self.engine.states.get(rule_id)
        return a is not None and a.unacked and a.annunciated


def event_message(row: EventRow, row_id: int | None = None) -> AlarmEvent:
    return AlarmEvent(
        time=from_us(row.ts_us), alarm_id=row.rule_id, tag=row.tag_path, kind=row.kind, event=row.event,
        state=row.state, priority=row.priority, area=row.area, value=row.value, message=row.message,
        user=row.username, comment=row.comment, id=row_id,
    )  # fmt: skip


def _in_area(rule_area: str, area: str | None) -> bool:
    return area is None or rule_area == area or rule_area.startswith(area + "/")


def _dt(us: int | None) -> datetime | None:
    return from_us(us) if us else None


def _exists(name: str) -> Exception:
    return AlreadyExists(f"alarm {name} already exists (use `scadactl alarm rule edit`)", {"field": "params.kind"})
