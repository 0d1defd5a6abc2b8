"""scadactl against a real daemon: exit codes, --json documents, human tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scadactl.main import app
from tests.conftest import RunningDaemon

runner = CliRunner()


def run(d: RunningDaemon | None, *args: str, socket: str | None = None):
    sock = socket or (str(d.socket) if d else "/nonexistent/scadad.sock")
    return runner.invoke(app, ["--socket", sock, *args], catch_exceptions=False)


def test_status_json_is_one_document(shared_daemon: RunningDaemon) -> None:
    r = run(shared_daemon, "--json", "status")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {s["name"] for s in doc["subsystems"]} >= {"config", "store", "api", "plant"}
    assert all(s["state"] == "ok" for s in doc["subsystems"])
    assert doc["started_at"].endswith("Z") and doc["versions"]["scadad"]


def test_status_human_shows_each_subsystem(shared_daemon: RunningDaemon) -> None:
    r = run(shared_daemon, "status")
    assert r.exit_code == 0
    for name in ("config", "store", "api", "plant"):
        assert name in r.stdout
    assert "site test" in r.stdout


def test_status_json_pipes_into_json_tool(shared_daemon: RunningDaemon) -> None:
    cmd = f"{sys.executable} -m scadactl.main --socket {shared_daemon.socket} --json status | {sys.executable} -m json.tool"
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pid"] == shared_daemon.proc.pid


def test_unreachable_daemon_exits_3(tmp_path: Path) -> None:
    r = run(None, "status", socket=str(tmp_path / "none.sock"))
    assert r.exit_code == 3
    assert "cannot reach scadad" in r.stderr
    r = run(None, "--json", "status", socket=str(tmp_path / "none.sock"))
    assert r.exit_code == 3 and json.loads(r.stdout)["error"]["code"] == "UNAVAILABLE"


def test_daemon_error_exits_1_and_usage_exits_2(shared_daemon: RunningDaemon) -> None:
    r = run(shared_daemon, "site", "show", "no-such-site")
    assert r.exit_code == 1 and "NOT_FOUND" in r.stderr
    r = run(shared_daemon, "--json", "site", "show", "no-such-site")
    assert r.exit_code == 1 and json.loads(r.stdout)["error"]["code"] == "NOT_FOUND"
    assert run(shared_daemon, "site", "show").exit_code == 2
    assert run(shared_daemon, "call", "System.Ping", "--params", "{oops").exit_code == 2
    assert run(shared_daemon, "call", "System.Ping", "--params", "[1]").exit_code == 2
    assert run(shared_daemon, "frobnicate").exit_code == 2


def test_describe_via_call_lists_methods_with_params_and_permission(shared_daemon: RunningDaemon) -> None:
    r = run(shared_daemon, "--json", "call", "System.Describe")
    assert r.exit_code == 0
    methods = {m["name"]: m for m in json.loads(r.stdout)["methods"]}
    assert methods["Sites.Create"]["permission"] == "sites.configure"
    assert "SiteCreate" in methods["Sites.Create"]["params"]["$defs"]
    human = run(shared_daemon, "call", "System.Describe")
    assert human.exit_code == 0 and '"Equipment.Delete"' in human.stdout
    table = run(shared_daemon, "describe")
    assert "Sites.Create" in table.stdout and "sites.configure" in table.stdout
    one = run(shared_daemon, "describe", "sites.create")
    assert one.exit_code == 0 and "timezone" in one.stdout and "^[a-z0-9_-]+$" in one.stdout


def test_call_streams_print_ndjson(shared_daemon: RunningDaemon) -> None:
    r = run(shared_daemon, "--json", "call", "System.Heartbeat", "-p", '{"interval_s": 0.01, "count": 3}')
    assert r.exit_code == 0
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["seq"] for e in events] == [1, 2, 3]
    r = run(shared_daemon, "--json", "call", "Sites.Get", "-p", '{"name": 5}')
    assert r.exit_code == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "INVALID_ARGUMENT" and err["details"]["field"] == "params.name"


def test_site_and_equipment_commands(shared_daemon: RunningDaemon) -> None:
    r = run(shared_daemon, "--json", "site", "add", "cli-site", "-n", "CLI site", "-z", "Asia/Dubai")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["timezone"] == "Asia/Dubai"
    assert run(shared_daemon, "equipment", "add", "cli-site", "tx1", "-k", "transformer").exit_code == 0
    r = run(shared_daemon, "equipment", "add", "cli-site", "fdr1", "-k", "feeder", "--parent", "tx1")
    assert r.exit_code == 0 and "cli-site/fdr1 added" in r.stdout
    rows = json.loads(run(shared_daemon, "--json", "equipment", "list", "--site", "cli-site").stdout)
    assert [(e["name"], e["parent"]) for e in rows] == [("fdr1", "tx1"), ("tx1", None)]
    r = run(shared_daemon, "--json", "equipment", "edit", "cli-site", "fdr1", "--top-level")
    assert json.loads(r.stdout)["parent"] is None
    listing = run(shared_daemon, "site", "list")
    assert "cli-site" in listing.stdout and "Asia/Dubai" in listing.stdout
    r = run(shared_daemon, "site", "rm", "cli-site", "--yes")
    assert r.exit_code == 1 and "FAILED_PRECONDITION" in r.stderr
    for eq in ("fdr1", "tx1"):
        assert run(shared_daemon, "equipment", "rm", "cli-site", eq, "-y").exit_code == 0
    assert run(shared_daemon, "-q", "site", "rm", "cli-site", "-y").stdout == ""
    names = [s["name"] for s in json.loads(run(shared_daemon, "--json", "site", "list").stdout)]
    assert "cli-site" not in names


def test_db_status_and_migrate(shared_daemon: RunningDaemon) -> None:
    doc = json.loads(run(shared_daemon, "--json", "db", "status").stdout)
    assert doc["dialect"] == "sqlite" and doc["current_version"] == doc["latest_version"]
    assert doc["migrations"][0]["name"] == "initial" and doc["migrations"][0]["applied_at"]
    r = run(shared_daemon, "db", "migrate")
    assert r.exit_code == 0 and "nothing to do" in r.stdout


@pytest.mark.parametrize("group", ["site", "equipment", "db"])
def test_help_texts(group: str) -> None:
    r = runner.invoke(app, [group, "--help"])
    assert r.exit_code == 0 and "Usage" in r.stdout
