"""Energy arithmetic and the site summary at the scale of a large site.

What it measures
  1. A day of 15-minute intervals for 2,000 meters in a 5-level hierarchy (a main bus
     fed by grid, generator and solar; 10 sub-mains, 40 feeders, 200 boards, 1,746
     loads), from one counter sample per meter per minute (2.9 million samples, built
     beforehand and not timed): every meter's 96 interval readings (rollover and reset
     aware) and the loss of every parent against its children for every interval
     (`scadad.energy.batch.compute_day`). Each parent draws 1.5 % more than its
     children; the figures printed check that the computed loss says so.
     Target (the issue): < 2 s.
  2. `Energy.Summary` latency for that plant on a real scadad (temporary home, SQLite
     store): the same 2,000 meters on memory tags (power and energy counter each),
     created through the API; then --calls summaries, one after the other, timed at the
     client from request to decoded answer. Target: p99 < 20 ms.

How to run (from the repository root)
  .venv/bin/python bench/energy.py                 # ~1 minute
  .venv/bin/python bench/energy.py --calls 500 --json
It exits 0 whatever the figures (a measurement, not a test) and non-zero only when the
harness fails.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from scadad.api.client import Client  # noqa: E402
from scadad.energy.batch import Node, compute_day  # noqa: E402

LOSS = 0.015
DAY0 = 1_780_272_000_000_000  # 2026-06-01T00:00Z
MIN_US = 60_000_000


def hierarchy() -> list[Node]:
    nodes = [Node("main", None, "main"), Node("grid", "main", "grid"), Node("dg", "main", "generator"),
             Node("solar", "main", "solar")]  # fmt: skip
    loads_left = 2000 - 4 - 10 - 40 - 200
    for s in range(10):
        nodes.append(Node(f"sub{s}", "main", "main"))
        for f in range(4):
            fname = f"f{s}-{f}"
            nodes.append(Node(fname, f"sub{s}", "feeder"))
            for b in range(5):
                bname = f"b{s}-{f}-{b}"
                nodes.append(Node(bname, fname, "feeder"))
    boards = [n.name for n in nodes if n.name.startswith("b")]
    for i in range(loads_left):
        nodes.append(Node(f"l{i}", boards[i % len(boards)], "load"))
    assert len(nodes) == 2000
    return nodes


def samples_for(nodes: list[Node], seed: int = 1) -> dict[str, list[tuple[int, float]]]:
    """One counter sample a minute; each parent's counter grows 1.5 % more than its children's."""
    rng = random.Random(seed)
    children: dict[str, list[str]] = {}
    for n in nodes:
        if n.parent:
            children.setdefault(n.parent, []).append(n.name)
    kinds = {n.name: n.type for n in nodes}
    rate: dict[str, list[float]] = {}  # kWh per minute, per minute of the day

    def walk(name: str) -> list[float]:
        loads = [c for c in children.get(name, []) if kinds[c] not in ("grid", "generator", "solar")]
        if not loads:
            base = rng.uniform(0.05, 0.5)
            r = [base * (1 + 0.3 * rng.random()) for _ in range(1440)]
        else:
            kids = [walk(c) for c in loads]
            r = [sum(k[m] for k in kids) * (1 + LOSS) for m in range(1440)]
        rate[name] = r
        return r

    walk("main")
    total = rate.pop("main")  # the bus has no meter of its own: grid, DG and solar feed it
    rate["solar"] = [x * 0.2 for x in total]
    rate["dg"] = [x * 0.1 for x in total]
    rate["grid"] = [x * 0.7 for x in total]
    out = {}
    for name, r in rate.items():
        c = rng.uniform(1000, 900_000)
        s = [(DAY0 - MIN_US, c)]
        for m in range(1440):
            c += r[m]
            s.append((DAY0 + m * MIN_US + 30_000_000, c))
        out[name] = s
    return out


def day_compute() -> dict[str, Any]:
    nodes = hierarchy()
    samples = samples_for(nodes)
    began = time.perf_counter()
    res = compute_day(nodes, samples, DAY0)
    elapsed = time.perf_counter() - began
    pct = [x[2] for rows in res.losses.values() for x in rows if x[2] is not None]
    return {
        "meters": len(nodes),
        "samples": sum(len(s) for s in samples.values()),
        "interval_readings": sum(len(r) for r in res.readings.values()),
        "loss_rows": sum(len(r) for r in res.losses.values()),
        "day_seconds": round(elapsed, 3),
        "loss_pct_min": round(min(pct), 3),
        "loss_pct_max": round(max(pct), 3),
        "expected_loss_pct": round(100 * LOSS / (1 + LOSS), 3),
    }


def start_daemon(home: Path) -> tuple[subprocess.Popen[bytes], Path]:
    return harness.start_daemon(home, "[historian]\nenabled = false\n", lambda c: bool(c.call("System.Ping")))


def summary_latency(calls: int) -> dict[str, Any]:
    nodes = hierarchy()
    home = Path(tempfile.mkdtemp(prefix="bench-energy-"))
    proc, sock = start_daemon(home)
    try:
        with Client(sock, timeout=120) as c:
            c.connect()
            tags = []
            for n in nodes:
                if n.name == "main":
                    continue
                for q, v in (("import_kwh", "1000"), ("power_total", str(round(random.uniform(1, 50), 2)))):
                    tags.append({"path": f"b/{n.name}/{q}", "data_type": "float64", "source": "memory",
                                 "writable": True, "initial_value": v})  # fmt: skip
            c.call("Tags.Import", {"tags": tags})
            t0 = time.perf_counter()
            for n in nodes:
                points = {} if n.name == "main" else {"import_kwh": f"b/{n.name}/import_kwh",
                                                      "power_total": f"b/{n.name}/power_total"}  # fmt: skip
                c.call("Meters.Create", {"name": n.name, "type": n.type, "parent": n.parent, "points": points})
            create_s = time.perf_counter() - t0
            c.call("Energy.Summary")  # warm
            lat = []
            size = 0
            for _ in range(calls):
                t = time.perf_counter()
                s = c.call("Energy.Summary")
                lat.append((time.perf_counter() - t) * 1000)
            size = len(json.dumps(s))
            assert len(s["meters"]) == 2000
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)
    lat.sort()
    return {
        "summary_calls": calls,
        "summary_p50_ms": round(lat[len(lat) // 2], 2),
        "summary_p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
        "summary_max_ms": round(lat[-1], 2),
        "summary_bytes": size,
        "meters_create_s": round(create_s, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {**day_compute(), **summary_latency(args.calls)}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"meters                          {out['meters']:>10,}  (5 levels)")
    print(f"counter samples                 {out['samples']:>10,}")
    print(f"interval readings               {out['interval_readings']:>10,}")
    print(f"loss rows                       {out['loss_rows']:>10,}")
    print(f"a day of 15-min intervals       {out['day_seconds']:>10} s  (target < 2 s)")
    print(f"loss found                      {out['loss_pct_min']} .. {out['loss_pct_max']} %"
          f"  (injected {out['expected_loss_pct']} %)")  # fmt: skip
    print(f"Energy.Summary (2,000 meters)   p50 {out['summary_p50_ms']} ms, p99 {out['summary_p99_ms']} ms,"
          f" max {out['summary_max_ms']} ms  (target p99 < 20 ms; {out['summary_bytes']:,} bytes)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
