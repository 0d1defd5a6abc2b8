"""The simulated plant: real Modbus TCP servers on loopback, read with a plain pymodbus client.

Every value read is decoded with ``drivers.registers`` and compared with what
the model computes for the same clock and seed: exact for integers and
counters, float32-exact for floats.
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers import registers
from drivers.simulator import PROFILES, Fault, FaultKind, Function, Simulator, create_model, filler_values
from drivers.simulator.model import (
    ENERGY_EPOCH,
    LOAD_DAY_HOURS,
    load_energy_hours,
    load_fraction,
    solar_energy_hours,
    solar_fraction,
)
from drivers.simulator.profiles import FILLER_START, PointSpec, decode_point, encode_point, filler_points

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC: daytime, load and sun both up
SEED = 7
ALL_TYPES = list(PROFILES)
DG_START, DG_STOP = 35705, 35700


class StepClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


async def connect(port: int, timeout: float = 1.0) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=timeout, retries=0, reconnect_delay=0)
    assert await client.connect(), f"cannot connect to 127.0.0.1:{port}"
    return client


async def read_raw(client: AsyncModbusTcpClient, function: Function, address: int, count: int, unit: int = 1):
    """The response of one plain read (registers or bits)."""
    if function is Function.INPUT:
        return await client.read_input_registers(address, count=count, device_id=unit)
    if function is Function.HOLDING:
        return await client.read_holding_registers(address, count=count, device_id=unit)
    if function is Function.COIL:
        return await client.read_coils(address, count=count, device_id=unit)
    return await client.read_discrete_inputs(address, count=count, device_id=unit)


async def read_point(client: AsyncModbusTcpClient, point: PointSpec) -> list:
    rr = await read_raw(client, point.function, point.address, point.count)
    assert not rr.isError(), f"{point.name}: {rr}"
    return rr.bits[:1] if point.function.is_bit else rr.registers


def f32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


def check_point(point: PointSpec, regs: list, signal_value) -> None:
    """Decode as a driver would (drivers.registers) and compare with the model, independently of encode_point."""
    if point.function.is_bit:
        assert bool(regs[0]) is bool(signal_value), point.name
        return
    raw = registers.decode(regs, point.data_type, point.byte_order, point.word_order, bit=point.bit)
    if point.data_type is registers.DataType.BOOL:
        assert raw is bool(signal_value), point.name
    elif point.data_type is registers.DataType.FLOAT32:
        assert raw == f32(signal_value * point.gain / point.scale), point.name
    else:
        assert isinstance(raw, int)
        assert raw == round(signal_value * point.gain / point.scale), (point.name, raw, signal_value)


def layouts(points: Iterable[PointSpec]) -> set[tuple[str, str, str]]:
    out = set()
    for p in points:
        if p.function.is_bit:
            out.add((p.function.name, "bool", "-"))
        elif p.bit is not None:
            out.add((p.function.name, "bit", "-"))
        else:
            words = p.word_order.value if registers.register_count(p.data_type) > 1 else "-"
            out.add((p.function.name, p.data_type.value, words))
    return out


# ---------------------------------------------------------------------------
# Pure: profiles and models.


def test_profiles_feed_from_their_models_and_cover_every_layout():
    for profile in PROFILES.values():
        model = create_model(profile.model, 0, SEED)
        signals = model.update(T0)
        for p in profile.points:
            assert p.signal in signals, f"{profile.kind}.{p.name} needs signal {p.signal}"
            assert p.writable == (p.signal in model.writable), f"{profile.kind}.{p.name}"
            # encode_point and decode_point are inverses up to the raw step.
            back = decode_point(p, encode_point(p, signals[p.signal]))
            if isinstance(back, float) and not p.function.is_bit:
                assert math.isclose(back, signals[p.signal], rel_tol=1e-6, abs_tol=p.scale / p.gain)
            else:
                assert back == signals[p.signal] or back == round(signals[p.signal]), p.name
    every = layouts(p for prof in PROFILES.values() for p in prof.points)
    for needed in [
        ("INPUT", "float32", "big"),
        ("HOLDING", "float32", "big"),
        ("INPUT", "float32", "little"),
        ("INPUT", "int32", "little"),
        ("HOLDING", "int64", "big"),
        ("HOLDING", "uint32", "big"),
        ("INPUT", "uint32", "big"),
        ("HOLDING", "uint16", "-"),
        ("INPUT", "int16", "-"),
        ("HOLDING", "bit", "-"),
        ("COIL", "bool", "-"),
        ("DISCRETE_INPUT", "bool", "-"),
    ]:
        assert needed in every, needed


def test_real_device_addresses():
    sdm = PROFILES["sdm630"]
    assert {p.function for p in sdm.points} == {Function.INPUT}
    assert [sdm.point(n).address for n in ("voltage_l1", "current_l1", "power_l1", "power_total")] == [0, 6, 12, 0x34]
    assert [sdm.point(n).address for n in ("pf_total", "frequency", "import_kwh", "export_kwh", "total_kwh")] == [
        0x3E,
        0x46,
        0x48,
        0x4A,
        0x156,
    ]
    pm = PROFILES["pm5xxx"]
    assert pm.point("current_l1").address == 2999  # manual register 3000, 1-based
    assert pm.point("import_wh").data_type is registers.DataType.INT64 and pm.point("import_wh").address == 3203
    em = PROFILES["em24"]
    assert all(p.word_order is registers.WordOrder.LITTLE for p in em.points if p.data_type is registers.DataType.INT32)


def test_models_are_deterministic_functions_of_index_seed_and_time():
    for model in ("meter", "inverter", "dg", "pump"):
        a = create_model(model, 3, SEED).update(T0)
        b = create_model(model, 3, SEED).update(T0)
        assert a == b
        assert create_model(model, 3, SEED + 1).update(T0) != a
        assert create_model(model, 4, SEED).update(T0) != a
    # The same second gives the same noise (voltage is curve-free); another second another.
    m = create_model("meter", 0, SEED)
    assert m.update(T0)["voltage_l1"] == m.update(T0 + 0.5)["voltage_l1"]
    assert m.update(T0)["voltage_l1"] != m.update(T0 + 1)["voltage_l1"]
    assert filler_values(1, SEED, T0, 5) == filler_values(1, SEED, T0, 5) != filler_values(2, SEED, T0, 5)


def test_daily_curves():
    assert load_fraction(3) < load_fraction(10) < load_fraction(19)  # night < midday < evening peak
    assert load_fraction(18) == max(load_fraction(h / 4) for h in range(97)) == 1.0
    assert solar_fraction(2) == solar_fraction(22) == 0.0
    assert solar_fraction(12) == pytest.approx(1.0)
    assert solar_fraction(9) == pytest.approx(solar_fraction(15))
    # Closed-form integrals agree with a numeric one.
    steps = 24 * 600
    numeric = sum(load_fraction((i + 0.5) * 24 / steps) for i in range(steps)) * 24 / steps
    assert load_energy_hours(24) == pytest.approx(numeric, rel=1e-6) == pytest.approx(LOAD_DAY_HOURS)
    numeric = sum(solar_fraction((i + 0.5) * 24 / steps) for i in range(steps)) * 24 / steps
    assert solar_energy_hours(24) == pytest.approx(numeric, rel=1e-6)
    # Night: the inverter sleeps at zero.
    night = create_model("inverter", 0, SEED).update(T0 - 15 * 3600)  # 00:06 UTC
    assert night["ac_power_kw"] == 0.0 and night["status"] == 2


def test_counters_integrate_power_monotonically():
    meter, inverter = create_model("meter", 0, SEED), create_model("inverter", 0, SEED)
    assert meter.update(ENERGY_EPOCH - 100)["import_kwh"] == meter.update(ENERGY_EPOCH)["import_kwh"]
    last_m = last_i = -1.0
    for k in range(200):  # every 7 minutes over 23 hours, across midnight
        t = T0 + k * 420
        mv, iv = meter.update(t), inverter.update(t)
        assert mv["import_kwh"] > last_m and mv["total_kwh"] == mv["import_kwh"] + mv["export_kwh"]
        assert iv["total_kwh"] >= last_i
        last_m, last_i = mv["import_kwh"], iv["total_kwh"]
    # One day adds exactly rated power x full-load hours of the curve.
    day = meter.update(T0 + 86400)["import_kwh"] - meter.update(T0)["import_kwh"]
    assert day == pytest.approx(meter.rated_kw * LOAD_DAY_HOURS)


def test_fault_parse():
    assert Fault.parse("timeout") == Fault.timeout()
    assert Fault.parse("clear").kind is FaultKind.CLEAR
    f = Fault.parse("exception:3000-3010:4")
    assert (f.start, f.count, f.code) == (3000, 11, 4)
    assert f.read_exception(3, 3010, 2) == 4 and f.read_exception(3, 3011, 2) is None
    assert f.read_exception(3, 2990, 10) is None and f.read_exception(3, 2990, 11) == 4
    assert str(Fault.parse("exception:0x10")) == "exception:16-16:2"
    for bad in ("explode", "timeout:3", "exception:1-2:99", "exception:a-b"):
        with pytest.raises(ValueError):
            Fault.parse(bad)


# ---------------------------------------------------------------------------
# Over the wire.


def test_every_device_type_serves_its_model_values():
    async def main():
        sim = Simulator(ALL_TYPES, seed=SEED, clock=StepClock(), interval=None, tags_per_device=4)
        await sim.start()
        try:
            assert len(set(sim.ports)) == len(ALL_TYPES) and all(p > 0 for p in sim.ports)
            seen = set()
            for dev in sim.devices:
                expected = create_model(dev.profile.model, dev.index, SEED).update(T0)
                client = await connect(dev.port)
                try:
                    for point in dev.profile.points:
                        check_point(point, await read_point(client, point), expected[point.signal])
                    seen |= layouts(dev.profile.points)
                    fill = filler_values(dev.index, SEED, T0, 4)
                    rr = await client.read_input_registers(FILLER_START, count=8)
                    assert not rr.isError()
                    got = [registers.decode(rr.registers[2 * k : 2 * k + 2], "float32") for k in range(4)]
                    assert got == [f32(v) for v in fill]
                finally:
                    client.close()
            assert seen == layouts(p for prof in PROFILES.values() for p in prof.points)
        finally:
            await sim.stop()

    run(main())


def test_block_reads_gaps_and_unknown_addresses():
    async def main():
        sim = Simulator(["sdm630", "pm5xxx", "pump_plc"], seed=SEED, clock=StepClock(), interval=None)
        await sim.start()
        sdm, pm, pump = [await connect(p) for p in sim.ports]
        try:
            # SDM630: one request over the unused registers between points, as meters allow.
            rr = await sdm.read_input_registers(0, count=0x4C)
            assert not rr.isError()
            model = create_model("meter", 0, SEED).update(T0)
            assert registers.decode(rr.registers[0x46:0x48], "float32") == f32(model["frequency"])
            assert rr.registers[0x12:0x34] == [0] * (0x34 - 0x12)
            assert (await sdm.read_input_registers(0x156, count=4)).isError()  # past the end of the map
            assert (await sdm.read_holding_registers(0, count=2)).exception_code == 2  # no holding table
            # PM5xxx refuses a merged read across unimplemented registers (the planner's split case).
            rr = await pm.read_holding_registers(2999, count=34)
            assert rr.isError() and rr.exception_code == 2
            assert not (await pm.read_holding_registers(2999, count=6)).isError()
            assert not (await pm.read_holding_registers(3027, count=6)).isError()
            # Bits: the pump's two coils and two discrete inputs.
            assert len((await pump.read_coils(0, count=2)).bits) >= 2
            assert (await pump.read_input_registers(0, count=1)).exception_code == 2
        finally:
            for c in (sdm, pm, pump):
                c.close()
            await sim.stop()

    run(main())


def test_other_unit_ids_are_ignored_and_unit_is_configurable():
    async def main():
        sim = Simulator(["inverter"], seed=SEED, clock=StepClock(), interval=None, unit=17)
        await sim.start()
        client = await connect(sim.ports[0], timeout=0.3)
        try:
            rr = await client.read_input_registers(0, count=2, device_id=17)
            assert not rr.isError()
            with pytest.raises(ModbusException):
                await client.read_input_registers(0, count=2, device_id=1)
        finally:
            client.close()
            await sim.stop()

    run(main())


def test_counters_increase_across_periodic_updates():
    class Ticking:
        def __init__(self):
            self.t = T0

        def __call__(self):
            self.t += 60.0  # a simulated minute per update
            return self.t

    async def main():
        clock = Ticking()
        sim = Simulator(["sdm630", "pm5xxx", "em24", "inverter"], seed=SEED, clock=clock, interval=0.05)
        await sim.start()
        clients = [await connect(p) for p in sim.ports]
        counters = [
            ("sdm630", "import_kwh"),
            ("pm5xxx", "import_wh"),
            ("em24", "import_kwh"),
            ("inverter", "total_energy"),
        ]
        try:
            last = [-1] * 4
            for _ in range(4):
                before = sim.update_count
                while sim.update_count == before:
                    await asyncio.sleep(0.01)
                for i, (kind, name) in enumerate(counters):
                    dev = sim.devices[i]
                    point = dev.profile.point(name)
                    regs = await read_point(clients[i], point)
                    value = registers.decode(regs, point.data_type, point.byte_order, point.word_order)
                    assert value > last[i], (kind, value, last[i])
                    last[i] = value
                    # And it is the model's value for the time of the last update.
                    expected = create_model(dev.profile.model, i, SEED).update(dev.updated_at)
                    check_point(point, regs, expected[point.signal])
        finally:
            for c in clients:
                c.close()
            await sim.stop()

    run(main())


def test_pump_setpoints_and_manual_command_drive_the_model():
    async def main():
        clock = StepClock()
        sim = Simulator(["pump_plc"], seed=SEED, clock=clock, interval=None)
        await sim.start()
        ref = create_model("pump", 0, SEED)
        ref.update(T0)
        prof = PROFILES["pump_plc"]
        client = await connect(sim.ports[0])

        async def state():
            level = decode_point(prof.point("tank_level"), await read_point(client, prof.point("tank_level")))
            running = (await client.read_coils(0, count=1)).bits[0]
            return level, running

        try:
            level, running = await state()
            assert not running and 30 < level < 80
            # Low setpoint above the level: the pump starts at the next update, not before.
            low = encode_point(prof.point("level_low_sp"), level + 5)[0]
            assert not (await client.write_register(11, low)).isError()
            assert (await state())[1] is False
            await sim.update()
            ref.apply("level_low_sp", low / 10)
            expected = ref.update(T0)
            assert (await state())[1] is True and expected["running"] is True
            # Ten minutes of pumping: level rises exactly as the model says.
            clock.t += 600
            await sim.update()
            expected = ref.update(clock.t)
            check_point(prof.point("tank_level"), await read_point(client, prof.point("tank_level")), expected["level"])
            check_point(prof.point("pump_flow"), await read_point(client, prof.point("pump_flow")), expected["flow"])
            # High setpoint below the level (and low out of the way): the pump stops.
            level = expected["level"]
            high = encode_point(prof.point("level_high_sp"), level - 1)[0]
            assert not (await client.write_registers(10, [high, 100])).isError()
            await sim.update()
            ref.apply("level_high_sp", high / 10)
            ref.apply("level_low_sp", 10.0)
            expected = ref.update(clock.t)
            assert (await state())[1] is False and expected["running"] is False
            rr = await client.read_holding_registers(10, count=2)
            assert rr.registers == [high, 100]
            # Manual command coil forces it on; the running coil itself is read-only.
            assert (await client.write_coil(0, True)).exception_code == 2
            assert (await client.write_register(0, 500)).exception_code == 2  # tank level is a measurement
            assert not (await client.write_coil(1, True)).isError()
            await sim.update()
            assert (await client.read_coils(0, count=2)).bits[:2] == [True, True]
            assert not (await client.write_coil(1, False)).isError()
            clock.t += 60
            await sim.update()
            assert (await client.read_coils(1, count=1)).bits[0] is False
        finally:
            client.close()
            await sim.stop()

    run(main())


def test_dg_start_and_stop_commands():
    async def main():
        clock = StepClock()
        sim = Simulator(["dg"], seed=SEED, clock=clock, interval=None)
        await sim.start()
        prof = PROFILES["dg"]
        ref = create_model("dg", 0, SEED)
        ref.update(T0)
        client = await connect(sim.ports[0])

        async def read(name):
            point = prof.point(name)
            return point, await read_point(client, point)

        try:
            point, regs = await read("running")
            assert registers.decode(regs, "bool", bit=0) is False
            _, starts = await read("start_count")
            starts = registers.decode(starts, "uint32")
            # A key with a wrong complement is ignored and cleared.
            assert not (await client.write_registers(4104, [DG_START, 1234])).isError()
            await sim.update()
            assert registers.decode((await read("running"))[1], "bool", bit=0) is False
            assert (await client.read_holding_registers(4104, count=2)).registers == [0, 0]
            # Start: key and complement.
            assert not (await client.write_registers(4104, [DG_START, 0xFFFF - DG_START])).isError()
            await sim.update()
            for sig, value in (("control_key", DG_START), ("control_check", 0xFFFF - DG_START)):
                ref.apply(sig, value)
            expected = ref.update(T0)
            assert expected["running"] is True
            for name in ("running", "start_count", "engine_speed", "oil_pressure", "power_total", "control_key"):
                point, regs = await read(name)
                check_point(point, regs, expected[point.signal])
            assert registers.decode((await read("start_count"))[1], "uint32") == starts + 1
            fuel0 = registers.decode((await read("fuel_level"))[1], "uint16")
            hours0 = registers.decode((await read("engine_hours"))[1], "uint32")
            kwh0 = registers.decode((await read("energy_kwh"))[1], "uint32")
            # One hour of running: fuel drops, run time grows by exactly 3600 s, energy grows.
            clock.t += 3600
            await sim.update()
            expected = ref.update(clock.t)
            for point in prof.points:
                check_point(point, await read_point(client, point), expected[point.signal])
            assert registers.decode((await read("fuel_level"))[1], "uint16") < fuel0
            assert registers.decode((await read("engine_hours"))[1], "uint32") == hours0 + 3600
            assert registers.decode((await read("energy_kwh"))[1], "uint32") > kwh0
            # Stop.
            assert not (await client.write_register(4104, DG_STOP)).isError()
            assert not (await client.write_register(4105, 0xFFFF - DG_STOP)).isError()
            await sim.update()
            assert registers.decode((await read("running"))[1], "bool", bit=0) is False
            assert registers.decode((await read("engine_speed"))[1], "uint16") == 0
            assert (await client.write_register(1027, 1000)).exception_code == 2  # fuel level is read-only
        finally:
            client.close()
            await sim.stop()

    run(main())


# ---------------------------------------------------------------------------
# Faults.


def test_fault_exception_on_a_range_only():
    async def main():
        sim = Simulator(["pm5xxx", "pump_plc"], seed=SEED, clock=StepClock(), interval=None)
        await sim.start()
        pm, pump = await connect(sim.ports[0]), await connect(sim.ports[1])
        try:
            await sim.set_fault(0, Fault.exception(3027, 6, code=2))
            rr = await pm.read_holding_registers(3029, count=2)
            assert rr.isError() and rr.exception_code == 2
            assert not (await pm.read_holding_registers(2999, count=6)).isError()
            assert not (await pm.read_holding_registers(3059, count=2)).isError()
            assert not (await pump.read_holding_registers(0, count=3)).isError()  # other devices unaffected
            sim.set_fault(0, Fault.exception(3109, 2, code=4))
            assert (await pm.read_holding_registers(3109, count=2)).exception_code == 4
            assert not (await pm.read_holding_registers(3027, count=2)).isError()
            # On a bit table too.
            sim.set_fault(1, Fault.exception(1, 1, code=3, functions=(1,)))
            assert (await pump.read_coils(0, count=2)).exception_code == 3
            assert not (await pump.read_discrete_inputs(0, count=2)).isError()
            sim.set_fault(0, Fault.clear())
            sim.set_fault(1, None)
            assert not (await pm.read_holding_registers(3109, count=2)).isError()
            assert not (await pump.read_coils(0, count=2)).isError()
        finally:
            pm.close()
            pump.close()
            await sim.stop()

    run(main())


def test_fault_timeout_keeps_the_connection_and_spares_other_devices():
    async def main():
        sim = Simulator(["sdm630", "em24"], seed=SEED, clock=StepClock(), interval=None)
        await sim.start()
        hung, other = await connect(sim.ports[0], timeout=0.3), await connect(sim.ports[1], timeout=0.3)
        try:
            sim.set_fault(0, Fault.timeout())
            started = time.monotonic()
            with pytest.raises(ModbusException):
                await hung.read_input_registers(0, count=2)
            assert time.monotonic() - started >= 0.25
            assert not (await other.read_input_registers(0, count=2)).isError()
            assert hung.connected and sim.devices[0].connection_count() == 1
            sim.set_fault(0, None)
            rr = await hung.read_input_registers(0, count=2)  # same connection answers again
            assert not rr.isError()
        finally:
            hung.close()
            other.close()
            await sim.stop()

    run(main())


def test_fault_disconnect_then_clear():
    async def main():
        sim = Simulator(["pump_plc", "inverter"], seed=SEED, clock=StepClock(), interval=None)
        await sim.start()
        port = sim.ports[0]
        client, other = await connect(port), await connect(sim.ports[1])
        try:
            assert not (await client.write_register(10, 777)).isError()  # a setpoint to survive the outage
            sim.set_fault(0, Fault.disconnect())
            for _ in range(50):
                if not client.connected:
                    break
                await asyncio.sleep(0.01)
            assert not client.connected
            refused = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0, reconnect_delay=0)
            assert not await refused.connect()
            refused.close()
            assert not (await other.read_input_registers(0, count=2)).isError()
            await sim.update()  # the model keeps running while the device is unreachable
            await sim.set_fault(0, Fault.clear())
            assert sim.ports[0] == port
            again = await connect(port)
            try:
                rr = await again.read_holding_registers(10, count=1)
                assert rr.registers == [777]
                assert sim.devices[0].model.level_high_sp == pytest.approx(77.7)
            finally:
                again.close()
        finally:
            client.close()
            other.close()
            await sim.stop()

    run(main())


def test_fault_garbage():
    async def raw_read(port: int, tid: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            # MBAP (transaction, protocol 0, length 6, unit 1) + FC4 read 2 registers at 0.
            writer.write(struct.pack(">HHHBBHH", tid, 0, 6, 1, 4, 0, 2))
            header = await asyncio.wait_for(reader.readexactly(7), 2)
            length = struct.unpack(">H", header[4:6])[0]
            return header + await asyncio.wait_for(reader.readexactly(length - 1), 2)
        finally:
            writer.close()

    async def main():
        sim = Simulator(["sdm630"], seed=SEED, clock=StepClock(), interval=None)
        await sim.start()
        client = await connect(sim.ports[0], timeout=0.3)
        try:
            good = await raw_read(sim.ports[0], 41)
            assert good[7:9] == bytes([4, 4])  # FC4, 4 bytes
            sim.set_fault(0, Fault.garbage())
            bad = await raw_read(sim.ports[0], 41)
            assert bad[:7] == good[:7] and bad[7:] != good[7:]  # framed on time, undecodable inside
            try:
                rr = await client.read_input_registers(0, count=2)
            except ModbusException:
                pass
            else:
                assert rr.isError() or rr.registers != list(struct.unpack(">HH", good[9:13]))
            sim.set_fault(0, None)
            assert await raw_read(sim.ports[0], 41) == good
            if not client.connected:
                client = await connect(sim.ports[0])
            assert not (await client.read_input_registers(0, count=2)).isError()
        finally:
            client.close()
            await sim.stop()

    run(main())


# ---------------------------------------------------------------------------
# Ports, filler and the command line.


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base >= 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two consecutive free ports")


def test_base_port_and_busy_port():
    async def main():
        base = _free_port_pair()
        sim = Simulator(["em24", "em24"], base_port=base, seed=SEED, clock=StepClock(), interval=None)
        await sim.start()
        try:
            assert sim.ports == [base, base + 1]
            clash = Simulator(["em24"], base_port=base, seed=SEED, clock=StepClock(), interval=None)
            with pytest.raises(OSError):
                await clash.start()
        finally:
            await sim.stop()

    run(main())


def test_filler_tags_fill_big_blocks():
    async def main():
        sim = Simulator(["dg"], seed=SEED, clock=StepClock(), interval=None, tags_per_device=150)
        await sim.start()
        client = await connect(sim.ports[0])
        try:
            values = filler_values(0, SEED, T0, 150)
            points = filler_points(150)
            got = []
            for start in range(0, 300, 120):
                rr = await client.read_input_registers(FILLER_START + start, count=min(120, 300 - start))
                assert not rr.isError()
                got += rr.registers
            for k, point in enumerate(points):
                assert decode_point(point, got[2 * k : 2 * k + 2]) == f32(values[k])
            assert (await client.read_input_registers(FILLER_START + 300, count=1)).isError()
        finally:
            client.close()
            await sim.stop()

    run(main())


def test_command_line():
    env_python = [sys.executable, "-m", "drivers.simulator"]
    out = subprocess.run([*env_python, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--tags-per-device" in out.stdout and "sdm630" in out.stdout
    out = subprocess.run(
        [*env_python, "--devices", "3", "--types", "sdm630,dg", "--base-port", "0", "--duration", "0.5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["sdm630", "dg", "sdm630"]
    assert "127.0.0.1:" in lines[0] and "unit 1" in lines[0]
    bad = subprocess.run([*env_python, "--types", "nope"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown type" in bad.stderr
