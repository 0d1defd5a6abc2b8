"""The audit trail: one record for every state-changing call and every login event,
chained by hash (IEC 62443-4-2 CR 2.8, 3.9).

Each record's hash covers its own fields and the previous record's hash, so editing or
deleting a row breaks the chain from that row on; `Audit.Verify` walks the chain and
names the first record that does not fit. Secrets (passwords, TOTP codes, tokens) are
replaced by "***" before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pwd
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import text

from scadad.api.auth_messages import SECRET_FIELDS, AuditList, AuditQuery, AuditRecord, AuditVerify, AuditWatch
from scadad.api.errors import ErrorCode, FailedPrecondition, ResourceExhausted
from scadad.api.messages import Empty
from scadad.api.registry import CallContext, MethodSpec, Service, rpc
from scadad.bus import Bus, Dropped
from scadad.clock import from_us, now_us, to_us
from scadad.store.database import Database

log = logging.getLogger("scadad.audit")

GENESIS = "0" * 64
TOPIC = "audit.record"
# The fields a record's hash covers, in the order they are stored.
HASHED = ("ts_us", "scada_user", "unix_uid", "unix_user", "unix_pid", "method", "target", "params_json",
          "outcome", "error_code")  # fmt: skip


@lru_cache(maxsize=1024)
def unix_name(uid: int) -> str:
    """The login name of a uid (cached: it is asked on every call, and accounts are stable)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return str(uid)


def _record(record_id: int, f: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        id=record_id, time=from_us(f["ts_us"]), scada_user=f["scada_user"], unix_user=f["unix_user"],
        unix_uid=f["unix_uid"], unix_pid=f["unix_pid"], method=f["method"], target=f["target"],
        params=f["params_json"], outcome=f["outcome"], error_code=f["error_code"],
    )  # fmt: skip


def redact(value: Any) -> Any:
    """A copy of params with every secret field replaced by '***'."""
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_FIELDS and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """sha256 over the previous hash and the record's canonical JSON."""
    body = json.dumps({k: fields[k] for k in HASHED}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


class AuditLog:
    def __init__(self, db: Database, max_records: int = 10_000_000, bus: Bus | None = None) -> None:
        self.db = db
        self.bus = bus
        self.max_records = max_records
        self.count = 0
        self._last_hash = GENESIS
        self._warned_at = 0.0
        self.ready = False  # the chain's tail is known; until then nothing may be appended

    def load(self) -> None:
        """Pick up the chain where the store left it (store thread)."""
        with self.db.engine.connect() as conn:
            last = conn.execute(text("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")).scalar()
            self.count = int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar() or 0)
        self._last_hash = str(last) if last else GENESIS
        self.ready = True

    @property
    def fill(self) -> float:
        return self.count / self.max_records

    async def record(
        self, ctx: CallContext, spec: MethodSpec, params: Any, outcome: str, code: ErrorCode | None
    ) -> None:
        """The dispatcher's hook for state-changing calls."""
        await self.event(ctx, spec.name, None, outcome, code.value if code else None, params)

    async def event(
        self, ctx: CallContext, method: str, target: str | None, outcome: str, code: str | None, params: Any
    ) -> None:
        if not self.ready:
            # Schema behind (auto_migrate off): appending now would fork the chain.
            log.warning("audit record not written: the store's schema is behind", extra={"fields": {"method": method}})
            return
        builtins = redact(msgspec.to_builtins(params))
        if target is None:
            target = ""
            if isinstance(builtins, dict):
                target = "/".join(str(builtins[k]) for k in ("site", "username", "name", "role") if k in builtins)
        fields = {
            "ts_us": now_us(),
            "scada_user": ctx.user,
            "unix_uid": ctx.peer.uid,
            "unix_user": unix_name(ctx.peer.uid),
            "unix_pid": ctx.peer.pid,
            "method": method,
            "target": target,
            "params_json": json.dumps(builtins, sort_keys=True, default=str),
            "outcome": outcome,
            "error_code": code if outcome == "error" else None,
        }
        record_id = await self.db.run(self._append, fields)
        self._check_capacity()
        if self.bus is not None:
            self.bus.publish(TOPIC, _record(record_id, fields))

    def _append(self, fields: dict[str, Any]) -> int:
        # Runs on the single store thread, so the chain is appended strictly in order.
        digest = chain_hash(self._last_hash, fields)
        with self.db.engine.begin() as conn:
            record_id = conn.execute(
                text(
                    "INSERT INTO audit_log (ts_us, scada_user, unix_uid, unix_user, unix_pid, method, target,"
                    " params_json, outcome, error_code, prev_hash, hash) VALUES (:ts_us, :scada_user, :unix_uid,"
                    " :unix_user, :unix_pid, :method, :target, :params_json, :outcome, :error_code, :prev_hash,"
                    " :hash) RETURNING id"
                ),
                {**fields, "prev_hash": self._last_hash, "hash": digest},
            ).scalar_one()
        self._last_hash = digest
        self.count += 1
        return int(record_id)

    def _check_capacity(self) -> None:
        # CR 2.9: say so before the audit store fills, once per further 1 % past 90 %.
        fill = self.fill
        if fill >= 0.9 and fill - self._warned_at >= 0.01:
            self._warned_at = fill
            log.warning(
                "audit log is nearing its cap; raise auth.audit_max_records (records are never deleted)",
                extra={"fields": {"records": self.count, "cap": self.max_records, "percent": round(fill * 100, 1)}},
            )

    # ------------------------------------------------------------------ reading

    def query(self, q: AuditQuery) -> list[AuditRecord]:
        where, args = [], {}
        if q.user is not None:
            where.append("scada_user = :user")
            args["user"] = q.user
        if q.method is not None:
            if q.method.endswith("."):
                where.append("method LIKE :method")
                args["method"] = q.method + "%"
            else:
                where.append("method = :method")
                args["method"] = q.method
        if q.outcome is not None:
            where.append("outcome = :outcome")
            args["outcome"] = q.outcome
        if q.since is not None:
            where.append("ts_us >= :since")
            args["since"] = to_us(q.since)
        if q.until is not None:
            where.append("ts_us < :until")
            args["until"] = to_us(q.until)
        sql = (
            "SELECT id, ts_us, scada_user, unix_user, unix_uid, unix_pid, method, target, params_json, outcome,"
            " error_code FROM audit_log"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC LIMIT :limit"
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(text(sql), {**args, "limit": q.limit}).all()
        return [
            AuditRecord(
                id=r[0],
                time=from_us(r[1]),
                scada_user=r[2],
                unix_user=r[3],
                unix_uid=r[4],
                unix_pid=r[5],
                method=r[6],
                target=r[7],
                params=r[8],
                outcome=r[9],
                error_code=r[10],
            )  # fmt: skip
            for r in reversed(rows)
        ]

    def verify(self) -> AuditVerify:
        """Walk the whole chain; the first record whose links or hash do not fit is named."""
        prev = GENESIS
        n = 0
        cols = ", ".join(HASHED)
        with self.db.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                text(f"SELECT id, prev_hash, hash, {cols} FROM audit_log ORDER BY id")
            )
            for row in result:
                n += 1
                rid, prev_hash, digest = row[0], row[1], row[2]
                fields = dict(zip(HASHED, row[3:], strict=True))
                if prev_hash != prev:
                    return AuditVerify(ok=False, records=n, first_broken_id=rid,
                                       reason="prev_hash does not match the record before it (a record was removed or reordered)")  # fmt: skip
                if chain_hash(prev, fields) != digest:
                    return AuditVerify(ok=False, records=n, first_broken_id=rid,
                                       reason="contents do not match the record's hash (the record was edited)")  # fmt: skip
                prev = digest
        if prev != self._last_hash:
            return AuditVerify(ok=False, records=n, first_broken_id=None,
                               reason="the newest records are missing (the chain ends early)")  # fmt: skip
        return AuditVerify(ok=True, records=n)


class AuditService(Service):
    """Audit.*: read and verify the audit trail."""

    name = "Audit"

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    @rpc(permission="audit.read")
    async def list(self, ctx: CallContext, params: AuditQuery) -> AuditList:
        """Records, newest last, filtered by user, method (or 'Prefix.'), outcome and time."""
        return AuditList(records=await self.audit.db.run(self.audit.query, params))

    @rpc(permission="audit.read")
    async def verify(self, ctx: CallContext, params: Empty) -> AuditVerify:
        """Check the hash chain from the first record to the last."""
        return await self.audit.db.run(self.audit.verify)

    @rpc(permission="audit.read", stream=True)
    async def watch(self, ctx: CallContext, params: AuditWatch) -> AsyncIterator[AuditRecord]:
        """New records as they are written, optionally of one user or method (or 'Prefix.')."""
        if self.audit.bus is None:
            raise FailedPrecondition("this daemon has no event bus")
        with self.audit.bus.subscribe(TOPIC) as sub:
            while True:
                try:
                    rec: AuditRecord = await sub.get()
                except Dropped as exc:
                    raise ResourceExhausted(f"{exc}; open the stream again") from None
                if params.user is not None and rec.scada_user != params.user:
                    continue
                if params.method is not None and not (
                    rec.method == params.method
                    or (params.method.endswith(".") and rec.method.startswith(params.method))
                ):
                    continue
                yield rec
