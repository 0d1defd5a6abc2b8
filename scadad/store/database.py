"""The engine and the one thread that talks to it.

Every store call runs on a single worker thread: the event loop never blocks on disk
or on the network, and SQLite sees one writer, which is what it wants. Reads that
must be fast (Sites.List and friends) are served from the daemon's in-memory model,
not from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url, text

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Database:
    """A SQLAlchemy engine plus the worker thread all store I/O goes through."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, pool_pre_ping=parsed.get_backend_name() != "sqlite")
        self.dialect: str = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, fit for logs and status output."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> Path | None:
        if self.dialect != "sqlite":
            return None
        db = self.engine.url.database
        return Path(db).resolve() if db and db != ":memory:" else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store function on the store thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def server_version(self) -> str:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                return "SQLite " + str(conn.exec_driver_sql("select sqlite_version()").scalar())
            return str(conn.execute(text("show server_version")).scalar()).join(("PostgreSQL ", ""))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (backups, `sqlite3` in a shell) run beside the daemon's writes;
    # NORMAL sync is durable across a daemon crash, and loses at most the last commit
    # on power loss, which the historian's own batching tolerates.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
