"""One daemon per store and per socket.

Two daemons polling the same plant into the same store would double every write and
fight over every device, so the second one refuses to start and names the first.
SQLite: an flock on `<db>.lock` holding the owner's description. PostgreSQL: a
session advisory lock on a connection kept open for the daemon's lifetime, whose
`application_name` describes the holder to whoever asks. Socket: a live socket at
our path means another daemon is serving it; a dead one is a leftover and is removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from scadad.store.database import Database

_PG_INSTANCE_LOCK = 0x5CADA1


class AlreadyRunning(Exception):
    """Another daemon holds the store or the socket; the message names it."""


def describe_self(socket_path: Path) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "socket": str(socket_path),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class InstanceLock:
    """Held for the daemon's lifetime; `release()` on shutdown."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._lock_path: Path | None = None
        self._pg_conn: Any = None

    def acquire_store(self, db: Database, socket_path: Path) -> None:
        me = describe_self(socket_path)
        if db.dialect == "sqlite":
            path = db.sqlite_path
            if path is None:
                return  # an in-memory store belongs to this process alone
            self._lock_sqlite(path, me)
        else:
            self._lock_postgres(db, me)

    def _lock_sqlite(self, db_path: Path, me: dict[str, Any]) -> None:
        lock_path = db_path.with_name(db_path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise AlreadyRunning(f"store {db_path} is held by {holder} (lock file {lock_path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode() + b"\n", 0)
        self._fd, self._lock_path = fd, lock_path

    def _lock_postgres(self, db: Database, me: dict[str, Any]) -> None:
        conn = db.engine.connect()
        name = f"scadad pid={me['pid']} host={me['host']} socket={me['socket']}"[:63]
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
        key = _PG_INSTANCE_LOCK
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:k, hashtext(current_database() || '.' || current_schema()))"),
            {"k": key},
        ).scalar()
        conn.commit()
        if not got:
            row = conn.execute(
                text(
                    "SELECT a.application_name, a.pid, a.client_addr FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.classid = :k AND l.granted "
                    "AND l.objid = hashtext(current_database() || '.' || current_schema())::oid"
                ),
                {"k": key},
            ).first()
            conn.close()
            holder = f"'{row[0]}' (backend pid {row[1]})" if row else "another scadad"
            raise AlreadyRunning(f"store {db.safe_url} is held by {holder}")
        self._pg_conn = conn

    def check_socket(self, path: Path) -> None:
        """Refuse if a daemon answers on `path`; remove a stale socket file."""
        if not path.exists() and not path.is_symlink():
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)
            return
        except OSError as exc:
            raise AlreadyRunning(f"socket {path} exists and cannot be probed ({exc.strerror}); remove it") from None
        try:
            raw = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid = struct.unpack("3i", raw)[0]
        finally:
            probe.close()
        raise AlreadyRunning(f"socket {path} is served by another daemon (pid {pid})")

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                os.close(self._fd)
            self._fd = None
        if self._pg_conn is not None:
            try:
                self._pg_conn.close()
            finally:
                self._pg_conn = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another scadad"
    return (
        f"scadad pid {info.get('pid')} on {info.get('host')} (socket {info.get('socket')}, since {info.get('since')})"
    )
