"""Shared fixtures: a real scadad in a temporary home, and the real PostgreSQL.

Every daemon here is a separate process started exactly as a user would start it
(`python -m scadad --config FILE`), with its own socket and SQLite files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scadad.api.client import Client, DaemonUnreachable

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("SCADA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Every table the first migration must create (the seed's inventory plus the daemon's own).
SEED_TABLES = {
    "users", "roles", "user_roles", "sites", "equipment", "tags", "tag_history",
    "alarms", "alarm_rules", "alarm_events", "energy_consumption", "energy_targets",
    "load_profiles", "energy_meters", "meter_readings", "power_loss_analysis",
    "diesel_generators", "renewable_sources", "meter_status_history", "meter_templates",
    "work_orders", "work_order_tasks", "work_order_materials", "scheduled_reports",
    "report_history", "devices", "scan_groups", "sessions", "audit_log", "schema_migrations",
}  # fmt: skip


@dataclass
class RunningDaemon:
    home: Path
    config: Path
    socket: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def client(self, timeout: float = 10.0) -> Client:
        c = Client(self.socket, timeout=timeout)
        c.connect()
        return c

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# Test daemons run as the same Unix user as the tests, so the single-user demo mode makes
# the tests the local administrator; auth tests pass their own [auth] section.
LOCAL_ADMIN = "local_admin = true\n"


def write_config(
    home: Path, extra: str = "", store_url: str | None = None, api_extra: str = "", auth: str = LOCAL_ADMIN
) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "scadad.toml"
    text = (
        f'[site]\nname = "test"\n[paths]\ndata_dir = "{home}/data"\n[api]\nsocket = "{home}/scadad.sock"\n{api_extra}'
    )
    if store_url:
        text += f'[store]\nurl = "{store_url}"\n'
    text += f"[auth]\n{auth}"
    cfg.write_text(text + extra)
    return cfg


def spawn(config: Path, home: Path, *args: str) -> subprocess.Popen[bytes]:
    log = open(home / "scadad.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "scadad", "--config", str(config), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
    )


def wait_ready(socket_path: Path, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"scadad exited with {proc.returncode} before it was ready")
        try:
            with Client(socket_path, timeout=2) as c:
                c.call("System.Ping")
                return
        except DaemonUnreachable:
            time.sleep(0.02)
    raise RuntimeError(f"scadad did not answer on {socket_path} within {timeout} s")


def start_daemon(
    home: Path, extra: str = "", store_url: str | None = None, api_extra: str = "", auth: str = LOCAL_ADMIN
) -> RunningDaemon:
    cfg = write_config(home, extra, store_url, api_extra, auth)
    proc = spawn(cfg, home)
    d = RunningDaemon(home, cfg, home / "scadad.sock", home / "scadad.log", proc)
    try:
        wait_ready(d.socket, proc)
    except RuntimeError as exc:
        d.stop()
        raise RuntimeError(f"{exc}\n--- daemon log ---\n{d.log_text()}") from None
    return d


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    """A fresh daemon on its own SQLite store, stopped (and checked for exit 0) after the test."""
    d = start_daemon(tmp_path / "home")
    yield d
    code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """One daemon for a module of read-mostly tests (saves start-up time)."""
    d = start_daemon(tmp_path_factory.mktemp("shared") / "home")
    yield d
    code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


def _pg_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema; yields a store URL whose search_path is that schema.

    Under CI=true an unreachable server fails the test: CI must prove the PostgreSQL path.
    """
    why = _pg_reachable()
    if why is not None:
        message = f"PostgreSQL at {PG_URL} is unreachable: {why}"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def wait_until(fn: Any, what: str, timeout: float = 15.0) -> Any:
    """Poll ``fn`` until it returns something truthy (and return it); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def memory_tag_daemon(home: Path, units: dict[str, str]) -> Iterator[RunningDaemon]:
    """For a module fixture: a daemon with a writable float64 memory tag per path of
    `units` (path -> units), stopped (and checked for exit 0) when the module is done."""
    daemon = start_daemon(home)
    try:
        tags = [{"path": p, "source": "memory", "data_type": "float64", "writable": True, "units": u}
                for p, u in units.items()]  # fmt: skip
        with daemon.client() as c:
            c.call("Tags.Import", {"tags": tags})
    except BaseException:
        daemon.stop()
        raise
    yield daemon
    code = daemon.stop()
    assert code == 0, f"scadad exited {code}\n{daemon.log_text()}"
