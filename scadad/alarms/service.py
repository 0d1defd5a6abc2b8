"""AlarmRules.* and Alarms.*: the API face of the alarm subsystem."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from scadad.alarms.engine import TOPIC, AlarmUpdate
from scadad.alarms.kpi import ActiveAlarm, compute_kpis
from scadad.alarms.manager import Alarms, event_message
from scadad.alarms.store import HistoryFilter
from scadad.api.alarm_messages import (
    AlarmAck,
    AlarmAckResult,
    AlarmChanged,
    AlarmComment,
    AlarmHistory,
    AlarmHistoryParams,
    AlarmKpiParams,
    AlarmKpis,
    AlarmList,
    AlarmListParams,
    AlarmOutOfService,
    AlarmRule,
    AlarmRuleExport,
    AlarmRuleImport,
    AlarmRuleList,
    AlarmRuleListParams,
    AlarmRuleRef,
    AlarmRuleSpec,
    AlarmRuleUpdate,
    AlarmShelve,
    AlarmUnshelve,
    AlarmWatch,
    AlarmWatchEvent,
)
from scadad.api.errors import InvalidArgument, ResourceExhausted
from scadad.api.messages import Deleted
from scadad.api.registry import CallContext, Service, rpc
from scadad.api.tag_messages import ImportResult
from scadad.bus import Dropped
from scadad.clock import now_us, to_us
from scadad.tags.table import compile_pattern

__all__ = ["AlarmRulesService", "AlarmsService"]


class AlarmRulesService(Service):
    """AlarmRules.*: alarm definitions (limits, delays, priority, message, area)."""

    name = "AlarmRules"

    def __init__(self, alarms: Alarms) -> None:
        self.alarms = alarms

    @rpc(permission="alarms.read")
    async def list(self, ctx: CallContext, params: AlarmRuleListParams) -> AlarmRuleList:
        """Alarm rules by tag and kind, optionally for one tag pattern or area."""
        self.alarms._require()
        return AlarmRuleList(rules=[self.alarms.rule(r) for r in self.alarms.rules(params.pattern, params.area)])

    @rpc(permission="alarms.read")
    async def get(self, ctx: CallContext, params: AlarmRuleRef) -> AlarmRule:
        """One rule, by id or `tag:kind`."""
        self.alarms._require()
        return self.alarms.rule(self.alarms.book.get(params.alarm))

    @rpc(permission="alarms.configure", mutates=True)
    async def create(self, ctx: CallContext, params: AlarmRuleSpec) -> AlarmRule:
        """Add an alarm; it evaluates at once against the tag's current value."""
        return self.alarms.rule(await self.alarms.create(params))

    @rpc(permission="alarms.configure", mutates=True)
    async def update(self, ctx: CallContext, params: AlarmRuleUpdate) -> AlarmRule:
        """Change a rule's fields; the alarm keeps its state and re-evaluates."""
        return self.alarms.rule(await self.alarms.update(params))

    @rpc(permission="alarms.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: AlarmRuleRef) -> Deleted:
        """Remove a rule; its journal rows stay."""
        await self.alarms.delete(params.alarm)
        return Deleted()

    @rpc(permission="alarms.configure", mutates=True)
    async def import_(self, ctx: CallContext, params: AlarmRuleImport) -> ImportResult:
        """Create (and with `update`, change) many rules, all or nothing."""
        names = await self.alarms.import_rules(params.rules, params.update, params.dry_run)
        return ImportResult(created=names["created"], updated=names["updated"], unchanged=names["unchanged"],
                            dry_run=params.dry_run)  # fmt: skip

    @rpc(permission="alarms.read")
    async def export(self, ctx: CallContext, params: AlarmRuleListParams) -> AlarmRuleExport:
        """Rules as `Import` takes them back."""
        self.alarms._require()
        return AlarmRuleExport(rules=[r.spec for r in self.alarms.rules(params.pattern, params.area)])


class AlarmsService(Service):
    """Alarms.*: current alarms, acknowledgement, shelving, the journal, KPIs."""

    name = "Alarms"

    def __init__(self, alarms: Alarms) -> None:
        self.alarms = alarms

    @rpc(permission="alarms.read")
    async def list(self, ctx: CallContext, params: AlarmListParams) -> AlarmList:
        """Current alarms, most urgent first (priority, then newest)."""
        self.alarms._require()
        ids = self.alarms.selected(params.pattern, params.area, params.priority, params.all, params.include_normal)
        return AlarmList(alarms=[self.alarms.alarm(i) for i in ids], counts=self.alarms.counts())

    @rpc(permission="alarms.ack", mutates=True)
    async def acknowledge(self, ctx: CallContext, params: AlarmAck) -> AlarmAckResult:
        """Acknowledge alarms (a latched one is reset), or `all` unacknowledged ones shown."""
        self.alarms._require()
        if params.all and params.alarms:
            raise InvalidArgument("name alarms or use all, not both", "params.all")
        if params.all:
            ids = [i for i in self.alarms.selected(params.pattern, params.area) if self.alarms.engine.states[i].unacked]
        elif params.alarms:
            ids = self.alarms.resolve(params.alarms)
        else:
            raise InvalidArgument("name the alarms to acknowledge, or use all", "params.alarms")
        done = set(self.alarms.acknowledge(ids, ctx.user, params.comment))
        names = {i: self.alarms.engine.rules[i].name for i in ids}
        return AlarmAckResult(
            acknowledged=[names[i] for i in ids if i in done], skipped=[names[i] for i in ids if i not in done]
        )

    @rpc(permission="alarms.shelve", mutates=True)
    async def shelve(self, ctx: CallContext, params: AlarmShelve) -> AlarmChanged:
        """Shelve alarms for a time, with a reason; they unshelve themselves."""
        self.alarms._require()
        ids = self.alarms.resolve(params.alarms)
        self.alarms.shelve(ids, ctx.user or "unknown", params.duration_s, params.reason)
        return AlarmChanged(alarms=[self.alarms.alarm(i) for i in ids])

    @rpc(permission="alarms.shelve", mutates=True)
    async def unshelve(self, ctx: CallContext, params: AlarmUnshelve) -> AlarmChanged:
        """End the shelving of alarms now."""
        self.alarms._require()
        ids = self.alarms.resolve(params.alarms)
        self.alarms.unshelve(ids, ctx.user)
        return AlarmChanged(alarms=[self.alarms.alarm(i) for i in ids])

    @rpc(permission="alarms.ack", mutates=True)
    async def comment(self, ctx: CallContext, params: AlarmComment) -> AlarmChanged:
        """Add an operator's comment to an alarm's journal."""
        self.alarms._require()
        [rid] = self.alarms.resolve([params.alarm], "params.alarm")
        self.alarms.comment(rid, ctx.user, params.comment)
        return AlarmChanged(alarms=[self.alarms.alarm(rid)])

    @rpc(permission="alarms.configure", mutates=True)
    async def out_of_service(self, ctx: CallContext, params: AlarmOutOfService) -> AlarmChanged:
        """Take an alarm out of service (with a reason) or put it back."""
        self.alarms._require()
        if params.out_of_service and not params.reason.strip():
            raise InvalidArgument("say why the alarm goes out of service", "params.reason")
        [rid] = self.alarms.resolve([params.alarm], "params.alarm")
        self.alarms.out_of_service(rid, params.out_of_service, ctx.user, params.reason)
        return AlarmChanged(alarms=[self.alarms.alarm(rid)])

    @rpc(permission="alarms.read")
    async def history(self, ctx: CallContext, params: AlarmHistoryParams) -> AlarmHistory:
        """Journal rows by time, alarm, tag pattern, area, priority and event."""
        self.alarms._require()
        start, end = _window(params.start, params.end)
        rule_id = None
        if params.alarm is not None:
            rule_id = self.alarms.book.get(params.alarm).id
        paths = None
        if params.pattern != "**":
            match = compile_pattern(params.pattern)
            paths = [p for p in self.alarms.catalog.tags if match(p)]
        await self.alarms.engine.flush()  # what happened a moment ago is in the answer
        f = HistoryFilter(start, end, rule_id, paths, params.area, params.priority, params.events, params.limit,
                          params.newest)  # fmt: skip
        rows, truncated = await self.alarms.db.run(self.alarms.engine.store.history, f)
        return AlarmHistory(events=[event_message(r, i) for i, r in rows], truncated=truncated)

    @rpc(permission="alarms.read")
    async def kpis(self, ctx: CallContext, params: AlarmKpiParams) -> AlarmKpis:
        """ISA-18.2 / EEMUA 191 figures: rates per operator, flood %, bad actors, chattering, standing."""
        self.alarms._require()
        start, end = _window(params.start, params.end)
        await self.alarms.engine.flush()
        store = self.alarms.engine.store
        rows = await self.alarms.db.run(store.kpi_rows, start, end, params.area)
        active = await self.alarms.db.run(store.active_at, end, params.area)
        return compute_kpis(
            rows, start, end, operators=params.operators, top=params.top,
            active=[ActiveAlarm(tag, kind, prio, since) for tag, kind, prio, since in active],
        )  # fmt: skip

    @rpc(permission="alarms.read", stream=True)
    async def watch(self, ctx: CallContext, params: AlarmWatch) -> AsyncIterator[AlarmWatchEvent]:
        """Alarm changes as they happen: changed alarms, their journal rows and the counts."""
        self.alarms._require()
        match = compile_pattern(params.pattern)
        engine = self.alarms.engine

        def wanted(rule_id: int | None) -> bool:
            rule = engine.rules.get(rule_id) if rule_id is not None else None
            if rule is None:
                return False
            area = params.area
            return match(rule.tag_path) and (area is None or rule.area == area or rule.area.startswith(area + "/"))

        with engine.bus.subscribe(TOPIC, maxsize=10_000) as sub:
            if params.initial:
                ids = [i for i in self.alarms.selected(params.pattern, params.area, everything=True) if wanted(i)]
                yield AlarmWatchEvent(
                    alarms=[self.alarms.alarm(i) for i in ids], events=[], counts=self.alarms.counts(), initial=True
                )
            while True:
                try:
                    update: AlarmUpdate = await sub.get()
                    # A flood arrives as many small updates: send what is queued as one event.
                    more = [update]
                    while not sub.queue.empty():
                        more.append(sub.queue.get_nowait())
                except Dropped as exc:
                    raise ResourceExhausted(f"{exc}; open the stream again") from None
                ids = sorted({i for u in more for i in u.rule_ids if wanted(i)})
                # A deleted rule no longer says whether it matched the filter: every
                # client hears of it and drops the id if it had it.
                removed = sorted({i for u in more for i in u.removed})
                if not ids and not removed:
                    continue
                rows = [r for u in more for r in u.events if wanted(r.rule_id)]
                yield AlarmWatchEvent(
                    alarms=[self.alarms.alarm(i) for i in ids if i in engine.rules],
                    events=[event_message(r) for r in rows],
                    counts=self.alarms.counts(),
                    removed=removed,
                )


def _window(start: datetime | None, end: datetime | None) -> tuple[int, int]:
    end_us = to_us(end) if end is not None else now_us() + 1
    start_us = to_us(start) if start is not None else end_us - int(timedelta(hours=24).total_seconds() * 1e6)
    if start_us >= end_us:
        raise InvalidArgument("start must be before end", "params.start")
    return start_us, end_us
