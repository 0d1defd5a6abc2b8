"""The embedded historian: one SQLite file of its own, tuned for bulk writes.

Why stdlib `sqlite3` and not the SQLAlchemy metadata store: this is the daemon's hot path
(hundreds of thousands of rows a second in bursts). `executemany` on a bare connection
costs a fraction of the ORM/Core per-row overhead, the file gets its own pragmas (WAL,
synchronous=NORMAL, a large page cache) and its own write lock, so a burst of samples never
waits behind a configuration change in the metadata store, and the schema is five tables
versioned by `PRAGMA user_version`, no migration framework needed.

Layout
  samples    (tag_id, ts_us, value, quality)  PRIMARY KEY (tag_id, ts_us) WITHOUT ROWID:
             the raw history, clustered by tag so a trend of one tag is one range read.
  ingest     same columns, a plain append-only rowid table: where `write_batch` lands.
  rollup_1m, rollup_1h  one row per (tag_id, bucket_us) with a sample inside it (`Partial`).
  rollup_dirty  (width_us, tag_id, bucket_us): rollup buckets whose raw rows changed.

Why the ingest table: a batch from the tag engine is one sample of each of thousands of
tags. Inserted straight into the tag-clustered `samples` table, every sample lands on a
different leaf page, so each commit rewrites one 4 KiB page per tag to the WAL: 5,000 tags
cost ~20 MB of writes per batch and ingest tops out near 50,000 values/s (measured on the
target machine; bench/historian.py prints the bare-table figure). Appending to `ingest`
costs one page per ~150 samples. Every so often (`compact`) the ingest rows move to
`samples` in one sorted INSERT, touching each tag's page once per many samples: this
raises ingest several times over and cuts the disk writes per sample by about the number of
samples per tag per compaction (an SSD in a cabinet thanks you). Compaction runs when the
ingest table reaches `compact_rows`, and from `rollup_pending` when ingest holds rows of a
closed minute (so about once a minute at low rates).

Semantics callers can rely on
  * `write_batch` returns only after its transaction is committed: after a process crash
    (kill -9, OOM) every returned batch is there. After a power cut or kernel crash, the
    batches committed since the last WAL checkpoint (seconds, at most about a minute at
    low rates) may be lost: synchronous=NORMAL syncs at checkpoints, not per batch (FULL
    would fsync every batch, and costs that on every write).
  * The last value written for a (tag, ts) wins: a later sample with the same key replaces
    the earlier one, in every read and after compaction. Retrying a batch is therefore
    harmless (it writes the same values again), and when two samples of a tag share a
    timestamp (a fixed daemon clock, or a setpoint written in the microsecond of a scan)
    history and restart-restore keep the newer fact, not the value it replaced.
  * Every read sees committed data at once, whether it is still in `ingest` or not.
  * Rollups are maintained for the buckets that changed, by `rollup_pending`, once the
    bucket has closed. Queries never see a stale rollup: buckets that are dirty (or have
    rows still in `ingest`) are recomputed from raw rows at query time.

Threads: writes (`write_batch`, `compact`, `rollup_pending`, `maintain`, `apply_retention`)
share one connection behind a lock; the writer calls them from its single thread. Reads
use one connection per calling thread and run in a read transaction, so they never block
the writer and always see a consistent snapshot (WAL).
"""

from __future__ import annotations

import heapq
import logging
import os
import sqlite3
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path

from scadad import clock
from scadad.historian.model import (
    HOUR_US,
    MINUTE_US,
    QUALITY_BY_CODE,
    Aggregate,
    HistorianError,
    Sample,
)
from scadad.historian.rollup import Partial, Point, bucket_start, finish, held_value, merge, summarize

log = logging.getLogger("scadad.historian")

SCHEMA_VERSION = 1

_ROLLUP_COLUMNS = "tag_id INTEGER NOT NULL, bucket_us INTEGER NOT NULL, first_us INTEGER NOT NULL, count INTEGER NOT NULL, bad_count INTEGER NOT NULL, min REAL, max REAL, avg REAL, last REAL, held_us INTEGER NOT NULL, PRIMARY KEY (tag_id, bucket_us)"
_PARTIAL_FIELDS = "bucket_us, first_us, count, bad_count, min, max, avg, last, held_us"

_SCHEMA = f"""
CREATE TABLE samples (
    tag_id INTEGER NOT NULL, ts_us INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL,
    PRIMARY KEY (tag_id, ts_us)
) WITHOUT ROWID;
CREATE TABLE ingest (tag_id INTEGER NOT NULL, ts_us INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL);
CREATE TABLE rollup_1m ({_ROLLUP_COLUMNS}) WITHOUT ROWID;
CREATE TABLE rollup_1h ({_ROLLUP_COLUMNS}) WITHOUT ROWID;
CREATE TABLE rollup_dirty (
    width_us INTEGER NOT NULL, tag_id INTEGER NOT NULL, bucket_us INTEGER NOT NULL,
    PRIMARY KEY (width_us, tag_id, bucket_us)
) WITHOUT ROWID;
PRAGMA user_version = {SCHEMA_VERSION};
"""

# (width, table), finest first. Hour rollups are merged from minute rollups.
_LEVELS: tuple[tuple[int, str], ...] = ((MINUTE_US, "rollup_1m"), (HOUR_US, "rollup_1h"))


def _sql_bucket(column: str, width: str) -> str:
    """`rollup.bucket_start` in SQL. SQLite's % keeps the dividend's sign, so it is folded
    back to >= 0 (times before 1970 are legal, if unlikely)."""
    return f"({column} - (({column} % {width}) + {width}) % {width})"


# Dirty buckets of one tag closer than this many widths are recomputed from one range read.
_RUN_GAP = 16
# ... and a run never spans more than this many buckets (bounds the rows held in memory).
_RUN_SPAN = 1440
# Rollup buckets written per transaction.
_ROLLUP_CHUNK = 5_000

_SAMPLE_INSERT = "INSERT INTO ingest (tag_id, ts_us, value, quality) VALUES (?, ?, ?, ?)"
# One statement per 200 rows costs about half as much per row as executemany of a
# one-row statement (fewer VM resets and Python<->C crossings); 800 parameters stays
# well under SQLite's limit of 32,766 (999 before 3.32).
_MULTI_ROWS = 200
_MULTI_INSERT = "INSERT INTO ingest (tag_id, ts_us, value, quality) VALUES " + ", ".join(["(?, ?, ?, ?)"] * _MULTI_ROWS)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """Rows deleted by `apply_retention`, per table."""

    raw: int = 0
    minute: int = 0
    hour: int = 0


class SqliteHistorian:
    """The historian in one SQLite file (created with its schema on first open).

    `compact_rows`: move the ingest log into `samples` when it holds this many rows. Larger
    means fewer, cheaper-per-row compactions (each visits a tag's leaf page once for all its
    rows) but a longer scan of the unindexed `ingest` table on every read: at 250,000 rows
    about 10 ms per read on a small 2-core box. At ordinary rates (a few thousand values/s)
    `rollup_pending` compacts about once a minute long before this limit.
    `rollup_grace_us`: a bucket is rolled up this long after it closes, so samples arriving
    a little late do not force a second pass.
    `rollup_budget`: the most buckets one `maintain` call rolls up, so a backlog (after a
    restart or a bulk import) is worked off in slices instead of stalling ingest.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compact_rows: int = 250_000,
        rollup_grace_us: int = 5_000_000,
        rollup_budget: int = 20_000,
    ) -> None:
        self.path = Path(path)
        self.compact_rows = compact_rows
        self.rollup_grace_us = rollup_grace_us
        self.rollup_budget = rollup_budget
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        # 64 MiB: a compaction touches one leaf page per tag; keeping them cached between
        # compactions saves re-reading them from the file.
        self._db = self._connect(cache_kib=65_536)
        try:
            self._create_schema()
            (self._ingest_rows,) = self._db.execute("SELECT count(*) FROM ingest").fetchone()
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ connections

    def _connect(self, cache_kib: int, query_only: bool = False) -> sqlite3.Connection:
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly
            # one transaction and reads can open an explicit snapshot.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise HistorianError(
                f"cannot open the historian database {self.path}: {exc} "
                "(check that the directory exists and the daemon's user may write to it)"
            ) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise HistorianError(
                    f"the historian database {self.path} cannot use WAL mode (got {mode!r}); "
                    "put it on a local file system"
                )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{cache_kib}")
            conn.execute("PRAGMA temp_store=MEMORY")
            if query_only:
                conn.execute("PRAGMA query_only=ON")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise HistorianError(
                f"{self.path} is not a usable historian database: {exc} "
                "(move it aside to start a new one, or restore it from a backup)"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_schema(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise HistorianError(
                f"{self.path} was written by a newer scadad (historian schema {version}, "
                f"this one knows {SCHEMA_VERSION}); upgrade scadad or point it at another file"
            )
        tables = self._db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise HistorianError(
                f"{self.path} holds tables but no historian schema version; it is not a historian "
                "file (configure another path)"
            )
        self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise HistorianError(f"the historian {self.path} is closed")
            conn = self._connect(cache_kib=16_384, query_only=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed snapshot."""
        if self._closed:
            raise HistorianError(f"the historian {self.path} is closed")
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the shared connection; the caller holds `_lock`."""
        if self._closed:
            raise HistorianError(f"the historian {self.path} is closed")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ writes

    def write_batch(self, samples: Sequence[Sample]) -> None:
        """Store `samples` in one transaction; returns once they are committed.

        A sample whose (tag_id, ts_us) is already stored replaces it (the last value wins),
        so a batch retried after a crash or an error never duplicates anything.
        """
        if not samples:
            return
        # int(): sqlite3 binds an IntEnum through its adapter lookup, which halves executemany.
        rows = [(s.tag_id, s.ts_us, s.value, int(s.quality)) for s in samples]
        with self._lock:
            try:
                with self._write() as db:
                    full = len(rows) - len(rows) % _MULTI_ROWS
                    if full:
                        flat = [v for row in rows[:full] for v in row]
                        step = 4 * _MULTI_ROWS
                        db.executemany(_MULTI_INSERT, [flat[i : i + step] for i in range(0, len(flat), step)])
                    if full < len(rows):
                        db.executemany(_SAMPLE_INSERT, rows[full:])
            except sqlite3.Error as exc:
                raise HistorianError(f"could not write {len(rows)} samples to {self.path}: {exc}") from exc
            self._ingest_rows += len(rows)
            if self._ingest_rows >= self.compact_rows:
                try:
                    self._compact_locked()
                except sqlite3.Error as exc:
                    # The batch itself is committed; compaction is retried on the next call.
                    log.warning(
                        "historian compaction failed", extra={"fields": {"path": str(self.path), "error": str(exc)}}
                    )

    def compact(self) -> int:
        """Move the ingest log into `samples` now; returns the number of ingest rows moved."""
        with self._lock:
            return self._compact_locked()

    def _compact_locked(self) -> int:
        moved = self._ingest_rows
        if not moved:
            return 0
        with self._write() as db:
            db.execute(
                f"INSERT OR IGNORE INTO rollup_dirty (width_us, tag_id, bucket_us) SELECT DISTINCT :m, tag_id, {_sql_bucket('ts_us', ':m')} FROM ingest",
                {"m": MINUTE_US},
            )
            # Hours from the (few) dirty minutes rather than a second pass over every ingest row.
            db.execute(
                "INSERT OR IGNORE INTO rollup_dirty (width_us, tag_id, bucket_us) "
                f"SELECT DISTINCT :h, tag_id, {_sql_bucket('bucket_us', ':h')} "
                "FROM rollup_dirty WHERE width_us = :m",
                {"h": HOUR_US, "m": MINUTE_US},
            )
            # Sorted by key so each tag's leaf page is visited once; by rowid within a key so
            # the last value written for a (tag, ts) is the one INSERT OR REPLACE leaves
            # (over a stored row too: its bucket was marked dirty above, so rollups follow).
            db.execute(
                "INSERT OR REPLACE INTO samples (tag_id, ts_us, value, quality) "
                "SELECT tag_id, ts_us, value, quality FROM ingest ORDER BY tag_id, ts_us, rowid"
            )
            db.execute("DELETE FROM ingest")
        self._ingest_rows = 0
        return moved

    def rollup_pending(self, now_us: int | None = None, *, max_buckets: int | None = None) -> int:
        """Recompute the rollups of closed buckets whose raw rows changed; returns how many.

        A bucket is closed `rollup_grace_us` after its end (by `now_us`, default the clock).
        Minute buckets are computed from raw rows, hour buckets from minute rollups, each
        independently of its neighbours (see `rollup.Partial`). At most `max_buckets` are
        done per call; hours wait until no closed minute is left dirty.
        """
        closed = (clock.now_us() if now_us is None else now_us) - self.rollup_grace_us
        budget = self.rollup_budget if max_buckets is None else max_buckets
        with self._lock:
            if self._ingest_rows:
                # Rows of a closed minute still in the ingest log are not marked dirty yet.
                (oldest,) = self._db.execute("SELECT min(ts_us) FROM ingest").fetchone()
                if oldest is not None and oldest < bucket_start(closed, MINUTE_US):
                    self._compact_locked()
            done = 0
            for width, table in _LEVELS:
                n, more = self._roll_level(width, table, closed, budget - done)
                done += n
                if more:
                    break
            return done

    def _roll_level(self, width: int, table: str, closed: int, budget: int) -> tuple[int, bool]:
        """Roll up to `budget` closed dirty buckets of one level; returns (done, more_left)."""
        if budget <= 0:
            return 0, True
        keys = self._db.execute(
            "SELECT tag_id, bucket_us FROM rollup_dirty WHERE width_us = ? AND bucket_us <= ? "
            "ORDER BY tag_id, bucket_us LIMIT ?",
            (width, closed - width, budget + 1),
        ).fetchall()
        more = len(keys) > budget
        keys = keys[:budget]
        for i in range(0, len(keys), _ROLLUP_CHUNK):
            with self._write() as db:
                upserts: list[tuple[object, ...]] = []
                empties: list[tuple[int, int]] = []
                cleared: list[tuple[int, int, int, int]] = []
                for tag_id, group in groupby(keys[i : i + _ROLLUP_CHUNK], key=itemgetter(0)):
                    buckets = [b for _, b in group]
                    for run in _runs(buckets, width):
                        start, end = run[0], run[-1] + width
                        if width == MINUTE_US:
                            points = db.execute(
                                "SELECT ts_us, value, quality FROM samples WHERE tag_id = ? AND ts_us >= ? AND ts_us < ? ORDER BY ts_us",
                                (tag_id, start, end),
                            ).fetchall()
                            parts = summarize(points, width)
                        else:
                            minutes = [
                                Partial(*r) for r in db.execute(_partials_sql("rollup_1m"), (tag_id, start, end))
                            ]
                            parts = merge(minutes, MINUTE_US, width)
                        wanted = set(run)
                        found = set()
                        for p in parts:
                            if p.bucket_us in wanted:
                                found.add(p.bucket_us)
                                upserts.append((tag_id, *_partial_row(p)))
                        empties.extend((tag_id, b) for b in run if b not in found)
                        # Every dirty key of this tag in [start, end) is in `run` (keys are
                        # sorted and nothing else writes while we hold the lock): one range delete.
                        cleared.append((width, tag_id, start, run[-1]))
                db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", upserts)
                db.executemany(f"DELETE FROM {table} WHERE tag_id = ? AND bucket_us = ?", empties)
                db.executemany(
                    "DELETE FROM rollup_dirty WHERE width_us = ? AND tag_id = ? AND bucket_us BETWEEN ? AND ?", cleared
                )
        return len(keys), more

    def maintain(self) -> None:
        """Housekeeping the writer runs on its thread every few seconds: rollups (and the
        compaction they need) within `rollup_budget`."""
        self.rollup_pending()

    def apply_retention(
        self,
        before_us: int,
        tag_id: int | None = None,
        *,
        raw: bool = True,
        rollups: bool = True,
        chunk_rows: int = 10_000,
    ) -> RetentionResult:
        """Delete history older than `before_us`, for one tag or all of them.

        Raw rows with ts_us < before_us go; rollup buckets go when they end at or before
        before_us. `raw=False` or `rollups=False` keeps that level (e.g. raw for 90 days,
        rollups for 10 years: two calls). Deletes run in transactions of at most
        `chunk_rows` rows, each taking the write lock briefly, so ingest goes on in between.
        """
        raw_n = minute_n = hour_n = 0
        if raw:
            with self._lock, self._write() as db:
                where, params = _tag_filter(tag_id)
                raw_n += db.execute(f"DELETE FROM ingest WHERE ts_us < ?{where}", (before_us, *params)).rowcount
                self._ingest_rows = db.execute("SELECT count(*) FROM ingest").fetchone()[0]
                # A dirty bucket whose raw rows are gone would be recomputed as empty and its
                # rollup deleted; it is outside the raw horizon now, so leave its rollup alone.
                for width, _ in _LEVELS:
                    db.execute(
                        f"DELETE FROM rollup_dirty WHERE width_us = ? AND bucket_us <= ?{where}",
                        (width, before_us - width, *params),
                    )
            raw_n += self._delete_chunked("samples", "ts_us", before_us, tag_id, chunk_rows)
        if rollups:
            for width, table in _LEVELS:
                # bucket_us < before_us - width + 1  <=>  the bucket ends at or before before_us
                n = self._delete_chunked(table, "bucket_us", before_us - width + 1, tag_id, chunk_rows)
                if width == MINUTE_US:
                    minute_n = n
                else:
                    hour_n = n
        return RetentionResult(raw_n, minute_n, hour_n)

    def _delete_chunked(self, table: str, column: str, limit: int, tag_id: int | None, chunk_rows: int) -> int:
        tags = iter([tag_id] if tag_id is not None else self._tag_ids(table))
        tag = next(tags, None)
        total = 0
        while tag is not None:
            with self._lock, self._write() as db:
                budget = chunk_rows
                while tag is not None and budget > 0:
                    # The key of the budget-th old row bounds this slice; none means the rest fits.
                    edge = db.execute(
                        f"SELECT {column} FROM {table} WHERE tag_id = ? AND {column} < ? ORDER BY {column} LIMIT 1 OFFSET ?",
                        (tag, limit, budget - 1),
                    ).fetchone()
                    if edge is None:
                        n = db.execute(f"DELETE FROM {table} WHERE tag_id = ? AND {column} < ?", (tag, limit)).rowcount
                        tag = next(tags, None)
                    else:
                        n = db.execute(
                            f"DELETE FROM {table} WHERE tag_id = ? AND {column} <= ?", (tag, edge[0])
                        ).rowcount
                    total += n
                    budget -= max(n, 1)
        return total

    def _tag_ids(self, table: str) -> list[int]:
        # One index seek per tag: SELECT DISTINCT would read every row of the table.
        ids: list[int] = []
        with self._read() as conn:
            row = conn.execute(f"SELECT min(tag_id) FROM {table}").fetchone()
            while row is not None and row[0] is not None:
                ids.append(row[0])
                row = conn.execute(
                    f"SELECT tag_id FROM {table} WHERE tag_id > ? ORDER BY tag_id LIMIT 1", (row[0],)
                ).fetchone()
        return ids

    # ------------------------------------------------------------------ reads

    def query_raw(self, tag_id: int, start_us: int, end_us: int, limit: int = 100_000) -> list[Sample]:
        """Samples of one tag with start_us <= ts_us < end_us, oldest first, at most `limit`.

        To page through a long range, call again from the last sample's ts_us + 1.
        """
        q = QUALITY_BY_CODE
        with self._read() as conn:
            fresh = _fresh_points(conn, tag_id)
            return [
                Sample(tag_id, ts, v, q[quality])
                for ts, v, quality in _raw_points(conn, tag_id, start_us, end_us, fresh, limit)
            ]

    def query_aggregate(
        self,
        tag_id: int,
        start_us: int,
        end_us: int,
        every_us: int,
        *,
        offset_us: int = 0,
        use_rollups: bool = True,
    ) -> list[Aggregate]:
        """Time-weighted aggregates of one tag in buckets of `every_us` (see `Aggregate`).

        Buckets are [offset_us + k*every_us, ... + every_us) (offset 0: aligned on the epoch,
        so hours start on the UTC hour); every bucket that overlaps [start_us, end_us) is
        returned whole. Answered from hour rollups when every_us and offset_us are whole
        hours, from minute rollups when they are whole minutes, else from raw rows
        (`use_rollups=False` forces raw). A fixed width cannot follow DST: for local-time
        days, query each day on its own.
        """
        if every_us <= 0:
            raise ValueError(f"every_us must be positive, got {every_us}")
        if end_us <= start_us:
            return []
        first = bucket_start(start_us, every_us, offset_us)
        stop = bucket_start(end_us - 1, every_us, offset_us) + every_us
        level = None
        if use_rollups:
            for width, table in reversed(_LEVELS):
                if every_us % width == 0 and offset_us % width == 0:
                    level = (width, table)
                    break
        with self._read() as conn:
            fresh = _fresh_points(conn, tag_id)
            carry = _carry(conn, tag_id, first, fresh)
            if level is None:
                parts = summarize(_raw_points(conn, tag_id, first, stop, fresh), every_us, offset_us)
            else:
                width, table = level
                parts = _level_partials(conn, tag_id, first, stop, width, table, fresh)
                if every_us != width:
                    parts = merge(parts, width, every_us, offset_us)
        return finish(parts, carry)

    def latest(self, tag_ids: Iterable[int]) -> dict[int, Sample]:
        """The newest sample of each tag (any quality); tags with no history are left out."""
        wanted = list(dict.fromkeys(tag_ids))
        found: dict[int, tuple[int, float | None, int]] = {}
        with self._read() as conn:
            for tag in wanted:
                row = conn.execute(
                    "SELECT ts_us, value, quality FROM samples WHERE tag_id = ? ORDER BY ts_us DESC LIMIT 1", (tag,)
                ).fetchone()
                if row is not None:
                    found[tag] = row
            if wanted:
                # json_each takes the whole id list as one parameter, however long it is.
                for tag, ts, v, q in conn.execute(
                    "SELECT tag_id, ts_us, value, quality FROM ingest "
                    "WHERE tag_id IN (SELECT value FROM json_each(?)) ORDER BY rowid",
                    (f"[{','.join(str(int(t)) for t in wanted)}]",),
                ):
                    have = found.get(tag)
                    if have is None or ts >= have[0]:  # equal ts: the last value written wins
                        found[tag] = (ts, v, q)
        qual = QUALITY_BY_CODE
        return {tag: Sample(tag, ts, v, qual[q]) for tag, (ts, v, q) in found.items()}

    @property
    def ingest_rows(self) -> int:
        """Rows waiting in the ingest log for the next compaction."""
        return self._ingest_rows

    def pending_rollups(self) -> int:
        """Rollup buckets (minute and hour) marked dirty and not yet recomputed."""
        with self._read() as conn:
            return conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0]

    def integrity_check(self) -> list[str]:
        """SQLite's full integrity check; an empty list means the file is sound."""
        with self._read() as conn:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every connection. Rows still in the ingest log stay there, durable, until
        the next open compacts them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def __enter__(self) -> SqliteHistorian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- read helpers


def _tag_filter(tag_id: int | None) -> tuple[str, tuple[int, ...]]:
    return ("", ()) if tag_id is None else (" AND tag_id = ?", (tag_id,))


def _partials_sql(table: str) -> str:
    return f"SELECT {_PARTIAL_FIELDS} FROM {table} WHERE tag_id = ? AND bucket_us >= ? AND bucket_us < ? ORDER BY bucket_us"


def _partial_row(p: Partial) -> tuple[object, ...]:
    return (p.bucket_us, p.first_us, p.count, p.bad_count, p.min, p.max, p.avg, p.last, p.held_us)


def _runs(buckets: list[int], width: int) -> Iterator[list[int]]:
    """Split ascending bucket starts into runs that are cheap to recompute from one range read."""
    run: list[int] = []
    for b in buckets:
        if run and (b - run[-1] > _RUN_GAP * width or b - run[0] >= _RUN_SPAN * width):
            yield run
            run = []
        run.append(b)
    if run:
        yield run


def _fresh_points(conn: sqlite3.Connection, tag_id: int) -> list[Point]:
    """The tag's rows still in the ingest log, by time, then in write order. The log has no
    index (it is append-only for speed), so each read scans it once, here, and works on
    this short list."""
    return conn.execute(
        "SELECT ts_us, value, quality FROM ingest WHERE tag_id = ? ORDER BY ts_us, rowid", (tag_id,)
    ).fetchall()


def _ts(point: Point) -> int:
    return point[0]


def _raw_points(
    conn: sqlite3.Connection, tag_id: int, start: int, end: int, fresh: list[Point], limit: int | None = None
) -> Iterator[Point]:
    """One tag's raw points in [start, end), oldest first: `samples` merged with its `fresh`
    rows, the last value written for a timestamp winning. Lazy, so a year of raw rows is
    aggregated without holding it in memory; consume it inside the read transaction."""
    sql = "SELECT ts_us, value, quality FROM samples WHERE tag_id = ? AND ts_us >= ? AND ts_us < ? ORDER BY ts_us"
    params: tuple[int, ...] = (tag_id, start, end)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    stored: Iterator[Point] = conn.execute(sql, params)
    fresh = fresh[bisect_left(fresh, start, key=_ts) : bisect_left(fresh, end, key=_ts)]
    if not fresh:
        return stored
    # heapq.merge is stable: for equal timestamps the stored row (older than anything in the
    # ingest log) comes first, then ingest rows in write order; keep the last of each.
    merged = _last_per_ts(heapq.merge(stored, fresh, key=_ts))
    return merged if limit is None else islice(merged, limit)


def _last_per_ts(points: Iterable[Point]) -> Iterator[Point]:
    held = None
    for p in points:
        if held is not None and p[0] != held[0]:
            yield held
        held = p
    if held is not None:
        yield held


def _carry(conn: sqlite3.Connection, tag_id: int, before: int, fresh: list[Point]) -> float | None:
    """The value held just before `before` (last sample earlier than it), None if not usable."""
    best = conn.execute(
        "SELECT ts_us, value, quality FROM samples WHERE tag_id = ? AND ts_us < ? ORDER BY ts_us DESC LIMIT 1",
        (tag_id, before),
    ).fetchone()
    i = bisect_left(fresh, before, key=_ts)
    if i and (best is None or fresh[i - 1][0] >= best[0]):
        # The ingest log is newer than `samples`, and sorted by (ts, rowid): its row just
        # before `before` is the last written for that timestamp, the one that counts.
        best = fresh[i - 1]
    return None if best is None else held_value(best[1], best[2])


def _level_partials(
    conn: sqlite3.Connection, tag_id: int, start: int, end: int, width: int, table: str, fresh: list[Point]
) -> list[Partial]:
    """Partials of one rollup level for [start, end): stored rows, except buckets that are
    dirty or have rows still in the ingest log, which are recomputed from raw rows."""
    stored = [Partial(*r) for r in conn.execute(_partials_sql(table), (tag_id, start, end))]
    stale = {
        b
        for (b,) in conn.execute(
            "SELECT bucket_us FROM rollup_dirty WHERE width_us = ? AND tag_id = ? AND bucket_us >= ? AND bucket_us < ?",
            (width, tag_id, start, end),
        )
    }
    stale.update(bucket_start(p[0], width) for p in fresh if start <= p[0] < end)
    if not stale:
        return stored
    recomputed: list[Partial] = []
    for run in _runs(sorted(stale), width):
        points = _raw_points(conn, tag_id, run[0], run[-1] + width, fresh)
        recomputed.extend(p for p in summarize(points, width) if p.bucket_us in stale)
    kept = [p for p in stored if p.bucket_us not in stale]
    return list(heapq.merge(kept, recomputed, key=lambda p: p.bucket_us))
