"""The historian: rollup math (pure), the SQLite store, the disk spool and the asyncio writer.

No daemon: the historian is a self-contained package, tested against a real SQLite file
and small fakes of a remote backend.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scadad.historian import (
    HOUR_US,
    MINUTE_US,
    Aggregate,
    HistorianError,
    HistorianWriter,
    Quality,
    Sample,
    SpooledBackend,
    SqliteHistorian,
)
from scadad.historian.rollup import aggregate, bucket_start, finish, merge, summarize
from scadad.historian.spool import SPOOL_NAME

G, U, B = int(Quality.GOOD), int(Quality.UNCERTAIN), int(Quality.BAD)
S = 1_000_000  # one second in microseconds
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z, on a whole hour


def approx_aggs(got: list[Aggregate], want: list[Aggregate]) -> None:
    """Equal bucket for bucket; floats to 1e-9 (rollups sum in a different order than raw)."""
    assert [a.bucket_us for a in got] == [a.bucket_us for a in want]
    for a, b in zip(got, want, strict=True):
        assert (a.count, a.bad_count, a.held_us) == (b.count, b.bad_count, b.held_us), a.bucket_us
        for field in ("min", "max", "avg", "last"):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None) == (y is None), (a.bucket_us, field, x, y)
            if x is not None:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-9), (a.bucket_us, field)


# ---------------------------------------------------------------------- rollup math (pure)


def test_bucket_start_aligns_on_epoch_and_offset() -> None:
    assert bucket_start(T0 + 59 * S, MINUTE_US) == T0
    assert bucket_start(T0 + 60 * S, MINUTE_US) == T0 + MINUTE_US
    assert bucket_start(T0 + 90 * 60 * S, HOUR_US) == T0 + HOUR_US
    assert bucket_start(-1, MINUTE_US) == -MINUTE_US  # before 1970 still floors
    ist = 5 * HOUR_US + 30 * MINUTE_US  # a local day starting at 18:30 UTC
    assert bucket_start(T0 + 19 * HOUR_US, 24 * HOUR_US, offset_us=-ist) == T0 + 18 * HOUR_US + 30 * MINUTE_US


def test_time_weighted_average_by_hand() -> None:
    # 10 holds 15 s, 20 holds 30 s, 40 holds to the bucket end (15 s): (150 + 600 + 600) / 60
    (agg,) = aggregate([(T0, 10.0, G), (T0 + 15 * S, 20.0, G), (T0 + 45 * S, 40.0, G)], MINUTE_US)
    assert agg == Aggregate(T0, 10.0, 40.0, 22.5, 40.0, 3, 0, 60 * S)


def test_carried_in_value_holds_until_first_sample() -> None:
    # 5 carried in for 20 s, 10 for 20 s, 30 for 20 s: (100 + 200 + 600) / 60 = 15
    (agg,) = aggregate([(T0 + 20 * S, 10.0, G), (T0 + 40 * S, 30.0, U)], MINUTE_US, carry=5.0)
    assert agg == Aggregate(T0, 5.0, 30.0, 15.0, 30.0, 2, 0, 60 * S)
    # Without a carry the first 20 s are simply not covered.
    (agg,) = aggregate([(T0 + 20 * S, 10.0, G), (T0 + 40 * S, 30.0, G)], MINUTE_US)
    assert (agg.avg, agg.min, agg.held_us) == (pytest.approx(20.0), 10.0, 40 * S)


def test_carry_passes_from_bucket_to_bucket_and_through_empty_ones() -> None:
    points = [(T0 + 30 * S, 2.0, G), (T0 + 3 * MINUTE_US + 30 * S, 4.0, G)]
    first, second = aggregate(points, MINUTE_US)
    assert first.avg == 2.0 and first.held_us == 30 * S
    # 2.0 held through the two empty minutes and the first half of this one.
    assert second.bucket_us == T0 + 3 * MINUTE_US
    assert (second.min, second.max, second.avg, second.held_us) == (2.0, 4.0, 3.0, 60 * S)


def test_bad_samples_excluded_but_counted() -> None:
    points = [(T0, 10.0, G), (T0 + 20 * S, None, B), (T0 + 40 * S, 40.0, G)]
    (agg,) = aggregate(points, MINUTE_US)
    # 10 for 20 s, nothing for 20 s, 40 for 20 s: average over the 40 s with a usable value.
    assert agg == Aggregate(T0, 10.0, 40.0, 25.0, 40.0, 2, 1, 40 * S)
    # A BAD sample with a number is still excluded; NaN counts as no value.
    (agg,) = aggregate([(T0, 1.0, G), (T0 + 30 * S, 1000.0, B), (T0 + 45 * S, math.nan, G)], MINUTE_US)
    assert (agg.max, agg.avg, agg.count, agg.bad_count, agg.last) == (1.0, 1.0, 1, 2, None)


def test_bad_at_bucket_end_carries_nothing() -> None:
    points = [(T0, 7.0, G), (T0 + 50 * S, None, B), (T0 + MINUTE_US + 30 * S, 9.0, G)]
    first, second = aggregate(points, MINUTE_US)
    assert first.last is None
    assert (second.min, second.avg, second.held_us) == (9.0, 9.0, 30 * S)


def test_only_bad_samples_give_no_numbers() -> None:
    (agg,) = aggregate([(T0 + S, None, B)], MINUTE_US, carry=3.0)
    # The carried 3.0 still held for the first second.
    assert (agg.min, agg.max, agg.avg, agg.held_us, agg.count, agg.bad_count) == (3.0, 3.0, 3.0, S, 0, 1)
    (agg,) = aggregate([(T0, None, B)], MINUTE_US, carry=3.0)
    assert (agg.min, agg.avg, agg.last, agg.held_us) == (None, None, None, 0)


def test_points_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="out of time order"):
        summarize([(T0 + S, 1.0, G), (T0, 2.0, G)], MINUTE_US)


def test_merge_refuses_misaligned_grids() -> None:
    with pytest.raises(ValueError, match="multiples"):
        merge([], MINUTE_US, 90 * S)


point_lists = st.lists(
    st.tuples(
        st.integers(0, 3 * HOUR_US // S),
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
        st.sampled_from([G, U, B]),
    ),
    max_size=60,
    unique_by=lambda p: p[0],
)


@settings(max_examples=60, deadline=None)
@given(point_lists, st.one_of(st.none(), st.floats(-100, 100)))
def test_merged_rollups_equal_direct_aggregation(raw: list, carry: float | None) -> None:
    points = sorted((T0 + t * S, v, q) for t, v, q in raw)
    minutes = summarize(points, MINUTE_US)
    for width, offset in ((HOUR_US, 0), (15 * MINUTE_US, 0), (HOUR_US, 30 * MINUTE_US)):
        approx_aggs(
            finish(merge(minutes, MINUTE_US, width, offset), carry),
            aggregate(points, width, carry, offset),
        )
    for agg in aggregate(points, 10 * MINUTE_US, carry):
        if agg.avg is not None:
            assert agg.min - 1e-6 <= agg.avg <= agg.max + 1e-6


# ---------------------------------------------------------------------- the SQLite store


@pytest.fixture
def hist(tmp_path: Path):
    h = SqliteHistorian(tmp_path / "historian.db")
    yield h
    h.close()


def raw_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT tag_id, ts_us, value, quality FROM samples ORDER BY 1, 2").fetchall()


def test_raw_round_trip_before_and_after_compaction(hist: SqliteHistorian) -> None:
    batch = [
        Sample(1, T0, 1.5, Quality.GOOD),
        Sample(1, T0 + S, None, Quality.BAD),
        Sample(1, T0 + 2 * S, -2.25, Quality.UNCERTAIN),
        Sample(2, T0, 100.0, Quality.GOOD),
        Sample(1, T0 + 3 * S, math.nan, Quality.GOOD),
    ]
    hist.write_batch(batch)
    want = [batch[0], batch[1], batch[2], Sample(1, T0 + 3 * S, None, Quality.GOOD)]
    assert hist.query_raw(1, T0, T0 + 10 * S) == want
    assert hist.ingest_rows == 5
    assert hist.compact() == 5
    assert hist.ingest_rows == 0
    got = hist.query_raw(1, T0, T0 + 10 * S)
    assert got == want and all(type(s.quality) is Quality for s in got)
    assert hist.query_raw(1, T0 + S, T0 + 3 * S) == want[1:3]  # [start, end)
    assert hist.query_raw(1, T0, T0 + 10 * S, limit=2) == want[:2]
    assert hist.query_raw(3, T0, T0 + 10 * S) == []


def test_duplicate_batch_changes_nothing_last_value_wins(hist: SqliteHistorian) -> None:
    batch = [Sample(t, T0 + i * S, float(i), Quality.GOOD) for t in (1, 2) for i in range(10)]
    hist.write_batch(batch)
    hist.write_batch(batch)  # a retried batch
    assert hist.query_raw(1, T0, T0 + HOUR_US) == batch[:10]  # while still in the ingest log
    hist.compact()
    hist.write_batch(batch[:3])  # and again after compaction
    assert hist.query_raw(1, T0, T0 + HOUR_US) == batch[:10]
    hist.compact()
    assert raw_rows(hist.path) == [(s.tag_id, s.ts_us, s.value, int(s.quality)) for s in batch]
    newer = Sample(1, T0, 999.0, Quality.BAD)  # same key, other value: replaces
    hist.write_batch([newer])
    assert hist.query_raw(1, T0, T0 + S) == [newer]
    hist.compact()
    assert hist.query_raw(1, T0, T0 + HOUR_US) == [newer, *batch[1:10]]
    assert hist.query_raw(2, T0, T0 + HOUR_US) == batch[10:]


def test_samples_sharing_a_timestamp_keep_the_last_written(hist: SqliteHistorian) -> None:
    """A fixed daemon clock stamps every sample with one instant: a setpoint written after
    the initial value must win in every read, through compaction and rollups, and leave
    other tags' samples at that instant alone."""
    other = [Sample(2, T0, 5.0, Quality.GOOD), Sample(3, T0, None, Quality.BAD)]
    hist.write_batch([Sample(1, T0, 20.0, Quality.GOOD), *other])  # initial value, other tags
    hist.write_batch([Sample(1, T0, 35.0, Quality.GOOD)])  # the setpoint, same instant
    hist.write_batch([Sample(1, T0, 42.0, Quality.GOOD), Sample(1, T0, 42.5, Quality.GOOD)])  # one batch, twice
    # Tag 4: the value carried into the next minute is the last one written at T0.
    hist.write_batch([Sample(4, T0, 10.0, Quality.GOOD), Sample(4, T0, 11.0, Quality.GOOD)])
    hist.write_batch([Sample(4, T0 + 90 * S, 12.0, Quality.GOOD)])

    def check() -> None:
        assert hist.query_raw(1, T0 - S, T0 + S) == [Sample(1, T0, 42.5, Quality.GOOD)]
        assert hist.latest([1, 2, 3]) == {1: Sample(1, T0, 42.5, Quality.GOOD), 2: other[0], 3: other[1]}
        for rollups in (True, False):
            (agg,) = hist.query_aggregate(1, T0, T0 + MINUTE_US, MINUTE_US, use_rollups=rollups)
            assert (agg.count, agg.min, agg.max, agg.last) == (1, 42.5, 42.5, 42.5)
            (nxt,) = hist.query_aggregate(4, T0 + MINUTE_US, T0 + 2 * MINUTE_US, MINUTE_US, use_rollups=rollups)
            assert (nxt.min, nxt.avg, nxt.max) == (11.0, 11.5, 12.0)

    check()
    assert hist.compact() == 9
    check()
    tag4 = [(4, T0, 11.0, G), (4, T0 + 90 * S, 12.0, G)]
    assert raw_rows(hist.path) == [(1, T0, 42.5, G), (2, T0, 5.0, G), (3, T0, None, B), *tag4]
    assert hist.rollup_pending(now_us=T0 + HOUR_US + 10 * MINUTE_US) > 0
    check()
    hist.write_batch([Sample(1, T0, 50.0, Quality.GOOD)])  # over a compacted, rolled-up row
    hist.compact()
    assert hist.rollup_pending(now_us=T0 + HOUR_US + 10 * MINUTE_US) > 0
    assert raw_rows(hist.path) == [(1, T0, 50.0, G), (2, T0, 5.0, G), (3, T0, None, B), *tag4]
    (agg,) = hist.query_aggregate(1, T0, T0 + MINUTE_US, MINUTE_US)  # from the recomputed rollup
    assert (agg.count, agg.last) == (1, 50.0)
    assert hist.query_aggregate(2, T0, T0 + MINUTE_US, MINUTE_US)[0].last == 5.0
    assert hist.integrity_check() == []


def test_raw_reads_interleave_stored_and_fresh_rows(hist: SqliteHistorian) -> None:
    hist.write_batch([Sample(1, T0 + k * S, float(k), Quality.GOOD) for k in range(0, 20, 2)])
    hist.compact()
    hist.write_batch([Sample(1, T0 + k * S, float(k), Quality.GOOD) for k in range(1, 20, 2)])
    hist.write_batch([Sample(1, T0 + 4 * S, -1.0, Quality.BAD)])  # a stored key again: replaces it
    got = hist.query_raw(1, T0, T0 + HOUR_US, limit=5)
    assert [(s.ts_us - T0) // S for s in got] == [0, 1, 2, 3, 4] and got[4] == Sample(1, T0 + 4 * S, -1.0, Quality.BAD)
    assert [s.value for s in hist.query_raw(1, T0 + 3 * S, T0 + 7 * S)] == [3.0, -1.0, 5.0, 6.0]
    assert len(hist.query_raw(1, T0, T0 + HOUR_US)) == 20


def test_aggregate_query_arguments(hist: SqliteHistorian) -> None:
    hist.write_batch([Sample(1, T0, 1.0, Quality.GOOD)])
    assert hist.query_aggregate(1, T0 + S, T0 + S, MINUTE_US) == []
    with pytest.raises(ValueError, match="every_us must be positive"):
        hist.query_aggregate(1, T0, T0 + S, 0)
    # Any overlap returns the whole bucket.
    (agg,) = hist.query_aggregate(1, T0 + 30 * S, T0 + 31 * S, MINUTE_US)
    assert (agg.bucket_us, agg.count, agg.held_us) == (T0, 1, MINUTE_US)


def test_latest_merges_stored_and_fresh_rows(hist: SqliteHistorian) -> None:
    hist.write_batch([Sample(1, T0, 1.0, Quality.GOOD), Sample(2, T0 + S, 2.0, Quality.GOOD)])
    hist.compact()
    hist.write_batch([Sample(1, T0 + 5 * S, None, Quality.BAD), Sample(3, T0, 3.0, Quality.UNCERTAIN)])
    hist.write_batch([Sample(2, T0, 20.0, Quality.GOOD)])  # older than what is stored: not the latest
    got = hist.latest([1, 2, 3, 4, 1])
    assert got == {
        1: Sample(1, T0 + 5 * S, None, Quality.BAD),
        2: Sample(2, T0 + S, 2.0, Quality.GOOD),
        3: Sample(3, T0, 3.0, Quality.UNCERTAIN),
    }
    assert hist.latest([]) == {}


def make_history(seed: int, tags: Sequence[int], hours: int) -> list[Sample]:
    """Irregular samples (1-200 s apart) with some BAD and UNCERTAIN, per tag, time-ordered."""
    rnd = random.Random(seed)
    out = []
    for tag in tags:
        t = T0 + rnd.randrange(0, 90) * S
        while t < T0 + hours * HOUR_US:
            r = rnd.random()
            quality = Quality.BAD if r < 0.08 else Quality.UNCERTAIN if r < 0.15 else Quality.GOOD
            value = None if quality is Quality.BAD and rnd.random() < 0.7 else round(rnd.uniform(-50, 150), 3)
            out.append(Sample(tag, t, value, quality))
            # Mostly short steps, now and then a gap of several minutes (empty buckets).
            t += rnd.randrange(1, 40) * S if rnd.random() < 0.9 else rnd.randrange(120, 1200) * S
    return out


QUERIES = [  # (every, offset)
    (MINUTE_US, 0),
    (5 * MINUTE_US, 0),
    (7 * MINUTE_US, 3 * MINUTE_US),
    (HOUR_US, 0),
    (2 * HOUR_US, 0),
    (HOUR_US, 30 * MINUTE_US),  # whole minutes, not whole hours: served from minute rollups
    (90 * S, 0),  # not whole minutes: raw
]


def assert_rollups_match_raw(h: SqliteHistorian, tag: int, start: int, end: int) -> None:
    for every, offset in QUERIES:
        via_rollups = h.query_aggregate(tag, start, end, every, offset_us=offset)
        assert via_rollups, (every, offset)
        approx_aggs(via_rollups, h.query_aggregate(tag, start, end, every, offset_us=offset, use_rollups=False))


def test_aggregates_from_rollups_equal_aggregates_from_raw(hist: SqliteHistorian) -> None:
    data = make_history(7, (1, 2), hours=4)
    for i in range(0, len(data), 500):
        hist.write_batch(data[i : i + 500])
    end = T0 + 4 * HOUR_US
    # Nothing rolled up yet: every bucket is dirty and computed from raw rows.
    assert_rollups_match_raw(hist, 1, T0 - HOUR_US, end)
    rolled = hist.rollup_pending(now_us=end + HOUR_US)
    assert rolled > 0 and hist.pending_rollups() == 0
    with sqlite3.connect(hist.path) as conn:
        assert conn.execute("SELECT count(*) FROM rollup_1h").fetchone()[0] == 8
        assert (
            conn.execute("SELECT count(*) FROM rollup_1m WHERE tag_id = 1").fetchone()[0] > 50
        )  # and some empty minutes
    for tag in (1, 2):
        assert_rollups_match_raw(hist, tag, T0 - HOUR_US, end)
        assert_rollups_match_raw(hist, tag, T0 + 37 * MINUTE_US + 5 * S, T0 + 3 * HOUR_US + 11 * S)

    # A late sample in an already rolled bucket: correct at once (dirty bucket from raw),
    # and still correct after the next rollup pass.
    hist.write_batch([Sample(1, T0 + 90 * MINUTE_US + 500_000, 1e4, Quality.GOOD)])
    assert_rollups_match_raw(hist, 1, T0, end)
    assert hist.rollup_pending(now_us=end + HOUR_US) == 2  # its minute and its hour
    assert_rollups_match_raw(hist, 1, T0, end)
    (hour,) = hist.query_aggregate(1, T0 + HOUR_US, T0 + 2 * HOUR_US, HOUR_US)
    assert hour.max == 1e4


def test_aggregates_are_served_from_rollups(hist: SqliteHistorian) -> None:
    data = make_history(3, (5,), hours=3)
    hist.write_batch(data)
    hist.rollup_pending(now_us=T0 + 4 * HOUR_US)
    want_h = hist.query_aggregate(5, T0, T0 + 3 * HOUR_US, HOUR_US)
    want_m = hist.query_aggregate(5, T0, T0 + 3 * HOUR_US, MINUTE_US)
    # Drop the raw rows but keep the rollups: hour and minute trends survive.
    result = hist.apply_retention(T0 + 3 * HOUR_US, rollups=False)
    assert result.raw == len(data) and (result.minute, result.hour) == (0, 0)
    assert hist.query_raw(5, T0, T0 + 3 * HOUR_US) == []
    assert hist.query_aggregate(5, T0, T0 + 3 * HOUR_US, MINUTE_US, use_rollups=False) == []
    assert hist.query_aggregate(5, T0, T0 + 3 * HOUR_US, HOUR_US) == want_h
    assert hist.query_aggregate(5, T0, T0 + 3 * HOUR_US, MINUTE_US) == want_m


def test_rollup_pending_waits_for_closed_buckets_and_respects_budget(hist: SqliteHistorian) -> None:
    hist.write_batch([Sample(t, T0 + i * 10 * S, float(i), Quality.GOOD) for t in (1, 2, 3) for i in range(12)])
    # Two minutes of data, rows still in the ingest log; the second minute is still open.
    assert hist.rollup_pending(now_us=T0 + MINUTE_US + 30 * S) == 3
    assert hist.ingest_rows == 0  # compacted because a closed minute had rows in it
    assert hist.rollup_pending(now_us=T0 + MINUTE_US + 30 * S) == 0
    assert hist.rollup_pending(now_us=T0 + 3 * MINUTE_US, max_buckets=2) == 2
    assert hist.rollup_pending(now_us=T0 + 3 * MINUTE_US, max_buckets=2) == 1  # minutes done, hours wait
    assert hist.rollup_pending(now_us=T0 + 2 * HOUR_US) == 3  # the three hours
    assert hist.pending_rollups() == 0


def test_compaction_threshold_and_reopen_keeps_ingest_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with SqliteHistorian(path, compact_rows=100) as h:
        h.write_batch([Sample(1, T0 + i, float(i), Quality.GOOD) for i in range(60)])
        assert h.ingest_rows == 60
        h.write_batch([Sample(1, T0 + 60 + i, float(i), Quality.GOOD) for i in range(60)])
        assert h.ingest_rows == 0
        h.write_batch([Sample(2, T0, 1.0, Quality.GOOD)])
    with SqliteHistorian(path) as h:
        assert h.ingest_rows == 1
        assert len(h.query_raw(1, T0, T0 + S)) == 120 and len(h.query_raw(2, T0, T0 + S)) == 1
        assert h.integrity_check() == []


def test_retention_per_tag_and_global_in_chunks(hist: SqliteHistorian) -> None:
    data = [Sample(t, T0 + i * 30 * S, float(i), Quality.GOOD) for t in (1, 2, 3) for i in range(240)]  # 2 h each
    hist.write_batch(data)
    hist.rollup_pending(now_us=T0 + 3 * HOUR_US)
    hist.write_batch([Sample(2, T0 + 10 * S, 5.0, Quality.GOOD)])  # one row still in the ingest log
    cut = T0 + HOUR_US + 30 * MINUTE_US

    result = hist.apply_retention(cut, tag_id=1, chunk_rows=7)
    assert (result.raw, result.minute, result.hour) == (180, 90, 1)
    assert hist.query_raw(1, 0, cut) == [] and len(hist.query_raw(1, cut, T0 + 3 * HOUR_US)) == 60
    assert len(hist.query_raw(2, 0, cut)) == 181  # other tags untouched
    assert hist.query_aggregate(1, T0, T0 + 2 * HOUR_US, HOUR_US)[0].bucket_us == T0 + HOUR_US

    result = hist.apply_retention(cut, chunk_rows=50)
    assert (result.raw, result.minute, result.hour) == (361, 180, 2)
    for tag in (1, 2, 3):
        assert len(hist.query_raw(tag, 0, T0 + 3 * HOUR_US)) == 60
        assert len(hist.query_aggregate(tag, 0, T0 + 3 * HOUR_US, MINUTE_US)) == 30
    assert hist.apply_retention(cut) == type(result)(0, 0, 0)
    assert hist.integrity_check() == []


def test_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(HistorianError, match="directory exists"):
        SqliteHistorian(tmp_path / "missing" / "h.db")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(HistorianError, match="not a historian file"):
        SqliteHistorian(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistorianError, match="not a usable historian database"):
        SqliteHistorian(junk)
    h = SqliteHistorian(tmp_path / "h.db")
    h.close()
    with pytest.raises(HistorianError, match="closed"):
        h.write_batch([Sample(1, T0, 1.0, Quality.GOOD)])


def test_reads_from_other_threads_see_committed_data(hist: SqliteHistorian) -> None:
    hist.write_batch([Sample(1, T0, 1.0, Quality.GOOD)])

    async def main() -> list[Sample]:
        return await asyncio.to_thread(hist.query_raw, 1, T0, T0 + S)

    assert asyncio.run(main()) == [Sample(1, T0, 1.0, Quality.GOOD)]


# ---------------------------------------------------------------------- the spool


class FakeRemote:
    """A remote backend that is down while `down` is set; keeps what it received, in order."""

    def __init__(self) -> None:
        self.down = False
        self.fail_after: int | None = None  # go down after this many more successful writes
        self.received: list[list[Sample]] = []
        self.closed = False
        self.maintained = 0

    def write_batch(self, samples: Sequence[Sample]) -> None:
        if self.fail_after is not None:
            if self.fail_after == 0:
                self.down = True
            self.fail_after -= 1
        if self.down:
            raise ConnectionRefusedError("remote historian unreachable")
        self.received.append(list(samples))

    def maintain(self) -> None:
        self.maintained += 1

    def close(self) -> None:
        self.closed = True


def batch_of(n: int, start: int = 0) -> list[Sample]:
    return [Sample(n, T0 + (start + i) * S, float(start + i), Quality.GOOD) for i in range(5)]


def test_spool_stores_and_forwards_in_order(tmp_path: Path) -> None:
    remote = FakeRemote()
    sb = SpooledBackend(remote, tmp_path, retry_interval_s=0)
    sb.write_batch(batch_of(1))
    remote.down = True
    for n in (2, 3, 4):
        sb.write_batch(batch_of(n))  # no exception: spooled
    assert (sb.stats.spooled_batches, sb.stats.backend_failures) == (3, 3)
    assert (tmp_path / SPOOL_NAME).stat().st_size == sb.stats.spool_bytes > 0
    remote.down = False
    sb.write_batch(batch_of(5))
    assert remote.received == [batch_of(n) for n in (1, 2, 3, 4, 5)]
    assert not (tmp_path / SPOOL_NAME).exists()
    assert (sb.stats.replayed_batches, sb.stats.replayed_samples, sb.stats.spool_bytes) == (3, 15, 0)


def test_spool_replay_resumes_where_it_stopped(tmp_path: Path) -> None:
    remote = FakeRemote()
    sb = SpooledBackend(remote, tmp_path, retry_interval_s=0)
    remote.down = True
    for n in (1, 2, 3):
        sb.write_batch(batch_of(n))
    remote.down = False
    remote.fail_after = 1  # delivers batch 1 of the replay, then fails again
    sb.write_batch(batch_of(4))
    assert remote.received == [batch_of(1)]
    remote.down, remote.fail_after = False, None
    sb.maintain()
    assert remote.received == [batch_of(n) for n in (1, 2, 3, 4)]  # nothing sent twice
    assert remote.maintained == 1


def test_spool_waits_retry_interval_and_survives_restart(tmp_path: Path) -> None:
    now = [0.0]
    remote = FakeRemote()
    remote.down = True
    sb = SpooledBackend(remote, tmp_path, retry_interval_s=5, monotonic=lambda: now[0])
    sb.write_batch(batch_of(1))
    remote.down = False
    sb.write_batch(batch_of(2))  # within the retry interval: spooled without trying
    assert remote.received == [] and sb.stats.backend_failures == 1
    sb.close()
    assert remote.closed

    remote2 = FakeRemote()
    sb2 = SpooledBackend(remote2, tmp_path)  # a restarted daemon finds the spool
    assert sb2.stats.spool_bytes > 0
    sb2.maintain()
    assert remote2.received == [batch_of(1), batch_of(2)]


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_spool_torn_tail_is_skipped_and_counted(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    remote = FakeRemote()
    remote.down = True
    sb = SpooledBackend(remote, tmp_path)
    for n in (1, 2, 3):
        sb.write_batch(batch_of(n))
    sb.close()
    spool = tmp_path / SPOOL_NAME
    size = spool.stat().st_size
    if damage == "cut":  # a crash in the middle of writing record 3
        with open(spool, "r+b") as f:
            f.truncate(size - 7)
    else:  # a crash that left junk after the last record
        with open(spool, "ab") as f:
            f.write(os.urandom(40))
    with caplog.at_level(logging.ERROR, logger="scadad.historian"):
        remote2 = FakeRemote()
        sb2 = SpooledBackend(remote2, tmp_path, retry_interval_s=0)
    assert sb2.stats.corrupt_records == 1 and sb2.stats.corrupt_bytes > 0
    assert "torn or damaged" in caplog.text
    sb2.write_batch(batch_of(9))  # appends after the valid prefix, then replays
    want = [batch_of(1), batch_of(2)] if damage == "cut" else [batch_of(1), batch_of(2), batch_of(3)]
    assert remote2.received == [*want, batch_of(9)]


def test_spool_over_max_bytes_drops_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    remote = FakeRemote()
    remote.down = True
    sb = SpooledBackend(remote, tmp_path, max_bytes=300)
    with caplog.at_level(logging.ERROR, logger="scadad.historian"):
        for n in range(10):
            sb.write_batch(batch_of(n))
    assert sb.stats.spooled_batches == 2  # each record is ~130 bytes
    assert (sb.stats.dropped_batches, sb.stats.dropped_samples) == (8, 40)
    assert sb.stats.spool_bytes <= 300
    assert caplog.text.count("samples are being dropped") == 1  # once per outage, not per batch


# ---------------------------------------------------------------------- the writer


class SlowBackend:
    """Takes `delay` seconds per batch; fails the first `failures` calls."""

    def __init__(self, delay: float = 0.0, failures: int = 0) -> None:
        self.delay = delay
        self.failures = failures
        self.batches: list[list[Sample]] = []
        self.threads: set[str] = set()
        self.closed = False

    def write_batch(self, samples: Sequence[Sample]) -> None:
        import threading

        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise OSError("disk on fire")
        self.batches.append(list(samples))

    def close(self) -> None:
        self.closed = True


def samples(n: int, start: int = 0) -> list[Sample]:
    return [Sample(i % 50, T0 + (start + i) * S, float(i), Quality.GOOD) for i in range(n)]


def test_writer_submit_never_blocks_and_counts_drops() -> None:
    backend = SlowBackend(delay=0.1)

    async def main() -> None:
        writer = HistorianWriter(backend, max_queue=1_000, batch_size=200, flush_interval_s=0.01)
        writer.start()
        accepted = rejected = 0
        worst = 0.0
        for i in range(30):
            t = time.perf_counter()
            ok = writer.submit(samples(100, i * 100))
            worst = max(worst, time.perf_counter() - t)
            accepted += ok
            rejected += not ok
            await asyncio.sleep(0)
        assert worst < 0.05  # a backend taking 0.1 s per batch never held up submit
        assert rejected > 0 and writer.stats.dropped == rejected * 100
        assert writer.stats.submitted == accepted * 100
        await writer.close()
        stats = writer.stats
        assert stats.committed == stats.submitted == accepted * 100
        assert sum(len(b) for b in backend.batches) == stats.committed
        assert writer.submit(samples(1)) is False  # closed
        assert backend.closed and len(backend.threads) == 1  # every write on one dedicated thread

    asyncio.run(main())


def test_writer_retries_failed_writes(caplog: pytest.LogCaptureFixture) -> None:
    backend = SlowBackend(failures=2)

    async def main() -> None:
        async with HistorianWriter(backend, batch_size=10, flush_interval_s=0.01, max_backoff_s=0.05) as writer:
            assert writer.submit(samples(25))
            await asyncio.wait_for(writer.flush(), 5)
            assert writer.committed_through == 25
            assert writer.stats.errors == 2 and "disk on fire" in (writer.stats.last_error or "")
        assert [s for b in backend.batches for s in b] == samples(25)  # in order, nothing lost

    with caplog.at_level(logging.ERROR, logger="scadad.historian"):
        asyncio.run(main())
    assert "historian write failed; retrying" in caplog.text


def test_writer_close_gives_up_after_timeout_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    backend = SlowBackend(failures=10**9)

    async def main() -> None:
        writer = HistorianWriter(backend, batch_size=10, flush_interval_s=0.01, max_backoff_s=0.02)
        writer.start()
        writer.submit(samples(30))
        waiter = asyncio.ensure_future(writer.flush())
        await writer.close(timeout_s=0.3)
        assert writer.stats.abandoned == 30 and writer.stats.committed == 0
        with pytest.raises(HistorianError, match="not written"):
            await waiter

    with caplog.at_level(logging.ERROR, logger="scadad.historian"):
        asyncio.run(main())
    assert "they are lost" in caplog.text


def test_writer_into_sqlite_commits_everything_and_maintains(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    hist = SqliteHistorian(path, compact_rows=20_000, rollup_grace_us=0)
    base = T0 - 400 * 24 * HOUR_US  # long past: every bucket is closed by the real clock

    async def main() -> int:
        writer = HistorianWriter(
            hist, max_queue=20_000, batch_size=1_000, flush_interval_s=0.02, maintain_interval_s=0.05
        )
        writer.start()
        for i in range(60):
            writer.submit(
                [
                    Sample(tag, base + (i * 10 + k) * S, float(tag + k), Quality.GOOD)
                    for tag in range(100)
                    for k in range(10)
                ]
            )
            await asyncio.sleep(0.001)
        await writer.flush()
        assert writer.committed_through == writer.stats.submitted
        await asyncio.sleep(0.25)  # a few maintain rounds
        await writer.close()
        stats = writer.stats
        assert stats.committed == stats.submitted and stats.committed + stats.dropped == 60_000
        assert stats.queue_depth == stats.in_flight == 0
        return stats.committed

    committed = asyncio.run(main())
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT (SELECT count(*) FROM samples) + (SELECT count(*) FROM ingest)").fetchone()[0]
        dirty = conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0]
        minutes = conn.execute("SELECT count(*) FROM rollup_1m").fetchone()[0]
    assert rows == committed > 0
    assert minutes > 0 and dirty == 0  # maintain rolled everything up
