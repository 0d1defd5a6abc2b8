"""The alarm engine: evaluates rules on every value change, runs the state machine,
journals every transition and tells the streams and the notifier.

The tag table calls `on_changes` synchronously with each batch that passed the tag
deadband (no polling of the table, no bus queue that could drop the engine). Per
change it looks up the rules of that tag by id and evaluates their condition; only a
condition that changed goes into the state machine (`state.py`). Time-driven work (on
and off delays, shelve expiry, a rate of change that went quiet) is a heap of due
times served by one timer task.

Journal rows and the state rows they change are written by the flush task in batches
on the store thread; a failed write is retried with the rows kept, so an outage of the
store delays the journal but does not lose it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scadad.alarms import state as sm
from scadad.alarms.conditions import Rule, condition, render_message
from scadad.alarms.notify import Notice
from scadad.alarms.state import AlarmState, Transition
from scadad.alarms.store import AlarmStore, EventRow
from scadad.bus import Bus
from scadad.clock import now_us
from scadad.store.database import Database
from scadad.tags.expr import EvalError
from scadad.tags.table import BAD, Change, TagTable

log = logging.getLogger("scadad.alarms")

TOPIC = "alarm.event"
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
FLUSH_S = 0.2
TICK_S = 0.1
MAX_PENDING = 1_000_000
# A rate-of-change alarm with no new value for this long sees a rate of 0 (an
# unchanging value sends no change events under report-by-exception).
ROC_QUIET_US = 2_000_000


@dataclass(slots=True)
class AlarmUpdate:
    """What one burst of evaluation changed: the bus payload of `alarm.event`."""

    rule_ids: list[int]
    events: list[EventRow]
    removed: list[int] = field(default_factory=list)  # rules deleted (their alarms are gone)


@dataclass(slots=True)
class Counts:
    active: int = 0
    unacked: int = 0
    unacked_by_priority: dict[str, int] = field(default_factory=dict)
    shelved: int = 0
    suppressed: int = 0
    out_of_service: int = 0


class AlarmEngine:
    """Every alarm rule and its state (loop thread)."""

    def __init__(self, db: Database, table: TagTable, bus: Bus, notify: Callable[[list[Notice]], None] | None = None):
        self.store = AlarmStore(db)
        self.db = db
        self.table = table
        self.bus = bus
        self.notify = notify
        self.rules: dict[int, Rule] = {}
        self.states: dict[int, AlarmState] = {}
        self.by_tag: dict[int, list[Rule]] = {}
        self.by_setpoint: dict[int, list[Rule]] = {}
        self.by_suppress_input: dict[str, list[Rule]] = {}
        self.by_name: dict[str, Rule] = {}
        self._roc: dict[int, tuple[float, int]] = {}  # rule id -> (last value, its source µs)
        self._timers: list[tuple[int, int]] = []
        self._pending: list[EventRow] = []
        self._dirty: set[int] = set()
        self._counts: Counts | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._flush_now = asyncio.Event()
        self.evaluations = 0
        self.transitions = 0
        self.journal_written = 0
        self.journal_errors = 0
        self.journal_dropped = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ membership

    def install(self, rules: Iterable[Rule], states: dict[int, AlarmState] | None = None) -> None:
        """Add or replace rules (keeping their state unless `states` gives one)."""
        for rule in rules:
            old = self.rules.get(rule.id)
            if old is not None:
                self._unindex(old)
            self.rules[rule.id] = rule
            self._index(rule)
            a = (states or {}).get(rule.id) or self.states.get(rule.id) or AlarmState(rule.id)
            self.states[rule.id] = a
            self._schedule(rule, a)
        self._counts = None

    def remove(self, rule_id: int) -> None:
        rule = self.rules.pop(rule_id, None)
        if rule is not None:
            self._unindex(rule)
        self.states.pop(rule_id, None)
        self._roc.pop(rule_id, None)
        self._dirty.discard(rule_id)
        self._counts = None
        if self.bus.has_subscribers(TOPIC):
            self.bus.publish(TOPIC, AlarmUpdate([], [], [rule_id]))

    def _index(self, rule: Rule) -> None:
        self.by_name[rule.name] = rule
        self.by_tag.setdefault(rule.tag_id, []).append(rule)
        if rule.setpoint_tag_id is not None:
            self.by_setpoint.setdefault(rule.setpoint_tag_id, []).append(rule)
        if rule.suppress is not None:
            for path in rule.suppress.inputs:
                self.by_suppress_input.setdefault(path, []).append(rule)

    def _unindex(self, rule: Rule) -> None:
        if self.by_name.get(rule.name) is rule:
            del self.by_name[rule.name]
        for index, key in ((self.by_tag, rule.tag_id), (self.by_setpoint, rule.setpoint_tag_id)):
            lst = index.get(key)  # type: ignore[call-overload]
            if lst is not None:
                lst[:] = [r for r in lst if r.id != rule.id]
                if not lst:
                    del index[key]  # type: ignore[arg-type]
        if rule.suppress is not None:
            for path in rule.suppress.inputs:
                lst = self.by_suppress_input.get(path)
                if lst is not None:
                    lst[:] = [r for r in lst if r.id != rule.id]
                    if not lst:
                        del self.by_suppress_input[path]

    def rename_tag(self, tag_id: int, path: str) -> None:
        """A tag was renamed: its rules (and those using it as setpoint) follow."""
        for rule in list(self.by_tag.get(tag_id, ())):
            self._unindex(rule)
            rule.tag_path = path
            self._index(rule)
        for rule in self.by_setpoint.get(tag_id, ()):
            rule.setpoint_path = path

    # ------------------------------------------------------------------ evaluation (hot path)

    def on_changes(self, changes: Sequence[Change]) -> None:
        """The tag table's listener: evaluate every rule whose tag (or setpoint, or
        suppression input) is in this batch."""
        by_tag = self.by_tag
        out: list[Transition] = []
        for c in changes:
            tag = c[0]
            rules = by_tag.get(tag.id)
            if rules is not None:
                for rule in rules:
                    out += self._evaluate(rule, c[1], c[2], c[5])
            if self.by_setpoint:
                for rule in self.by_setpoint.get(tag.id, ()):
                    live = self.table.by_id.get(rule.tag_id)
                    if live is not None:
                        out += self._evaluate(rule, live.value, live.quality, live.source_us)
            if self.by_suppress_input:
                for rule in self.by_suppress_input.get(tag.path, ()):
                    out += self._suppression(rule)
        if out:
            self._emit(out)

    def _evaluate(self, rule: Rule, value: Any, quality: str, src_us: int | None) -> list[Transition]:
        self.evaluations += 1
        if not rule.enabled:
            return []
        a = self.states[rule.id]
        if a.out_of_service:
            return []
        rate = None
        setpoint = None
        kind = rule.kind
        if kind == "rate_of_change":
            rate = self._rate(rule, value, quality, src_us)
        elif kind == "deviation" and rule.setpoint_tag_id is not None:
            sp = self.table.by_id.get(rule.setpoint_tag_id)
            setpoint = None if sp is None or sp.quality == BAD else sp.value
        raw = condition(rule, value, quality, a.raw, setpoint, rate)
        now = now_us()
        shown = value if quality != BAD else a.value
        if raw == a.raw and a.pending_us is None:
            a.value = shown
            return []
        moved = sm.evaluate(a, rule.timing, raw, shown, now)
        self._schedule(rule, a)
        if kind == "rate_of_change" and a.raw:
            heapq.heappush(self._timers, (now + ROC_QUIET_US, rule.id))
        return moved

    def _rate(self, rule: Rule, value: Any, quality: str, src_us: int | None) -> float | None:
        if quality == BAD or not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        t = src_us or now_us()
        prev = self._roc.get(rule.id)
        self._roc[rule.id] = (float(value), t)
        if prev is None or t <= prev[1]:
            return None
        return (float(value) - prev[0]) / ((t - prev[1]) / 1e6)

    def _suppression(self, rule: Rule) -> list[Transition]:
        assert rule.suppress is not None
        try:
            on = bool(rule.suppress.evaluate(self._lookup))
        except EvalError:
            on = False  # an input without a value must not hide an alarm
        return sm.set_suppressed(self.states[rule.id], on, now_us())

    def _lookup(self, path: str) -> Any:
        tag = self.table.by_path.get(path)
        return None if tag is None or tag.quality == BAD else tag.value

    def evaluate_now(self, rule_ids: Iterable[int]) -> None:
        """Evaluate rules against their tag's current value (after a rule change, a
        return to service, or at start), if the tag has been read at all."""
        out: list[Transition] = []
        for rid in rule_ids:
            rule = self.rules.get(rid)
            if rule is None:
                continue
            if rule.suppress is not None:
                out += self._suppression(rule)
            live = self.table.by_id.get(rule.tag_id)
            if live is not None and live.server_us:
                out += self._evaluate(rule, live.value, live.quality, live.source_us)
        if out:
            self._emit(out)

    # ------------------------------------------------------------------ timers

    def _schedule(self, rule: Rule, a: AlarmState) -> None:
        due = sm.due(a, rule.timing)
        if due is not None:
            heapq.heappush(self._timers, (due, rule.id))

    def run_timers(self, now: int | None = None) -> None:
        """Serve every timer due by `now`: delays, shelve expiry, quiet rates of change."""
        now = now_us() if now is None else now
        out: list[Transition] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, rid = heapq.heappop(timers)
            rule = self.rules.get(rid)
            if rule is None:
                continue
            a = self.states[rid]
            if rule.kind == "rate_of_change" and a.raw:
                last = self._roc.get(rid)
                if last is not None and now - last[1] >= ROC_QUIET_US:
                    raw = condition(rule, last[0], "GOOD", a.raw, None, 0.0)
                    out += sm.evaluate(a, rule.timing, raw, a.value, now)
                elif last is not None:
                    heapq.heappush(timers, (last[1] + ROC_QUIET_US, rid))
            out += sm.tick(a, rule.timing, now)
            self._schedule(rule, a)
        if out:
            self._emit(out)

    # ------------------------------------------------------------------ operator actions

    def act(self, fn: Callable[[AlarmState, Rule], list[Transition]], rule_ids: Iterable[int]) -> list[int]:
        """Apply one state-machine action to several alarms; the ids it changed."""
        out: list[Transition] = []
        changed = []
        for rid in rule_ids:
            rule = self.rules[rid]
            a = self.states[rid]
            moved = fn(a, rule)
            if moved:
                changed.append(rid)
                out += moved
            self._schedule(rule, a)
        if out:
            self._emit(out)
        return changed

    # ------------------------------------------------------------------ output

    def _emit(self, transitions: list[Transition]) -> None:
        rows: list[EventRow] = []
        notices: list[Notice] = []
        for t in transitions:
            rule = self.rules.get(t.rule_id)
            if rule is None:
                continue
            a = self.states[t.rule_id]
            value = t.value
            num = float(value) if isinstance(value, (int, float)) else None
            message = render_message(rule, value)
            rows.append(
                EventRow(
                    t.ts_us, rule.id, rule.tag_path, rule.kind, t.event, t.state, rule.priority, rule.area, num,
                    message, t.user, t.comment,
                )
            )  # fmt: skip
            self._dirty.add(rule.id)
            if t.event == "activated" and a.annunciated and self.notify is not None:
                notices.append(
                    Notice(
                        rule_id=rule.id, name=rule.name, tag=rule.tag_path, kind=rule.kind, priority=rule.priority,
                        area=rule.area, event=t.event, state=t.state, message=message, value=value, ts_us=t.ts_us,
                    )
                )  # fmt: skip
        if not rows:
            return
        self.transitions += len(rows)
        self._counts = None
        if len(self._pending) + len(rows) > MAX_PENDING:
            # The store has been away for a very long time: keep the newest rows.
            drop = len(self._pending) + len(rows) - MAX_PENDING
            self.journal_dropped += drop
            del self._pending[:drop]
        self._pending += rows
        if self.bus.has_subscribers(TOPIC):
            self.bus.publish(TOPIC, AlarmUpdate(sorted({r.rule_id for r in rows if r.rule_id}), rows))
        if notices and self.notify is not None:
            self.notify(notices)

    def journal_extra(self, rule_id: int, event: str, detail: str) -> None:
        """A row from outside the state machine (the notifier's notified / notify_failed)."""
        rule = self.rules.get(rule_id)
        if rule is None:
            return
        a = self.states[rule_id]
        self._emit([Transition(rule_id, now_us(), event, a.state, a.value, None, detail)])

    def counts(self) -> Counts:
        if self._counts is None:
            c = Counts(unacked_by_priority={p: 0 for p in PRIORITY_RANK})
            for rid, a in self.states.items():
                if a.shelved:
                    c.shelved += 1
                if a.suppressed:
                    c.suppressed += 1
                if a.out_of_service:
                    c.out_of_service += 1
                if a.annunciated:
                    c.active += 1
                    if a.unacked:
                        c.unacked += 1
                        p = self.rules[rid].priority
                        c.unacked_by_priority[p] = c.unacked_by_priority.get(p, 0) + 1
            self._counts = c
        return self._counts

    # ------------------------------------------------------------------ background

    async def start(self) -> None:
        self._flush_task = asyncio.create_task(self._flush_loop(), name="alarm journal")
        self._tick_task = asyncio.create_task(self._tick_loop(), name="alarm timers")

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.run_timers()
            except Exception:  # noqa: BLE001 - a bad rule must not stop every other alarm's timers
                log.exception("alarm timers failed")

    async def _flush_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._flush_now.wait(), FLUSH_S)
            except TimeoutError:
                pass
            self._flush_now.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write pending journal rows and changed states; False (rows kept) on failure."""
        if not self._pending and not self._dirty:
            return True
        rows, self._pending = self._pending, []
        dirty, self._dirty = self._dirty, set()
        states = [self.states[r] for r in dirty if r in self.states]
        try:
            await self.db.run(self.store.append, rows, states)
        except Exception as exc:  # noqa: BLE001 - kept and retried; the engine goes on
            self._pending[:0] = rows
            self._dirty |= dirty
            self.journal_errors += 1
            self.last_error = str(exc)
            log.error("alarm journal write failed; retrying", extra={"fields": {"error": str(exc), "rows": len(rows)}})
            return False
        self.journal_written += len(rows)
        return True

    async def stop(self) -> None:
        """Stop the timers and write what is pending (a restart resumes from it)."""
        for task in (self._tick_task, self._flush_task):
            if task is not None:
                task.cancel()
        for _ in range(3):
            if await self.flush():
                break

    @property
    def pending(self) -> int:
        return len(self._pending)
