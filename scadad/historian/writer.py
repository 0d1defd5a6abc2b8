"""The asyncio face of the historian: a bounded queue in front of a backend on one thread.

The tag engine calls `submit` on the event loop; it never waits. A background task takes
batches off the queue and runs `backend.write_batch` on one dedicated thread, so the loop
never blocks on disk and the backend only ever sees one thread (SQLite's write connection
is not shared). The same thread runs the backend's `maintain` (rollups, spool replay)
every `maintain_interval_s`.

Durability is reported as sequence numbers: every accepted sample gets the next number,
`stats.submitted` is the last number handed out and `stats.committed` (alias
`committed_through`) the last one the backend has confirmed. Batches are written in
submission order, so everything up to `committed_through` is durable.

Nothing is lost silently: a full queue rejects the whole `submit` call (it returns False and
`stats.dropped` counts the samples); a failing backend is logged and retried with
exponential backoff, holding the queue (which then fills and drops, counted); `close` that
gives up after its timeout logs and counts what it abandons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from scadad.historian.model import HistorianError, Sample
from scadad.historian.spool import Backend, Maintained

log = logging.getLogger("scadad.historian")

DROP_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of the writer's counters (samples unless named otherwise)."""

    submitted: int  # accepted by submit; also the sequence number of the last one
    committed: int  # durable at the backend: everything up to this sequence number
    dropped: int  # rejected by submit (queue full, or writer closed)
    abandoned: int  # still queued or in flight when close gave up
    queue_depth: int  # waiting in the queue (not counting the batch being written)
    in_flight: int  # in the batch being written right now
    batches: int  # batches committed
    errors: int  # failed write attempts (each retried)
    last_flush_s: float  # duration of the last successful write_batch
    last_error: str | None


class HistorianWriter:
    """Batches samples from the event loop into `backend.write_batch` on one thread.

    `max_queue`: samples held in memory at most (~100 bytes each). `batch_size`: samples per
    write_batch. `flush_interval_s`: a partial batch waits at most this long.
    Use as `async with HistorianWriter(backend) as w:` or call `start()` / `await close()`.
    `submit` and `flush` are for the event loop thread only.
    """

    def __init__(
        self,
        historian: Backend,
        max_queue: int = 100_000,
        batch_size: int = 5_000,
        flush_interval_s: float = 0.25,
        *,
        maintain_interval_s: float = 5.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        if batch_size <= 0 or max_queue < batch_size:
            raise ValueError(f"need 0 < batch_size <= max_queue, got batch_size={batch_size}, max_queue={max_queue}")
        self.historian = historian
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.maintain_interval_s = maintain_interval_s
        self.max_backoff_s = max_backoff_s
        self._chunks: deque[list[Sample]] = deque()
        self._head = 0  # samples of _chunks[0] already taken
        self._depth = 0
        self._submitted = 0
        self._committed = 0
        self._dropped = 0
        self._abandoned = 0
        self._in_flight = 0
        self._batches = 0
        self._errors = 0
        self._last_flush_s = 0.0
        self._last_error: str | None = None
        self._next_drop_log = 0.0
        self._closing = False
        self._closed = False
        self._wake = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        # One thread, so write_batch, maintain and close run strictly one after another.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="historian-writer")

    # ------------------------------------------------------------------ the loop side

    def start(self) -> None:
        """Start the background task (needs a running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="historian-writer")
            self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # A bug, not a backend error (those are retried): say so loudly and stop accepting,
            # so samples are counted as dropped instead of piling up with nobody writing them.
            self._closing = True
            log.critical("historian writer task died; samples are no longer written", exc_info=task.exception())

    def submit(self, samples: Sequence[Sample]) -> bool:
        """Queue `samples` for writing; never blocks.

        All or nothing: returns False, and counts them in `stats.dropped`, when the queue
        has no room for all of them (or the writer is closing). Samples of one tag should
        be submitted in time order; for a repeated (tag, ts) the backend keeps the last value.
        """
        n = len(samples)
        if n == 0:
            return True
        if self._closing or self._depth + n > self.max_queue:
            self._dropped += n
            now = time.monotonic()
            if now >= self._next_drop_log:
                # At most one line per interval: a line per rejected call would flood the journal.
                self._next_drop_log = now + DROP_LOG_INTERVAL_S
                log.warning(
                    "historian queue full or writer closing: samples dropped",
                    extra={
                        "fields": {
                            "dropped_total": self._dropped,
                            "queue_depth": self._depth,
                            "max_queue": self.max_queue,
                            "closing": self._closing,
                        }
                    },
                )
            return False
        self._chunks.append(list(samples))
        self._depth += n
        self._submitted += n
        if self._depth >= self.batch_size:
            self._wake.set()
        return True

    async def flush(self) -> None:
        """Wait until every sample accepted before this call is committed."""
        target = self._submitted
        if self._committed >= target:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        self._wake.set()
        await fut

    async def close(self, timeout_s: float | None = 60.0) -> None:
        """Stop accepting, write everything queued, then close the backend.

        If the backend still cannot take the data after `timeout_s`, what is left is counted
        in `stats.abandoned` and logged as an error (a batch that was being written at that
        moment may still land), and the backend is closed anyway.
        """
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        if self._task is None and self._depth:
            self.start()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
                self._abandon()
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            # Queued behind any write still running on the thread, so it never races it.
            await loop.run_in_executor(self._executor, self.historian.close)
        finally:
            self._executor.shutdown(wait=False)

    @property
    def committed_through(self) -> int:
        """Sequence number of the last durable sample (see the module docstring)."""
        return self._committed

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            submitted=self._submitted,
            committed=self._committed,
            dropped=self._dropped,
            abandoned=self._abandoned,
            queue_depth=self._depth,
            in_flight=self._in_flight,
            batches=self._batches,
            errors=self._errors,
            last_flush_s=self._last_flush_s,
            last_error=self._last_error,
        )

    async def __aenter__(self) -> HistorianWriter:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ the background task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_maintain = time.monotonic() + self.maintain_interval_s
        maintained = isinstance(self.historian, Maintained)
        while True:
            if self._depth < self.batch_size and not self._closing and not self._waiters:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
                except TimeoutError:
                    pass
            if self._depth:
                await self._write(loop, self._take(self.batch_size))
            elif self._closing:
                return
            if maintained and time.monotonic() >= next_maintain:
                await self._maintain(loop)
                next_maintain = time.monotonic() + self.maintain_interval_s

    def _take(self, n: int) -> list[Sample]:
        batch: list[Sample] = []
        while self._chunks and len(batch) < n:
            chunk = self._chunks[0]
            end = min(len(chunk), self._head + n - len(batch))
            batch.extend(chunk[self._head : end])
            if end == len(chunk):
                self._chunks.popleft()
                self._head = 0
            else:
                self._head = end
        self._depth -= len(batch)
        return batch

    async def _write(self, loop: asyncio.AbstractEventLoop, batch: list[Sample]) -> None:
        """Write one batch, retrying with backoff until it is committed (or we are cancelled)."""
        self._in_flight = len(batch)
        backoff = 0.1
        while True:
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._executor, self.historian.write_batch, batch)
            except Exception as exc:
                self._errors += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "historian write failed; retrying",
                    exc_info=self._errors == 1,  # the first traceback is enough
                    extra={"fields": {"error": self._last_error, "samples": len(batch), "retry_in_s": backoff}},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            break
        self._last_flush_s = time.perf_counter() - started
        self._committed += len(batch)
        self._in_flight = 0
        self._batches += 1
        if self._waiters:
            still: list[tuple[int, asyncio.Future[None]]] = []
            for target, fut in self._waiters:
                if target <= self._committed:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((target, fut))
            self._waiters = still

    async def _maintain(self, loop: asyncio.AbstractEventLoop) -> None:
        assert isinstance(self.historian, Maintained)
        try:
            await loop.run_in_executor(self._executor, self.historian.maintain)
        except Exception:
            # Housekeeping only: the samples are already committed. Next round tries again.
            log.exception("historian maintenance failed")

    def _abandon(self) -> None:
        lost = self._depth + self._in_flight
        self._abandoned += lost
        self._chunks.clear()
        self._head = self._depth = self._in_flight = 0
        log.error(
            "historian writer closed with samples not written (backend unavailable); they are lost",
            extra={"fields": {"samples": lost, "last_error": self._last_error}},
        )
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(HistorianError(f"historian writer closed with {lost} samples not written"))
        self._waiters = []
