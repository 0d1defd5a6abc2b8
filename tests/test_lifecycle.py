"""The daemon as a process: start-up time, one instance per store and socket, signals."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect

from tests.conftest import SEED_TABLES, spawn, start_daemon, wait_ready, write_config


def test_starts_fast_and_creates_every_table(tmp_path: Path) -> None:
    home = tmp_path / "h"
    cfg = write_config(home)
    t0 = time.monotonic()
    proc = spawn(cfg, home)
    wait_ready(home / "scadad.sock", proc)
    elapsed = time.monotonic() - t0
    try:
        assert elapsed < 2.0, f"ready after {elapsed:.2f} s"
        eng = create_engine(f"sqlite:///{home}/data/scada.db")
        assert SEED_TABLES <= set(inspect(eng).get_table_names())
        eng.dispose()
        mode = stat.S_IMODE(os.stat(home / "scadad.sock").st_mode)
        assert mode == 0o660
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not (home / "scadad.sock").exists()


def test_second_daemon_on_same_store_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = start_daemon(tmp_path / "a")
    try:
        # Same store (same data_dir), different socket.
        home_b = tmp_path / "b"
        cfg = write_config(home_b)
        cfg.write_text(cfg.read_text().replace(f'data_dir = "{home_b}/data"', f'data_dir = "{tmp_path}/a/data"'))
        proc = spawn(cfg, home_b)
        assert proc.wait(15) == 3
        log = (home_b / "scadad.log").read_text()
        assert f"scadad pid {first.proc.pid}" in log
        assert "scada.db" in log
        # The first one is untouched.
        with first.client() as c:
            assert c.call("System.Ping")["pong"] is True
    finally:
        assert first.stop() == 0


def test_second_daemon_on_same_socket_is_refused(tmp_path: Path) -> None:
    first = start_daemon(tmp_path / "a")
    try:
        home_b = tmp_path / "b"
        cfg = write_config(home_b)
        cfg.write_text(cfg.read_text().replace(f'socket = "{home_b}/scadad.sock"', f'socket = "{first.socket}"'))
        proc = spawn(cfg, home_b)
        assert proc.wait(15) == 3
        assert f"served by another daemon (pid {first.proc.pid})" in (home_b / "scadad.log").read_text()
    finally:
        assert first.stop() == 0


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    import socket as s

    home = tmp_path / "h"
    home.mkdir()
    stale = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    stale.bind(str(home / "scadad.sock"))
    stale.close()  # the file stays, nobody listens: what a crash leaves behind
    d = start_daemon(home)
    assert d.stop() == 0


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h")
    with d.client() as c:
        c.call("Sites.Create", {"name": "flushed"})
    assert d.stop(signal.SIGINT) == 0
    log = d.log_text()
    assert "signal received" in log and "SIGINT" in log and "stopped" in log


def test_sighup_reloads_live_keys_and_reports_the_rest(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h")
    try:
        text = d.config.read_text()
        d.config.write_text(
            text.replace('name = "test"', 'name = "renamed"').replace(
                f'data_dir = "{d.home}/data"', f'data_dir = "{d.home}/elsewhere"'
            )
            + '[log]\nformat = "json"\n'
        )
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        with d.client() as c:
            while time.monotonic() < deadline:
                st = c.call("System.Status")
                if st["site"] == "renamed":
                    break
                time.sleep(0.05)
            assert st["site"] == "renamed"
            cfg = next(s for s in st["subsystems"] if s["name"] == "config")
            assert cfg["state"] == "degraded" and "paths.data_dir" in cfg["detail"]
            # The store did not move.
            assert st["subsystems"][1]["info"]["url"].endswith(f"{d.home}/data/scada.db")
        # A broken file is refused and the daemon keeps running on the old settings.
        d.config.write_text("[api]\nnot_a_key = 1\n")
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        with d.client() as c:
            assert c.call("System.Status")["site"] == "renamed"
        # Reverting the restart-only change clears the "restart needed" state.
        d.config.write_text(text)
        d.proc.send_signal(signal.SIGHUP)
        with d.client() as c:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                st = c.call("System.Status")
                if st["site"] == "test":
                    break
                time.sleep(0.05)
            cfg = next(s for s in st["subsystems"] if s["name"] == "config")
            assert st["site"] == "test" and cfg["state"] == "ok"
    finally:
        assert d.stop() == 0
    log = d.log_text()
    assert '"needs_restart": "paths.data_dir"' in log  # logged after the switch to JSON
    assert "reload refused" in log and "api.not_a_key: unknown key" in log


def test_json_log_format(tmp_path: Path) -> None:
    import json

    home = tmp_path / "h"
    cfg = write_config(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scadad", "--config", str(cfg), "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wait_ready(home / "scadad.sock", proc)
    proc.send_signal(signal.SIGHUP)  # the command-line format must survive a reload
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert any(line["msg"] == "configuration reloaded" for line in lines)
    ready = next(line for line in lines if line["msg"] == "ready")
    assert ready["level"] == "info" and ready["socket"] == str(home / "scadad.sock") and ready["ts"].endswith("Z")


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[api]\nidle_timeout_s = 'never'\n")
    r = subprocess.run([sys.executable, "-m", "scadad", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{cfg}: api.idle_timeout_s: Expected `float`, got `str`" in r.stderr


def test_pending_migrations_without_auto_migrate(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", extra="[store]\nauto_migrate = false\n")
    try:
        import pytest

        from scadad.api.errors import FailedPrecondition

        with d.client() as c:
            st = c.call("System.Status")
            states = {s["name"]: s["state"] for s in st["subsystems"]}
            assert states["store"] == "degraded" and states["plant"] == "down"
            with pytest.raises(FailedPrecondition, match="scadactl db migrate"):
                c.call("Sites.List")
            res = c.call("Db.Migrate")
            from scadad.store.migrations import discover

            assert [m["version"] for m in res["applied"]] == [m.version for m in discover()]
            assert c.call("Sites.List") == {"sites": []}
            states = {s["name"]: s["state"] for s in c.call("System.Status")["subsystems"]}
            assert states["store"] == "ok" and states["plant"] == "ok"
    finally:
        assert d.stop() == 0


def test_systemd_notify_ready_and_stopping(tmp_path: Path) -> None:
    import socket as s

    home = tmp_path / "h"
    cfg = write_config(home)
    notify_path = tmp_path / "notify.sock"
    sink = s.socket(s.AF_UNIX, s.SOCK_DGRAM)
    sink.bind(str(notify_path))
    sink.settimeout(10)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    log = open(home / "scadad.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "scadad", "--config", str(cfg)], stdout=log, stderr=log, env=env)
    try:
        assert sink.recv(1024) == b"READY=1"
        wait_ready(home / "scadad.sock", proc)  # READY=1 comes only once the socket serves
        proc.send_signal(signal.SIGTERM)
        assert sink.recv(1024) == b"STOPPING=1"
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sink.close()
