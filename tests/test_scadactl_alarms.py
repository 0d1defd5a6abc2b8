"""scadactl alarm against a real daemon: rules and their files, operator actions, the
journal, the live watch and the KPIs, checked on the values they print.

Every alarm here sits on a memory tag that the test writes (Tags.Write is applied
synchronously and the engine evaluates in the same step), so each transition happens
exactly when the test says. One daemon serves the module; each test has its own tags
(and area), so tests do not see each other's alarms.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from scadactl.main import app
from tests.conftest import RunningDaemon, memory_tag_daemon

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent
WIDE = {"COLUMNS": "200"}  # human tables on one line per row

TAGS = (
    "rules/pump/pressure", "files/a", "files/b", "ops/tank/level", "hist/tank/level",
    "kpi/a", "kpi/b", "kpi/c", "watch/x",
)  # fmt: skip


def run(d: RunningDaemon, *args: str):
    return runner.invoke(app, ["--socket", str(d.socket), *args], env=WIDE, catch_exceptions=False)


def run_json(d: RunningDaemon, *args: str) -> Any:
    r = run(d, "--json", *args)
    assert r.exit_code == 0, f"{args}: exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def ok(d: RunningDaemon, *args: str) -> str:
    r = run(d, *args)
    assert r.exit_code == 0, f"{args}: exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def write(d: RunningDaemon, path: str, *values: float) -> None:
    """Write values to a memory tag, one after the other (each one evaluated by the alarms)."""
    with d.client() as c:
        for v in values:
            c.call("Tags.Write", {"path": path, "value": v, "confirm": False})


def line_with(text: str, *needles: str) -> str:
    """The one output line containing every needle."""
    found = [ln.rstrip() for ln in text.splitlines() if all(n in ln for n in needles)]
    assert len(found) == 1, f"{needles}: {len(found)} lines in\n{text}"
    return found[0]


def line_starting(text: str, prefix: str) -> list[str]:
    """The words of the one output line that starts with `prefix`."""
    found = [ln.split() for ln in text.splitlines() if ln.startswith(prefix)]
    assert len(found) == 1, f"{prefix!r}: {len(found)} lines in\n{text}"
    return found[0]


def spec_of(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k not in ("id", "created_at", "updated_at")}


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """One daemon with a writable float64 memory tag per test scenario."""
    units = {"ops/tank/level": "m", "hist/tank/level": "m"}
    yield from memory_tag_daemon(tmp_path_factory.mktemp("alarms") / "home", {p: units.get(p, "") for p in TAGS})


# ---------------------------------------------------------------- rules


def test_rule_add_list_show_edit_rm(d: RunningDaemon) -> None:
    tag = "rules/pump/pressure"
    out = ok(d, "alarm", "rule", "add", tag, "hi", "--limit", "8.5", "--deadband", "0.5", "--on-delay", "2s",
             "--priority", "high", "--message", "pressure high: {value} > {limit}")  # fmt: skip
    assert f"alarm {tag}:hi added (id " in out and "high, > 8.5)" in out
    lo = run_json(d, "alarm", "rule", "add", tag, "lo", "-l", "1", "--off-delay", "500ms", "--latching",
                  "--work-order", "--disabled", "--area", "rules/pumps")  # fmt: skip
    assert lo["kind"] == "lo" and lo["limit"] == 1.0 and lo["off_delay_ms"] == 500 and lo["on_delay_ms"] == 0
    assert lo["latching"] is True and lo["open_work_order"] is True and lo["enabled"] is False
    assert lo["area"] == "rules/pumps" and lo["priority"] == "medium"

    r = run(d, "alarm", "rule", "add", tag, "hi", "--limit", "9")
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = run(d, "alarm", "rule", "add", tag, "hihi")
    assert r.exit_code == 1 and "a hihi alarm needs a limit" in r.stderr
    r = run(d, "alarm", "rule", "add", tag, "hihi", "--limit", "9", "--on-delay", "5x")
    assert r.exit_code == 2 and "--on-delay" in r.stderr
    r = run(d, "alarm", "rule", "add", tag, "sideways", "--limit", "9")
    assert r.exit_code == 2

    rules = run_json(d, "alarm", "rule", "list", "rules/**")["rules"]
    assert [(x["tag"], x["kind"]) for x in rules] == [(tag, "hi"), (tag, "lo")]
    hi = rules[0]
    assert (hi["limit"], hi["deadband"], hi["on_delay_ms"], hi["area"]) == (8.5, 0.5, 2000, "rules")
    out = ok(d, "alarm", "rule", "list", "rules/**")
    assert line_with(out, f"{tag}:hi").split() == [str(hi["id"]), f"{tag}:hi", "high", ">", "8.5", "0.5", "2s/0",
                                                   "rules"]  # fmt: skip
    assert line_with(out, f"{tag}:lo").split()[-4:] == ["rules/pumps", "DISABLED,", "latching,", "work-order"]
    assert [x["kind"] for x in run_json(d, "alarm", "rule", "list", "--area", "rules/pumps")["rules"]] == ["lo"]

    shown = run_json(d, "alarm", "rule", "show", f"{tag}:hi")
    assert shown == hi
    assert run_json(d, "alarm", "rule", "show", str(hi["id"])) == hi  # by rule id
    out = ok(d, "alarm", "rule", "show", f"{tag}:hi")
    assert line_with(out, "trips when").split() == ["trips", "when", ">", "8.5"]
    assert line_with(out, "on delay").split() == ["on", "delay", "2s"]
    assert "pressure high: {value} > {limit}" in out

    edited = run_json(d, "alarm", "rule", "edit", f"{tag}:hi", "--limit", "9", "--priority", "critical", "--latching")
    assert (edited["limit"], edited["priority"], edited["latching"]) == (9.0, "critical", True)
    assert spec_of(edited) == {**spec_of(hi), "limit": 9.0, "priority": "critical", "latching": True}
    out = ok(d, "alarm", "rule", "edit", f"{tag}:lo", "--enabled", "--off-delay", "0", "--no-work-order")
    assert f"alarm {tag}:lo updated (medium, < 1)" in out
    lo2 = run_json(d, "alarm", "rule", "show", f"{tag}:lo")
    assert (lo2["enabled"], lo2["off_delay_ms"], lo2["open_work_order"], lo2["latching"]) == (True, 0, False, True)
    r = run(d, "alarm", "rule", "edit", f"{tag}:lo")
    assert r.exit_code == 2 and "nothing to change" in r.stderr

    assert f"alarm {tag}:hi removed" in ok(d, "alarm", "rule", "rm", f"{tag}:hi", "-y")
    r = run(d, "alarm", "rule", "show", f"{tag}:hi")
    assert r.exit_code == 1 and f"no alarm '{tag}:hi'" in r.stderr
    r = run(d, "--json", "alarm", "rule", "show", f"{tag}:hi")  # errors in --json mode are JSON too
    assert r.exit_code == 1 and json.loads(r.stdout)["error"]["code"] == "NOT_FOUND"
    assert run_json(d, "alarm", "rule", "rm", str(lo["id"]), "-y") == {"deleted": True}
    assert run_json(d, "alarm", "rule", "list", "rules/**")["rules"] == []


# ---------------------------------------------------------------- rule files

HEADER = "tag,kind,limit,priority,message\n"


def test_rule_import_refuses_a_bad_file_naming_row_and_field_and_stores_nothing(
    d: RunningDaemon, tmp_path: Path
) -> None:
    def stored() -> list[Any]:
        return run_json(d, "alarm", "rule", "list", "files/**")["rules"]

    f = tmp_path / "bad.csv"
    # A value the file cannot hold: refused before anything is sent (exit 2).
    f.write_text(HEADER + "files/a,hi,80,high,a high\nfiles/a,lo,5,low,a low\nfiles/b,hi,80,urgent,b high\n")
    for args in (("alarm", "rule", "import", str(f)), ("--json", "alarm", "rule", "import", str(f), "--dry-run")):
        r = run(d, *args)
        assert r.exit_code == 2, r.output
        assert f"{f} row 4, field 'priority'" in r.stderr and "urgent" in r.stderr
    assert stored() == []
    # Two rows for one alarm.
    f.write_text(HEADER + "files/a,hi,80,high,x\n\nfiles/a,hi,90,high,y\n")
    r = run(d, "alarm", "rule", "import", str(f))
    assert r.exit_code == 2 and f"{f} row 4: alarm 'files/a:hi' is already defined at {f} row 2" in r.stderr
    # A rule only the daemon can refuse (no such tag): the whole file is refused, and the
    # error still names the file's row and field (exit 1: the daemon said no).
    f.write_text(HEADER + "files/a,hi,80,high,a high\n\nfiles/nope,hi,80,high,x\n")
    r = run(d, "alarm", "rule", "import", str(f))
    assert r.exit_code == 1, r.output
    assert f"{f} row 4, field 'tag': no tag 'files/nope'" in r.stderr
    r = run(d, "--json", "alarm", "rule", "import", str(f))
    err = json.loads(r.stdout)["error"]
    assert r.exit_code == 1 and err["code"] == "INVALID_ARGUMENT"
    assert err["message"] == f"{f} row 4, field 'tag': no tag 'files/nope'"
    assert err["details"]["field"] == "params.rules[1].tag"
    assert stored() == []
    # TOML: a limit alarm without its limit, named by entry and line.
    t = tmp_path / "bad.toml"
    t.write_text('[[rules]]\ntag = "files/a"\nkind = "hi"\nlimit = 80.0\n\n[[rules]]\ntag = "files/b"\nkind = "lo"\n')
    r = run(d, "alarm", "rule", "import", str(t))
    assert r.exit_code == 1 and f"{t} entry 2 (line 6), field 'limit': a lo alarm needs a limit" in r.stderr
    assert stored() == []


def test_rule_export_then_import_round_trip(d: RunningDaemon, tmp_path: Path) -> None:
    adds = [
        ("files/a", "hi", "--limit", "80", "--deadband", "1.5", "--priority", "high",
         "--message", 'level, "high": {value}'),
        ("files/a", "lo", "--limit", "5", "--on-delay", "3s", "--off-delay", "1m", "--latching"),
        ("files/a", "deviation", "--limit", "2", "--setpoint", "files/b", "--area", "files/loop"),
        ("files/b", "discrete", "--limit", "1", "--discrete-op", "ne", "--suppress-when", "{files/a} < 1",
         "--work-order", "--disabled"),
        ("files/b", "bad_quality", "--priority", "critical"),
    ]  # fmt: skip
    for args in adds:
        ok(d, "alarm", "rule", "add", *args)
    before = [spec_of(r) for r in run_json(d, "alarm", "rule", "list", "files/**")["rules"]]
    assert len(before) == 5
    names = [f"{r['tag']}:{r['kind']}" for r in before]

    # To standard output: CSV by default; --json gives the API result.
    text = ok(d, "alarm", "rule", "export", "--pattern", "files/**")
    assert text.splitlines()[0] == "tag,kind,limit,discrete_op,setpoint_tag,deadband,on_delay_ms,off_delay_ms,"\
        "priority,latching,message,area,open_work_order,suppress_when,enabled"  # fmt: skip
    assert 'files/a,hi,80.0,eq,,1.5,0,0,high,false,"level, ""high"": {value}",files,false,,true' in text
    [loop] = run_json(d, "alarm", "rule", "export", "--area", "files/loop")["rules"]
    assert (loop["tag"], loop["kind"], loop["setpoint_tag"]) == ("files/a", "deviation", "files/b")

    for fmt in ("csv", "toml"):
        f = tmp_path / f"rules.{fmt}"
        meta = run_json(d, "alarm", "rule", "export", str(f), "-p", "files/**")
        assert meta == {"path": str(f), "format": fmt, "count": 5}
        if fmt == "toml":
            assert f.read_text().count("[[rules]]") == 5
        for name in names:
            ok(d, "alarm", "rule", "rm", name, "-y")
        assert run_json(d, "alarm", "rule", "list", "files/**")["rules"] == []

        out = ok(d, "alarm", "rule", "import", str(f), "--dry-run")
        assert f"dry run of {f} (5 rules), nothing changed: would create 5, update 0, 0 unchanged" in out
        assert run_json(d, "alarm", "rule", "list", "files/**")["rules"] == []
        doc = run_json(d, "alarm", "rule", "import", str(f))
        assert sorted(doc["created"]) == sorted(names) and doc["updated"] == doc["unchanged"] == []
        assert [spec_of(r) for r in run_json(d, "alarm", "rule", "list", "files/**")["rules"]] == before
        out = ok(d, "alarm", "rule", "import", str(f))
        assert f"imported {f} (5 rules): created 0, updated 0, 5 unchanged" in out

    # A changed rule needs --update.
    f = tmp_path / "rules.csv"
    f.write_text(f.read_text().replace(",high,false,", ",low,false,", 1))
    r = run(d, "alarm", "rule", "import", str(f))
    assert r.exit_code == 1 and "files/a:hi exists and differs" in r.stderr
    doc = run_json(d, "alarm", "rule", "import", str(f), "--update")
    assert doc["updated"] == ["files/a:hi"] and len(doc["unchanged"]) == 4
    assert run_json(d, "alarm", "rule", "show", "files/a:hi")["priority"] == "low"


# ---------------------------------------------------------------- operator actions


def test_list_ack_shelve_unshelve_comment_oos_in_service(d: RunningDaemon) -> None:
    tag, hi, hihi = "ops/tank/level", "ops/tank/level:hi", "ops/tank/level:hihi"
    ok(d, "alarm", "rule", "add", tag, "hi", "--limit", "80", "--priority", "high", "--message", "tank high {value}")
    ok(d, "alarm", "rule", "add", tag, "hihi", "--limit", "95", "--priority", "critical")

    def listed(*args: str) -> dict[str, dict[str, Any]]:
        return {a["name"]: a for a in run_json(d, "alarm", "list", "ops/**", *args)["alarms"]}

    assert listed() == {}
    write(d, tag, 90)
    doc = run_json(d, "alarm", "list", "ops/**")
    [a] = doc["alarms"]
    assert (a["name"], a["state"], a["active"], a["annunciated"], a["value"]) == (hi, "unack_active", True, True, 90.0)
    assert a["message"] == "tank high 90" and a["units"] == "m" and a["priority"] == "high"
    assert doc["counts"]["unacked_by_priority"]["high"] >= 1
    out = ok(d, "alarm", "list", "ops/**")
    assert line_with(out, hi).split()[:5] == ["high", "UNACK", hi, "90", "m"] and "tank high 90" in out
    assert re.search(r"^\d+ active, \d+ unacknowledged \(.*high \d+.*\), \d+ shelved, \d+ suppressed, \d+ out of "
                     r"service$", out, re.M), out  # fmt: skip

    out = ok(d, "alarm", "ack", hi, hihi, "--comment", "seen it")
    assert f"acknowledged 1: {hi}" in out and f"skipped 1 (not unacknowledged): {hihi}" in out
    assert listed()[hi]["state"] == "ack_active" and listed()[hi]["acked_by"]
    write(d, tag, 99)
    assert listed()[hihi]["state"] == "unack_active"
    # Most urgent first: critical before high.
    assert [a["name"] for a in run_json(d, "alarm", "list", "ops/**")["alarms"]] == [hihi, hi]
    assert list(listed("--priority", "critical")) == [hihi]
    r = run(d, "alarm", "list", "--priority", "urgent")
    assert r.exit_code == 2 and "urgent" in r.stderr
    assert run_json(d, "alarm", "ack", "--all", "ops/**") == {"acknowledged": [hihi], "skipped": []}
    assert "nothing to acknowledge" in ok(d, "alarm", "ack", "--all", "--area", "ops")
    r = run(d, "alarm", "ack")
    assert r.exit_code == 2

    t0 = datetime.now(UTC)
    out = ok(d, "alarm", "shelve", hihi, "--for", "2h", "--reason", "calibration")
    assert re.search(rf"^shelved {hihi} until \d{{4}}-\d\d-\d\d \d\d:\d\d \(UTC\)$", out, re.M), out
    until = datetime.fromisoformat(listed("--all")[hihi]["shelved_until"])
    assert timedelta(hours=2) <= until - t0 < timedelta(hours=2, seconds=10)
    assert list(listed()) == [hi]  # shelved alarms are not shown by default
    out = ok(d, "alarm", "list", "ops/**", "--all")
    same_day = until.date() == datetime.now(UTC).date()  # the site is in UTC
    assert line_with(out, hihi).endswith(f"SHELVED until {until.strftime('%H:%M' if same_day else '%Y-%m-%d %H:%M')}")
    r = run(d, "alarm", "shelve", hi, "--for", "0", "--reason", "x")
    assert r.exit_code == 2 and "--for" in r.stderr
    r = run(d, "alarm", "shelve", hi, "--for", "2h")
    assert r.exit_code == 2  # a reason is required
    assert f"unshelved {hihi}" in ok(d, "alarm", "unshelve", hihi)
    assert list(listed()) == [hihi, hi] and listed()[hihi]["shelved_until"] is None

    doc = run_json(d, "alarm", "comment", hi, "checked locally")
    assert doc["alarms"][0]["name"] == hi
    [row] = run_json(d, "alarm", "history", hi, "--event", "comment")["events"]
    assert row["comment"] == "checked locally" and row["user"]

    r = run(d, "alarm", "oos", hihi)
    assert r.exit_code == 2  # the reason is required
    [a] = run_json(d, "alarm", "oos", hihi, "--reason", "transmitter replaced")["alarms"]
    assert (a["out_of_service"], a["state"], a["oos_reason"]) == (True, "normal", "transmitter replaced")
    assert list(listed()) == [hi]
    assert line_with(ok(d, "alarm", "list", "ops/**", "--all"), hihi).split()[:3] == ["critical", "normal", hihi]
    assert line_with(ok(d, "alarm", "list", "ops/**", "--all"), hihi).endswith("OOS")
    # Back in service it is evaluated afresh: the level is still 99, so it alarms again.
    assert f"{hihi} in service (UNACK)" in ok(d, "alarm", "in-service", hihi)
    assert listed()[hihi]["state"] == "unack_active" and not listed()[hihi]["out_of_service"]
    r = run(d, "alarm", "ack", "ops/tank/level:lolo")
    assert r.exit_code == 1 and "no alarm 'ops/tank/level:lolo'" in r.stderr


# ---------------------------------------------------------------- journal


def test_history_shows_activated_acknowledged_cleared_in_order(d: RunningDaemon) -> None:
    tag, name = "hist/tank/level", "hist/tank/level:hi"
    ok(d, "alarm", "rule", "add", tag, "hi", "--limit", "50", "--priority", "medium")
    t0 = datetime.now(UTC)
    write(d, tag, 60)
    ok(d, "alarm", "ack", name, "--comment", "on it")
    write(d, tag, 10)
    t1 = datetime.now(UTC) + timedelta(seconds=1)
    span = ("--from", t0.isoformat(), "--to", t1.isoformat())

    events = run_json(d, "alarm", "history", name, *span)["events"]
    assert [(e["event"], e["state"], e["value"]) for e in events] == [
        ("activated", "unack_active", 60.0),
        ("acknowledged", "ack_active", 60.0),
        ("cleared", "normal", 10.0),
    ]
    times = [datetime.fromisoformat(e["time"]) for e in events]
    assert times == sorted(times) and t0 <= times[0] and times[-1] < t1
    assert events[1]["comment"] == "on it" and events[1]["user"] and events[0]["user"] is None
    assert run_json(d, "alarm", "history", "--pattern", "hist/**", *span)["events"] == events
    assert run_json(d, "alarm", "history", "--area", "hist", "--event", "acknowledged", *span)["events"] == [events[1]]

    out = ok(d, "alarm", "history", name, *span)
    assert f"alarm journal on {times[0]:%Y-%m-%d} (UTC): 3 events" in out
    rows = [ln.split() for ln in out.splitlines() if name in ln]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        (f"{times[0]:%H:%M:%S.%f}"[:-3], "activated", "UNACK", "60"),
        (f"{times[1]:%H:%M:%S.%f}"[:-3], "acknowledged", "ACKED", "60"),
        (f"{times[2]:%H:%M:%S.%f}"[:-3], "cleared", "normal", "10"),
    ]
    assert rows[1][-2:] == ["on", "it"]

    csv_lines = ok(d, "alarm", "history", name, "--csv", *span).splitlines()
    assert csv_lines[0] == "time,alarm_id,name,tag,kind,event,state,priority,area,value,user,comment,message"
    assert [ln.split(",")[5] for ln in csv_lines[1:]] == ["activated", "acknowledged", "cleared"]
    assert all(ln.split(",")[0].endswith("Z") and ln.split(",")[2] == name for ln in csv_lines[1:])
    r = run(d, "alarm", "history", "--event", "exploded")
    assert r.exit_code == 2 and "exploded" in r.stderr
    r = run(d, "alarm", "history", "--from", "yesterday-ish")
    assert r.exit_code == 2 and "--from" in r.stderr


def _reader(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _next_line(lines: queue.Queue[str], what: str, timeout: float = 10) -> str:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no line from `alarm watch` within {timeout} s: waiting for {what}")


def _watch(d: RunningDaemon, *args: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scadactl.main", "--socket", str(d.socket), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, **WIDE},
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc, lines), daemon=True).start()
    return proc, lines


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)  # Ctrl-C: the documented way to stop it
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert code == 0, f"watch exited {code} on SIGINT: {proc.stderr.read() if proc.stderr else ''}"


def test_watch_streams_journal_rows(d: RunningDaemon) -> None:
    tag, name = "watch/x", "watch/x:hi"
    ok(d, "alarm", "rule", "add", tag, "hi", "--limit", "50", "--priority", "low")
    proc, lines = _watch(d, "--json", "alarm", "watch", "watch/**")
    try:
        first = json.loads(_next_line(lines, "the initial event"))
        assert first["initial"] is True and first["alarms"] == [] and first["events"] == []
        write(d, tag, 70)
        ev = json.loads(_next_line(lines, "the activation"))
        assert [(e["event"], e["tag"], e["kind"], e["value"]) for e in ev["events"]] == [("activated", tag, "hi", 70.0)]
        assert [a["name"] for a in ev["alarms"]] == [name] and ev["alarms"][0]["state"] == "unack_active"
    finally:
        _stop(proc)

    # People's lines: first the alarm that is already active, then each journal row.
    proc, lines = _watch(d, "alarm", "watch", "--area", "watch")
    try:
        first = _next_line(lines, "the current alarm")
        assert first.split()[:5] == ["now", "current", "low", name, "UNACK"], first
        write(d, tag, 10)
        cleared = _next_line(lines, "the clear")
        assert re.match(rf"^\d\d:\d\d:\d\d\.\d{{3}}  cleared\s+low\s+{name}  RTN UNACK  10\b", cleared), cleared
    finally:
        _stop(proc)


# ---------------------------------------------------------------- KPIs


def test_kpi_reports_flood_bad_actors_and_chattering_on_a_seeded_journal(d: RunningDaemon) -> None:
    """The acceptance item: a seeded journal (17 activations in one 10-minute window:
    kpi/a 12, kpi/b 4, kpi/c 1), read back through `alarm kpi --from --to`."""
    for tag, prio in (("kpi/a", "high"), ("kpi/b", "medium"), ("kpi/c", "low")):
        ok(d, "alarm", "rule", "add", tag, "hi", "--limit", "50", "--priority", prio)
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    write(d, "kpi/a", *[100, 0] * 12)
    write(d, "kpi/b", *[100, 0] * 4)
    write(d, "kpi/c", 100)
    t1 = datetime.now(UTC) + timedelta(seconds=1)
    span = ("--from", t0.isoformat(), "--to", t1.isoformat(), "--area", "kpi")

    k = run_json(d, "alarm", "kpi", *span)
    assert k["activations"] == 17 and k["operators"] == 1
    assert (k["windows"], k["flood_windows"], k["flood_pct"]) == (1, 1, 100.0)
    assert (k["per_operator_per_10min_avg"], k["per_operator_per_10min_max"]) == (17.0, 17.0)
    seconds = (datetime.fromisoformat(k["end"]) - datetime.fromisoformat(k["start"])).total_seconds()
    assert k["per_operator_per_day"] == pytest.approx(17 * 86400 / seconds, abs=0.01)
    assert [(c["name"], c["count"], c["priority"]) for c in k["bad_actors"]] == [
        ("kpi/a:hi", 12, "high"), ("kpi/b:hi", 4, "medium"), ("kpi/c:hi", 1, "low"),
    ]  # fmt: skip
    assert [(c["name"], c["count"]) for c in k["chattering"]] == [("kpi/a:hi", 12), ("kpi/b:hi", 4)]
    assert k["standing"] == []
    assert k["priority_counts"] == {"critical": 0, "high": 12, "medium": 4, "low": 1}
    assert k["priority_distribution"] == {"critical": 0.0, "high": 70.6, "medium": 23.5, "low": 5.9}

    out = ok(d, "alarm", "kpi", *span)
    assert line_starting(out, "activations") == ["activations", "17"]
    assert line_starting(out, "per 10 min") == ["per", "10", "min", "avg", "17.00,", "max", "17.00"]
    flood = "flood 100.00 % (1 of 1 10-min windows with more than 10 activations)"
    assert line_starting(out, "flood") == flood.split()
    lines = out.splitlines()
    bad = lines.index("bad actors:")
    assert lines[bad + 1].split() == ["ALARM", "PRIORITY", "ACTIVATIONS", "%"]
    assert [ln.split() for ln in lines[bad + 2 : bad + 5]] == [
        ["kpi/a:hi", "high", "12", "70.6"], ["kpi/b:hi", "medium", "4", "23.5"], ["kpi/c:hi", "low", "1", "5.9"],
    ]  # fmt: skip
    chat = lines.index("chattering (3 or more within 60 s):")
    assert [ln.split() for ln in lines[chat + 2 : chat + 4]] == [
        ["kpi/a:hi", "high", "12"],
        ["kpi/b:hi", "medium", "4"],
    ]
    assert lines[chat + 4] == ""  # kpi/c is not chattering
    assert "standing (active 24 h or more): none" in lines
    prio = lines.index("priority distribution:")
    assert [ln.split() for ln in lines[prio + 2 : prio + 6]] == [
        ["critical", "0", "0.0"], ["high", "12", "70.6"], ["medium", "4", "23.5"], ["low", "1", "5.9"],
    ]  # fmt: skip

    # Two operators share the load: 17 in a window is no flood for two (more than 20 is).
    two = run_json(d, "alarm", "kpi", *span, "--operators", "2", "--top", "2")
    assert (two["flood_windows"], two["flood_pct"], two["per_operator_per_10min_avg"]) == (0, 0.0, 8.5)
    assert [c["name"] for c in two["bad_actors"]] == ["kpi/a:hi", "kpi/b:hi"]
    # A period before the seeding sees none of it.
    early = run_json(d, "alarm", "kpi", "--from", (t0 - timedelta(hours=1)).isoformat(), "--to", t0.isoformat(),
                     "--area", "kpi")  # fmt: skip
    assert early["activations"] == 0 and early["bad_actors"] == [] and early["windows"] == 6


# ---------------------------------------------------------------- help


def test_every_alarm_command_and_option_has_help() -> None:
    group = typer.main.get_command(app).commands["alarm"]  # type: ignore[attr-defined]

    def walk(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    seen = []
    for path, cmd in walk(group, "alarm"):
        seen.append(path)
        assert (cmd.help or "").strip(), f"{path}: no help"
        for p in cmd.params:
            assert (getattr(p, "help", None) or "").strip(), f"{path} {p.name}: no help"
    assert len(seen) == 19, seen
