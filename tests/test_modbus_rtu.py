"""The Modbus RTU driver over a serial line: a socat pty pair, a pymodbus RTU server on one end.

    socat pty,raw,echo=0,link=DIR/a pty,raw,echo=0,link=DIR/b

The server (unit 5) listens on DIR/a, the driver opens DIR/b. Needs socat and
pyserial; without them the tests skip (and fail in CI, where both must be there).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from drivers import registers
from drivers.base import DeviceConfig, DriverError, PointConfig, Reason
from drivers.modbus import ModbusDriver

UNIT = 5
CI = os.environ.get("CI") == "true"


def _missing(what: str) -> None:
    if CI:
        pytest.fail(f"{what} is needed for the RTU tests")
    pytest.skip(f"{what} not installed")


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo terminals (server end, driver end), made by socat."""
    socat = shutil.which("socat") or ("/usr/bin/socat" if os.path.exists("/usr/bin/socat") else None)
    if socat is None:
        _missing("socat")
    if importlib.util.find_spec("serial") is None:
        _missing("pyserial")
    a, b = tmp_path / "a", tmp_path / "b"
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while not (a.exists() and b.exists()):
            if proc.poll() is not None:
                pytest.fail(f"socat exited: {proc.stderr.read().decode(errors='replace') if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("socat did not create the pty pair within 5 s")
            time.sleep(0.01)
        yield str(a), str(b)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


FLOAT = registers.encode(230.5, "float32")
HOLDING = FLOAT + [0, 0, 0, 0]  # 0..1 float32, 2..5 writable
INPUT = registers.encode(-1234, "int16") + registers.encode(-5, "int16")
COILS = [True, False, True] + [False] * 13


async def start_server(port: str) -> ModbusSerialServer:
    device = SimDevice(
        UNIT,
        simdata=(
            [SimData(0, values=COILS, datatype=SimType.BITS)],
            [SimData(0, values=[False] * 16, datatype=SimType.BITS)],
            [SimData(0, values=list(HOLDING), datatype=SimType.REGISTERS)],
            [SimData(0, values=list(INPUT), datatype=SimType.REGISTERS)],
        ),
    )

    def other_units_get_no_answer(sending: bool, pdu):
        return pdu if sending or pdu.dev_id == UNIT else None

    server = ModbusSerialServer(
        device,
        framer=FramerType.RTU,
        port=port,
        baudrate=19200,
        trace_pdu=other_units_get_no_answer,  # type: ignore[arg-type]
    )
    await server.serve_forever(background=True)
    return server


def rtu(port: str, unit: int = UNIT, timeout_s: float = 0.5) -> ModbusDriver:
    return ModbusDriver(
        DeviceConfig(
            name="rtu",
            protocol="modbus_rtu",
            serial_port=port,
            baudrate=19200,
            parity="N",
            stopbits=1,
            bytesize=8,
            unit_id=unit,
            timeout_s=timeout_s,
        )
    )


POINTS = [
    PointConfig(1, "0", "float32"),
    PointConfig(2, "0", "int16", 4),
    PointConfig(3, "1", "int16", 4),
    PointConfig(4, "0", "bool"),
    PointConfig(5, "1", "bool"),
    PointConfig(6, "2", "bool"),
]


def test_rtu_read_write_and_unit_id(serial_pair):
    server_end, driver_end = serial_pair

    async def main():
        server = await start_server(server_end)
        driver = rtu(driver_end)
        try:
            assert driver.configure({"g": POINTS}) == {}
            await driver.connect()
            assert driver.connected
            batch = await driver.read("g")
            assert batch.errors == {}
            assert batch.values == [230.5, -1234, -5, True, False, True]

            await driver.write(PointConfig(7, "2", "int16"), -300)  # FC6
            assert await driver.read_point(PointConfig(7, "2", "int16")) == -300
            await driver.write(PointConfig(8, "4", "float32"), 0.25)  # FC16
            assert await driver.read_point(PointConfig(8, "4", "float32")) == 0.25
            await driver.write(PointConfig(9, "1", "bool"), True)  # FC5
            assert (await driver.read("g")).values[4] is True
            snap = driver.health.snapshot()
            assert snap.errors == {} and snap.p50_ms is not None
            await driver.close()
            assert not driver.connected

            # Another unit on the line: nobody answers, the driver times out.
            other = rtu(driver_end, unit=UNIT + 1, timeout_s=0.3)
            other.configure({"g": POINTS[:1]})
            await other.connect()
            t0 = time.monotonic()
            with pytest.raises(DriverError) as info:
                await other.read("g")
            assert time.monotonic() - t0 < 1.5
            assert info.value.reason is Reason.COMM_FAILURE
            assert str(info.value) == f"{driver_end}: timeout after 300 ms reading holding 0..1"
            assert other.health.errors == {"timeout": 1}
            await other.close()

            # The right unit still reads on a new connection.
            await driver.connect()
            assert (await driver.read("g")).values[0] == 230.5
        finally:
            await driver.close()
            await server.shutdown()

    run(main())


def test_rtu_missing_port(tmp_path):
    if importlib.util.find_spec("serial") is None:
        _missing("pyserial")

    async def main():
        port = str(tmp_path / "nope")
        driver = rtu(port)
        with pytest.raises(DriverError) as info:
            await driver.connect()
        assert info.value.reason is Reason.COMM_FAILURE
        assert str(info.value) == f"cannot connect to {port}: no such serial port"
        await driver.close()

    run(main())
