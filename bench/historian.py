"""Throughput and query latency of the embedded SQLite historian.

What it measures
  1. Ingest: --samples values (default 2,000,000) through `SqliteHistorian.write_batch` in
     batches of one timestamp x --tags tags (default 5,000 tags: 400 batches of 5,000, one
     second apart), the shape the tag engine produces. The figure covers every write_batch
     call plus the compactions they trigger and a final `compact()`, i.e. until every value
     is in the tag-clustered `samples` table. Baseline, in the same run: a plain
     `executemany` of the same rows (pre-built tuples, one transaction per batch) into an
     identical bare `samples` table in a fresh file with the same pragmas (WAL,
     synchronous=NORMAL). The historian figure is the median of --repeat runs (default 3;
     the machine is shared, one run can be unlucky); the baseline runs once, being ~4x
     longer. For context, also a bare append-only table (the physical ceiling
     of any ingest path) and the whole pipeline through `HistorianWriter` (asyncio submit
     -> queue -> writer thread). Targets: >= 200,000 values/s, and >= 0.5 x the baseline.
  2. Query: one year of 1-minute data for one tag (525,600 samples, 1 % BAD), rolled up,
     then `query_aggregate(tag, year_start, year_end, every=1 h)` (8,760 buckets), median
     of 5 runs (target < 100 ms); for scale, the same aggregate computed from raw rows
     (`use_rollups=False`, median of 3) and a daily aggregate merged from hour rollups.
  3. Sustained: the daemon's steady pattern, --sustained runs (default 20,000 tags x 120 s
     and 100,000 tags x 60 s): every tag changes once a second, each second's values go to
     `write_batch` in slices of 5,000 (the writer's batch), `maintain()` every 5 simulated
     seconds with the clock injected so minutes close as they would live. Reported: process
     CPU time (time.process_time, all threads) per value of those calls, and the same
     including the final maintain passes that roll up the last minute after it closes.
  Every figure gets PASS/MISS where there is a target; the script exits 0 whatever the
  figures (it is a measurement, not a test) and non-zero only if the harness fails
  (a result does not match, e.g. rollups disagree with raw).

How to run (from the repository root)
  .venv/bin/python bench/historian.py               # table, ~1-2 minutes on 2 cores
  .venv/bin/python bench/historian.py --json        # one JSON object on stdout
  .venv/bin/python bench/historian.py --samples 500000
Files go to a temporary directory (--dir to choose where) that is removed at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scadad.historian import HOUR_US, MINUTE_US, HistorianWriter, Quality, Sample, SqliteHistorian

INGEST_TARGET = 200_000.0
RATIO_TARGET = 0.5
QUERY_TARGET_MS = 100.0
S = 1_000_000
DAY_US = 24 * HOUR_US
YEAR_START = 1_735_689_600 * S  # 2025-01-01T00:00:00Z
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z, for the ingest runs

BARE_TABLE = (
    "CREATE TABLE samples (tag_id INTEGER NOT NULL, ts_us INTEGER NOT NULL, value REAL, "
    "quality INTEGER NOT NULL, PRIMARY KEY (tag_id, ts_us)) WITHOUT ROWID"
)
APPEND_TABLE = (
    "CREATE TABLE samples (tag_id INTEGER NOT NULL, ts_us INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL)"
)


class BenchError(Exception):
    """The harness failed (as opposed to a figure missing its target)."""


def batch_samples(k: int, tags: int) -> list[Sample]:
    ts = T0 + k * S
    return [Sample(tag, ts, tag * 0.25 + k, Quality.GOOD) for tag in range(tags)]


def batch_rows(k: int, tags: int) -> list[tuple[int, int, float, int]]:
    ts = T0 + k * S
    return [(tag, ts, tag * 0.25 + k, 0) for tag in range(tags)]


def ingest_historian(path: Path, batches: int, tags: int) -> dict[str, Any]:
    h = SqliteHistorian(path)
    spent = 0.0
    slowest = 0.0
    try:
        for k in range(batches):
            batch = batch_samples(k, tags)  # built outside the timed span, like the baseline's rows
            t = time.perf_counter()
            h.write_batch(batch)
            dt = time.perf_counter() - t
            spent += dt
            slowest = max(slowest, dt)
        t = time.perf_counter()
        h.compact()
        spent += time.perf_counter() - t
        stored = len(h.query_raw(tags - 1, T0, T0 + batches * S))
    finally:
        h.close()
    if stored != batches:
        raise BenchError(f"historian ingest: tag {tags - 1} has {stored} samples, expected {batches}")
    return {"values_per_s": batches * tags / spent, "seconds": spent, "slowest_batch_ms": slowest * 1000}


def ingest_bare(path: Path, batches: int, tags: int, schema: str) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    spent = 0.0
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(schema)
        for k in range(batches):
            rows = batch_rows(k, tags)
            t = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
            spent += time.perf_counter() - t
        (count,) = conn.execute("SELECT count(*) FROM samples").fetchone()
    finally:
        conn.close()
    if count != batches * tags:
        raise BenchError(f"bare ingest stored {count} rows, expected {batches * tags}")
    return {"values_per_s": batches * tags / spent, "seconds": spent}


def ingest_writer(path: Path, batches: int, tags: int) -> dict[str, float]:
    async def run() -> tuple[float, int, int]:
        h = SqliteHistorian(path)
        writer = HistorianWriter(h, max_queue=100_000, batch_size=5_000)
        writer.start()
        t = time.perf_counter()
        for k in range(batches):
            batch = batch_samples(k, tags)
            # Wait for room rather than have submit drop: this measures the writer's capacity.
            while writer.stats.queue_depth + len(batch) > writer.max_queue:
                await asyncio.sleep(0.002)
            if not writer.submit(batch):
                raise BenchError("submit refused a batch although the queue had room")
            await asyncio.sleep(0)
        await writer.flush()
        await asyncio.to_thread(h.compact)
        spent = time.perf_counter() - t
        await writer.close()
        return spent, writer.stats.committed, writer.stats.dropped

    spent, committed, dropped = asyncio.run(run())
    if committed != batches * tags:
        raise BenchError(f"writer committed {committed} samples, expected {batches * tags}")
    return {"values_per_s": committed / spent, "seconds": spent, "dropped": dropped}


def year_of_minutes(tag: int) -> list[Sample]:
    rnd = random.Random(42)
    out = []
    for i in range(365 * 24 * 60):
        ts = YEAR_START + i * MINUTE_US
        if rnd.random() < 0.01:
            out.append(Sample(tag, ts, None, Quality.BAD))
        else:
            day = math.sin(2 * math.pi * (i % 1440) / 1440)
            out.append(Sample(tag, ts, round(400 + 150 * day + rnd.gauss(0, 10), 3), Quality.GOOD))
    return out


def median_ms(fn: Any, runs: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def query_year(path: Path) -> dict[str, float]:
    tag = 7
    data = year_of_minutes(tag)
    h = SqliteHistorian(path)
    try:
        t = time.perf_counter()
        for i in range(0, len(data), 5_000):
            h.write_batch(data[i : i + 5_000])
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        h.rollup_pending(now_us=YEAR_START + 400 * DAY_US, max_buckets=10**9)
        rollup_s = time.perf_counter() - t
        if h.pending_rollups():
            raise BenchError("rollups left pending after rollup_pending with an unlimited budget")
        end = YEAR_START + 365 * DAY_US
        hourly_ms, hourly = median_ms(lambda: h.query_aggregate(tag, YEAR_START, end, HOUR_US), 5)
        raw_ms, from_raw = median_ms(lambda: h.query_aggregate(tag, YEAR_START, end, HOUR_US, use_rollups=False), 3)
        daily_ms, daily = median_ms(lambda: h.query_aggregate(tag, YEAR_START, end, DAY_US), 5)
    finally:
        h.close()
    if len(hourly) != 8_760 or len(daily) != 365:
        raise BenchError(f"expected 8,760 hourly and 365 daily buckets, got {len(hourly)} and {len(daily)}")
    for a, b in zip(hourly, from_raw, strict=True):
        if (a.bucket_us, a.count, a.bad_count, a.held_us) != (b.bucket_us, b.count, b.bad_count, b.held_us) or not (
            math.isclose(a.avg or 0.0, b.avg or 0.0, rel_tol=1e-9) and a.min == b.min and a.max == b.max
        ):
            raise BenchError(f"hourly aggregate from rollups differs from raw at bucket {a.bucket_us}")
    return {
        "samples": len(data),
        "load_s": load_s,
        "rollup_s": rollup_s,
        "hourly_from_rollups_ms": hourly_ms,
        "hourly_from_raw_ms": raw_ms,
        "daily_from_hour_rollups_ms": daily_ms,
        "buckets": len(hourly),
    }


def sustained_samples(k: int, tags: int) -> list[Sample]:
    """Second k of the daemon's pattern: every tag changes once, now and then a BAD read."""
    ts = T0 + k * S
    return [
        Sample(tag, ts, None, Quality.BAD)
        if (tag + k) % 97 == 0
        else Sample(tag, ts, tag * 0.25 + k * 0.5, Quality.GOOD)
        for tag in range(tags)
    ]


def sustained(path: Path, tags: int, seconds: int, batch_size: int = 5_000, **options: Any) -> dict[str, Any]:
    """CPU per value of the daemon's steady pattern through `write_batch` + `maintain`.

    `tags` tags each change once a second for `seconds` simulated seconds; each second's
    values go to `write_batch` in slices of `batch_size` (the writer's default), and
    `maintain()` runs every 5 simulated seconds, the clock (`scadad.clock.now_us`) following
    the samples' time so minutes close as they would live. Measured: process CPU time
    (`time.process_time`) of those calls only (building the samples is not counted), then
    the same for the final maintain passes that roll up the last minute once it closes.
    """
    from scadad import clock

    now = [T0]
    real_now = clock.now_us
    clock.now_us = lambda: now[0]  # type: ignore[assignment]
    h = SqliteHistorian(path, **options)
    cpu = 0.0
    wall = 0.0
    try:
        for k in range(seconds):
            batch = sustained_samples(k, tags)
            now[0] = T0 + k * S
            c, w = time.process_time(), time.perf_counter()
            for i in range(0, len(batch), batch_size):
                h.write_batch(batch[i : i + batch_size])
            if k % 5 == 4:
                h.maintain()
            cpu += time.process_time() - c
            wall += time.perf_counter() - w
        # Let the last minute close and roll it up, as the live daemon would 5 s later.
        now[0] = T0 + seconds * S + MINUTE_US + h.rollup_grace_us
        c = time.process_time()
        while h.rollup_pending():  # what maintain() does, repeated until nothing is left
            pass
        drain = time.process_time() - c
        values = tags * seconds
        minutes = len(h.query_aggregate(tags - 1, T0, T0 + seconds * S, MINUTE_US))
        for tag in (0, tags // 2, tags - 1):
            a = h.query_aggregate(tag, T0, T0 + seconds * S, MINUTE_US)
            b = h.query_aggregate(tag, T0, T0 + seconds * S, MINUTE_US, use_rollups=False)
            if a != b:
                raise BenchError(f"sustained: minute rollups of tag {tag} differ from raw")
    finally:
        h.close()
        clock.now_us = real_now  # type: ignore[assignment]
    return {
        "tags": tags,
        "seconds": seconds,
        "values": values,
        "cpu_us_per_value": cpu / values * 1e6,
        "cpu_us_per_value_with_drain": (cpu + drain) / values * 1e6,
        "wall_values_per_s": values / wall,
        "minutes": minutes,
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2_000_000, help="values to ingest (default 2,000,000)")
    parser.add_argument("--tags", type=int, default=5_000, help="tags per batch, one timestamp each (default 5,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--repeat", type=int, default=3, help="historian ingest runs, the median is reported (default 3)"
    )
    parser.add_argument(
        "--sustained",
        default="20000x120,100000x60",
        help="sustained runs, TAGSxSECONDS comma-separated (default 20000x120,100000x60; empty: none)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary files")
    args = parser.parse_args()
    batches = max(1, args.samples // args.tags)
    tmp = Path(tempfile.mkdtemp(prefix="bench-historian-", dir=args.dir))
    try:
        say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
        runs = []
        for i in range(args.repeat):
            say(f"ingest: {batches} batches x {args.tags} tags through SqliteHistorian (run {i + 1}/{args.repeat}) ...")
            runs.append(ingest_historian(tmp / f"historian-{i}.db", batches, args.tags))
        ours = sorted(runs, key=lambda r: r["values_per_s"])[len(runs) // 2]  # the median run
        ours["runs_values_per_s"] = [r["values_per_s"] for r in runs]
        say("ingest: baseline, bare executemany into an identical table ...")
        bare = ingest_bare(tmp / "bare.db", batches, args.tags, BARE_TABLE)
        say("ingest: bare append-only table ...")
        append = ingest_bare(tmp / "append.db", batches, args.tags, APPEND_TABLE)
        say("ingest: through HistorianWriter ...")
        writer = ingest_writer(tmp / "writer.db", batches, args.tags)
        say("query: one year of minute data ...")
        year = query_year(tmp / "year.db")
        steady = []
        for spec in filter(None, args.sustained.split(",")):
            n_tags, seconds = (int(x) for x in spec.split("x"))
            say(f"sustained: {n_tags} tags x {seconds} s ...")
            steady.append(sustained(tmp / f"sustained-{spec}.db", n_tags, seconds))
    except BenchError as exc:
        print(f"bench/historian.py: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = ours["values_per_s"] / bare["values_per_s"]
    result = {
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "ingest": {
            "samples": batches * args.tags,
            "batch": f"{args.tags} tags x 1 timestamp",
            "historian": ours,
            "baseline_bare_table": bare,
            "bare_append_only_table": append,
            "through_writer": writer,
            "ratio_to_baseline": ratio,
            "target_values_per_s": INGEST_TARGET,
            "target_ratio": RATIO_TARGET,
            "values_per_s_verdict": verdict(ours["values_per_s"] >= INGEST_TARGET),
            "ratio_verdict": verdict(ratio >= RATIO_TARGET),
        },
        "query": {
            **year,
            "target_ms": QUERY_TARGET_MS,
            "verdict": verdict(year["hourly_from_rollups_ms"] < QUERY_TARGET_MS),
        },
        "sustained": steady,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    ing, q = result["ingest"], result["query"]
    print(
        f"historian bench  (Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs)"
    )
    print(f"\n1. ingest, {ing['samples']:,} values in batches of {ing['batch']}")
    print(
        f"   SqliteHistorian.write_batch      {ours['values_per_s']:>12,.0f} values/s  (target >= {INGEST_TARGET:,.0f})  {ing['values_per_s_verdict']}"
    )
    print(f"     runs: {', '.join(f'{v:,.0f}' for v in ours['runs_values_per_s'])} values/s (median reported)")
    print(f"     slowest batch (with compaction) {ours['slowest_batch_ms']:>10.1f} ms")
    print(
        f"   baseline: bare executemany        {bare['values_per_s']:>11,.0f} values/s  (identical table, fresh file)"
    )
    print(
        f"   ratio historian / baseline        {ratio:>11.2f}           (target >= {RATIO_TARGET})  {ing['ratio_verdict']}"
    )
    print(f"   for context: bare append-only     {append['values_per_s']:>11,.0f} values/s")
    print(
        f"   for context: via HistorianWriter  {writer['values_per_s']:>11,.0f} values/s  (submit -> committed, incl. rollups)"
    )
    print(f"\n2. one year of 1-minute data for one tag ({q['samples']:,} samples)")
    print(f"   load {q['load_s']:.1f} s, rollup_pending {q['rollup_s']:.1f} s")
    print(
        f"   query_aggregate every=1h ({q['buckets']:,} buckets), rollups {q['hourly_from_rollups_ms']:>8.1f} ms  (target < {QUERY_TARGET_MS:.0f} ms)  {q['verdict']}"
    )
    print(f"   same from raw rows (use_rollups=False)      {q['hourly_from_raw_ms']:>8.1f} ms")
    print(f"   every=1d merged from hour rollups           {q['daily_from_hour_rollups_ms']:>8.1f} ms")
    if steady:
        print("\n3. sustained: each tag one value a second, write_batch of 5,000 + maintain() every 5 s")
    for r in steady:
        print(
            f"   {r['tags']:>7,} tags x {r['seconds']} s   {r['cpu_us_per_value']:5.2f} us CPU/value"
            f"  ({r['cpu_us_per_value_with_drain']:5.2f} with the last minute's rollup)"
            f"  {r['wall_values_per_s']:>9,.0f} values/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
