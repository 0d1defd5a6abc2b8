"""Users, roles, sessions and API tokens as the daemon holds them, and their storage.

The daemon is the only writer of its store, so all of this lives in memory (a call's
permission check is a dictionary lookup) and is written through to the store on every
change. Only hashes of tokens are kept, in memory as on disk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from scadad.auth.lockout import LoginState
from scadad.auth.permissions import BUILTIN_ROLES
from scadad.clock import now_us
from scadad.store.database import Database


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    email: str | None
    password_hash: str
    mfa_secret: str | None
    mfa_enabled: bool
    mfa_last_step: int | None
    disabled: bool
    login: LoginState
    last_login_us: int | None
    created_us: int
    roles: set[str] = field(default_factory=set)


@dataclass(slots=True)
class RoleRecord:
    id: int
    name: str
    description: str
    permissions: frozenset[str]
    builtin: bool


@dataclass(slots=True)
class SessionRecord:
    id: int
    token_hash: str
    user_id: int
    username: str
    unix_uid: int | None
    unix_user: str | None
    created_us: int
    last_seen_us: int
    expires_us: int
    stored_seen_us: int


@dataclass(slots=True)
class TokenRecord:
    id: int
    name: str
    token_hash: str
    scope: str
    created_by: str
    created_us: int
    expires_us: int
    last_used_us: int | None
    revoked_us: int | None


class AuthStore:
    """Reads and writes of the auth tables; every method runs on the store thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, sql: str, params: dict[str, Any]) -> int:
        """Run one `INSERT ... RETURNING id` in its own transaction; returns the new id."""
        with self.db.engine.begin() as conn:
            return int(conn.execute(text(sql), params).scalar_one())

    # ------------------------------------------------------------------ load

    def seed_builtin_roles(self) -> None:
        """Insert or refresh the built-in roles from permissions.BUILTIN_ROLES."""
        ts = now_us()
        with self.db.engine.begin() as conn:
            existing = {r[0]: r[1] for r in conn.execute(text("SELECT name, builtin FROM roles"))}
            for name, (desc, perms) in BUILTIN_ROLES.items():
                values = {"n": name, "d": desc, "p": json.dumps(sorted(perms)), "ts": ts}
                if name in existing:
                    conn.execute(
                        text("UPDATE roles SET description = :d, permissions_json = :p, builtin = TRUE,"
                             " updated_us = :ts WHERE name = :n"),
                        values,
                    )  # fmt: skip
                else:
                    conn.execute(
                        text("INSERT INTO roles (name, description, permissions_json, builtin, created_us,"
                             " updated_us) VALUES (:n, :d, :p, TRUE, :ts, :ts)"),
                        values,
                    )  # fmt: skip

    def load(self) -> tuple[list[UserRecord], list[RoleRecord], list[SessionRecord], list[TokenRecord]]:
        now = now_us()
        with self.db.engine.connect() as conn:
            roles = [
                RoleRecord(r[0], r[1], r[2] or "", frozenset(json.loads(r[3] or "[]")), bool(r[4]))
                for r in conn.execute(text("SELECT id, name, description, permissions_json, builtin FROM roles"))
            ]
            role_names = {r.id: r.name for r in roles}
            users: dict[int, UserRecord] = {}
            for r in conn.execute(
                text(
                    "SELECT id, username, display_name, email, password_hash, mfa_secret, mfa_enabled,"
                    " mfa_last_step, disabled, failed_logins, lock_count, locked_until_us,"
                    " failure_window_start_us, failure_window_count, last_login_us, created_us FROM users"
                )
            ):
                users[r[0]] = UserRecord(
                    id=r[0], username=r[1], display_name=r[2] or "", email=r[3], password_hash=r[4],
                    mfa_secret=r[5], mfa_enabled=bool(r[6]), mfa_last_step=r[7], disabled=bool(r[8]),
                    login=LoginState(failed=r[9] or 0, lock_count=r[10] or 0, locked_until_us=r[11],
                                     window_start_us=r[12], window_failures=r[13] or 0),
                    last_login_us=r[14], created_us=r[15],
                )  # fmt: skip
            for uid, rid in conn.execute(text("SELECT user_id, role_id FROM user_roles")):
                users[uid].roles.add(role_names[rid])
            sessions = [
                SessionRecord(r[0], r[1], r[2], users[r[2]].username, r[3], r[4], r[5], r[6], r[7], r[6])
                for r in conn.execute(
                    text(
                        "SELECT id, token_hash, user_id, unix_uid, unix_user, created_us, last_seen_us, expires_us"
                        " FROM sessions WHERE revoked_us IS NULL AND expires_us > :now"
                    ),
                    {"now": now},
                )
            ]
            tokens = [
                TokenRecord(*r)
                for r in conn.execute(
                    text(
                        "SELECT id, name, token_hash, scope, created_by, created_us, expires_us, last_used_us,"
                        " revoked_us FROM api_tokens"
                    )
                )
            ]
        return list(users.values()), roles, sessions, tokens

    # ------------------------------------------------------------------ users

    def insert_user(self, u: UserRecord, role_ids: list[int], recovery_hashes: list[str]) -> int:
        with self.db.engine.begin() as conn:
            uid = conn.execute(
                text(
                    "INSERT INTO users (username, display_name, email, password_hash, mfa_secret, mfa_enabled,"
                    " disabled, password_changed_us, created_us, updated_us) VALUES (:username, :display_name,"
                    " :email, :password_hash, :mfa_secret, :mfa_enabled, FALSE, :ts, :ts, :ts) RETURNING id"
                ),
                {"username": u.username, "display_name": u.display_name, "email": u.email,
                 "password_hash": u.password_hash, "mfa_secret": u.mfa_secret, "mfa_enabled": u.mfa_enabled,
                 "ts": u.created_us},
            ).scalar_one()  # fmt: skip
            for rid in role_ids:
                conn.execute(
                    text("INSERT INTO user_roles (user_id, role_id, granted_us) VALUES (:u, :r, :ts)"),
                    {"u": uid, "r": rid, "ts": u.created_us},
                )
            self._replace_recovery(conn, uid, recovery_hashes)
        return int(uid)

    def update_user(self, user_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in fields)
        with self.db.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE users SET {sets}, updated_us = :_ts WHERE id = :_id"),
                {**fields, "_ts": now_us(), "_id": user_id},
            )

    def save_login_state(self, u: UserRecord) -> None:
        s = u.login
        self.update_user(
            u.id,
            failed_logins=s.failed,
            lock_count=s.lock_count,
            locked_until_us=s.locked_until_us,
            failure_window_start_us=s.window_start_us,
            failure_window_count=s.window_failures,
            mfa_last_step=u.mfa_last_step,
            last_login_us=u.last_login_us,
        )

    def set_mfa(self, user_id: int, secret: str | None, enabled: bool, recovery_hashes: list[str]) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE users SET mfa_secret = :s, mfa_enabled = :e, mfa_last_step = NULL, updated_us = :ts"
                    " WHERE id = :id"
                ),
                {"s": secret, "e": enabled, "ts": now_us(), "id": user_id},
            )
            self._replace_recovery(conn, user_id, recovery_hashes)

    def _replace_recovery(self, conn: Connection, user_id: int, hashes: list[str]) -> None:
        conn.execute(text("DELETE FROM mfa_recovery_codes WHERE user_id = :u"), {"u": user_id})
        ts = now_us()
        for h in hashes:
            conn.execute(
                text("INSERT INTO mfa_recovery_codes (user_id, code_hash, created_us) VALUES (:u, :h, :ts)"),
                {"u": user_id, "h": h, "ts": ts},
            )

    def use_recovery_code(self, user_id: int, code_hash: str) -> bool:
        """Spend a recovery code; False if it is unknown or already used."""
        with self.db.engine.begin() as conn:
            n = conn.execute(
                text(
                    "UPDATE mfa_recovery_codes SET used_us = :ts WHERE user_id = :u AND code_hash = :h"
                    " AND used_us IS NULL"
                ),
                {"ts": now_us(), "u": user_id, "h": code_hash},
            ).rowcount
        return n == 1

    def grant(self, user_id: int, role_id: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO user_roles (user_id, role_id, granted_us) VALUES (:u, :r, :ts)"),
                {"u": user_id, "r": role_id, "ts": now_us()},
            )

    def revoke(self, user_id: int, role_id: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM user_roles WHERE user_id = :u AND role_id = :r"), {"u": user_id, "r": role_id}
            )

    # ------------------------------------------------------------------ roles

    def insert_role(self, name: str, description: str, permissions: list[str]) -> int:
        return self._insert(
            "INSERT INTO roles (name, description, permissions_json, builtin, created_us, updated_us)"
            " VALUES (:n, :d, :p, FALSE, :ts, :ts) RETURNING id",
            {"n": name, "d": description, "p": json.dumps(sorted(permissions)), "ts": now_us()},
        )

    def delete_role(self, role_id: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM roles WHERE id = :id"), {"id": role_id})

    # ------------------------------------------------------------------ sessions

    def insert_session(self, s: SessionRecord, pid: int) -> int:
        return self._insert(
            "INSERT INTO sessions (token_hash, user_id, unix_uid, unix_user, unix_pid, created_us,"
            " last_seen_us, expires_us) VALUES (:h, :u, :uid, :un, :pid, :c, :c, :e) RETURNING id",
            {"h": s.token_hash, "u": s.user_id, "uid": s.unix_uid, "un": s.unix_user, "pid": pid,
             "c": s.created_us, "e": s.expires_us},
        )  # fmt: skip

    def touch_session(self, session_id: int, last_seen_us: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                text("UPDATE sessions SET last_seen_us = :t WHERE id = :id"), {"t": last_seen_us, "id": session_id}
            )

    def revoke_sessions(self, ids: list[int], by: str) -> None:
        if not ids:
            return
        with self.db.engine.begin() as conn:
            for sid in ids:
                conn.execute(
                    text("UPDATE sessions SET revoked_us = :t, revoked_by = :b WHERE id = :id AND revoked_us IS NULL"),
                    {"t": now_us(), "b": by, "id": sid},
                )

    # ------------------------------------------------------------------ tokens

    def insert_token(self, t: TokenRecord) -> int:
        return self._insert(
            "INSERT INTO api_tokens (name, token_hash, scope, created_by, created_us, expires_us)"
            " VALUES (:n, :h, :s, :b, :c, :e) RETURNING id",
            {"n": t.name, "h": t.token_hash, "s": t.scope, "b": t.created_by, "c": t.created_us,
             "e": t.expires_us},
        )  # fmt: skip

    def revoke_token(self, token_id: int, ts: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text("UPDATE api_tokens SET revoked_us = :t WHERE id = :id"), {"t": ts, "id": token_id})
