"""Store-and-forward for remote historian backends (InfluxDB, PostgreSQL).

When the remote end is down, batches go to an append-only spool file on local disk and are
replayed, in order, before anything new once it answers again. The local SQLite historian
does not need this: its disk is the spool.

Spool file format (`<spool_dir>/historian.spool`): a sequence of records, each
    magic b"HSP1" | payload length (u32 LE) | CRC-32 of payload (u32 LE) | payload
where the payload is a msgpack array of samples, each `[tag_id, ts_us, value, quality]`.
Every record is fsync'ed before `write_batch` returns, so a spooled batch survives a crash
or a power cut. A record cut short by a crash (a torn write) or damaged on disk fails its
length or CRC check: it and everything after it are skipped, truncated away and counted
(`SpoolStats.corrupt_records` / `corrupt_bytes`), and logged; that never stops the daemon.

Delivery is at least once: a batch whose write raised may still have reached the backend
(a timeout after the remote commit), and a spool being replayed when the daemon stops is
replayed again from its start on the next run. Backends must therefore treat a repeated
(tag_id, ts_us) as the same sample, the last value written winning (InfluxDB overwrites
the point; PostgreSQL uses ON CONFLICT DO UPDATE), as the SQLite historian does.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import msgspec

from scadad.historian.model import HistorianError, Sample

log = logging.getLogger("scadad.historian")

SPOOL_NAME = "historian.spool"
_MAGIC = b"HSP1"
_HEADER = struct.Struct("<4sII")


class Backend(Protocol):
    """Where batches of samples end up: `SqliteHistorian`, and the remote backends to come.

    `write_batch` returns once the batch is durable at the backend and raises if it is not
    (the caller retries or spools it). It must be idempotent on (tag_id, ts_us).
    """

    def write_batch(self, samples: Sequence[Sample]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Maintained(Protocol):
    """A backend with periodic housekeeping (rollups, spool replay) that the writer runs on
    its write thread every few seconds."""

    def maintain(self) -> None: ...


@dataclass
class SpoolStats:
    """Counters since start. Any `dropped_*` or `corrupt_*` above zero means lost data."""

    spooled_batches: int = 0
    spooled_samples: int = 0
    replayed_batches: int = 0
    replayed_samples: int = 0
    dropped_batches: int = 0  # the spool was full (or unwritable): the batch is gone
    dropped_samples: int = 0
    corrupt_records: int = 0  # torn or damaged records skipped (a torn tail counts once)
    corrupt_bytes: int = 0
    backend_failures: int = 0
    spool_bytes: int = 0  # current size of the spool file


class _Torn(Exception):
    """The bytes at an offset are not a whole, valid record."""


class SpooledBackend:
    """Wraps a remote `Backend`: a failed `write_batch` goes to the disk spool instead.

    `write_batch` does not raise when the backend is down; it spools. While the spool is not
    empty, new batches are spooled behind it, and the backend is retried at most every
    `retry_interval_s` (from `write_batch` or `maintain`), replaying the spool oldest first.
    Once all of it is delivered the file is deleted.

    Data loss is reported, not hidden: when the spool would grow past `max_bytes` (or the
    disk refuses the write), the new batch is dropped, counted in `stats.dropped_*` and
    logged as an error (once per outage, with a total when the spool drains).

    Not thread-safe: the writer calls it from its one write thread.
    """

    def __init__(
        self,
        backend: Backend,
        spool_dir: str | os.PathLike[str],
        max_bytes: int = 1 << 30,
        *,
        retry_interval_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.spool_dir = Path(spool_dir)
        self.path = self.spool_dir / SPOOL_NAME
        self.max_bytes = max_bytes
        self.retry_interval_s = retry_interval_s
        self.stats = SpoolStats()
        self._monotonic = monotonic
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[Sample])
        self._append_fd: int | None = None
        self._replayed_to = 0  # offset of the first record not yet delivered
        self._retry_at = 0.0
        self._dropping = False  # an outage has dropped batches (for one log line, not one per batch)
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistorianError(f"cannot create the historian spool directory {self.spool_dir}: {exc}") from exc
        self._recover()

    # ------------------------------------------------------------------ public

    def write_batch(self, samples: Sequence[Sample]) -> None:
        """Deliver `samples` (after anything spooled before them), or spool them."""
        if not samples:
            return
        if self.stats.spool_bytes:
            if self._monotonic() < self._retry_at:
                self._append(samples)
                return
            try:
                self._replay()
            except Exception as exc:
                self._backend_failed(exc)
                self._append(samples)
                return
        try:
            self.backend.write_batch(samples)
        except Exception as exc:
            self._backend_failed(exc)
            self._append(samples)

    def maintain(self) -> None:
        """Retry a waiting spool when due, then the backend's own housekeeping."""
        if self.stats.spool_bytes and self._monotonic() >= self._retry_at:
            try:
                self._replay()
            except Exception as exc:
                self._backend_failed(exc)
        if isinstance(self.backend, Maintained):
            self.backend.maintain()

    def close(self) -> None:
        """Close the spool file (it stays on disk for the next start) and the backend."""
        if self._append_fd is not None:
            os.close(self._append_fd)
            self._append_fd = None
        self.backend.close()

    # ------------------------------------------------------------------ spool file

    def _recover(self) -> None:
        """Find the valid prefix of an existing spool; truncate a torn or damaged tail."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            offset = 0
            try:
                while offset < size:
                    offset += _HEADER.size + len(self._read_record(fd, offset, size))
            except _Torn:
                self._skip_tail(fd, offset, size)
            self.stats.spool_bytes = offset
        finally:
            os.close(fd)
        if offset == 0:
            self.path.unlink()
        else:
            log.warning(
                "historian spool holds undelivered batches; they are replayed when the backend answers",
                extra={"fields": {"path": str(self.path), "bytes": offset}},
            )

    def _read_record(self, fd: int, offset: int, size: int) -> bytes:
        header = os.pread(fd, _HEADER.size, offset)
        if len(header) < _HEADER.size:
            raise _Torn
        magic, length, crc = _HEADER.unpack(header)
        if magic != _MAGIC or offset + _HEADER.size + length > size:
            raise _Torn
        payload = os.pread(fd, length, offset + _HEADER.size)
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise _Torn
        return payload

    def _skip_tail(self, fd: int, offset: int, size: int) -> None:
        self.stats.corrupt_records += 1
        self.stats.corrupt_bytes += size - offset
        log.error(
            "historian spool has a torn or damaged record (a crash mid-write, or disk damage); "
            "it and the rest of the file are skipped",
            extra={"fields": {"path": str(self.path), "offset": offset, "bytes_skipped": size - offset}},
        )
        os.ftruncate(fd, offset)
        os.fsync(fd)

    def _append(self, samples: Sequence[Sample]) -> None:
        payload = self._encoder.encode(samples)
        record = _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload
        if self.stats.spool_bytes + len(record) > self.max_bytes:
            self._drop(samples, f"the spool is full ({self.stats.spool_bytes} of {self.max_bytes} bytes)")
            return
        try:
            fd = self._open_for_append()
            written = 0
            while written < len(record):
                written += os.write(fd, record[written:])
            os.fsync(fd)
        except OSError as exc:
            # Cut off whatever part of the record made it, so the file stays a valid spool.
            if self._append_fd is not None:
                try:
                    os.ftruncate(self._append_fd, self.stats.spool_bytes)
                except OSError:
                    pass
            self._drop(samples, f"the spool file {self.path} cannot be written: {exc}")
            return
        self.stats.spool_bytes += len(record)
        self.stats.spooled_batches += 1
        self.stats.spooled_samples += len(samples)

    def _open_for_append(self) -> int:
        if self._append_fd is None:
            created = not self.path.exists()
            self._append_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            if created:
                _fsync_dir(self.spool_dir)  # the new file's name must survive a power cut too
        return self._append_fd

    def _drop(self, samples: Sequence[Sample], why: str) -> None:
        self.stats.dropped_batches += 1
        self.stats.dropped_samples += len(samples)
        if not self._dropping:
            self._dropping = True
            log.error(
                f"historian samples are being dropped: {why}; the backend has been unreachable too long",
                extra={"fields": {"path": str(self.path), "max_bytes": self.max_bytes}},
            )

    def _replay(self) -> None:
        """Deliver the spool from the first undelivered record; raises if the backend fails."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            while self._replayed_to < size:
                try:
                    payload = self._read_record(fd, self._replayed_to, size)
                except _Torn:
                    self._skip_tail(fd, self._replayed_to, size)
                    break
                end = self._replayed_to + _HEADER.size + len(payload)
                try:
                    batch = self._decoder.decode(payload)
                except msgspec.DecodeError:
                    # The CRC matched, so the record boundary is right: skip just this one.
                    self.stats.corrupt_records += 1
                    self.stats.corrupt_bytes += end - self._replayed_to
                    log.error(
                        "historian spool record cannot be decoded; skipped",
                        extra={"fields": {"offset": self._replayed_to}},
                    )
                    self._replayed_to = end
                    continue
                self.backend.write_batch(batch)
                self._replayed_to = end
                self.stats.replayed_batches += 1
                self.stats.replayed_samples += len(batch)
        finally:
            os.close(fd)
        if self._append_fd is not None:
            os.close(self._append_fd)
            self._append_fd = None
        self.path.unlink()
        _fsync_dir(self.spool_dir)
        self._replayed_to = 0
        self.stats.spool_bytes = 0
        log.info(
            "historian spool delivered",
            extra={
                "fields": {
                    "replayed_batches": self.stats.replayed_batches,
                    "dropped_samples": self.stats.dropped_samples,
                }
            },
        )
        if self._dropping:
            self._dropping = False
            log.error(
                "historian backend is back; samples were dropped while the spool was full",
                extra={"fields": {"dropped_samples_total": self.stats.dropped_samples}},
            )

    def _backend_failed(self, exc: Exception) -> None:
        self.stats.backend_failures += 1
        self._retry_at = self._monotonic() + self.retry_interval_s
        log.warning(
            "historian backend write failed; spooling to disk",
            extra={"fields": {"error": f"{type(exc).__name__}: {exc}", "spool_bytes": self.stats.spool_bytes}},
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
