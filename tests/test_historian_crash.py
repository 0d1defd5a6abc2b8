"""Durability of the SQLite historian under kill -9.

A child process writes batches continuously and prints "committed <k>" after each
`write_batch` returns (with a retried batch now and then, compactions and rollup passes in
between). The parent kills it with SIGKILL at a random point, reopens the file and checks
that every batch it was told about is there with its exact values, that nothing is
duplicated and that the file is sound; then it lets a second child carry on in the same file
and kills that one too.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scadad.historian import HOUR_US, MINUTE_US, Quality, SqliteHistorian

S = 1_000_000
T0 = 1_767_225_600 * S
TAGS = 50

CHILD = f"""
import sys
from scadad.historian import Quality, Sample, SqliteHistorian

S, T0, TAGS = {S}, {T0}, {TAGS}

def batch(k):
    # Deterministic, exactly representable values: the parent recomputes them.
    return [
        Sample(tag, T0 + k * S, None, Quality.BAD) if (tag + k) % 13 == 0
        else Sample(tag, T0 + k * S, tag * 1000 + k * 0.5, Quality.GOOD if k % 7 else Quality.UNCERTAIN)
        for tag in range(TAGS)
    ]

path, k = sys.argv[1], int(sys.argv[2])
h = SqliteHistorian(path, compact_rows=3_000, rollup_grace_us=0)
while True:
    h.write_batch(batch(k))
    print(f"committed {{k}}", flush=True)
    if k % 10 == 9:
        h.write_batch(batch(k - 1))  # a retried batch: must not duplicate anything
    if k % 37 == 0:
        h.rollup_pending(now_us=T0 + k * S, max_buckets=200)
    k += 1
"""


def expected(tag: int, k: int) -> tuple[float | None, Quality]:
    if (tag + k) % 13 == 0:
        return None, Quality.BAD
    return tag * 1000 + k * 0.5, Quality.GOOD if k % 7 else Quality.UNCERTAIN


def run_and_kill(script: Path, db: Path, first: int, kill_after: int, rnd: random.Random, deadline: float) -> int:
    """Run a writer child from batch `first`, SIGKILL it after `kill_after` batches; return
    the last batch number it reported committed."""
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = -1
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("committed "):
                last = int(line.split()[1])
            if last >= first + kill_after:
                # Land anywhere in the following batches: mid-transaction, mid-compaction...
                time.sleep(rnd.uniform(0, 0.01))
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the writer child reported only {last - first + 1} batches in time")
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL, f"the writer child died on its own:\n{stderr}"
    assert last >= first, f"no batch committed:\n{stderr}"
    return last


def check_file(db: Path, last: int) -> int:
    """Everything up to batch `last` is there and exact; returns the highest batch found."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    h = SqliteHistorian(db)
    try:
        assert h.integrity_check() == []
        top = -1
        for tag in range(TAGS):
            got = h.query_raw(tag, T0, T0 + 10 * HOUR_US)
            ks = [(s.ts_us - T0) // S for s in got]
            assert ks == sorted(set(ks)), f"tag {tag}: duplicate or unordered timestamps"
            assert ks[: last + 1] == list(range(last + 1)), f"tag {tag}: committed batches missing"
            for k, s in zip(ks, got, strict=True):
                assert (s.value, s.quality) == expected(tag, k), f"tag {tag} batch {k}"
            top = max(top, ks[-1])
        # Compacting what the crash left in the ingest log still yields one row per key.
        h.compact()
        with sqlite3.connect(db) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM samples").fetchone()
            (keys,) = conn.execute("SELECT count(*) FROM (SELECT DISTINCT tag_id, ts_us FROM samples)").fetchone()
            assert rows == keys == sum(len(h.query_raw(t, T0, T0 + 10 * HOUR_US)) for t in range(TAGS))
        # Rollups written (or half written) before the crash agree with the raw rows.
        end = T0 + (top + 1) * S
        for tag in (0, 13, 49):
            for every in (MINUTE_US, 5 * MINUTE_US):
                from_rollups = h.query_aggregate(tag, T0, end, every)
                from_raw = h.query_aggregate(tag, T0, end, every, use_rollups=False)
                assert [(a.bucket_us, a.count, a.bad_count, a.held_us) for a in from_rollups] == [
                    (a.bucket_us, a.count, a.bad_count, a.held_us) for a in from_raw
                ]
                assert [a.avg for a in from_rollups] == pytest.approx([a.avg for a in from_raw])
        return top
    finally:
        h.close()


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_committed_batches_survive_kill_9(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rnd = random.Random(seed)
    print(f"seed {seed}")  # shown on failure, to replay the same kill points
    script = tmp_path / "writer_child.py"
    script.write_text(CHILD)
    db = tmp_path / "historian.db"
    deadline = time.monotonic() + 10
    first = 0
    for _ in range(2):
        last = run_and_kill(script, db, first, rnd.randint(200, 450), rnd, deadline)
        top = check_file(db, last)
        assert top >= last
        first = top + 1  # the next run carries on after whatever made it to disk
