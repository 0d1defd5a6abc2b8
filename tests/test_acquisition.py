"""Acquisition end to end: a real scadad polling the built-in simulated plant over Modbus TCP.

Every test talks to the daemon through its socket, as scadactl and the console do.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scadad.api.client import Client
from scadad.api.errors import ScadaError
from tests.conftest import RunningDaemon, start_daemon

SCAN_S = 0.5
SIM = f"[simulator]\nenabled = true\nscan_ms = {int(SCAN_S * 1000)}\n"


def _values(c: Client, pattern: str = "**") -> dict[str, dict]:
    return {v["path"]: v for v in c.call("Tags.Read", {"paths": [pattern]})["values"]}


def _wait(pred, timeout: float, step: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


def _age_s(v: dict) -> float:
    t = datetime.fromisoformat(v["source_time"].replace("Z", "+00:00"))
    return (datetime.now(UTC) - t).total_seconds()


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("acq") / "home", extra=SIM)
    with d.client() as c:
        _wait(
            lambda: all(v["quality"] == "GOOD" for v in _values(c).values()) and len(_values(c)) > 60,
            15,
            what="every simulated tag GOOD",
        )
    yield d
    code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


def test_every_device_type_gives_good_correctly_scaled_fresh_values(plant: RunningDaemon) -> None:
    with plant.client() as c:
        v = _values(c, "sim/**")
        status = c.call("Sim.Status", {})
    kinds = {d["kind"] for d in status["devices"]}
    assert kinds == {"sdm630", "pm5xxx", "em24", "dg", "inverter", "pump_plc"}
    for path, tv in v.items():
        assert tv["quality"] == "GOOD", (path, tv)
        assert _age_s(tv) < 3 * SCAN_S + 1, (path, tv["source_time"])
    # Each device type's characteristic values land in plausible engineering ranges: a wrong
    # word order, register offset or scale would put them orders of magnitude off.
    for dev in ("sdm630-0", "pm5xxx-1", "em24-2"):
        for ph in ("l1", "l2", "l3"):
            assert 200 < v[f"sim/{dev}/voltage_{ph}"]["value"] < 260, dev
        assert 49 < v[f"sim/{dev}/frequency"]["value"] < 51, dev
        assert 0 < v[f"sim/{dev}/pf_total"]["value"] <= 1, dev
        assert v[f"sim/{dev}/power_total"]["units"] == "kW"
        total = v[f"sim/{dev}/power_total"]["value"]
        phases = sum(v[f"sim/{dev}/power_l{i}"]["value"] for i in (1, 2, 3))
        assert total == pytest.approx(phases, rel=0.02, abs=0.05), dev
    # EM24: int32 low word first with x10 / x1000 weights, rounded to the register's resolution.
    assert v["sim/em24-2/voltage_l1"]["value"] == round(v["sim/em24-2/voltage_l1"]["value"], 1)
    assert 0 <= v["sim/dg-3/fuel_level"]["value"] <= 100
    assert v["sim/dg-3/engine_hours"]["units"] == "h" and v["sim/dg-3/engine_hours"]["value"] > 0
    assert isinstance(v["sim/dg-3/running"]["value"], bool)
    assert -20 < v["sim/inverter-4/temperature"]["value"] < 90
    assert v["sim/inverter-4/total_energy"]["value"] > 0
    assert 0 <= v["sim/pump-plc-5/tank_level"]["value"] <= 100
    assert v["sim/pump-plc-5/level_high_sp"]["value"] > v["sim/pump-plc-5/level_low_sp"]["value"]


def test_tag_list_json_has_definition_and_live_value(plant: RunningDaemon) -> None:
    with plant.client() as c:
        res = c.call("Tags.List", {"pattern": "sim/sdm630-0/*"})
    assert res["total"] == len(res["tags"]) >= 10
    t = next(t for t in res["tags"] if t["spec"]["path"] == "sim/sdm630-0/voltage_l1")
    assert t["spec"]["device"] == "sdm630-0" and t["spec"]["function"] == 4 and t["spec"]["address"] == "0"
    assert t["value"]["quality"] == "GOOD" and _age_s(t["value"]) < 3


def test_device_status_reports_health(plant: RunningDaemon) -> None:
    with plant.client() as c:
        devs = {d["name"]: d for d in c.call("Devices.Status", {})["devices"]}
    assert set(devs) >= {"sdm630-0", "pump-plc-5"}
    d = devs["sdm630-0"]
    assert d["state"] == "online" and d["requests"] > 0
    assert d["p50_ms"] is not None and d["p99_ms"] >= d["p50_ms"]
    assert d["tags_good"] == d["tags"] and d["last_good"] is not None
    assert d["jitter_p99_ms"] is not None and d["jitter_p99_ms"] < 200


def test_write_is_confirmed_by_read_back_and_audited(plant: RunningDaemon) -> None:
    with plant.client() as c:
        res = c.call("Tags.Write", {"path": "sim/pump-plc-5/level_high_sp", "value": 85.5})
        assert res["confirmed"] is True
        assert res["raw"] == 855  # uint16 x 0.1: reverse scaling
        assert res["read_back"]["value"] == 85.5
        _wait(lambda: _values(c, "sim/pump-plc-5/level_high_sp")["sim/pump-plc-5/level_high_sp"]["value"] == 85.5,
              3, what="scanned value follows the write")  # fmt: skip
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Write", {"path": "sim/pump-plc-5/tank_level", "value": 10})
        assert err.value.code == "FAILED_PRECONDITION" and "read-only" in str(err.value)
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Write", {"path": "sim/pump-plc-5/level_high_sp", "value": "lots"})
        assert err.value.code == "INVALID_ARGUMENT" and err.value.details.get("field") == "params.value"
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Write", {"path": "sim/pump-plc-5/level_high_sp", "value": 7000})  # raw 70000 > uint16
        assert err.value.code == "INVALID_ARGUMENT"
        records = c.call("Audit.List", {"method": "Tags.Write"})["records"]
    assert any(r["method"] == "Tags.Write" and r["outcome"] == "ok" for r in records)


def test_memory_and_computed_tags(plant: RunningDaemon) -> None:
    with plant.client() as c:
        c.call("Tags.Create", {"path": "plant/ops/target_kw", "data_type": "float64", "source": "memory",
                               "initial_value": "10", "units": "kW"})  # fmt: skip
        c.call("Tags.Create", {"path": "plant/ops/margin_kw", "source": "computed", "data_type": "float64",
                               "expression": "{plant/ops/target_kw} * 2 - {sim/sdm630-0/power_total}"})  # fmt: skip
        v = _values(c, "plant/ops/*")
        assert v["plant/ops/target_kw"]["value"] == 10.0
        p = _values(c, "sim/sdm630-0/power_total")["sim/sdm630-0/power_total"]["value"]
        assert v["plant/ops/margin_kw"]["quality"] == "GOOD"
        assert v["plant/ops/margin_kw"]["value"] == pytest.approx(20 - p, abs=2.0)
        c.call("Tags.Write", {"path": "plant/ops/target_kw", "value": 1000})
        v = _values(c, "plant/ops/*")
        assert v["plant/ops/margin_kw"]["value"] > 1500
        with pytest.raises(ScadaError) as err:
            c.call(
                "Tags.Create", {"path": "plant/ops/loop", "source": "computed", "expression": "{plant/ops/loop} + 1"}
            )
        assert err.value.details.get("field") == "params.expression"
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Create", {"path": "plant/ops/bad", "source": "computed", "expression": "__import__('os')"})
        assert err.value.code == "INVALID_ARGUMENT" and err.value.details.get("field") == "params.expression"
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Delete", {"path": "plant/ops/target_kw"})
        assert err.value.code == "FAILED_PRECONDITION"
        c.call("Tags.Delete", {"path": "plant/ops/margin_kw"})
        c.call("Tags.Delete", {"path": "plant/ops/target_kw"})


def test_watch_streams_filtered_changes(plant: RunningDaemon) -> None:
    with plant.client() as c:
        events = c.stream("Tags.Watch", {"patterns": ["sim/sdm630-0/voltage_*"]})
        first = next(events)
        assert first["initial"] is True
        assert sorted(v["path"] for v in first["values"]) == [f"sim/sdm630-0/voltage_l{i}" for i in (1, 2, 3)]
        seen = set()
        deadline = time.monotonic() + 5
        for ev in events:
            assert ev["initial"] is False
            for v in ev["values"]:
                assert v["path"].startswith("sim/sdm630-0/voltage_")
                seen.add(v["path"])
            if len(seen) == 3 or time.monotonic() > deadline:
                break
        assert len(seen) == 3


def test_history_query_raw_and_aggregate(plant: RunningDaemon) -> None:
    path = "sim/sdm630-0/voltage_l1"
    with plant.client() as c:
        raw = _wait(lambda: c.call("History.Query", {"path": path})["samples"], 10, 0.3, "history samples")
        assert all(s["quality"] == "GOOD" and 200 < s["value"] < 260 for s in raw)
        agg = c.call("History.Query", {"path": path, "every_s": 3600})
        assert agg["buckets"] and agg["buckets"][-1]["count"] >= 1
        b = agg["buckets"][-1]
        assert b["min"] - 1e-9 * abs(b["min"]) <= b["avg"] <= b["max"] + 1e-9 * abs(b["max"])
        latest = c.call("History.Query", {"path": path, "latest": True})["samples"]
        assert len(latest) == 1 and latest[0]["value"] == pytest.approx(raw[-1]["value"], abs=5)
        with pytest.raises(ScadaError) as err:
            c.call("History.Query", {"path": "no/such/tag"})
        assert err.value.code == "NOT_FOUND"


def test_export_import_round_trip_and_validation(plant: RunningDaemon) -> None:
    with plant.client() as c:
        tags = c.call("Tags.Export", {"pattern": "sim/em24-2/*"})["tags"]
        devices = c.call("Devices.Export", {})["devices"]
        res = c.call("Tags.Import", {"tags": tags})
        assert res["created"] == [] and res["updated"] == [] and len(res["unchanged"]) == len(tags)
        res = c.call("Devices.Import", {"devices": devices, "dry_run": True})
        assert len(res["unchanged"]) == len(devices)
        bad = [dict(tags[0], path="sim/em24-2/new_ok"), dict(tags[1], path="sim/em24-2/new_bad", device="nope")]
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Import", {"tags": bad})
        assert err.value.details.get("field") == "params.tags[1].device"
        # all or nothing: the good row was not stored either
        assert c.call("Tags.List", {"pattern": "sim/em24-2/new_*"})["total"] == 0
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Create", dict(tags[0], path="sim/em24-2/x", address="70000"))
        assert err.value.code == "INVALID_ARGUMENT" and err.value.details.get("field") == "params.address"


def test_live_edits_leave_other_devices_polling(plant: RunningDaemon) -> None:
    """Add a device and tags, break one tag, change a rate, delete: no restart, others unaffected."""
    with plant.client() as c:
        port = next(d["port"] for d in c.call("Sim.Status", {})["devices"] if d["name"] == "pump-plc-5")
        before = c.call("Devices.Status", {"name": "sdm630-0"})["devices"][0]["requests"]
        c.call("Devices.Create", {"name": "pump2", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": port})
        c.call("Tags.Create", {"path": "site2/pump2/level", "device": "pump2", "address": "0", "data_type": "uint16",
                               "raw_low": 0, "raw_high": 1000, "eng_low": 0, "eng_high": 100, "units": "%"})  # fmt: skip
        c.call("Tags.Create", {"path": "site2/pump2/hole", "device": "pump2", "address": "40", "data_type": "uint16"})
        v = _wait(lambda: (lambda x: x if x["site2/pump2/level"]["quality"] == "GOOD" else None)(_values(c, "site2/**")),
                  5, what="new device's tag GOOD")  # fmt: skip
        assert 0 <= v["site2/pump2/level"]["value"] <= 100
        # The register map has no address 40: exception 02 for that tag only.
        hole = _wait(lambda: (lambda x: x if x["reason"] == "device_exception" else None)(
            _values(c, "site2/pump2/hole")["site2/pump2/hole"]), 5, what="hole BAD")  # fmt: skip
        assert hole["quality"] == "BAD" and "exception" in hole["detail"]
        assert _values(c, "site2/pump2/level")["site2/pump2/level"]["quality"] == "GOOD"
        # Move the hole tag onto a real register: it recovers without touching anything else.
        c.call("Tags.Update", {"path": "site2/pump2/hole", "address": "1"})
        _wait(lambda: _values(c, "site2/pump2/hole")["site2/pump2/hole"]["quality"] == "GOOD", 5, what="edit applied")
        c.call("ScanGroups.Set", {"name": "fast", "interval_ms": 200})
        c.call("Tags.Update", {"path": "site2/pump2/level", "scan_group": "fast"})
        time.sleep(1.0)
        st = c.call("Devices.Status", {"name": "pump2"})["devices"][0]
        assert st["state"] == "online"
        c.call("Devices.Update", {"name": "pump2", "enabled": False})
        v = _wait(lambda: (lambda x: x if x["site2/pump2/level"]["reason"] == "out_of_service" else None)(
            _values(c, "site2/**")), 3, what="disabled device's tags out of service")  # fmt: skip
        with pytest.raises(ScadaError) as err:
            c.call("Devices.Delete", {"name": "pump2"})
        assert err.value.code == "FAILED_PRECONDITION"
        c.call("Devices.Delete", {"name": "pump2", "force": True})
        v = _values(c, "site2/**")
        assert all(x["quality"] == "BAD" and x["reason"] == "config_error" for x in v.values())
        c.call("Tags.Delete", {"path": "site2/pump2/level"})
        c.call("Tags.Delete", {"path": "site2/pump2/hole"})
        after = c.call("Devices.Status", {"name": "sdm630-0"})["devices"][0]
        assert after["requests"] > before and after["state"] == "online" and after["reconnects"] == 0


def test_silent_device_is_offline_not_flapping_and_quality_only_watch(plant: RunningDaemon) -> None:
    """A device that accepts connections but never answers (timeouts) is offline, its tags
    BAD; a quality_only watch reports exactly that change and no value wiggles."""
    import threading

    dev = "inverter-4"
    with plant.client() as c, plant.client() as c2:
        events = c.stream("Tags.Watch", {"patterns": [f"sim/{dev}/*"], "quality_only": True, "initial": False})
        threading.Timer(1.2, lambda: c2.call("Sim.Fault", {"device": dev, "fault": "timeout"})).start()
        first = next(events)
        assert first["values"] and {v["quality"] for v in first["values"]} == {"BAD"}, first
        events.close()
        _wait(lambda: all(v["quality"] == "BAD" for v in _values(c, f"sim/{dev}/*").values()), 4, what="BAD")
        states = set()
        for _ in range(8):
            states.add(c.call("Devices.Status", {"name": dev})["devices"][0]["state"])
            time.sleep(0.4)
        assert "online" not in states, states
        st = c.call("Devices.Status", {"name": dev})["devices"][0]
        assert st["errors"].get("timeout", 0) >= 1 and "timeout" in st["last_error"]
        c.call("Sim.Fault", {"device": dev, "fault": "clear"})
        _wait(lambda: all(v["quality"] == "GOOD" for v in _values(c, f"sim/{dev}/*").values()), 6, what="GOOD again")


def test_killed_device_goes_bad_within_two_scans_and_returns_within_5_s(plant: RunningDaemon) -> None:
    dev, other = "em24-2", "sdm630-0"
    with plant.client() as c:
        _wait(lambda: all(v["quality"] == "GOOD" for v in _values(c, f"sim/{dev}/*").values()), 5, what="GOOD")
        other_before = c.call("Devices.Status", {"name": other})["devices"][0]["requests"]
        t0 = time.monotonic()
        c.call("Sim.Fault", {"device": dev, "fault": "disconnect"})
        _wait(lambda: all(v["quality"] == "BAD" for v in _values(c, f"sim/{dev}/*").values()), 2 * SCAN_S,
              0.02, "every tag of the killed device BAD")  # fmt: skip
        bad_after = time.monotonic() - t0
        v = _values(c, f"sim/{dev}/*")
        assert {x["reason"] for x in v.values()} == {"comm_failure"}
        health = _values(c, f"_system/devices/{dev}/*")
        assert health[f"_system/devices/{dev}/online"]["value"] is False
        assert health[f"_system/devices/{dev}/state"]["value"] in ("offline", "connecting")
        # Down long enough for the backoff to reach its cap.
        time.sleep(6)
        other_status = c.call("Devices.Status", {"name": other})["devices"][0]
        rate = (other_status["requests"] - other_before) / (time.monotonic() - t0)
        # sdm630 needs 2 requests per scan (its map spans 0..0x157 with a gap): ~4 requests/s at 0.5 s.
        assert rate > 0.8 * 2 / SCAN_S, f"other device slowed to {rate:.2f} requests/s"
        assert other_status["state"] == "online"
        t1 = time.monotonic()
        c.call("Sim.Fault", {"device": dev, "fault": "clear"})
        _wait(lambda: all(v["quality"] == "GOOD" for v in _values(c, f"sim/{dev}/*").values()), 5.0, 0.05,
              "device read again")  # fmt: skip
        back_after = time.monotonic() - t1
        st = c.call("Devices.Status", {"name": dev})["devices"][0]
        _wait(lambda: _values(c, f"_system/devices/{dev}/online")[f"_system/devices/{dev}/online"]["value"] is True,
              2, what="system tag online again")  # fmt: skip
        with pytest.raises(ScadaError) as err:
            c.call("Tags.Write", {"path": f"_system/devices/{dev}/online", "value": False})
        assert err.value.code == "FAILED_PRECONDITION"
    assert bad_after <= 2 * SCAN_S
    assert back_after <= 5.0
    assert st["reconnects"] >= 1 and st["errors"]


def test_restart_keeps_memory_tag_value(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "home")
    try:
        with d.client() as c:
            c.call("Tags.Create", {"path": "ops/setpoint", "source": "memory", "data_type": "float64"})
            assert _values(c, "ops/setpoint")["ops/setpoint"]["quality"] == "UNCERTAIN"
            c.call("Tags.Write", {"path": "ops/setpoint", "value": 42.5})
            _wait(lambda: c.call("System.Status")["subsystems"][-1]["info"]["committed"] >= 1, 5, 0.1, "committed")
    finally:
        assert d.stop() == 0, d.log_text()
    d = start_daemon(tmp_path / "home")
    try:
        with d.client() as c:
            v = _values(c, "ops/setpoint")["ops/setpoint"]
        assert v["value"] == 42.5 and v["quality"] == "GOOD"
    finally:
        assert d.stop() == 0, d.log_text()


def test_retention_global_and_per_tag_applied_at_start(tmp_path: Path) -> None:
    from scadad.historian import Quality, Sample, SqliteHistorian

    home = tmp_path / "home"
    cfg = "[historian]\nretention_days = 5\n"
    d = start_daemon(home, extra=cfg)
    try:
        with d.client() as c:
            a = c.call("Tags.Create", {"path": "ops/a", "source": "memory", "data_type": "float64"})["id"]
            b = c.call("Tags.Create", {"path": "ops/b", "source": "memory", "data_type": "float64",
                                       "retention_days": 20})["id"]  # fmt: skip
    finally:
        assert d.stop() == 0, d.log_text()
    day = 86_400_000_000
    now = time.time_ns() // 1000
    with SqliteHistorian(home / "data" / "historian.db") as h:
        h.write_batch([Sample(t, now - age * day, float(age), Quality.GOOD) for t in (a, b) for age in (1, 10, 30)])
    d = start_daemon(home, extra=cfg)
    try:
        with d.client() as c:

            def kept(path: str) -> list[float]:
                q = {"path": path, "start": "2000-01-01T00:00:00Z"}
                return sorted({s["value"] for s in c.call("History.Query", q)["samples"] if s["value"] is not None})

            _wait(lambda: kept("ops/a") == [1.0], 5, 0.1, "global retention (5 days)")
            _wait(lambda: kept("ops/b") == [1.0, 10.0], 5, 0.1, "per-tag retention (20 days)")
    finally:
        assert d.stop() == 0, d.log_text()
