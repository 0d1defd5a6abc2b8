"""The audit trail: one record for every state-changing call, chained by hash.

Each record's hash covers its own fields and the previous record's hash, so deleting or
editing a row in the store breaks the chain at that point (the Auth work adds the
verifier and the query API). The dispatcher calls `record()` after the handler ran,
for success and failure alike.
"""

from __future__ import annotations

import hashlib
import json
import pwd
from typing import Any

import msgspec
from sqlalchemy import text

from scadad.api.errors import ErrorCode
from scadad.api.registry import CallContext, MethodSpec
from scadad.clock import now_us
from scadad.store.database import Database

GENESIS = "0" * 64


def unix_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return str(uid)


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """sha256 over the previous hash and the record's canonical JSON."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._last_hash = GENESIS

    def load(self) -> None:
        """Pick up the chain where the store left it (store thread)."""
        with self.db.engine.connect() as conn:
            last = conn.execute(text("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")).scalar()
        self._last_hash = str(last) if last else GENESIS

    async def record(
        self, ctx: CallContext, spec: MethodSpec, params: Any, outcome: str, code: ErrorCode | None
    ) -> None:
        builtins = msgspec.to_builtins(params)
        target = ""
        if isinstance(builtins, dict):
            target = "/".join(str(builtins[k]) for k in ("site", "name") if k in builtins)
        fields = {
            "ts_us": now_us(),
            "scada_user": ctx.user,
            "unix_uid": ctx.peer.uid,
            "unix_user": unix_name(ctx.peer.uid),
            "method": spec.name,
            "target": target,
            "params_json": json.dumps(builtins, sort_keys=True, default=str),
            "outcome": outcome,
            "error_code": code.value if code else None,
        }
        await self.db.run(self._append, fields)

    def _append(self, fields: dict[str, Any]) -> None:
        # Runs on the single store thread, so the chain is appended strictly in order.
        digest = chain_hash(self._last_hash, fields)
        with self.db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_log (ts_us, scada_user, unix_uid, unix_user, method, target,"
                    " params_json, outcome, error_code, prev_hash, hash) VALUES (:ts_us, :scada_user,"
                    " :unix_uid, :unix_user, :method, :target, :params_json, :outcome, :error_code,"
                    " :prev_hash, :hash)"
                ),
                {**fields, "prev_hash": self._last_hash, "hash": digest},
            )
        self._last_hash = digest
