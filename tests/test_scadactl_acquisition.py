"""scadactl against a real daemon running the built-in simulated plant: devices, tags,
scan groups, history and the simulator, checked on the values they print."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scadactl.main import app
from tests.conftest import RunningDaemon, start_daemon

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent

SIM_CONFIG = "[simulator]\nenabled = true\nscan_ms = 500\n"
SIM_DEVICES = ("sdm630-0", "pm5xxx-1", "em24-2", "dg-3", "inverter-4", "pump-plc-5")
VOLTAGE = "sim/sdm630-0/voltage_l1"
SETPOINT = "sim/pump-plc-5/level_high_sp"  # writable uint16, x0.1, %
TANK = "sim/pump-plc-5/tank_level"  # read-only uint16, x0.1, %, holding register 0


def run(d: RunningDaemon, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["--socket", str(d.socket), *args], env=env, catch_exceptions=False)


def run_json(d: RunningDaemon, *args: str) -> Any:
    r = run(d, "--json", *args)
    assert r.exit_code == 0, f"{args}: exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def values(d: RunningDaemon, *paths: str) -> dict[str, dict[str, Any]]:
    """`--json tag read PATHS` as {path: value}."""
    return {v["path"]: v for v in run_json(d, "tag", "read", *paths)}


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(every)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def all_good(d: RunningDaemon, pattern: str) -> bool:
    with d.client() as c:
        vals = c.call("Tags.Read", {"paths": [pattern]})["values"]
    return bool(vals) and all(v["quality"] == "GOOD" for v in vals)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """One daemon with the simulated plant (six devices, scanned every 500 ms), all GOOD."""
    d = start_daemon(tmp_path_factory.mktemp("acq") / "home", extra=SIM_CONFIG)
    try:
        deadline = time.monotonic() + 20
        while not all_good(d, "sim/**"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"sim/** not all GOOD within 20 s\n{d.log_text()}")
            time.sleep(0.1)
    except BaseException:
        d.stop()
        raise
    yield d
    code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


def sim_ports(d: RunningDaemon) -> dict[str, int]:
    return {s["name"]: s["port"] for s in run_json(d, "sim", "status")["devices"]}


# ---------------------------------------------------------------- tag list, read, show


def test_tag_list_json_every_sim_tag_is_good_and_fresh(plant: RunningDaemon) -> None:
    # sim/<device>/<point>: the device tags (the demo's computed energy tags are sim/energy/...).
    doc = run_json(plant, "tag", "list", "sim/*/*")
    now = datetime.now(UTC)
    sim = run_json(plant, "sim", "status")
    assert doc["total"] == len(doc["tags"]) == sum(s["tags"] for s in sim["devices"]) > 0
    per_device: dict[str, int] = {}
    for t in doc["tags"]:
        spec, v = t["spec"], t["value"]
        assert v["path"] == spec["path"]
        site, device, _ = spec["path"].split("/")
        assert site == "sim" and device == spec["device"] and device in SIM_DEVICES
        per_device[device] = per_device.get(device, 0) + 1
        assert v["quality"] == "GOOD", v
        assert abs((now - when(v["source_time"])).total_seconds()) < 3, v
        assert spec["scan_group"] == "sim-500ms"
    assert per_device == {s["name"]: s["tags"] for s in sim["devices"]}
    volt = next(t for t in doc["tags"] if t["spec"]["path"] == VOLTAGE)
    assert volt["spec"]["units"] == "V" and 200 < volt["value"]["value"] < 260


def test_tag_list_human_shows_paths_units_and_quality(plant: RunningDaemon) -> None:
    r = run(plant, "tag", "list", "sim/sdm630-0/*")
    assert r.exit_code == 0, r.output
    lines = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln.startswith("sim/")}
    expected = {t["spec"]["path"]: t for t in run_json(plant, "tag", "list", "sim/sdm630-0/*")["tags"]}
    assert set(lines) == set(expected) and len(lines) == 15
    for path, cells in lines.items():
        units = expected[path]["spec"]["units"]
        assert "GOOD" in cells, cells
        if units:
            assert cells[2] == units, cells
        assert cells[-1] == f"sdm630-0:{expected[path]['spec']['address']}"
    assert lines[VOLTAGE][2] == "V" and 200 < float(lines[VOLTAGE][1]) < 260
    assert lines["sim/sdm630-0/total_kwh"][2] == "kWh" and "e+" not in lines["sim/sdm630-0/total_kwh"][1]
    # -D filters by device, -n cuts and says so on standard error.
    pump = run_json(plant, "tag", "list", "-D", "pump-plc-5")
    assert pump["total"] == 9 and {t["spec"]["device"] for t in pump["tags"]} == {"pump-plc-5"}
    cut = run(plant, "tag", "list", "sim/*/*", "-n", "5")
    assert cut.exit_code == 0 and "showing 5 of 70 tags" in cut.stderr
    assert len([ln for ln in cut.stdout.splitlines() if ln.startswith("sim/")]) == 5


def test_tag_read_path_and_patterns(plant: RunningDaemon) -> None:
    one = run_json(plant, "tag", "read", VOLTAGE)
    assert len(one) == 1 and one[0]["path"] == VOLTAGE and one[0]["units"] == "V"
    assert one[0]["quality"] == "GOOD" and 200 < one[0]["value"] < 260
    pat = run_json(plant, "tag", "read", "sim/sdm630-0/voltage_*")
    assert [v["path"] for v in pat] == [f"sim/sdm630-0/voltage_l{i}" for i in (1, 2, 3)]
    assert all(200 < v["value"] < 260 for v in pat)
    freq = values(plant, "sim/*/frequency", TANK)
    assert TANK in freq and 0 <= freq[TANK]["value"] <= 100 and freq[TANK]["units"] == "%"
    hz = {p: v for p, v in freq.items() if p.endswith("/frequency")}
    assert {"sim/sdm630-0/frequency", "sim/pm5xxx-1/frequency", "sim/em24-2/frequency"} <= set(hz)
    assert all(v["units"] == "Hz" and v["quality"] == "GOOD" for v in hz.values())
    meters = ("sim/sdm630-0/frequency", "sim/pm5xxx-1/frequency", "sim/em24-2/frequency")
    assert all(45 < hz[p]["value"] < 55 for p in meters)  # (the generator reads 0 Hz while it stands)
    human = run(plant, "tag", "read", "sim/sdm630-0/voltage_*")
    assert human.exit_code == 0
    rows = [ln.split() for ln in human.stdout.splitlines() if ln.startswith("sim/")]
    assert [r[0] for r in rows] == [v["path"] for v in pat]
    assert all(r[2] == "V" and r[3] == "GOOD" and 200 < float(r[1]) < 260 for r in rows)
    none = run(plant, "tag", "read", "sim/nothing-*")
    assert none.exit_code == 0 and "no tags" in none.stderr


def test_tag_show_human_and_json(plant: RunningDaemon) -> None:
    r = run(plant, "tag", "show", SETPOINT)
    assert r.exit_code == 0, r.output
    record = {ln.split(None, 1)[0]: ln.split(None, 1)[1].strip() for ln in r.stdout.splitlines() if " " in ln.strip()}
    assert record["path"] == SETPOINT and record["data_type"] == "uint16"
    assert record["device"] == "pump-plc-5" and record["address"] == "10" and record["function"] == "3"
    assert record["units"] == "%" and record["writable"] == "True" and record["quality"] == "GOOD"
    assert record["scaling"] == "0..65535 -> 0..6553.5"
    doc = run_json(plant, "tag", "show", TANK)
    assert doc["spec"]["writable"] is False and doc["spec"]["eng_high"] == 6553.5
    assert doc["value"]["quality"] == "GOOD" and doc["value"]["path"] == TANK


def test_unknown_tag_is_a_daemon_error(plant: RunningDaemon) -> None:
    r = run(plant, "tag", "read", "sim/nope/x")
    assert r.exit_code == 1 and ("NOT_FOUND" in r.stderr or "INVALID_ARGUMENT" in r.stderr)
    assert "sim/nope/x" in r.stderr
    r = run(plant, "--json", "tag", "read", VOLTAGE, "sim/nope/x")
    err = json.loads(r.stdout)["error"]
    assert r.exit_code == 1 and err["code"] in ("NOT_FOUND", "INVALID_ARGUMENT")
    assert err["details"]["field"] == "params.paths[1]"
    r = run(plant, "tag", "show", "sim/nope/x")
    assert r.exit_code == 1 and "NOT_FOUND" in r.stderr
    assert run(plant, "tag", "read", "Not/A/Path").exit_code == 1


# ---------------------------------------------------------------- write


def test_tag_write_confirms_and_reads_back(plant: RunningDaemon) -> None:
    try:
        r = run(plant, "tag", "write", SETPOINT, "81.5")
        assert r.exit_code == 0, r.output
        record = {ln.split(None, 1)[0]: ln.split(None, 1)[1].strip() for ln in r.stdout.splitlines() if ln.strip()}
        assert record["confirmed"] == "yes" and record["raw"] == "815"
        assert record["written"] == "81.5 %"
        assert "81.5 %" in r.stdout and "GOOD" in r.stdout
        wait_for("read gives 81.5", lambda: values(plant, SETPOINT)[SETPOINT]["value"] == 81.5, 2)
        v = values(plant, SETPOINT)[SETPOINT]
        assert v["quality"] == "GOOD" and v["units"] == "%"
        doc = run_json(plant, "tag", "write", SETPOINT, "72.3")
        assert doc["confirmed"] is True and doc["raw"] == 723 and doc["read_back"]["value"] == 72.3
        wait_for("read gives 72.3", lambda: values(plant, SETPOINT)[SETPOINT]["value"] == 72.3, 2)
    finally:
        run(plant, "tag", "write", SETPOINT, "80")
    before = values(plant, TANK)[TANK]["value"]
    r = run(plant, "tag", "write", TANK, "3")
    assert r.exit_code == 1 and "FAILED_PRECONDITION" in r.stderr and "read-only" in r.stderr
    assert values(plant, TANK)[TANK]["value"] != 3 or before == 3
    r = run(plant, "tag", "write", SETPOINT, "abc")
    assert r.exit_code == 1 and "INVALID_ARGUMENT" in r.stderr
    r = run(plant, "tag", "write", SETPOINT, "7000")  # raw 70000 does not fit a uint16
    assert r.exit_code == 1 and "out of range" in r.stderr
    assert values(plant, SETPOINT)[SETPOINT]["value"] == 80


# ---------------------------------------------------------------- add, edit, rm


def test_tag_add_memory_and_computed_then_edit_and_rm(plant: RunningDaemon) -> None:
    try:
        r = run(plant, "tag", "add", "test/mem", "--memory", "--initial-value", "42.5", "--units", "kW", "-w")
        assert r.exit_code == 0 and "tag test/mem added (memory)" in r.stdout, r.output
        v = values(plant, "test/mem")["test/mem"]
        assert (v["value"], v["quality"], v["units"]) == (42.5, "GOOD", "kW")
        assert "confirmed  yes" in run(plant, "tag", "write", "test/mem", "12.25").stdout
        assert values(plant, "test/mem")["test/mem"]["value"] == 12.25

        expr = "{sim/sdm630-0/voltage_l1} * 2"
        r = run(plant, "tag", "add", "test/double", "-e", expr, "--units", "V")
        assert r.exit_code == 0 and f"(= {expr})" in r.stdout, r.output

        def consistent() -> bool:
            vals = values(plant, "test/double", VOLTAGE)
            d, src = vals["test/double"], vals[VOLTAGE]
            return d["quality"] == "GOOD" and d["source_time"] == src["source_time"] and (d["value"], src["value"])

        dbl, volt = wait_for("test/double computed from the same scan", consistent, 3)
        assert dbl == pytest.approx(2 * volt, rel=1e-6) and 400 < dbl < 520

        doc = run_json(plant, "tag", "edit", "test/mem", "--units", "MW", "--deadband", "2%")
        assert doc["spec"]["units"] == "MW" and doc["spec"]["deadband"] == 2.0
        assert doc["spec"]["deadband_mode"] == "percent" and doc["spec"]["source"] == "memory"
        assert doc["value"]["value"] == 12.25  # an edit keeps the live value
        show = run(plant, "tag", "show", "test/mem")
        assert "2 %" in show.stdout and " MW" in show.stdout
        doc = run_json(plant, "tag", "edit", "test/mem", "--deadband", "0.5", "--read-only")
        assert (doc["spec"]["deadband"], doc["spec"]["deadband_mode"], doc["spec"]["writable"]) == (
            0.5,
            "absolute",
            False,
        )
        assert run(plant, "tag", "edit", "test/mem").exit_code == 2  # nothing to change
        assert run(plant, "tag", "edit", "test/mem", "--deadband", "-1").exit_code == 2
        assert run(plant, "tag", "add", "test/both", "--memory", "-e", "1").exit_code == 2

        # A bad expression names the field, and nothing is created or changed.
        r = run(plant, "tag", "add", "test/bad", "-e", "{sim/sdm630-0/voltage_l1} * * 2")
        assert r.exit_code == 1 and "INVALID_ARGUMENT" in r.stderr and "expression" in r.stderr
        r = run(plant, "--json", "tag", "add", "test/bad", "-e", "{no/such/tag} + 1")
        err = json.loads(r.stdout)["error"]
        assert r.exit_code == 1 and err["details"]["field"] == "params.expression" and "no/such/tag" in err["message"]
        assert run(plant, "tag", "show", "test/bad").exit_code == 1
        r = run(plant, "--json", "tag", "edit", "test/double", "-e", "1 +")
        assert r.exit_code == 1 and json.loads(r.stdout)["error"]["details"]["field"] == "params.expression"
        assert run_json(plant, "tag", "show", "test/double")["spec"]["expression"] == expr

        r = run(plant, "tag", "rm", "test/mem", "--yes")
        assert r.exit_code == 0 and "tag test/mem removed" in r.stdout
        r = run(plant, "tag", "show", "test/mem")
        assert r.exit_code == 1 and "NOT_FOUND" in r.stderr
        assert run_json(plant, "tag", "rm", "test/double", "-y") == {"deleted": True}
        assert run(plant, "tag", "rm", "test/double", "-y").exit_code == 1
    finally:
        for p in ("test/mem", "test/double", "test/bad", "test/both"):
            run(plant, "tag", "rm", p, "-y")


# ---------------------------------------------------------------- import, export


@pytest.mark.parametrize("fmt", ["csv", "toml"])
def test_export_then_dry_run_import_changes_nothing(plant: RunningDaemon, tmp_path: Path, fmt: str) -> None:
    f = tmp_path / f"tags.{fmt}"
    r = run(plant, "tag", "export", str(f))
    total = run_json(plant, "tag", "list")["total"]
    assert r.exit_code == 0 and f"exported {total} tags to {f}" in " ".join(r.stdout.split())
    text = f.read_text()
    if fmt == "csv":
        assert text.startswith("path,data_type,source,device,address,function,")
        assert len(text.splitlines()) == total + 1
        assert f"{SETPOINT},uint16,device,pump-plc-5,10,3," in text
    else:
        assert text.count("[[tags]]") == total and f'path = "{SETPOINT}"' in text
    r = run(plant, "tag", "import", str(f), "--dry-run")
    assert r.exit_code == 0, r.output
    assert f"would create 0, update 0, {total} unchanged" in " ".join(r.stdout.split())
    doc = run_json(plant, "tag", "import", str(f), "-n")
    assert doc["dry_run"] is True and doc["created"] == [] and doc["updated"] == []
    assert sorted(doc["unchanged"]) == sorted(t["spec"]["path"] for t in run_json(plant, "tag", "list")["tags"])
    # Without --dry-run an identical file changes nothing either.
    doc = run_json(plant, "tag", "import", str(f))
    assert doc["dry_run"] is False and doc["created"] == doc["updated"] == [] and len(doc["unchanged"]) == total
    meta = run_json(plant, "tag", "export", str(tmp_path / f"again.{fmt}"), "-p", "sim/pump-plc-5/*")
    assert meta == {"path": str(tmp_path / f"again.{fmt}"), "format": fmt, "count": 9}


HEADER = "path,device,address,function,data_type,units,scan_group,raw_low,raw_high,eng_low,eng_high\n"


def test_import_of_a_bad_row_exits_2_naming_file_row_and_field(plant: RunningDaemon, tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(
        HEADER
        + "plant/a,pump-plc-5,0,3,uint16,%,,0,1000,0,100\n"
        + "plant/b,pump-plc-5,1,3,uint16,m3/h,,0,1000,0,100\n"
        + "plant/c,pump-plc-5,2,seven,uint16,,,,,,\n"
    )
    for args in (("tag", "import", str(f)), ("--json", "tag", "import", str(f), "--dry-run")):
        r = run(plant, *args)
        assert r.exit_code == 2, r.output
        assert f"{f} row 4, field 'function'" in r.stderr and "seven" in r.stderr
    assert run(plant, "tag", "show", "plant/a").exit_code == 1  # nothing was sent
    # The daemon refuses the whole file when one row names a device that does not exist.
    f.write_text(HEADER + "plant/a,pump-plc-5,0,3,uint16,%,,,,,\nplant/b,no-such-device,1,3,uint16,,,,,,\n")
    r = run(plant, "tag", "import", str(f))
    assert r.exit_code == 1 and "no-such-device" in r.stderr
    assert run(plant, "tag", "show", "plant/a").exit_code == 1


def test_import_of_a_hand_written_csv_adds_a_live_tag(plant: RunningDaemon, tmp_path: Path) -> None:
    f = tmp_path / "new.csv"
    f.write_text(HEADER + "plant/tank,pump-plc-5,0,3,uint16,%,sim-500ms,0,1000,0,100\n")
    try:
        r = run(plant, "tag", "import", str(f))
        assert r.exit_code == 0 and "created 1, updated 0, 0 unchanged" in r.stdout and "plant/tank" in r.stdout

        def same_scan() -> tuple[float, float] | None:
            vals = values(plant, "plant/tank", TANK)
            a, b = vals["plant/tank"], vals[TANK]
            ok = a["quality"] == "GOOD" and a["source_time"] == b["source_time"]
            return (a["value"], b["value"]) if ok else None

        mine, sim = wait_for("plant/tank GOOD in the same scan as tank_level", same_scan, 4)
        assert mine == pytest.approx(sim) and 0 <= mine <= 100
        again = run_json(plant, "tag", "import", str(f))
        assert again["unchanged"] == ["plant/tank"] and again["created"] == []
        f.write_text(HEADER + "plant/tank,pump-plc-5,0,3,uint16,percent,sim-500ms,0,1000,0,100\n")
        r = run(plant, "tag", "import", str(f))
        assert r.exit_code == 1, r.output  # exists and differs: needs --update
        assert run_json(plant, "tag", "show", "plant/tank")["spec"]["units"] == "%"
        doc = run_json(plant, "tag", "import", str(f), "--update")
        assert doc["updated"] == ["plant/tank"]
        assert run_json(plant, "tag", "show", "plant/tank")["spec"]["units"] == "percent"
    finally:
        run(plant, "tag", "rm", "plant/tank", "-y")


# ---------------------------------------------------------------- devices


def test_device_list_and_status(plant: RunningDaemon) -> None:
    ports = sim_ports(plant)
    counts = {s["name"]: s["tags"] for s in run_json(plant, "sim", "status")["devices"]}
    r = run(plant, "device", "list")
    assert r.exit_code == 0
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln.split() and ln.split()[0] in SIM_DEVICES}
    assert set(rows) == set(SIM_DEVICES)
    for name, cells in rows.items():
        assert cells[1:] == ["modbus_tcp", f"127.0.0.1:{ports[name]}", "1", str(counts[name]), "online"], cells
    devs = {d["name"]: d for d in run_json(plant, "device", "list")}
    assert all(devs[n]["state"] == "online" and devs[n]["tag_count"] == counts[n] for n in SIM_DEVICES)
    health = {h["name"]: h for h in run_json(plant, "device", "status")}
    assert set(SIM_DEVICES) <= set(health)
    for name in SIM_DEVICES:
        h = health[name]
        assert h["state"] == "online" and h["enabled"] is True and h["requests"] > 0
        assert isinstance(h["p50_ms"], float) and isinstance(h["p99_ms"], float)
        assert 0 < h["p50_ms"] <= h["p99_ms"] < 1000, h
        assert (h["tags"], h["tags_good"], h["tags_bad"]) == (counts[name], counts[name], 0)
        assert abs((datetime.now(UTC) - when(h["last_good"])).total_seconds()) < 3
    one = run_json(plant, "device", "status", "pump-plc-5")
    assert [h["name"] for h in one] == ["pump-plc-5"]
    r = run(plant, "device", "status", "no-such-device")
    assert r.exit_code == 1 and "NOT_FOUND" in r.stderr


def test_device_export_then_dry_run_import_changes_nothing(plant: RunningDaemon, tmp_path: Path) -> None:
    ports = sim_ports(plant)
    f = tmp_path / "devices.csv"
    assert run(plant, "device", "export", str(f)).exit_code == 0
    lines = f.read_text().splitlines()
    assert lines[0].startswith("name,protocol,description,host,port,unit_id,")
    rows = {ln.split(",")[0]: ln for ln in lines[1:]}
    assert set(rows) == set(SIM_DEVICES)
    assert all(f",127.0.0.1,{ports[n]},1," in rows[n] for n in SIM_DEVICES)
    doc = run_json(plant, "device", "import", str(f), "--dry-run")
    assert doc["created"] == doc["updated"] == [] and sorted(doc["unchanged"]) == sorted(SIM_DEVICES)


def test_device_status_table_names_every_device_in_full(plant: RunningDaemon) -> None:
    """On an 80-column terminal the health table must still say which device each row is."""
    r = run(plant, "device", "status", env={"COLUMNS": "80"})
    assert r.exit_code == 0
    first_cells = {ln.split()[0] for ln in r.stdout.splitlines() if ln.split()}
    missing = [n for n in SIM_DEVICES if n not in first_cells]
    assert not missing, f"device names cut in `device status` at 80 columns: {missing}\n{r.stdout}"


def test_device_add_disable_and_force_remove(plant: RunningDaemon) -> None:
    port = sim_ports(plant)["pump-plc-5"]
    try:
        r = run(plant, "device", "add", "plc2", "-p", "modbus_tcp", "--host", "127.0.0.1", "--port", str(port))
        assert r.exit_code == 0 and f"device plc2 added (127.0.0.1:{port})" in r.stdout, r.output
        r = run(plant, "tag", "add", "plant2/level", "-D", "plc2", "-a", "0", "-t", "uint16", "--function", "3",
                "--scale", "0:1000:0:100", "--units", "%", "-g", "sim-500ms")  # fmt: skip
        assert r.exit_code == 0 and "(plc2:0)" in r.stdout, r.output

        def same_scan() -> tuple[float, float] | None:
            vals = values(plant, "plant2/level", TANK)
            a, b = vals["plant2/level"], vals[TANK]
            return (a["value"], b["value"]) if a["quality"] == "GOOD" and b["quality"] == "GOOD" else None

        mine, sim = wait_for("plant2/level GOOD", same_scan, 4)
        assert abs(mine - sim) < 5 and 0 <= mine <= 100
        wait_for("plc2 online", lambda: {d["name"]: d for d in run_json(plant, "device", "list")}["plc2"]["state"]
                 == "online", 3)  # fmt: skip

        r = run(plant, "device", "edit", "plc2", "--disable")
        assert r.exit_code == 0 and "device plc2 updated" in r.stdout

        def out_of_service() -> bool:
            v = values(plant, "plant2/level")["plant2/level"]
            return v["quality"] == "BAD" and v["reason"] == "out_of_service"

        wait_for("plant2/level BAD out_of_service", out_of_service, 2)
        dev = {d["name"]: d for d in run_json(plant, "device", "list")}["plc2"]
        assert (dev["enabled"], dev["state"], dev["tag_count"]) == (False, "disabled", 1)
        assert values(plant, TANK)[TANK]["quality"] == "GOOD"  # the other device on that port is untouched
        assert run(plant, "device", "edit", "plc2").exit_code == 2

        r = run(plant, "device", "rm", "plc2", "--yes")
        assert r.exit_code == 1 and "FAILED_PRECONDITION" in r.stderr
        assert "plc2" in {d["name"] for d in run_json(plant, "device", "list")}
        r = run(plant, "device", "rm", "plc2", "--force", "--yes")
        assert r.exit_code == 0 and "device plc2 removed" in r.stdout
        assert "NOT_FOUND" in run(plant, "device", "show", "plc2").stderr
        v = wait_for("plant2/level BAD config_error",
                     lambda: (v := values(plant, "plant2/level")["plant2/level"])["reason"] == "config_error" and v, 2)  # fmt: skip
        assert v["quality"] == "BAD" and "deleted" in v["detail"]
    finally:
        run(plant, "tag", "rm", "plant2/level", "-y")
        run(plant, "device", "rm", "plc2", "--force", "-y")


# ---------------------------------------------------------------- scan groups


def _groups(d: RunningDaemon) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in run_json(d, "scangroup", "list")}


def _scan_times(d: RunningDaemon, path: str, seconds: float) -> int:
    """How many distinct scans (source times) of `path` happen in `seconds`."""
    seen = set()
    end = time.monotonic() + seconds
    with d.client() as c:
        while time.monotonic() < end:
            seen.add(c.call("Tags.Read", {"paths": [path]})["values"][0]["source_time"])
            time.sleep(0.03)
    return len(seen)


def test_scangroup_set_list_rm(plant: RunningDaemon) -> None:
    try:
        r = run(plant, "scangroup", "set", "fast", "200")
        assert r.exit_code == 0 and "scan group fast: every 200 ms" in r.stdout
        listing = run(plant, "scangroup", "list")
        rows = {ln.split()[0]: ln.split() for ln in listing.stdout.splitlines() if ln.split()}
        assert rows["fast"][1:3] == ["200", "0"] and rows["sim-500ms"][1:3] == ["500", "70"]
        assert _groups(plant)["fast"] == {"name": "fast", "interval_ms": 200, "description": "", "tag_count": 0}

        # A tag in the group is scanned at its rate, and a new rate applies at once.
        r = run(plant, "tag", "add", "plant/fast-tank", "-D", "pump-plc-5", "-a", "0", "-t", "uint16", "-g", "fast")
        assert r.exit_code == 0, r.output
        wait_for("plant/fast-tank GOOD", lambda: all_good(plant, "plant/fast-tank"), 3)
        assert _groups(plant)["fast"]["tag_count"] == 1
        fast = _scan_times(plant, "plant/fast-tank", 1.0)
        assert fast >= 4, f"{fast} scans in 1 s at 200 ms"
        doc = run_json(plant, "scangroup", "set", "fast", "1000", "-d", "slow now")
        assert doc == {"name": "fast", "interval_ms": 1000, "description": "slow now", "tag_count": 1}
        time.sleep(0.3)
        slow = _scan_times(plant, "plant/fast-tank", 0.8)
        assert slow <= 2, f"{slow} scans in 0.8 s at 1000 ms"

        r = run(plant, "scangroup", "rm", "fast")
        assert r.exit_code == 1 and "FAILED_PRECONDITION" in r.stderr and "plant/fast-tank" in r.stderr
        assert run(plant, "tag", "rm", "plant/fast-tank", "-y").exit_code == 0
        r = run(plant, "scangroup", "rm", "fast")
        assert r.exit_code == 0 and "scan group fast removed" in r.stdout
        assert "fast" not in _groups(plant)
        r = run(plant, "scangroup", "rm", "default")
        assert r.exit_code == 1 and "default" in r.stderr
        r = run(plant, "scangroup", "set", "fast", "10")
        assert r.exit_code == 1 and "interval_ms" in r.stderr
        assert "fast" not in _groups(plant)
    finally:
        run(plant, "tag", "rm", "plant/fast-tank", "-y")
        run(plant, "scangroup", "rm", "fast")


# ---------------------------------------------------------------- simulator faults


def test_sim_status_and_faults(plant: RunningDaemon) -> None:
    st = run_json(plant, "sim", "status")
    assert st["running"] is True and [s["name"] for s in st["devices"]] == list(SIM_DEVICES)
    assert all(s["fault"] == "none" and s["port"] > 0 for s in st["devices"])
    r = run(plant, "sim", "status")
    assert r.exit_code == 0 and "simulated plant running" in r.stdout
    rows = [ln.split() for ln in r.stdout.splitlines() if ln.split() and ln.split()[0] in SIM_DEVICES]
    assert len(rows) == 6 and all(row[-1] == "none" for row in rows)
    assert [(row[0], row[1]) for row in rows][-1] == ("pump-plc-5", "pump_plc")
    inverter = "sim/inverter-4/*"
    try:
        r = run(plant, "sim", "fault", "inverter-4", "disconnect")
        assert r.exit_code == 0 and "inverter-4: fault disconnect" in r.stdout

        def all_bad() -> bool:
            vals = run_json(plant, "tag", "read", inverter)
            return len(vals) == 7 and all(v["quality"] == "BAD" and v["reason"] == "comm_failure" for v in vals)

        wait_for("inverter-4 tags BAD comm_failure", all_bad, 2.5)
        assert values(plant, VOLTAGE)[VOLTAGE]["quality"] == "GOOD"  # the others keep running
        faults = {s["name"]: s["fault"] for s in run_json(plant, "sim", "status")["devices"]}
        assert faults["inverter-4"] == "disconnect" and faults["sdm630-0"] == "none"
        h = run_json(plant, "device", "status", "inverter-4")[0]
        assert h["state"] != "online" and h["tags_bad"] == 7 and sum(h["errors"].values()) > 0

        r = run(plant, "sim", "fault", "inverter-4", "clear")
        assert r.exit_code == 0 and "inverter-4: fault none" in r.stdout
        wait_for("inverter-4 tags GOOD again", lambda: all_good(plant, inverter), 6)
    finally:
        run(plant, "sim", "fault", "inverter-4", "clear")
    r = run(plant, "sim", "fault", "inverter-4", "nonsense")
    assert r.exit_code == 1 and "INVALID_ARGUMENT" in r.stderr and "nonsense" in r.stderr
    r = run(plant, "--json", "sim", "fault", "no-such-sim", "clear")
    assert r.exit_code == 1 and json.loads(r.stdout)["error"]["code"] == "NOT_FOUND"
    assert {s["fault"] for s in run_json(plant, "sim", "status")["devices"]} == {"none"}


# ---------------------------------------------------------------- history


def test_history_csv_of_the_last_minutes(plant: RunningDaemon) -> None:
    def enough() -> list[str] | None:
        r = run(plant, "history", VOLTAGE, "--from", "-5m", "--csv")
        assert r.exit_code == 0, r.output
        lines = r.stdout.splitlines()
        return lines if len(lines) >= 4 else None

    lines = wait_for("3 samples of history", enough, 5, every=0.5)
    now = datetime.now(UTC)
    assert lines[0] == "time,value,quality"
    times = []
    for line in lines[1:]:
        t, value, quality = line.split(",")
        assert t.endswith("Z") and quality == "GOOD" and 200 <= float(value) <= 260, line
        times.append(when(t))
    assert times == sorted(times) and len(set(times)) == len(times)
    assert now - timedelta(minutes=5) <= times[0] and times[-1] <= now


def test_history_buckets_agree_with_raw_samples(plant: RunningDaemon) -> None:
    doc = run_json(plant, "history", VOLTAGE, "--every", "1m")
    assert doc["every_s"] == 60 and doc["samples"] == [] and doc["buckets"] and doc["units"] == "V"
    for b in doc["buckets"]:
        assert when(b["time"]).second == 0 and when(b["time"]).microsecond == 0
        assert b["min"] <= b["avg"] <= b["max"] and b["min"] <= b["last"] <= b["max"], b
        assert 200 <= b["min"] and b["max"] <= 260 and b["count"] > 0 and b["bad_count"] == 0
    # Over a range aligned on whole 5 s buckets, the buckets hold exactly the raw samples.
    end = datetime.now(UTC) - timedelta(seconds=2)
    end = end.replace(second=end.second - end.second % 5, microsecond=0)
    start = end - timedelta(seconds=30)
    rng = ("--from", start.isoformat(), "--to", end.isoformat())
    raw = run_json(plant, "history", VOLTAGE, *rng)["samples"]
    assert len(raw) >= 3, raw
    buckets = run_json(plant, "history", VOLTAGE, *rng, "--every", "5s")["buckets"]
    assert sum(b["count"] for b in buckets) == len(raw)
    for b in buckets:
        t0 = when(b["time"])
        inside = [s["value"] for s in raw if t0 <= when(s["time"]) < t0 + timedelta(seconds=5)]
        assert b["count"] == len(inside) and start <= t0 < end
        if inside:
            assert b["last"] == inside[-1] and b["min"] <= min(inside) and b["max"] >= max(inside)
    csv_lines = run(plant, "history", VOLTAGE, *rng, "--every", "5s", "--csv").stdout.splitlines()
    assert csv_lines[0] == "time,min,max,avg,last,count,bad_count" and len(csv_lines) == len(buckets) + 1


def test_history_latest_plot_and_bad_options(plant: RunningDaemon) -> None:
    raw = run_json(plant, "history", VOLTAGE, "--from", "-1m")["samples"]
    doc = run_json(plant, "history", VOLTAGE, "--latest")
    assert len(doc["samples"]) == 1 and doc["buckets"] == []
    latest = doc["samples"][0]
    assert when(latest["time"]) >= when(raw[-1]["time"]) and latest["quality"] == "GOOD"
    assert abs((datetime.now(UTC) - when(latest["time"])).total_seconds()) < 3
    human = run(plant, "history", VOLTAGE, "--latest")
    assert human.exit_code == 0 and f"{VOLTAGE} [V]  latest sample" in human.stdout
    assert len([ln for ln in human.stdout.splitlines() if ln.rstrip().endswith("GOOD")]) == 1
    # --plot draws with a C kernel that writes to file descriptor 1: run it as a process.
    p = subprocess.run(
        [sys.executable, "-m", "scadactl.main", "--socket", str(plant.socket), "history", VOLTAGE, "--from", "-5m",
         "--plot"],
        capture_output=True, text=True, timeout=30, cwd=REPO,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert f"{VOLTAGE} [V]" in p.stdout and len(p.stdout.splitlines()) > 5
    r = run(plant, "history", VOLTAGE, "--from", "yesterdayish")
    assert r.exit_code == 2 and "--from" in r.stderr and "yesterdayish" in r.stderr
    r = run(plant, "history", VOLTAGE, "--to", "soon")
    assert r.exit_code == 2 and "--to" in r.stderr
    r = run(plant, "history", VOLTAGE, "--every", "1.5s")
    assert r.exit_code == 2 and "--every" in r.stderr
    assert run(plant, "history", VOLTAGE, "--plot", "--csv").exit_code == 2
    assert run(plant, "history", VOLTAGE, "--latest", "--every", "1m").exit_code == 2
    r = run(plant, "history", VOLTAGE, "--from", "-1m", "--to", "-2m")
    assert r.exit_code == 1 and "INVALID_ARGUMENT" in r.stderr
    r = run(plant, "history", "sim/nope/x")
    assert r.exit_code == 1 and "NOT_FOUND" in r.stderr
    doc = run_json(plant, "history", VOLTAGE, "--limit", "2")
    assert doc["truncated"] is True and len(doc["samples"]) == 2  # the oldest two of the last hour
    assert when(doc["samples"][0]["time"]) < when(doc["samples"][1]["time"]) <= when(raw[1]["time"])
    r = run(plant, "history", VOLTAGE, "--limit", "2")
    assert r.exit_code == 0 and "truncated at 2 rows" in r.stderr
    assert len([ln for ln in r.stdout.splitlines() if ln.rstrip().endswith("GOOD")]) == 2


# ---------------------------------------------------------------- watch


def test_tag_watch_json_streams_ndjson_lines(plant: RunningDaemon) -> None:
    """Each event is one line on standard output as it happens (a pipe, not a terminal)."""
    pattern = "sim/sdm630-0/voltage_*"
    wanted = {f"sim/sdm630-0/voltage_l{i}" for i in (1, 2, 3)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scadactl.main", "--socket", str(plant.socket), "--json", "tag", "watch", pattern],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    live: list[str] = []
    deadline = time.monotonic() + 4
    try:
        while len(live) < 2 and time.monotonic() < deadline:
            try:
                live.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the documented way to stop it
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        reader.join(5)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    events = [json.loads(line) for line in live + rest]
    assert events, f"no output at all; stderr: {proc.stderr.read() if proc.stderr else ''}"
    assert events[0]["initial"] is True and {v["path"] for v in events[0]["values"]} == wanted
    for e in events:
        assert {v["path"] for v in e["values"]} <= wanted
        assert all(v["quality"] == "GOOD" and 200 < v["value"] < 260 for v in e["values"])
    assert code == 0, f"watch exited {code} on SIGINT"
    assert len(live) >= 2, (
        f"only {len(live)} NDJSON line(s) within 4 s; {len(rest)} more came out only when the watch "
        "ended: `--json tag watch` does not flush each event"
    )
