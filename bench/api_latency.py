"""Latency and throughput of the scadad local API (NDJSON over a Unix socket).

What it measures
  1. Sequential latency: one client, one connection, calls one after another
     (--warmup untimed calls, then --calls timed ones) of `System.Ping` and of
     `Sites.List` returning 100 sites. Prints p50 / p99 / max in ms.
  2. Throughput: `System.Ping` and `Sites.List` with 1 and with 8 concurrent clients,
     each client its own connection doing sequential request -> response calls (no
     pipelining) for --seconds. 1 client = 1 worker process with 1 connection;
     8 clients = 2 worker processes x 4 asyncio connections, so that one Python event
     loop on the client side is not the bottleneck (the target machine has 2 cores).
     Also prints p50 / p99 latency seen under the 8-client load.
  Targets (from the issue): p99 < 2 ms, >= 5,000 calls/s. Each figure gets PASS/MISS;
  the script exits 0 whatever the figures (a measurement, not a test). It exits
  non-zero only when the harness itself fails (daemon does not start, a reply is an
  error or has the wrong id or row count, the daemon does not exit 0 on SIGTERM).

How
  A throwaway daemon is started as a subprocess with its own temp dir (config, socket,
  SQLite store) and 100 sites are created through the API. The client side uses raw
  sockets / asyncio streams with `scadad.api.protocol.encode_request` and
  `decode_frame` in a tight loop (write one frame, readline, decode) rather than the
  higher-level client, to keep client overhead small. Every reply is checked: no
  "error" key, the id we sent, and 100 sites for `Sites.List`. A latency is
  perf_counter_ns from just before the write to just after readline returns (decoding
  and checking the reply are outside the timed span, but inside the throughput loop).
  At exit (normal, error, Ctrl-C or SIGTERM) the workers are stopped, the daemon gets
  SIGTERM and its exit code is checked, and the temp dir is removed.

How to run (from the repository root)
  .venv/bin/python bench/api_latency.py                 # table, ~40 s
  .venv/bin/python bench/api_latency.py --calls 20000 --seconds 10
  .venv/bin/python bench/api_latency.py --json          # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

from scadad.api.protocol import decode_frame, encode_request

P99_TARGET_MS = 2.0
THROUGHPUT_TARGET = 5000.0
N_SITES = 100
PING = "System.Ping"
LIST = "Sites.List"
READ_LIMIT = 2**24  # a 100-site Sites.List reply is larger than asyncio's 64 KiB default


class BenchError(Exception):
    """The harness failed (as opposed to a figure missing its target)."""


# --------------------------------------------------------------------------- replies


def check_reply(line: bytes, rid: int, method: str, expect_sites: int | None) -> dict[str, Any]:
    """Decode one reply and make sure it is the successful answer to request `rid`."""
    if not line:
        raise BenchError(f"{method}: daemon closed the connection")
    frame = decode_frame(line)
    if "error" in frame:
        raise BenchError(f"{method}: error reply {frame['error']}")
    if frame.get("id") != rid:
        raise BenchError(f"{method}: reply id {frame.get('id')!r}, expected {rid}")
    if expect_sites is not None:
        n = len(frame["result"]["sites"])
        if n != expect_sites:
            raise BenchError(f"{method}: {n} sites in the reply, expected {expect_sites}")
    return frame


def expected_sites(method: str) -> int | None:
    return N_SITES if method == LIST else None


# --------------------------------------------------------------------------- daemon


class Daemon:
    """A scadad subprocess in its own temp dir; `stop()` sends SIGTERM and returns the exit code."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="scadad-bench-"))
        self.socket = self.dir / "s.sock"
        self.config = self.dir / "c.toml"
        self.log = self.dir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.config.write_text(
            f'[paths]\ndata_dir = "{self.dir}/data"\n[api]\nsocket = "{self.socket}"\n[log]\nlevel = "warning"\n[auth]\nlocal_admin = true\n'
        )
        exe = Path(sys.executable).parent / "scadad"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "scadad"]
        with open(self.log, "wb") as log:
            # Own session: a Ctrl-C in the terminal reaches us, not the daemon; we stop it with SIGTERM.
            self.proc = subprocess.Popen(
                [*cmd, "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"scadad exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            try:
                with SyncConn(self.socket) as conn:
                    conn.call(PING)
                return
            except (OSError, BenchError):
                time.sleep(0.05)
        raise BenchError(f"scadad did not answer System.Ping within {timeout:g} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no daemon log)"

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it hangs. Returns the exit code (negative = killed by signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_code = self.proc.returncode
        return self.exit_code

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- sequential client


class SyncConn:
    """A blocking connection: sendall one frame, readline one reply."""

    def __init__(self, path: Path | str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self.rfile = self.sock.makefile("rb", buffering=READ_LIMIT)
        self.rid = 0

    def __enter__(self) -> SyncConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rfile.close()
        self.sock.close()

    def call(self, method: str, params: dict[str, Any] | None = None, expect_sites: int | None = None) -> Any:
        self.rid += 1
        self.sock.sendall(encode_request(self.rid, method, params if params is not None else {}))
        return check_reply(self.rfile.readline(), self.rid, method, expect_sites)["result"]

    def timed_calls(self, method: str, n: int) -> array:
        """n sequential calls; returns each call's round trip in ns."""
        expect = expected_sites(method)
        send, readline, clock = self.sock.sendall, self.rfile.readline, time.perf_counter_ns
        lat = array("q")
        for _ in range(n):
            self.rid += 1
            rid = self.rid
            frame = encode_request(rid, method, {})
            t0 = clock()
            send(frame)
            line = readline()
            t1 = clock()
            check_reply(line, rid, method, expect)
            lat.append(t1 - t0)
        return lat


def create_sites(path: Path, n: int) -> None:
    with SyncConn(path) as conn:
        for i in range(1, n + 1):
            name = f"site-{i:03d}"
            conn.call("Sites.Create", {"name": name, "display_name": f"Site {i}", "description": f"bench site {i}"})
        got = len(conn.call(LIST)["sites"])
        if got != n:
            raise BenchError(f"Sites.List returns {got} sites after creating {n}")


def sequential_latency(path: Path, method: str, warmup: int, calls: int) -> array:
    with SyncConn(path) as conn:
        conn.timed_calls(method, warmup)
        return conn.timed_calls(method, calls)


# --------------------------------------------------------------------------- load workers


async def _connection_loop(path: str, method: str, start_gate: Any, seconds: float) -> tuple[int, int, array]:
    """One client: sequential calls until the deadline. Returns (calls, elapsed_ns, latencies_ns)."""
    reader, writer = await asyncio.open_unix_connection(path, limit=READ_LIMIT)
    try:
        await start_gate  # all connections of all workers are open before anyone starts
        expect = expected_sites(method)
        clock = time.perf_counter_ns
        lat = array("q")
        start = clock()
        deadline = start + int(seconds * 1e9)
        rid = 0
        now = start
        while now < deadline:
            rid += 1
            frame = encode_request(rid, method, {})
            t0 = clock()
            writer.write(frame)
            line = await reader.readline()
            now = clock()
            check_reply(line, rid, method, expect)
            lat.append(now - t0)
        return rid, now - start, lat
    finally:
        writer.close()


async def _worker_async(
    path: str, method: str, conns: int, seconds: float, barrier: Any
) -> tuple[float, list[tuple[int, int, array]]]:
    """Run `conns` connections in this event loop; returns (CPU seconds this process used, per-connection results)."""
    loop = asyncio.get_running_loop()
    opened = 0
    go: asyncio.Future[None] = loop.create_future()
    cpu0 = 0.0

    async def gate() -> None:
        nonlocal opened, cpu0
        opened += 1
        if opened == conns:
            # Every connection here is open: meet the other workers, then release our connections.
            await loop.run_in_executor(None, barrier.wait, 60)
            cpu0 = time.process_time()
            go.set_result(None)
        await go

    out = await asyncio.gather(*(_connection_loop(path, method, gate(), seconds) for _ in range(conns)))
    return time.process_time() - cpu0, out


def load_worker(path: str, method: str, conns: int, seconds: float, barrier: Any, results: Any) -> None:
    """Client worker process: puts ("ok", (cpu_s, [(calls, elapsed_ns, lat_bytes)...])) or ("error", text)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    try:
        cpu, out = asyncio.run(_worker_async(path, method, conns, seconds, barrier))
        results.put(("ok", (cpu, [(n, ns, lat.tobytes()) for n, ns, lat in out])))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(path: Path, method: str, procs: int, conns_per_proc: int, seconds: float) -> dict[str, Any]:
    """Run procs x conns_per_proc clients for `seconds`; total calls/s and the merged latencies."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    barrier = ctx.Barrier(procs)
    workers = [
        ctx.Process(
            target=load_worker, args=(str(path), method, conns_per_proc, seconds, barrier, results), daemon=True
        )
        for _ in range(procs)
    ]
    try:
        for w in workers:
            w.start()
        rate = 0.0
        calls = 0
        lat = array("q")
        pending = len(workers)
        client_cpu = 0.0
        deadline = time.monotonic() + seconds + 90
        while pending:
            try:
                status, payload = results.get(timeout=1)
            except queue.Empty:
                if time.monotonic() > deadline or not any(w.is_alive() for w in workers):
                    raise BenchError(f"{method}: client workers died or hung without reporting") from None
                continue
            pending -= 1
            if status != "ok":
                raise BenchError(f"{method}: client worker failed: {payload}")
            cpu, conns = payload
            client_cpu += cpu
            for n, ns, raw in conns:
                rate += n / (ns / 1e9)  # the connections run side by side: their rates add up
                calls += n
                part = array("q")
                part.frombytes(raw)
                lat.extend(part)
        for w in workers:
            w.join(10)
        return {"calls_per_s": rate, "calls": calls, "latency": lat, "client_cpu_s": client_cpu}
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join(5)


# --------------------------------------------------------------------------- figures


def percentile_ms(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile of sorted ns values, in ms."""
    k = max(0, math.ceil(q * len(sorted_ns)) - 1)
    return sorted_ns[k] / 1e6


def latency_summary(lat: array) -> dict[str, float]:
    s = sorted(lat)
    return {
        "n": len(s),
        "p50_ms": percentile_ms(s, 0.50),
        "p99_ms": percentile_ms(s, 0.99),
        "max_ms": s[-1] / 1e6,
        "p99_pass": percentile_ms(s, 0.99) < P99_TARGET_MS,
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def print_table(fig: dict[str, Any]) -> None:
    print(f"scadad API benchmark  ({fig['env']['python']}, {fig['env']['cpus']} CPUs, {N_SITES} sites)")
    print(f"targets: p99 < {P99_TARGET_MS:g} ms, throughput >= {THROUGHPUT_TARGET:,.0f} calls/s\n")

    print(f"1. sequential latency, 1 client ({fig['calls']} timed calls after {fig['warmup']} warm-up)")
    print(f"   {'method':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for method in (PING, LIST):
        s = fig["sequential"][method]
        print(
            f"   {method:<12} {s['p50_ms']:8.3f} {s['p99_ms']:8.3f} {s['max_ms']:8.3f}   p99 {verdict(s['p99_pass'])}"
        )

    print(f"\n2. throughput, sequential calls per connection, {fig['seconds']:g} s per run")
    print(
        f"   {'method':<12} {'clients':>7} {'procs':>5} {'calls/s':>10}       {'server CPU':>10} {'client CPU':>10} {'server us/call':>14}"
    )
    for method in (PING, LIST):
        for key in ("1", "8"):
            t = fig["throughput"][method][key]
            print(
                f"   {method:<12} {t['clients']:>7} {t['client_processes']:>5} {t['calls_per_s']:>10,.0f}"
                f"   {verdict(t['pass'])} {pct(t['server_cpu_pct']):>10} {pct(t['client_cpu_pct']):>10} {us(t['server_cpu_us_per_call']):>14}"
            )
    print("\n   latency under the 8-client load")
    print(f"   {'method':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for method in (PING, LIST):
        s = fig["throughput"][method]["8"]["latency"]
        print(
            f"   {method:<12} {s['p50_ms']:8.3f} {s['p99_ms']:8.3f} {s['max_ms']:8.3f}   p99 {verdict(s['p99_pass'])}"
        )
    procs8 = fig["throughput"][PING]["8"]["client_processes"]
    print(f"\n   client processes: 1 for 1 client; {procs8} for 8 clients ({8 // procs8} asyncio connections each)")
    print("   CPU columns: % of one core over the run (100% = one core saturated; the daemon is one process,")
    print("   the clients share the same cores); server us/call = daemon CPU time per call")


def run(args: argparse.Namespace) -> dict[str, Any]:
    daemon = Daemon()
    fig: dict[str, Any] = {
        "calls": args.calls,
        "warmup": args.warmup,
        "seconds": args.seconds,
        "sites": N_SITES,
        "targets": {"p99_ms_below": P99_TARGET_MS, "calls_per_s_at_least": THROUGHPUT_TARGET},
        "env": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    try:
        log(args, f"starting scadad in {daemon.dir}")
        daemon.start()
        log(args, f"creating {N_SITES} sites")
        create_sites(daemon.socket, N_SITES)

        fig["sequential"] = {}
        for method in (PING, LIST):
            log(args, f"sequential {method}: {args.warmup} warm-up + {args.calls} calls")
            fig["sequential"][method] = latency_summary(
                sequential_latency(daemon.socket, method, args.warmup, args.calls)
            )

        fig["throughput"] = {}
        for method in (PING, LIST):
            fig["throughput"][method] = {}
            for clients, procs in ((1, 1), (8, args.procs)):
                log(args, f"throughput {method}: {clients} client(s) in {procs} process(es), {args.seconds:g} s")
                cpu0 = process_cpu_seconds(daemon.pid)
                r = throughput(daemon.socket, method, procs, clients // procs, args.seconds)
                cpu1 = process_cpu_seconds(daemon.pid)
                fig["throughput"][method][str(clients)] = {
                    "clients": clients,
                    "client_processes": procs,
                    "calls": r["calls"],
                    "calls_per_s": r["calls_per_s"],
                    "pass": r["calls_per_s"] >= THROUGHPUT_TARGET,
                    "latency": latency_summary(r["latency"]),
                    # CPU use over the run, in % of one core (100 = one core busy all the time)
                    "server_cpu_pct": None if cpu0 is None or cpu1 is None else 100 * (cpu1 - cpu0) / args.seconds,
                    "client_cpu_pct": 100 * r["client_cpu_s"] / args.seconds,
                    # daemon CPU per call: 1e6 / this = calls/s the daemon could do with a core to itself
                    "server_cpu_us_per_call": None
                    if cpu0 is None or cpu1 is None
                    else 1e6 * (cpu1 - cpu0) / r["calls"],
                }
    finally:
        code = daemon.stop()
        fig["daemon_exit_code"] = code
        if code not in (0, None):
            print(f"scadad exited with {code} on SIGTERM (expected 0); log tail:\n{daemon.log_tail()}", file=sys.stderr)
        daemon.cleanup()
    if code != 0:
        raise BenchError(f"scadad exit code {code} on SIGTERM, expected 0")
    return fig


def log(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"[bench] {text}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=5000, help="timed sequential calls per method (default 5000)")
    p.add_argument("--warmup", type=int, default=200, help="untimed warm-up calls per method (default 200)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run (default 5)")
    p.add_argument("--procs", type=int, default=2, choices=(1, 2, 4, 8), help="client processes for the 8-client runs")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object instead of the table")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or args.seconds <= 0:
        p.error("--calls must be >= 1, --warmup >= 0, --seconds > 0")
    return args


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through run()'s finally: daemon stopped, temp dir removed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGHUP, _raise_on_sigterm)
    try:
        fig = run(args)
    except KeyboardInterrupt:
        print("interrupted; daemon stopped and temp dir removed", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(fig, indent=None, sort_keys=True))
    else:
        print_table(fig)
    return 0  # figures missing their targets are reported, not a failure


if __name__ == "__main__":
    sys.exit(main())
