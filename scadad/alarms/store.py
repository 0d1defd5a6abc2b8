"""Alarm rules, alarm state and the alarm journal in the store (store thread only).

The engine keeps everything live in memory; this module is the thin edge that loads it
at start, writes rule changes, and appends journal rows plus the changed alarm state
rows in one transaction, so a restart resumes from a state that matches the journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import IntegrityError

from scadad.alarms.kpi import JournalRow
from scadad.alarms.state import AlarmState
from scadad.api.errors import InvalidArgument
from scadad.store.database import Database

RULE_COLUMNS = (
    "tag_id", "kind", "limit_value", "discrete_op", "setpoint_tag_id", "deadband", "on_delay_ms", "off_delay_ms",
    "priority", "latching", "message_template", "area", "open_work_order", "suppression_expression", "enabled",
)  # fmt: skip
STATE_COLUMNS = (
    "state", "shelved_until_us", "shelved_by", "shelve_reason", "suppressed", "out_of_service", "oos_reason",
    "active_since_us", "last_change_us", "value", "acked_by", "acked_us",
)  # fmt: skip
EVENT_COLUMNS = (
    "ts_us", "rule_id", "tag_path", "kind", "event", "state", "priority", "area", "value", "message", "username",
    "comment",
)  # fmt: skip


@dataclass(slots=True)
class EventRow:
    """One journal row to append (ids come from the store)."""

    ts_us: int
    rule_id: int | None
    tag_path: str
    kind: str | None
    event: str
    state: str | None
    priority: str | None
    area: str | None
    value: float | None
    message: str
    username: str | None
    comment: str | None


@dataclass(slots=True)
class HistoryFilter:
    start_us: int
    end_us: int
    rule_id: int | None = None
    tag_paths: list[str] | None = None  # exact paths (already matched against a pattern)
    area: str | None = None
    priorities: list[str] | None = None
    events: list[str] | None = None
    limit: int = 10_000
    newest: bool = False


class AlarmStore:
    """Store I/O of the alarm subsystem; every method runs on the store thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ loading

    def load_rules(self) -> list[tuple[int, dict[str, Any], int, int]]:
        """(id, column values, created_us, updated_us) of every rule."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT id, {', '.join(RULE_COLUMNS)}, created_us, updated_us FROM alarm_rules ORDER BY id")
            ).all()
        return [(r[0], dict(zip(RULE_COLUMNS, r[1 : 1 + len(RULE_COLUMNS)], strict=True)), r[-2], r[-1]) for r in rows]

    def load_states(self) -> dict[int, AlarmState]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT rule_id, {', '.join(STATE_COLUMNS)} FROM alarms")).all()
        out = {}
        for r in rows:
            d = dict(zip(STATE_COLUMNS, r[1:], strict=True))
            a = AlarmState(rule_id=r[0], **d)
            a.suppressed, a.out_of_service = bool(a.suppressed), bool(a.out_of_service)
            # The debounced condition follows from the state: B and C are abnormal.
            a.condition = a.raw = a.state in ("unack_active", "ack_active")
            out[a.rule_id] = a
        return out

    # ------------------------------------------------------------------ rules

    def write_rules(
        self, created: Sequence[dict[str, Any]], updated: Sequence[tuple[int, dict[str, Any]]], ts: int
    ) -> list[int]:
        """Insert and update rule rows in one transaction; the new ids in order."""
        cols = list(RULE_COLUMNS)
        insert = text(
            f"INSERT INTO alarm_rules ({', '.join(cols)}, created_us, updated_us)"
            f" VALUES ({', '.join(':' + c for c in cols)}, :ts, :ts) RETURNING id"
        )
        update = text(
            f"UPDATE alarm_rules SET {', '.join(f'{c} = :{c}' for c in cols)}, updated_us = :ts WHERE id = :id"
        )
        ids = []
        try:
            with self.db.engine.begin() as conn:
                for row in created:
                    ids.append(int(conn.execute(insert, {**row, "ts": ts}).scalar_one()))
                for rule_id, row in updated:
                    conn.execute(update, {**row, "ts": ts, "id": rule_id})
        except IntegrityError as exc:
            raise InvalidArgument(f"alarm rule refused by the store: {exc.orig}", "params") from None
        return ids

    def delete_rule(self, rule_id: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM alarm_rules WHERE id = :id"), {"id": rule_id})

    # ------------------------------------------------------------------ journal

    def append(self, events: Sequence[EventRow], states: Iterable[AlarmState]) -> None:
        """Append journal rows and upsert the alarm state rows, all or nothing."""
        with self.db.engine.begin() as conn:
            if events:
                conn.execute(
                    text(
                        f"INSERT INTO alarm_events ({', '.join(EVENT_COLUMNS)})"
                        f" VALUES ({', '.join(':' + c for c in EVENT_COLUMNS)})"
                    ),
                    [{c: getattr(e, c) for c in EVENT_COLUMNS} for e in events],
                )
            self._upsert_states(conn, list(states))

    def _upsert_states(self, conn: Connection, states: list[AlarmState]) -> None:
        if not states:
            return
        rows = []
        for a in states:
            row = {c: getattr(a, c) for c in STATE_COLUMNS}
            row["rule_id"] = a.rule_id
            if not isinstance(row["value"], (int, float)) or isinstance(row["value"], bool):
                row["value"] = float(row["value"]) if isinstance(row["value"], bool) else None
            if row["last_change_us"] is None:
                row["last_change_us"] = 0
            rows.append(row)
        # A rule deleted meanwhile has no row to point at: its state is skipped, not an error
        # that would take the journal rows of this transaction down with it.
        stmt = text("SELECT id FROM alarm_rules WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
        alive = {r[0] for r in conn.execute(stmt, {"ids": [r["rule_id"] for r in rows]})}
        rows = [r for r in rows if r["rule_id"] in alive]
        if not rows:
            return
        cols = ["rule_id", *STATE_COLUMNS]
        sets = ", ".join(f"{c} = excluded.{c}" for c in STATE_COLUMNS)
        conn.execute(
            text(
                f"INSERT INTO alarms ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
                f" ON CONFLICT (rule_id) DO UPDATE SET {sets}"
            ),
            rows,
        )

    def history(self, f: HistoryFilter) -> tuple[list[tuple[int, EventRow]], bool]:
        """Journal rows matching `f`, oldest first; and whether more matched than `limit`."""
        where = ["ts_us >= :start", "ts_us < :end"]
        params: dict[str, Any] = {"start": f.start_us, "end": f.end_us, "limit": f.limit + 1}
        expanding = []
        if f.rule_id is not None:
            where.append("rule_id = :rule_id")
            params["rule_id"] = f.rule_id
        if f.tag_paths is not None:
            where.append("tag_path IN :paths")
            params["paths"] = f.tag_paths or [""]
            expanding.append("paths")
        if f.area is not None:
            where.append("(area = :area OR area LIKE :area_prefix)")
            params["area"], params["area_prefix"] = f.area, f.area + "/%"
        if f.priorities:
            where.append("priority IN :prios")
            params["prios"] = f.priorities
            expanding.append("prios")
        if f.events:
            where.append("event IN :events")
            params["events"] = f.events
            expanding.append("events")
        order = "DESC" if f.newest else "ASC"
        stmt = text(
            f"SELECT id, {', '.join(EVENT_COLUMNS)} FROM alarm_events WHERE {' AND '.join(where)}"
            f" ORDER BY ts_us {order}, id {order} LIMIT :limit"
        )
        if expanding:
            stmt = stmt.bindparams(*(bindparam(n, expanding=True) for n in expanding))
        with self.db.engine.connect() as conn:
            rows = conn.execute(stmt, params).all()
        truncated = len(rows) > f.limit
        rows = rows[: f.limit]
        if f.newest:
            rows.reverse()
        return [(r[0], EventRow(*r[1:])) for r in rows], truncated

    def kpi_rows(self, start_us: int, end_us: int, area: str | None) -> list[JournalRow]:
        """The activations in [start, end) (all the KPIs count)."""
        where = "event = 'activated' AND ts_us >= :start AND ts_us < :end"
        params: dict[str, Any] = {"start": start_us, "end": end_us}
        if area is not None:
            where += " AND (area = :area OR area LIKE :area_prefix)"
            params["area"], params["area_prefix"] = area, area + "/%"
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT ts_us, rule_id, tag_path, kind, event, priority FROM alarm_events WHERE {where}"), params
            ).all()
        return [JournalRow(*r) for r in rows]

    def active_at(self, end_us: int, area: str | None) -> list[tuple[str, str | None, str | None, int]]:
        """Alarms whose condition was active at `end` by the journal: (tag, kind, priority,
        since) for each alarm whose last activated/cleared/out_of_service row before `end`
        is an activation."""
        where = "ts_us < :end AND event IN ('activated', 'cleared', 'out_of_service')"
        params: dict[str, Any] = {"end": end_us}
        if area is not None:
            where += " AND (area = :area OR area LIKE :area_prefix)"
            params["area"], params["area_prefix"] = area, area + "/%"
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT e.tag_path, e.kind, e.priority, e.ts_us, e.event FROM alarm_events e JOIN ("
                    f" SELECT tag_path, kind, MAX(id) AS last_id FROM alarm_events WHERE {where}"
                    " GROUP BY tag_path, kind) m ON e.id = m.last_id"
                ),
                params,
            ).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows if r[4] == "activated"]
