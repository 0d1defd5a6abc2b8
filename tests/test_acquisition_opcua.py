"""scadad as an OPC UA client: a device on the simulator's asyncua server, through the API.

The simulator runs as its own process (`python -m drivers.simulator --opcua-port 0`),
the daemon subscribes to its nodes, and values, source timestamps, writes with
read-back and the loss of the server are checked through the socket.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scadad.api.client import Client
from tests.conftest import RunningDaemon, start_daemon

ROOT = Path(__file__).resolve().parent.parent


def _values(c: Client, pattern: str) -> dict[str, dict]:
    return {v["path"]: v for v in c.call("Tags.Read", {"paths": [pattern]})["values"]}


def _wait(pred, timeout: float, what: str, debug=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r}; {debug() if debug else ''})")


@pytest.fixture
def opcua_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.simulator", "--types", "pump_plc,sdm630", "--base-port", "0",
         "--opcua-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    endpoint = None
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        m = re.search(r"OPC UA at (opc\.tcp://\S+),", line)
        if m:
            endpoint = m.group(1)
            break
        assert time.monotonic() < deadline
    assert endpoint, "the simulator printed no OPC UA endpoint"
    try:
        yield proc, endpoint
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def daemon_opc(tmp_path: Path) -> Iterator[RunningDaemon]:
    d = start_daemon(tmp_path / "home")
    yield d
    assert d.stop() == 0, d.log_text()


def test_opcua_device_subscribed_written_and_lost(opcua_server, daemon_opc: RunningDaemon) -> None:
    proc, endpoint = opcua_server
    with daemon_opc.client() as c:
        c.call("Devices.Create", {"name": "plc-opc", "protocol": "opcua", "endpoint_url": endpoint, "timeout_ms": 1000})
        tags = [
            {"path": "water/plc/level", "address": "ns=2;s=pump_plc-0.tank_level", "data_type": "float64", "units": "%"},
            {"path": "water/plc/level_high_sp", "address": "ns=2;s=pump_plc-0.level_high_sp", "data_type": "float64",
             "writable": True},
            {"path": "water/plc/running", "address": "ns=2;s=pump_plc-0.pump_running", "data_type": "bool"},
            {"path": "power/meter/voltage_l1", "address": "ns=2;s=sdm630-1.voltage_l1", "data_type": "float32"},
            {"path": "power/meter/missing", "address": "ns=2;s=sdm630-1.no_such_point", "data_type": "float32"},
        ]  # fmt: skip
        c.call("Tags.Import", {"tags": [dict(t, device="plc-opc") for t in tags]})
        v = _wait(lambda: (lambda x: x if x["water/plc/level"]["quality"] == "GOOD"
                           and x["power/meter/voltage_l1"]["quality"] == "GOOD" else None)(_values(c, "**")),
                  15, "OPC UA values GOOD", lambda: (_values(c, "**"), daemon_opc.log_text()[-3000:]))  # fmt: skip
        assert 0 <= v["water/plc/level"]["value"] <= 100, v
        assert 200 < v["power/meter/voltage_l1"]["value"] < 260
        assert isinstance(v["water/plc/running"]["value"], bool)
        assert v["water/plc/level"]["source_time"] is not None
        missing = v["power/meter/missing"]
        assert missing["quality"] == "BAD" and missing["reason"] == "device_exception"
        assert "BadNodeIdUnknown" in missing["detail"]
        st = c.call("Devices.Status", {"name": "plc-opc"})["devices"][0]
        assert st["mode"] == "subscribe" and st["state"] in ("online", "degraded")

        res = c.call("Tags.Write", {"path": "water/plc/level_high_sp", "value": 77.5})
        assert res["confirmed"] is True and res["read_back"]["value"] == 77.5

        proc.kill()
        proc.wait(10)
        _wait(lambda: all(x["quality"] == "BAD" for x in _values(c, "water/**").values()), 10, "BAD after server loss")
        assert {x["reason"] for x in _values(c, "water/**").values()} == {"comm_failure"}
