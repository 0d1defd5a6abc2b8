"""Alarms end to end: a simulated Modbus device driven across limits, the journal, and a
daemon restart that must resume every alarm in its exact state."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from scadad.api.client import Client
from scadad.api.errors import InvalidArgument, NotFound
from tests.conftest import RunningDaemon, start_daemon, wait_until

SIM = "[simulator]\nenabled = true\nseed = 1\nscan_ms = 200\ntypes = ['pump_plc']\n"
SP = "sim/pump-plc-0/level_high_sp"  # a writable register of the simulated PLC (default 80 %)


def alarm(c: Client, name: str) -> dict[str, Any]:
    [a] = [a for a in c.call("Alarms.List", {"include_normal": True, "all": True})["alarms"] if a["name"] == name]
    return a


def state_is(c: Client, name: str, state: str) -> dict[str, Any] | None:
    a = alarm(c, name)
    return a if a["state"] == state else None


def journal(c: Client, name: str) -> list[tuple[str, str, str | None]]:
    rows = c.call("Alarms.History", {"alarm": name})["events"]
    return [(r["event"], r["state"], r["comment"]) for r in rows]


def start(home: Path) -> RunningDaemon:
    d = start_daemon(home, SIM)
    with d.client() as c:
        wait_until(lambda: c.call("Tags.Read", {"paths": [SP]})["values"][0]["quality"] == "GOOD", "the PLC")
    return d


def test_limits_journal_and_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    d = start(home)
    try:
        with d.client() as c:
            c.call("AlarmRules.Create", {"tag": SP, "kind": "hi", "limit": 50, "priority": "high", "deadband": 2})
            c.call("AlarmRules.Create", {"tag": SP, "kind": "hihi", "limit": 90, "priority": "critical"})
            hi, hihi = f"{SP}:hi", f"{SP}:hihi"
            # The default 80 % is above the hi limit: the new rule evaluates at once.
            a = wait_until(lambda: state_is(c, hi, "unack_active"), "hi active")
            assert a["value"] == 80.0 and a["annunciated"] and a["active"]
            assert a["message"] == "level high sp high: 80 % > 50 %"
            assert alarm(c, hihi)["state"] == "normal"

            ack = c.call("Alarms.Acknowledge", {"alarms": [hi], "comment": "seen, lowering"})
            assert ack == {"acknowledged": [hi], "skipped": []}
            a = alarm(c, hi)
            assert a["state"] == "ack_active" and a["acked_by"] is not None
            # Inside the deadband (49 > 50 - 2) the alarm holds; below it, it clears.
            c.call("Tags.Write", {"path": SP, "value": 49})
            time.sleep(0.6)  # three scans
            assert alarm(c, hi)["state"] == "ack_active"
            c.call("Tags.Write", {"path": SP, "value": 40})
            wait_until(lambda: state_is(c, hi, "normal"), "hi back to normal")
            assert journal(c, hi) == [
                ("activated", "unack_active", None),
                ("acknowledged", "ack_active", "seen, lowering"),
                ("cleared", "normal", None),
            ]
            hist = c.call("Alarms.History", {"alarm": hi})["events"]
            assert [r["value"] for r in hist] == [80.0, 80.0, 40.0]
            assert hist[0]["time"] <= hist[1]["time"] <= hist[2]["time"]
            assert {r["priority"] for r in hist} == {"high"} and {r["area"] for r in hist} == {"sim"}

            # Leave one alarm acknowledged-active and shelved, one returned-unacknowledged.
            c.call("Tags.Write", {"path": SP, "value": 95})
            wait_until(lambda: state_is(c, hihi, "unack_active"), "hihi active")
            wait_until(lambda: state_is(c, hi, "unack_active"), "hi active again")
            c.call("Alarms.Acknowledge", {"alarms": [hi]})
            c.call("Alarms.Shelve", {"alarms": [hi], "duration_s": 3600, "reason": "level transmitter calibration"})
            c.call("Tags.Write", {"path": SP, "value": 85})
            wait_until(lambda: state_is(c, hihi, "rtn_unack"), "hihi returned")
            before = {n: alarm(c, n) for n in (hi, hihi)}
            rows_before = {n: journal(c, n) for n in (hi, hihi)}
            assert before[hi]["shelved_until"] and not before[hi]["annunciated"]
            assert before[hihi]["annunciated"] and before[hihi]["active"] is False
            counts = c.call("Alarms.List", {})["counts"]
            assert counts["active"] == 1 and counts["unacked"] == 1 and counts["shelved"] == 1
            assert counts["unacked_by_priority"]["critical"] == 1
    finally:
        assert d.stop() == 0, d.log_text()

    # A fresh evaluation would say hi is unack_active (80 % > 50 %) and hihi normal:
    # only a restored state gives ack_active + shelved and rtn_unack.
    d = start(home)
    try:
        with d.client() as c:
            wait_until(lambda: alarm(c, hi)["value"] == 80.0, "a fresh value for hi")
            after = {n: alarm(c, n) for n in (hi, hihi)}
            for n in (hi, hihi):
                for key in ("state", "active_since", "acked_by", "acked_at", "shelved_until", "shelved_by",
                            "shelve_reason", "suppressed", "out_of_service"):  # fmt: skip
                    assert after[n][key] == before[n][key], (n, key)
            assert after[hi]["state"] == "ack_active" and after[hihi]["state"] == "rtn_unack"
            assert {n: journal(c, n) for n in (hi, hihi)} == rows_before
            c.call("Alarms.Acknowledge", {"alarms": [hihi]})
            assert alarm(c, hihi)["state"] == "normal"
    finally:
        assert d.stop() == 0, d.log_text()


def test_bad_quality_latching_oos_and_refusals(tmp_path: Path) -> None:
    d = start(tmp_path / "home")
    try:
        with d.client() as c:
            level = "sim/pump-plc-0/tank_level"
            # The demo rules came with the simulated plant.
            names = {r["tag"] + ":" + r["kind"] for r in c.call("AlarmRules.List", {})["rules"]}
            assert {f"{level}:hihi", f"{level}:bad_quality"} <= names
            c.call("Sim.Fault", {"device": "pump-plc-0", "fault": "disconnect"})
            a = wait_until(lambda: state_is(c, f"{level}:bad_quality", "unack_active"), "comm loss alarm")
            assert a["priority"] == "critical" and a["message"] == "Pump station PLC not answering"
            c.call("Sim.Fault", {"device": "pump-plc-0", "fault": "clear"})
            wait_until(lambda: state_is(c, f"{level}:bad_quality", "rtn_unack"), "comm back")

            # Latching: once active, back to normal it waits in 'latched' for a reset.
            c.call("AlarmRules.Create", {"tag": SP, "kind": "hi", "limit": 50, "latching": True})
            wait_until(lambda: state_is(c, f"{SP}:hi", "unack_active"), "hi active")
            c.call("Tags.Write", {"path": SP, "value": 40})
            wait_until(lambda: state_is(c, f"{SP}:hi", "latched"), "latched")
            c.call("Alarms.Acknowledge", {"alarms": [f"{SP}:hi"]})
            assert alarm(c, f"{SP}:hi")["state"] == "normal"

            # Out of service: not evaluated; back in service it re-decides from the value.
            c.call("Alarms.OutOfService", {"alarm": f"{SP}:hi", "reason": "sensor replaced"})
            c.call("Tags.Write", {"path": SP, "value": 70})
            wait_until(
                lambda: c.call("Tags.Read", {"paths": [SP]})["values"][0]["value"] == 70.0, "the write read back"
            )
            a = alarm(c, f"{SP}:hi")
            assert a["state"] == "normal" and a["out_of_service"] and a["oos_reason"] == "sensor replaced"
            c.call("Alarms.OutOfService", {"alarm": f"{SP}:hi", "out_of_service": False})
            assert alarm(c, f"{SP}:hi")["state"] == "unack_active"

            # Bad input names the field; nothing changes.
            with pytest.raises(InvalidArgument) as e:
                c.call("AlarmRules.Create", {"tag": SP, "kind": "hihi"})
            assert e.value.details["field"] == "params.limit"
            with pytest.raises(InvalidArgument) as e:
                c.call("AlarmRules.Create", {"tag": SP, "kind": "deviation", "limit": 5})
            assert e.value.details["field"] == "params.setpoint_tag"
            with pytest.raises(InvalidArgument) as e:
                c.call("AlarmRules.Create", {"tag": SP, "kind": "lo", "limit": 5, "suppress_when": "{nope} =="})
            assert e.value.details["field"] == "params.suppress_when"
            with pytest.raises(InvalidArgument) as e:
                c.call("Alarms.Shelve", {"alarms": [f"{SP}:hi"], "duration_s": 10**7, "reason": "x"})
            assert e.value.details["field"] == "params.duration_s"
            with pytest.raises(NotFound) as e:
                c.call("Alarms.Acknowledge", {"alarms": [f"{SP}:hi", "sim/nope:hi"]})
            assert e.value.details["field"] == "params.alarms[1]"
            assert alarm(c, f"{SP}:hi")["state"] == "unack_active"  # the refused call acked nothing
    finally:
        assert d.stop() == 0, d.log_text()


def test_suppression_by_design_and_deviation(tmp_path: Path) -> None:
    d = start(tmp_path / "home")
    try:
        with d.client() as c:
            for path in ("t/pv", "t/sp", "t/running"):
                c.call("Tags.Create", {"path": path, "data_type": "float64", "source": "memory", "writable": True,
                                       "initial_value": "0"})  # fmt: skip
            c.call("AlarmRules.Create", {"tag": "t/pv", "kind": "deviation", "limit": 5, "setpoint_tag": "t/sp",
                                         "suppress_when": "{t/running} == 0", "priority": "low"})  # fmt: skip
            name = "t/pv:deviation"
            assert alarm(c, name)["suppressed"] is True
            c.call("Tags.Write", {"path": "t/sp", "value": 50})
            # Suppressed alarms still evaluate and journal, but are not annunciated.
            a = wait_until(lambda: state_is(c, name, "unack_active"), "deviation active")
            assert not a["annunciated"]
            assert c.call("Alarms.List", {})["alarms"] == []
            c.call("Tags.Write", {"path": "t/running", "value": 1})
            a = alarm(c, name)
            assert a["annunciated"] and not a["suppressed"]
            assert [x["name"] for x in c.call("Alarms.List", {})["alarms"]] == [name]
            c.call("Tags.Write", {"path": "t/pv", "value": 47})
            wait_until(lambda: state_is(c, name, "rtn_unack"), "deviation within 5")
            events = [e for e, _, _ in journal(c, name)]
            assert events == ["suppressed", "activated", "unsuppressed", "cleared"]
    finally:
        assert d.stop() == 0, d.log_text()


# ---------------------------------------------------------------- e-mail through the daemon


def _smtp_config(port: int) -> str:
    return (
        f"[smtp]\nhost = '127.0.0.1'\nport = {port}\nsecurity = 'none'\ntimeout_s = 1.0\n"
        "[alarms.email]\ndigest_window_s = 2.0\nretry_delays_s = [0.2]\nescalate_after_s = 0\n"
        "[[alarms.email.routes]]\nareas = ['**']\npriorities = ['critical']\nto = ['ops@example.com']\n"
    )


def _memory_tag_and_rule(c: Client) -> None:
    c.call("Tags.Create", {"path": "boiler/pressure", "data_type": "float64", "source": "memory", "writable": True,
                           "initial_value": "5", "units": "bar"})  # fmt: skip
    c.call("AlarmRules.Create", {"tag": "boiler/pressure", "kind": "hi", "limit": 10, "priority": "critical",
                                 "message": "Boiler pressure high: {value} {units}"})  # fmt: skip


class _Mailbox:
    """aiosmtpd handler keeping every mail it accepted."""

    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _smtp_server() -> tuple[Controller, _Mailbox, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = _Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    return ctl, box, port


def test_daemon_mails_a_critical_alarm(tmp_path: Path) -> None:
    ctl, box, port = _smtp_server()
    got = box.mails
    try:
        d = start_daemon(tmp_path / "home", _smtp_config(port))
        try:
            with d.client() as c:
                _memory_tag_and_rule(c)
                c.call("Tags.Write", {"path": "boiler/pressure", "value": 12.5})
                wait_until(lambda: got, "the mail")
                assert str(got[0]["Subject"]).strip() == (
                    "[SCADA] CRITICAL boiler/pressure:hi: Boiler pressure high: 12.5 bar"
                )
                assert "12.5" in got[0].get_body(("plain",)).get_content()
                rows = wait_until(
                    lambda: [e for e in journal(c, "boiler/pressure:hi") if e[0] == "notified"], "notified row"
                )
                assert rows == [("notified", "unack_active", "to ops@example.com")]
                time.sleep(0.5)
                assert len(got) == 1
        finally:
            assert d.stop() == 0, d.log_text()
    finally:
        ctl.stop()


def test_a_flood_of_200_alarms_in_10_s_is_a_few_digests(tmp_path: Path) -> None:
    ctl, box, port = _smtp_server()
    try:
        d = start_daemon(
            tmp_path / "home", _smtp_config(port).replace("digest_window_s = 2.0", "digest_window_s = 5.0")
        )
        try:
            with d.client() as c:
                paths = [f"flood/t{i:03d}" for i in range(200)]
                c.call("Tags.Import", {"tags": [{"path": p, "data_type": "float64", "source": "memory",
                                                 "writable": True, "initial_value": "0"} for p in paths]})  # fmt: skip
                c.call("AlarmRules.Import", {"rules": [{"tag": p, "kind": "hi", "limit": 1, "priority": "critical"}
                                                       for p in paths]})  # fmt: skip
                began = time.monotonic()
                for i, p in enumerate(paths):
                    c.call("Tags.Write", {"path": p, "value": 5})
                    time.sleep(max(0.0, began + (i + 1) * 0.05 - time.monotonic()))
                assert c.call("Alarms.List", {})["counts"]["unacked"] == 200
                notified = wait_until(
                    lambda: len(c.call("Alarms.History", {"events": ["notified"]})["events"]) == 200 or None,
                    "every alarm mailed", timeout=20,
                )  # fmt: skip
                assert notified
                listed = [
                    n for m in box.mails for n in re.findall(r"flood/t\d{3}:hi", m.get_body(("plain",)).get_content())
                ]
                assert sorted(set(listed)) == sorted(f"{p}:hi" for p in paths) and len(listed) == 200
                # The first alarm goes at once, the rest in one digest per 5-s window.
                assert 2 <= len(box.mails) <= 1 + 3 + 1, [str(m["Subject"]) for m in box.mails]
                assert re.fullmatch(
                    r"\[SCADA\] \d+ alarms \(\d+ critical\) at test", str(box.mails[-1]["Subject"]).strip()
                )
        finally:
            assert d.stop() == 0, d.log_text()
    finally:
        ctl.stop()


def test_hanging_mail_relay_does_not_delay_alarms(tmp_path: Path) -> None:
    # A relay that accepts connections and never says a word.
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(100)
    try:
        d = start_daemon(tmp_path / "home", _smtp_config(hang.getsockname()[1]))
        try:
            with d.client() as c:
                _memory_tag_and_rule(c)
                began = time.monotonic()
                for i in range(40):
                    c.call("Tags.Write", {"path": "boiler/pressure", "value": 20 if i % 2 == 0 else 5})
                    # Evaluated before the write returns, mail or no mail.
                    assert alarm(c, "boiler/pressure:hi")["active"] is (i % 2 == 0)
                assert time.monotonic() - began < 10
                events = [e for e, _, _ in journal(c, "boiler/pressure:hi")]
                assert events.count("activated") == 20 and events.count("cleared") == 20
                failed = wait_until(
                    lambda: [e for e in journal(c, "boiler/pressure:hi") if e[0] == "notify_failed"],
                    "notify_failed rows",
                )
                assert "no answer" in (failed[0][2] or "") or "timed out" in (failed[0][2] or "")
                mail = [s for s in c.call("System.Status")["subsystems"] if s["name"] == "alarms"][0]["info"]["email"]
                assert mail["failed"] >= 1
        finally:
            assert d.stop() == 0, d.log_text()
    finally:
        hang.close()


def test_watch_streams_changes_and_deleted_rules(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "home")
    try:
        with d.client() as c, d.client() as w:
            c.call("Tags.Create", {"path": "p/x/t", "data_type": "float64", "source": "memory", "writable": True,
                                   "initial_value": "0"})  # fmt: skip
            rule = c.call("AlarmRules.Create", {"tag": "p/x/t", "kind": "hi", "limit": 10, "priority": "critical"})
            stream = w.stream("Alarms.Watch", {"pattern": "p/**"})
            first = next(stream)
            assert first["initial"] and first["alarms"] == [] and first["counts"]["active"] == 0
            c.call("Tags.Write", {"path": "p/x/t", "value": 11})
            ev = next(stream)
            assert [a["name"] for a in ev["alarms"]] == ["p/x/t:hi"] and ev["alarms"][0]["state"] == "unack_active"
            assert [(e["event"], e["state"], e["value"]) for e in ev["events"]] == [("activated", "unack_active", 11.0)]
            assert ev["counts"]["unacked_by_priority"]["critical"] == 1 and ev["removed"] == []
            c.call("AlarmRules.Delete", {"alarm": "p/x/t:hi"})
            ev = next(stream)
            assert ev["removed"] == [rule["id"]] and ev["alarms"] == [] and ev["counts"]["active"] == 0
            # The journal keeps the deleted alarm's rows.
            rows = c.call("Alarms.History", {"pattern": "p/**"})["events"]
            assert [r["event"] for r in rows] == ["activated"] and rows[0]["tag"] == "p/x/t"
    finally:
        assert d.stop() == 0, d.log_text()
