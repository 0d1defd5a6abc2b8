"""CPU cost of polling a plant: scadad against a bare pymodbus loop doing the same reads.

What it measures
  Simulated devices run in a separate process (`python -m drivers.simulator`), each a
  Modbus TCP server with --tags-per-device float32 input registers. Then, one after the
  other so they never compete for the 2 cores:
  1. scadad (a real daemon process, its SQLite store and historian in a temporary
     directory) with one device per simulator and one float32 tag per register, all in
     the 1 s scan group, historizing every value (deadband 0: the simulator's values
     change every second, so every value is decoded, scaled, checked, put in the live
     table and written to the historian). Measured over --seconds after a warm-up:
     values/s (tag updates applied), CPU % of one core of the scadad process
     (utime+stime from /proc), CPU µs per value, scan jitter p99 (how late scans start
     against their fixed-rate schedule), historian samples committed, overruns.
  2. Baseline, same run: a bare asyncio pymodbus loop (one client per device, the same
     reads in the same 125-register requests every second, float32 decoding with
     struct, nothing else), its CPU % over the same duration.
  Targets (the issue): 20,000 tags at 1 s from 200 devices under 15 % of one core with
  jitter p99 < 100 ms; 100,000 tags at 1 s from 1,000 devices under one core.

How to run (from the repository root)
  .venv/bin/python bench/acquisition.py                          # 200 x 100, ~1.5 minutes
  .venv/bin/python bench/acquisition.py --devices 1000 --tags-per-device 100
  .venv/bin/python bench/acquisition.py --json
It exits 0 whatever the figures (a measurement, not a test) and non-zero only when the
harness fails (the daemon does not start, tags never turn GOOD).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.simulator.profiles import FILLER_START  # noqa: E402
from scadad.api.client import Client, DaemonUnreachable  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_base_port(count: int) -> int:
    """A base port with `count` free ports above it (checked, not guaranteed)."""
    for base in range(20000, 60000 - count, 997):
        ok = True
        for p in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def start_simulator(devices: int, tags: int, base: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.simulator", "--devices", str(devices), "--types", "sdm630",
         "--tags-per-device", str(tags), "--base-port", str(base)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"serving" in line:
            return proc
    raise RuntimeError(f"simulator did not start (exit {proc.wait()})")


def wait_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"scadad exited {proc.returncode}")
        try:
            with Client(path, timeout=2) as c:
                c.call("System.Ping")
                return
        except DaemonUnreachable:
            time.sleep(0.05)
    raise RuntimeError("scadad did not start")


def acq_info(c: Client) -> dict[str, Any]:
    subs = {s["name"]: s for s in c.call("System.Status")["subsystems"]}
    return {"acq": subs["acquisition"]["info"], "hist": subs["historian"].get("info", {})}


def run_scadad(
    devices: int,
    tags: int,
    base: int,
    seconds: float,
    warmup: float,
    home: Path,
    py_spy: str | None = None,
    history: bool = True,
) -> dict[str, Any]:
    sock = home / "s.sock"
    cfg = home / "scadad.toml"
    cfg.write_text(
        f'[paths]\ndata_dir = "{home}"\n[api]\nsocket = "{sock}"\n[auth]\nlocal_admin = true\n[log]\nlevel = "warning"\n'
        + ("" if history else "[historian]\nenabled = false\n")
    )
    log = open(home / "scadad.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "scadad", "--config", str(cfg)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_socket(sock, proc)
        with Client(sock, timeout=120) as c:
            c.call("Devices.Import", {"devices": [
                {"name": f"d{i:04d}", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": base + i}
                for i in range(devices)]})  # fmt: skip
            for i in range(devices):
                c.call("Tags.Import", {"tags": [
                    {"path": f"bench/d{i:04d}/t{k:04d}", "device": f"d{i:04d}", "function": 4,
                     "address": str(FILLER_START + 2 * k), "data_type": "float32", "units": "kW"}
                    for k in range(tags)]})  # fmt: skip
            deadline = time.monotonic() + 60
            while True:
                info = acq_info(c)["acq"]
                if info["tags_good"] >= devices * tags:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {info['tags_good']} of {devices * tags} tags GOOD after 60 s")
                time.sleep(0.5)
            time.sleep(warmup)
            i0, cpu0, t0 = acq_info(c), cpu_seconds(proc.pid), time.monotonic()
            if py_spy:
                # Collapsed stacks of the daemon during the window (py-spy from PyPI).
                subprocess.run(["py-spy", "record", "-p", str(proc.pid), "-d", str(int(seconds)), "-r", "200",
                                "-f", "raw", "-o", py_spy, "--nonblocking"], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
            i1, cpu1, t1 = acq_info(c), cpu_seconds(proc.pid), time.monotonic()
            status = c.call("Devices.Status", {})["devices"]
        wall = t1 - t0
        values = i1["acq"]["values_total"] - i0["acq"]["values_total"]
        cpu = cpu1 - cpu0
        return {
            "values_per_s": values / wall,
            "cpu_pct": 100 * cpu / wall,
            "cpu_us_per_value": 1e6 * cpu / values if values else None,
            "jitter_p99_ms": i1["acq"]["jitter_p99_ms"],
            "historian_committed_per_s": (i1["hist"].get("committed", 0) - i0["hist"].get("committed", 0)) / wall,
            "historian_dropped": i1["hist"].get("dropped", 0),
            "overruns": sum(d["scan_overruns"] for d in status),
            "devices_online": sum(1 for d in status if d["state"] == "online"),
            "response_p99_ms": max((d["p99_ms"] or 0) for d in status),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


BARE = r"""
import asyncio, struct, sys, time, json
from pymodbus.client import AsyncModbusTcpClient
devices, tags, base, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
regs = 2 * tags
blocks = [(a, min(124, regs - a)) for a in range(0, regs, 124)]  # whole float32s per request
sink = 0.0
async def device(i, stop):
    global sink
    c = AsyncModbusTcpClient("127.0.0.1", port=base + i, timeout=2, retries=0, reconnect_delay=0)
    await c.connect()
    loop = asyncio.get_running_loop()
    nxt = loop.time() + (i % 100) / 100
    while loop.time() < stop:
        await asyncio.sleep(max(0, nxt - loop.time()))
        nxt += 1.0
        for a, n in blocks:
            r = await c.read_input_registers(1000 + a, count=n, device_id=1)
            vals = struct.unpack(f">{n // 2}f", struct.pack(f">{n}H", *r.registers))
            sink += vals[0]
    c.close()
async def main():
    loop = asyncio.get_running_loop()
    warm = loop.time() + 5
    stop = warm + seconds
    tasks = [asyncio.create_task(device(i, stop)) for i in range(devices)]
    await asyncio.sleep(max(0, warm - loop.time()))
    c0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*tasks)
    print(json.dumps({"cpu_pct": 100 * (time.process_time() - c0) / (time.monotonic() - t0)}))
asyncio.run(main())
"""


def run_bare(devices: int, tags: int, base: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", BARE, str(devices), str(tags), str(base), str(seconds)],
                         cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"bare loop failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--tags-per-device", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30.0, help="measurement window (default 30)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after every tag is GOOD (default 10)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-history", action="store_true", help="run scadad with the historian off (for the split)")
    ap.add_argument("--py-spy", metavar="FILE", help="also record the daemon's stacks (py-spy raw format) to FILE")
    args = ap.parse_args()
    n, m = args.devices, args.tags_per_device
    base = free_base_port(n)
    sim = start_simulator(n, m, base)
    home = Path(tempfile.mkdtemp(prefix="bench-acq-"))
    try:
        s = run_scadad(n, m, base, args.seconds, args.warmup, home, args.py_spy, not args.no_history)
        b = run_bare(n, m, base, args.seconds)
        sim_cpu = None
    finally:
        sim.terminate()
        sim.wait(10)
        shutil.rmtree(home, ignore_errors=True)
    tags = n * m
    cpu_target = 15.0 if tags <= 20_000 else 100.0
    result = {"devices": n, "tags_per_device": m, "tags": tags, "scadad": s, "bare_pymodbus": b,
              "cpu_target_pct": cpu_target, "simulator_cpu": sim_cpu}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print(f"acquisition: {n} devices x {m} float32 tags = {tags:,} tags at 1 s, {args.seconds:g} s window")
    print(f"  scadad values/s            {s['values_per_s']:>12,.0f}")
    print(
        f"  scadad CPU (% of one core) {s['cpu_pct']:>12.1f}   target < {cpu_target:g} %  {mark(s['cpu_pct'] < cpu_target)}"
    )
    print(f"  scadad CPU per value       {s['cpu_us_per_value']:>12.2f} µs")
    jit = s["jitter_p99_ms"]
    jit_ok = jit is not None and (jit < 100 or tags > 20_000)
    print(f"  scan jitter p99            {jit:>12.1f} ms  target < 100 ms  {mark(jit_ok) if tags <= 20_000 else ''}")
    print(f"  historian committed/s      {s['historian_committed_per_s']:>12,.0f}   dropped {s['historian_dropped']}")
    print(
        f"  devices online             {s['devices_online']:>12}   overruns {s['overruns']}, response p99 max {s['response_p99_ms']:.1f} ms"
    )
    print(f"  bare pymodbus loop CPU     {b['cpu_pct']:>12.1f} %  (same reads + float32 decode, nothing else)")
    if b["cpu_pct"]:
        print(f"  scadad / bare              {s['cpu_pct'] / b['cpu_pct']:>12.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
