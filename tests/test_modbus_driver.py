"""The Modbus TCP driver against real pymodbus servers on loopback (no mocks).

Register contents are written with ``drivers.registers.encode`` (and a few by
hand, from device manuals' byte layouts) and read back through the driver:
every data type in every byte/word order, exact values compared.
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from drivers import registers
from drivers.base import DeviceConfig, DriverError, PointConfig, Reason
from drivers.modbus import ModbusDriver
from drivers.modbus_codec import BlockDecoder, ModbusPoint, PointError, parse_point
from drivers.simulator import Fault, Simulator

NAN = float("nan")
ORDERS = [("big", "big"), ("big", "little"), ("little", "big"), ("little", "little")]


def f32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


# Values per type: the extremes and awkward cases of each.
TYPE_VALUES: list[tuple[str, list]] = [
    ("int16", [-32768, -1, 32767]),
    ("uint16", [0, 65535, 0x1234]),
    ("int32", [-(2**31), 2**31 - 1, -123456]),
    ("uint32", [2**32 - 1, 0xDEADBEEF]),
    ("int64", [-(2**63), 2**63 - 1, -1234567890123]),
    ("uint64", [2**64 - 1]),
    ("float32", [f32(3.14), f32(-1e-30), NAN, float("inf")]),
    ("float64", [math.pi, 1 / 3, 5e-324, -1.7976931348623157e308, NAN]),
]
STRINGS = [("ABCDE", 5), ("Hi", 4), ("Z", 1)]
STATUS_WORD = 0xA005  # bits 0, 2, 13, 15 set (as read, big byte order)

# Hand-written layouts (register contents as a device manual prints them).
RAW_CASES: list[tuple[list[int], str, str, str, object]] = [
    ([0x4048, 0xF5C3], "float32", "big", "big", f32(3.14)),
    ([0xF5C3, 0x4048], "float32", "big", "little", f32(3.14)),
    ([0x4840, 0xC3F5], "float32", "little", "big", f32(3.14)),
    ([0xC3F5, 0x4840], "float32", "little", "little", f32(3.14)),
    ([0xFFFE, 0xFFFF], "int32", "big", "little", -2),
    ([0x0001, 0x0000], "uint32", "big", "big", 65536),
    ([0x7FF8, 0x0000, 0x0000, 0x0000], "float64", "big", "big", NAN),
    ([0x0100], "int16", "little", "big", 1),
    ([0x4142, 0x4300], "string", "big", "big", "ABC"),
]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bits(values: Sequence[bool] | None) -> list[SimData]:
    values = list(values or [False])
    values += [False] * (-len(values) % 16)
    return [SimData(0, values=values, datatype=SimType.BITS)]


def _regs(runs: dict[int, list[int]] | None) -> list[SimData]:
    if not runs:
        return [SimData(0, datatype=SimType.INVALID)]
    return [SimData(a, values=list(v), datatype=SimType.REGISTERS) for a, v in sorted(runs.items())]


class Server:
    """A pymodbus TCP server with fixed tables; records every request it receives."""

    def __init__(
        self,
        holding: dict[int, list[int]] | None = None,
        inputs: dict[int, list[int]] | None = None,
        coils: Sequence[bool] | None = None,
        discrete: Sequence[bool] | None = None,
        unit: int = 1,
    ) -> None:
        self.device = SimDevice(unit, simdata=(_bits(coils), _bits(discrete), _regs(holding), _regs(inputs)))
        self.unit = unit
        self.received: list[tuple[int, int]] = []  # (function code, address)
        self.server: ModbusTcpServer | None = None
        self.port = 0

    def _trace(self, sending: bool, pdu):
        if not sending:
            if pdu.dev_id != self.unit:
                return None  # not for this device: no answer, as on a serial line (see drivers.simulator)
            self.received.append((pdu.function_code, pdu.address))
        return pdu

    async def __aenter__(self) -> Server:
        self.server = ModbusTcpServer(
            self.device,
            address=("127.0.0.1", 0),
            trace_pdu=self._trace,  # type: ignore[arg-type]  # None drops the request
        )
        await self.server.serve_forever(background=True)
        self.port = self.server.transport.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc) -> None:
        assert self.server is not None
        await self.server.shutdown()

    async def holding(self, address: int, count: int) -> list[int]:
        """The server's own holding registers (not through any client)."""
        assert self.server is not None
        return list(await self.server.async_getValues(1, 3, address, count))


def tcp(port: int, **kwargs) -> ModbusDriver:
    kwargs.setdefault("timeout_s", 1.0)
    return ModbusDriver(DeviceConfig(name="dev", protocol="modbus_tcp", host="127.0.0.1", port=port, **kwargs))


def same(got, expected) -> bool:
    """Exact equality, type included; NaN equals NaN, 0.0 differs from -0.0."""
    if type(got) is not type(expected):
        return False
    if isinstance(expected, float):
        return struct.pack(">d", got) == struct.pack(">d", expected) or (math.isnan(got) and math.isnan(expected))
    return got == expected


def build_layout():
    """Holding (orders with byte == word) and input (the other two) tables holding every type and value."""
    tables: dict[int, list[int]] = {3: [], 4: []}
    points: list[PointConfig] = []
    expected: list = []
    for bo, wo in ORDERS:
        fn = 3 if bo == wo else 4
        regs = tables[fn]
        for dt, values in TYPE_VALUES:
            for v in values:
                points.append(PointConfig(len(points), str(len(regs)), dt, fn, byte_order=bo, word_order=wo))
                expected.append(v)
                regs += registers.encode(v, dt, bo, wo)
        for text, length in STRINGS:
            points.append(PointConfig(len(points), str(len(regs)), "string", fn, length, bo, wo))
            expected.append(text)
            regs += registers.encode(text, "string", bo, wo, string_length=length)
        for bit in (0, 1, 2, 13, 14, 15):
            points.append(PointConfig(len(points), f"{len(regs)}.{bit}", "bool", fn, byte_order=bo, word_order=wo))
            expected.append(registers.decode([STATUS_WORD], "bool", bo, wo, bit=bit))
        regs.append(STATUS_WORD)
    for raw, dt, bo, wo, value in RAW_CASES:
        regs = tables[3]
        length = 3 if dt == "string" else 0
        points.append(PointConfig(len(points), str(len(regs)), dt, 3, length, bo, wo))
        expected.append(value)
        regs += raw
    return tables, points, expected


# ---------------------------------------------------------------------------
# Pure: point parsing and the fast decoder.


def test_parse_point_defaults_and_errors():
    p = parse_point("5", "bool")
    assert (p.table, p.address, p.count, p.bit) == (1, 5, 1, None)
    p = parse_point("5.3", "bool")
    assert (p.table, p.address, p.bit) == (3, 5, 3)
    p = parse_point("1", "float32", address_base=1, device_byte_order="little", device_word_order="little")
    assert (p.table, p.address, p.count, p.byte_order, p.word_order) == (3, 0, 2, "little", "little")
    p = parse_point("7", "float32", 4, byte_order="big", device_byte_order="little", device_word_order="little")
    assert (p.byte_order, p.word_order) == ("big", "little")
    assert parse_point("9", "string", string_length=5).count == 3
    assert parse_point("3", "bool", 2).table == 2

    bad = [
        (("0", "int16"), {"address_base": 1}, "address"),
        (("abc", "int16"), {}, "address"),
        (("5.16", "bool"), {}, "address"),
        (("5.3", "int16"), {}, "address"),
        (("5.1", "bool", 2), {}, "address"),
        (("5", "bool", 3), {}, "address"),
        (("65535", "int32"), {}, "address"),
        (("65536", "int16"), {}, "address"),
        (("5", "float32", 1), {}, "data_type"),
        (("5", "decimal"), {}, "data_type"),
        (("5", "int16", 7), {}, "function"),
        (("5", "string", 3, 0), {}, "string_length"),
        (("5", "string", 3, 251), {}, "string_length"),
        (("5", "int32", 3, 0, "middle"), {}, "byte_order"),
        (("5", "int32", 3, 0, None, "x"), {}, "word_order"),
    ]
    for args, kwargs, field in bad:
        with pytest.raises(PointError) as info:
            parse_point(*args, **kwargs)
        assert info.value.field == field and str(info.value).startswith(f"{field}: "), (args, str(info.value))


@st.composite
def register_blocks(draw):
    n = draw(st.integers(1, 40))
    regs = draw(st.lists(st.integers(0, 0xFFFF), min_size=n, max_size=n))
    points = []
    for _ in range(draw(st.integers(1, 12))):
        dt = draw(st.sampled_from(list(registers.DataType)))
        bo, wo = draw(st.sampled_from(ORDERS))
        bit, length = None, 0
        if dt is registers.DataType.STRING:
            length = draw(st.integers(1, 2 * n))
        elif dt is registers.DataType.BOOL:
            bit = draw(st.integers(0, 15))
        count = registers.register_count(dt, length) if dt is registers.DataType.STRING else None
        count = count or (1 if dt is registers.DataType.BOOL else registers.register_count(dt))
        if count > n:
            continue
        offset = draw(st.integers(0, n - count))
        points.append(ModbusPoint(3, 100 + offset, count, dt, bit, length, bo, wo))
    return regs, points


@settings(max_examples=400, deadline=None)
@given(register_blocks())
def test_fast_decode_equals_registers_decode(block):
    regs, points = block
    decoder = BlockDecoder(3, 100, len(regs), list(enumerate(points)))
    out: list = [None] * len(points)
    decoder.decode(regs, out)
    for got, p in zip(out, points, strict=True):
        want = registers.decode(
            regs[p.address - 100 : p.end - 100],
            p.data_type,
            p.byte_order,
            p.word_order,
            bit=p.bit,
            string_length=p.string_length or None,
        )
        assert same(got, want), (p, got, want)


def test_fast_decode_bits_and_speed():
    bits = [True, False, False, True] * 5
    points = [(0, ModbusPoint(1, 10, 1, registers.DataType.BOOL)), (1, ModbusPoint(1, 13, 1, registers.DataType.BOOL))]
    out: list = [None, None]
    BlockDecoder(1, 10, 20, points).decode(bits, out)
    assert out == [True, True]

    # The hot path: 100 float32 points from one 200-register reply.
    regs = [(i * 7919) & 0xFFFF for i in range(200)]
    slots = [(k, ModbusPoint(4, 2 * k, 2, registers.DataType.FLOAT32)) for k in range(100)]
    decoder = BlockDecoder(4, 0, 200, slots)
    out = [None] * 100
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(200):
            decoder.decode(regs, out)
        best = min(best, (time.perf_counter() - t0) / 200)
    assert all(same(out[k], registers.decode(regs[2 * k : 2 * k + 2], "float32")) for k in range(100))
    assert best < 100e-6, f"decoding 100 float32 took {best * 1e6:.1f} us"


# ---------------------------------------------------------------------------
# Over the wire.


def test_every_type_and_order_reads_exactly():
    tables, points, expected = build_layout()
    coils = [True, False, True, True, False]
    discrete = [False, True, True]
    points += [PointConfig(len(points) + i, str(i), "bool") for i in range(len(coils))]
    points += [PointConfig(len(points) + i, str(i), "bool", 2) for i in range(len(discrete))]
    expected += coils + discrete

    async def main():
        async with Server(holding={0: tables[3]}, inputs={0: tables[4]}, coils=coils, discrete=discrete) as srv:
            driver = tcp(srv.port)
            assert driver.configure({"all": points}) == {}
            # More than one request per table: the planner's 125-register limit.
            assert len(tables[3]) > 125 and len(driver.requests("all")) >= 5
            await driver.connect()
            assert driver.connected
            try:
                batch = await driver.read("all")
            finally:
                await driver.close()
            assert batch.errors == {}
            assert len(batch.values) == len(points)
            for point, got, want in zip(points, batch.values, expected, strict=True):
                assert same(got, want), (point, got, want)
            assert not driver.connected
            await driver.close()  # idempotent

    run(main())


def test_address_base_point_orders_and_config_errors():
    value = 123456.5
    little = registers.encode(value, "float64", "little", "little")
    big = registers.encode(value, "float64", "big", "big")

    async def main():
        async with Server(holding={0: [11, 22] + little + big}) as srv:
            driver = tcp(srv.port, address_base=1, byte_order="little", word_order="little")
            points = [
                PointConfig(10, "1", "uint16", byte_order="big"),  # wire 0
                PointConfig(11, "2", "uint16"),  # byte-swapped, as the device's order says
                PointConfig(12, "3", "float64"),  # the device's orders
                PointConfig(13, "7", "float64", byte_order="big", word_order="big"),  # its own
                PointConfig(14, "0", "uint16"),  # no register 0 in a 1-based map
                PointConfig(15, "9", "float32", 2),
            ]
            errors = driver.configure({"g": points})
            assert set(errors) == {14, 15}
            assert errors[14].startswith("address: ") and errors[15].startswith("data_type: ")
            await driver.connect()
            try:
                batch = await driver.read("g")
                assert batch.values == [11, 22 << 8, value, value, None, None]
                assert batch.errors == {4: (Reason.CONFIG_ERROR, errors[14]), 5: (Reason.CONFIG_ERROR, errors[15])}
                # configure again replaces every group (live edit).
                assert driver.configure({"other": [PointConfig(1, "2", "uint16", byte_order="big")]}) == {}
                assert (await driver.read("other")).values == [22]
                with pytest.raises(DriverError) as info:
                    await driver.read("g")
                assert info.value.reason is Reason.CONFIG_ERROR
            finally:
                await driver.close()

    run(main())


def test_unit_id_is_honoured():
    async def main():
        async with Server(holding={0: [4242]}, unit=17) as srv:
            good = tcp(srv.port, unit_id=17)
            good.configure({"g": [PointConfig(1, "0", "uint16")]})
            await good.connect()
            assert (await good.read("g")).values == [4242]
            await good.close()
            wrong = tcp(srv.port, unit_id=1, timeout_s=0.3)
            wrong.configure({"g": [PointConfig(1, "0", "uint16")]})
            await wrong.connect()
            t0 = time.monotonic()
            with pytest.raises(DriverError) as info:
                await wrong.read("g")
            assert time.monotonic() - t0 < 1.0
            assert info.value.reason is Reason.COMM_FAILURE
            assert str(info.value) == f"127.0.0.1:{srv.port}: timeout after 300 ms reading holding 0"
            assert not wrong.connected and wrong.health.errors == {"timeout": 1}

    run(main())


def test_hole_in_the_map_fails_only_its_point_and_the_split_is_remembered():
    # Registers 0..9 and 20..39 exist; 10..19 is a hole the device refuses (exception 2).
    holding = {0: list(range(100, 110)), 20: list(range(120, 140))}

    async def main():
        async with Server(holding=holding) as srv:
            driver = tcp(srv.port, max_gap=16)
            addresses = [0, 2, 4, 8, 12, 20, 22, 30, 38]  # 12 lies in the hole
            points = [PointConfig(a, str(a), "uint16") for a in addresses]
            assert driver.configure({"g": points}) == {}
            assert len(driver.requests("g")) == 1  # merged over every gap
            await driver.connect()
            try:
                first = await driver.read("g")
                exceptions_first = driver.health.errors["exception"]
                requests_first = len(srv.received)
                plan = driver.requests("g")
                second = await driver.read("g")
            finally:
                await driver.close()
            for batch in (first, second):
                assert batch.values == [100, 102, 104, 108, None, 120, 122, 130, 138]
                assert batch.errors == {
                    4: (Reason.DEVICE_EXCEPTION, "exception 2 (illegal data address) reading holding 12")
                }
            assert exceptions_first >= 2  # the merged request, then parts of it
            # Remembered: the second scan sends exactly the learned plan, one exception for the hole only.
            assert driver.health.errors["exception"] - exceptions_first == 1
            assert len(srv.received) - requests_first == len(plan) < len(addresses)
            assert [(r.address, r.count) for r in plan if 12 in range(r.address, r.end)] == [(12, 1)]

    run(main())


def test_a_table_the_device_lacks_costs_one_request_per_scan():
    async def main():
        async with Server(holding={0: [1, 2, 3]}) as srv:
            driver = tcp(srv.port)
            points = [PointConfig(k, str(k), "uint16", 4) for k in range(6)] + [PointConfig(9, "1", "uint16")]
            driver.configure({"g": points})
            await driver.connect()
            try:
                await driver.read("g")
                before = len(srv.received)
                batch = await driver.read("g")
            finally:
                await driver.close()
            assert batch.values == [None] * 6 + [2]
            assert {e[0] for e in batch.errors.values()} == {Reason.DEVICE_EXCEPTION} and len(batch.errors) == 6
            assert len(srv.received) - before == 2  # input 0..5 (refused whole) and holding 1

    run(main())


def test_writes_round_trip():
    async def main():
        async with Server(holding={0: [0] * 40}, coils=[False] * 16) as srv:
            driver = tcp(srv.port, byte_order="big", word_order="little")
            await driver.connect()
            try:
                cases = [
                    (PointConfig(1, "3", "bool"), True, 5),
                    (PointConfig(2, "0", "int16"), -1234, 6),
                    (PointConfig(3, "1", "uint16"), 65535, 6),
                    (PointConfig(4, "2", "float32"), f32(-273.15), 16),
                    (PointConfig(5, "4", "int64"), -(2**63), 16),
                    (PointConfig(6, "8", "float64", byte_order="little"), math.e, 16),
                    (PointConfig(7, "12", "string", string_length=5), "PUMP1", 16),
                    (PointConfig(8, "15", "uint32"), 4000000000.0, 16),  # an integral float is accepted
                ]
                for point, value, fc in cases:
                    del srv.received[:]
                    await driver.write(point, value)
                    assert [f for f, _ in srv.received] == [fc], point
                    back = await driver.read_point(point)
                    assert back == value, (point, back)
                assert await srv.holding(2, 2) == registers.encode(f32(-273.15), "float32", "big", "little")
                # Bits inside a status word: read, change one bit, write back (FC3 then FC6).
                await driver.write(PointConfig(9, "20", "uint16"), 0x00F0)
                for text, on, word in [("20.0", True, 0x00F1), ("20.4", False, 0x00E1), ("20.15", True, 0x80E1)]:
                    del srv.received[:]
                    await driver.write(PointConfig(10, text, "bool"), on)
                    assert [f for f, _ in srv.received] == [3, 6]
                    assert await driver.read_point(PointConfig(10, text, "bool")) is on
                    assert await srv.holding(20, 1) == [word]
                # Little byte order: bit 0 of the decoded word is bit 8 of the register as sent.
                await driver.write(PointConfig(11, "21.0", "bool", byte_order="little"), True)
                assert await srv.holding(21, 1) == [0x0100]
                assert await driver.read_point(PointConfig(11, "21.0", "bool", byte_order="little")) is True
                assert driver.health.errors == {}
            finally:
                await driver.close()

    run(main())


def test_write_refusals():
    async def main():
        async with Server(holding={0: [0] * 4}, inputs={0: [0] * 4}) as srv:
            driver = tcp(srv.port)
            await driver.connect()
            try:
                refusals = [
                    (PointConfig(1, "0", "int16", 4), 1, Reason.CONFIG_ERROR, "read-only"),
                    (PointConfig(2, "0", "bool", 2), True, Reason.CONFIG_ERROR, "read-only"),
                    (PointConfig(3, "x", "int16"), 1, Reason.CONFIG_ERROR, "address: "),
                    (PointConfig(4, "0", "int16"), 40000, Reason.OUT_OF_RANGE, "40000"),
                    (PointConfig(5, "0", "uint16"), -1, Reason.OUT_OF_RANGE, "uint16"),
                    (PointConfig(6, "0", "int32"), 1.5, Reason.OUT_OF_RANGE, "1.5"),
                    (PointConfig(7, "0", "float32"), 1e39, Reason.OUT_OF_RANGE, "float32"),
                    (PointConfig(8, "0", "string", string_length=2), "TOO LONG", Reason.OUT_OF_RANGE, "string"),
                    (PointConfig(9, "0.1", "bool"), 2, Reason.OUT_OF_RANGE, "bool"),
                ]
                for point, value, reason, text in refusals:
                    with pytest.raises(DriverError) as info:
                        await driver.write(point, value)
                    assert info.value.reason is reason and text in str(info.value), (point, str(info.value))
                assert srv.received == []  # nothing was sent for any of them
                # The device refuses an address it lacks: DEVICE_EXCEPTION with its code.
                with pytest.raises(DriverError) as info:
                    await driver.write(PointConfig(10, "100", "uint16"), 1)
                assert info.value.reason is Reason.DEVICE_EXCEPTION and info.value.code == 2
                assert "exception 2 (illegal data address) writing holding 100" in str(info.value)
                with pytest.raises(DriverError) as info:
                    await driver.read_point(PointConfig(11, "100", "uint16"))
                assert info.value.reason is Reason.DEVICE_EXCEPTION and info.value.code == 2
                assert driver.connected  # an exception reply is not a transport failure
            finally:
                await driver.close()

    run(main())


def test_connect_failure():
    async def main():
        port = free_port()
        driver = tcp(port)
        with pytest.raises(DriverError) as info:
            await driver.connect()
        assert info.value.reason is Reason.COMM_FAILURE
        assert str(info.value) == f"cannot connect to 127.0.0.1:{port}: connection refused"
        assert not driver.connected and driver.health.errors == {"connect": 1}
        with pytest.raises(DriverError) as info:
            await driver.read_point(PointConfig(1, "0", "int16"))
        assert info.value.reason is Reason.COMM_FAILURE
        await driver.close()

    run(main())


def test_transport_faults_from_the_simulator():
    points = [PointConfig(1, "0", "float32", 4), PointConfig(2, "6", "float32", 4)]

    async def fresh(port: int, timeout_s: float) -> ModbusDriver:
        driver = tcp(port, timeout_s=timeout_s)
        driver.configure({"g": points})
        await driver.connect()
        return driver

    async def main():
        sim = Simulator(["sdm630"], seed=3, clock=lambda: 1_750_000_000.0, interval=None)
        await sim.start()
        port = sim.ports[0]
        try:
            driver = await fresh(port, 0.3)
            good = await driver.read("g")
            assert good.errors == {} and all(isinstance(v, float) for v in good.values)

            # Garbled reply: COMM_FAILURE, connection closed.
            await sim.set_fault(0, Fault.garbage())
            with pytest.raises(DriverError) as info:
                await driver.read("g")
            assert info.value.reason is Reason.COMM_FAILURE and "reading input 0..7" in str(info.value)
            assert not driver.connected and driver.health.errors["garbage"] == 1

            # No reply: COMM_FAILURE after the 0.3 s timeout.
            await sim.set_fault(0, Fault.timeout())
            await driver.connect()
            t0 = time.monotonic()
            with pytest.raises(DriverError) as info:
                await driver.read("g")
            assert 0.25 < time.monotonic() - t0 < 1.0
            assert str(info.value) == f"127.0.0.1:{port}: timeout after 300 ms reading input 0..7"

            # The device drops the connection while a request waits (timeout 5 s): fails at once.
            slow = await fresh(port, 5.0)
            task = asyncio.create_task(slow.read("g"))
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            await sim.set_fault(0, Fault.disconnect())
            with pytest.raises(DriverError) as info:
                await task
            assert time.monotonic() - t0 < 0.5
            assert info.value.reason is Reason.COMM_FAILURE and "connection lost" in str(info.value)
            assert not slow.connected

            # Killed between scans, then gone: read and connect fail fast.
            await sim.set_fault(0, None)
            await driver.connect()
            await sim.set_fault(0, Fault.disconnect())
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            with pytest.raises(DriverError) as info:
                await driver.read("g")
            assert info.value.reason is Reason.COMM_FAILURE and time.monotonic() - t0 < 0.2
            with pytest.raises(DriverError) as info:
                await driver.connect()
            assert "connection refused" in str(info.value)

            # Back: reconnect and read the same values.
            await sim.set_fault(0, None)
            await driver.connect()
            assert (await driver.read("g")).values == good.values
            snap = driver.health.snapshot()
            assert snap.p50_ms is not None and snap.p99_ms is not None and snap.p50_ms <= snap.p99_ms
            assert snap.errors == {"garbage": 1, "timeout": 1, "disconnected": 1, "connect": 1}
            assert snap.consecutive_failures == 0 and snap.last_good_us is not None
            assert "connection refused" in snap.last_error
            await driver.close()
            await slow.close()
        finally:
            await sim.stop()

    run(main())


def test_rejects_bad_device_config():
    for kwargs in (
        {"protocol": "opcua", "host": "h", "port": 1},
        {"protocol": "modbus_tcp", "host": None, "port": 502},
        {"protocol": "modbus_tcp", "host": "h", "port": 502, "max_registers": 200},
        {"protocol": "modbus_tcp", "host": "h", "port": 502, "address_base": 2},
        {"protocol": "modbus_rtu"},
        {"protocol": "modbus_rtu", "serial_port": "/dev/ttyUSB0", "parity": "X"},
    ):
        with pytest.raises(DriverError) as info:
            ModbusDriver(DeviceConfig(name="d", **kwargs))
        assert info.value.reason is Reason.CONFIG_ERROR, kwargs
