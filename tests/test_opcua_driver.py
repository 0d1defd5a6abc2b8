"""The OPC UA driver against the OPC UA plant simulator: a real asyncua server on loopback.

The simulator runs in its own thread and event loop (one server for the
module; asyncua needs ~2 s to build a server's address space), updated by
hand with a step clock, so every value the driver delivers is compared with
what the model computes for that time: float32-exact for Float nodes, exact
for the others. Each test drives its own client with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import pytest

from drivers.base import Batch, DeviceConfig, DriverError, PointConfig, Reason
from drivers.opcua import OpcUaDriver
from drivers.simulator.model import create_model
from drivers.simulator.opcua_server import OpcUaSimulator

pytestmark = pytest.mark.timeout(60)

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC: daytime, load and sun both up
SEED = 7
KINDS = ["sdm630", "pump_plc", "dg", "em24"]  # device i is KINDS[i]
SDM, PUMP, DG, EM24 = range(4)


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def us(t: float) -> int:
    return int(round(t * 1_000_000))


class StepClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class LoopThread:
    """An event loop in a daemon thread, for servers that outlive one test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="opcua test server", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        # asyncua's server leaves per-session tasks behind (they end at the session timeout).
        with contextlib.suppress(Exception):
            self.call(self._cancel_all(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @staticmethod
    async def _cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Plant:
    """The simulator in its thread, with the helpers the tests need."""

    def __init__(self, kinds: list[str]) -> None:
        self.clock = StepClock()
        self.sim = OpcUaSimulator(kinds, port=0, seed=SEED, interval=None, clock=self.clock)
        self.thread = LoopThread()
        self.thread.call(self.sim.start())

    def step(self, dt: float = 1.0) -> float:
        self.clock.t += dt
        self.thread.call(self.sim.update())
        return self.clock.t

    def node(self, device: int, point: str) -> str:
        return self.sim.node_id(device, point)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.thread.call(self.sim.stop())
        self.thread.close()


@pytest.fixture(scope="module")
def plant():
    p = Plant(KINDS)
    try:
        yield p
    finally:
        p.stop()


def run(coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def device(endpoint: str, mode: str = "subscribe", timeout: float = 1.0, **settings: Any) -> DeviceConfig:
    return DeviceConfig(
        name="ua-test",
        protocol="opcua",
        endpoint_url=endpoint,
        timeout_s=timeout,
        opcua_mode=mode,
        settings={"publishing_interval_ms": 50, **settings},
    )


async def wait_batch(driver: OpcUaDriver, group: str, ready: Callable[[Batch], bool], timeout: float = 5.0) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = await driver.read(group)
        if ready(batch):
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching batch within {timeout} s; last: {batch}")
        await asyncio.sleep(0.02)


def all_values(batch: Batch) -> bool:
    return not batch.errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the main group: one point of every published type --------------------------------------

MAIN = [
    (1, SDM, "power_total", "float32"),  # Float, W (model kW x 1000)
    (2, SDM, "voltage_l1", "float32"),
    (3, SDM, "import_kwh", "float32"),
    (4, EM24, "voltage_l1", "float64"),  # int32 x0.1 register -> Double, 0.1 V steps
    (5, EM24, "power_total", "float64"),  # W, 0.1 W steps
    (6, PUMP, "tank_level", "float64"),  # uint16 x0.1 -> Double
    (7, PUMP, "pump_running", "bool"),
    (8, DG, "start_count", "uint32"),
    (9, DG, "control_key", "uint16"),
]


def main_points(plant: Plant) -> list[PointConfig]:
    return [PointConfig(key, plant.node(dev, name), dt) for key, dev, name, dt in MAIN]


def expected(plant: Plant, t: float) -> list[Any]:
    """What the driver must deliver for MAIN at simulated time ``t`` (the last update)."""
    sdm = create_model("meter", SDM, SEED).update(t)
    em = create_model("meter", EM24, SEED).update(t)
    pump = plant.sim.devices[PUMP].signals
    dg = plant.sim.devices[DG].signals
    return [
        f32(sdm["power_total"] * 1000.0),
        f32(sdm["voltage_l1"]),
        f32(sdm["import_kwh"]),
        round(em["voltage_l1"] / 0.1) / 10,
        round(em["power_total"] * 1000.0 / 0.1) / 10,
        round(pump["level"] / 0.1) / 10,
        pump["running"],
        dg["start_count"],
        0,
    ]


def meters_at(t: float) -> Callable[[Batch], bool]:
    """Ready when every meter point (they change every second) carries the update at ``t``."""
    return lambda b: not b.errors and all(b.source_us[i] == us(t) for i in range(5))


def test_subscription_delivers_model_values_with_source_timestamps(plant: Plant) -> None:
    async def main() -> None:
        driver = OpcUaDriver(device(plant.sim.endpoint))
        assert driver.configure({"main": main_points(plant)}) == {}
        await driver.connect()
        try:
            assert driver.connected and driver.mode_in_use == "subscribe" and driver.fallback_reason == ""
            t = plant.clock.t
            batch = await wait_batch(driver, "main", meters_at(t))
            assert batch.values == expected(plant, t)
            assert all(s is not None and s <= us(t) for s in batch.source_us)
            assert abs(batch.time_us - time.time_ns() // 1000) < 5_000_000
            assert isinstance(batch.values[6], bool) and isinstance(batch.values[7], int)

            previous = batch.values
            for _ in range(2):  # values follow the model over time
                t = await asyncio.to_thread(plant.step, 1.0)
                batch = await wait_batch(driver, "main", meters_at(t))
                assert batch.values == expected(plant, t)
                assert batch.values[:5] != previous[:5]
                previous = batch.values
            assert driver.health.requests > 0 and driver.health.consecutive_failures == 0
        finally:
            await driver.close()
        assert not driver.connected

    run(main())


def test_poll_mode_reads_the_same_values(plant: Plant) -> None:
    async def main() -> None:
        t = await asyncio.to_thread(plant.step, 1.0)
        sub = OpcUaDriver(device(plant.sim.endpoint))
        poll = OpcUaDriver(device(plant.sim.endpoint, mode="poll"))
        for d in (sub, poll):
            d.configure({"main": main_points(plant)})
            await d.connect()
        try:
            assert poll.mode_in_use == "poll"
            a = await wait_batch(sub, "main", meters_at(t))
            b = await poll.read("main")
            assert b.errors == {}
            assert b.values == a.values == expected(plant, t)
            assert b.source_us == a.source_us
        finally:
            await sub.close()
            await poll.close()

    run(main())


def test_write_reaches_the_model_and_reads_back(plant: Plant) -> None:
    sp = PointConfig(20, plant.node(PUMP, "level_high_sp"), "float64")
    manual = PointConfig(21, plant.node(PUMP, "manual_run"), "bool")
    level = PointConfig(22, plant.node(PUMP, "tank_level"), "float64")
    model = plant.sim.devices[PUMP].model

    async def main() -> None:
        driver = OpcUaDriver(device(plant.sim.endpoint, mode="poll"))
        driver.configure({"w": [sp]})
        await driver.connect()
        try:
            assert await driver.read_point(sp) == 80.0
            await driver.write(sp, 72.5)
            assert await driver.read_point(sp) == 72.5
            assert model.level_high_sp == 72.5
            await driver.write(manual, True)
            assert await driver.read_point(manual) is True
            assert model.manual_run is True
            await driver.write(manual, False)

            with pytest.raises(DriverError) as exc:  # read-only variable
                await driver.write(level, 12.0)
            assert exc.value.reason is Reason.DEVICE_EXCEPTION and str(exc.value).startswith("Bad")
            with pytest.raises(DriverError) as exc:  # a Float written to a Double variable
                await driver.write(PointConfig(23, sp.address, "float32"), 70.0)
            assert exc.value.reason is Reason.DEVICE_EXCEPTION and str(exc.value) == "BadTypeMismatch"
            with pytest.raises(DriverError) as exc:  # refused before sending
                await driver.write(PointConfig(24, plant.node(DG, "control_key"), "uint16"), 70000)
            assert exc.value.reason is Reason.OUT_OF_RANGE
            assert driver.health.errors["device_exception"] == 2
            assert driver.connected  # refusals are not connection failures
        finally:
            await driver.write(sp, 80.0)
            await driver.close()

    run(main())
    t = plant.step(1.0)  # the next update publishes the model's view
    assert plant.sim.devices[PUMP].signals["level_high_sp"] == 80.0 and t > T0


def test_unknown_node_bad_address_and_coercion(plant: Plant) -> None:
    points = [
        PointConfig(30, plant.node(SDM, "frequency"), "float32"),
        PointConfig(31, "ns=2;s=no-such-device.value", "float64"),
        PointConfig(32, "not a node id", "float64"),
        PointConfig(33, "nsu=urn:scada:simulator;s=sdm630-0.frequency", "float64"),
        PointConfig(34, plant.node(SDM, "frequency"), "complex"),
        PointConfig(35, plant.node(EM24, "voltage_l1"), "int16"),  # 0.1 V steps rounded to whole volts
        PointConfig(36, "i=2258", "int64"),  # Server_ServerStatus_CurrentTime (DateTime) as µs
        PointConfig(37, "i=2258", "string"),
        PointConfig(38, plant.node(SDM, "frequency"), "string"),
        PointConfig(39, plant.node(EM24, "voltage_l1"), "uint16"),
    ]

    async def main() -> None:
        for mode in ("subscribe", "poll"):
            driver = OpcUaDriver(device(plant.sim.endpoint, mode=mode))
            errors = driver.configure({"g": points})
            assert set(errors) == {32, 33, 34}
            assert errors[32].startswith("address: not an OPC UA node id")
            assert "nsu" in errors[33] or "namespace" in errors[33]
            assert errors[34].startswith("data_type")
            await driver.connect()
            try:
                batch = await wait_batch(driver, "g", lambda b: not {0, 5, 6, 7, 8, 9} & set(b.errors))
                assert batch.errors[1] == (Reason.DEVICE_EXCEPTION, "BadNodeIdUnknown")
                assert batch.errors[2][0] is Reason.CONFIG_ERROR and batch.values[2] is None
                assert set(batch.errors) == {1, 2, 3, 4}
                freq = batch.values[0]
                assert 49.9 < freq < 50.1
                assert batch.values[8] == str(freq)
                volts = batch.values[5]
                assert isinstance(volts, int) and 220 <= volts <= 240 and batch.values[9] == volts
                assert abs(batch.values[6] - time.time_ns() // 1000) < 60_000_000
                assert datetime.fromisoformat(batch.values[7]).tzinfo is not None
                with pytest.raises(DriverError) as exc:
                    await driver.read_point(points[1])
                assert exc.value.reason is Reason.DEVICE_EXCEPTION and str(exc.value) == "BadNodeIdUnknown"
                with pytest.raises(DriverError) as exc:
                    await driver.read_point(points[2])
                assert exc.value.reason is Reason.CONFIG_ERROR
                with pytest.raises(DriverError) as exc:
                    await driver.read("no such group")
                assert exc.value.reason is Reason.CONFIG_ERROR
            finally:
                await driver.close()

    run(main())


def test_reconfigure_while_connected_updates_the_subscription(plant: Plant) -> None:
    power = PointConfig(40, plant.node(SDM, "power_total"), "float32")
    level = PointConfig(41, plant.node(PUMP, "tank_level"), "float64")
    volts = PointConfig(42, plant.node(EM24, "voltage_l2"), "float64")

    async def main() -> None:
        driver = OpcUaDriver(device(plant.sim.endpoint))
        driver.configure({"a": [power]})
        await driver.connect()
        try:
            await wait_batch(driver, "a", all_values)
            assert driver.configure({"a": [power, level], "b": [volts]}) == {}
            a = await wait_batch(driver, "a", all_values)
            b = await wait_batch(driver, "b", all_values)
            assert a.values[1] == round(plant.sim.devices[PUMP].signals["level"] / 0.1) / 10
            assert 220 < b.values[0] < 240
            assert driver.mode_in_use == "subscribe"

            driver.configure({"a": [level]})  # power and volts are dropped from the subscription
            a = await wait_batch(driver, "a", all_values)
            assert len(driver._handles) == 1
            t = await asyncio.to_thread(plant.step, 1.0)
            power_again = {"a": [level, power]}
            driver.configure(power_again)
            a = await wait_batch(driver, "a", lambda b: not b.errors and b.source_us[1] == us(t))
            assert a.values[1] == f32(create_model("meter", SDM, SEED).update(t)["power_total"] * 1000.0)
        finally:
            await driver.close()

    run(main())


def test_refused_subscriptions_fall_back_to_polling(plant: Plant) -> None:
    iserver = plant.sim.server.iserver
    saved = iserver.max_subscriptions

    async def main() -> None:
        driver = OpcUaDriver(device(plant.sim.endpoint))
        driver.configure({"main": main_points(plant)})
        await driver.connect()
        try:
            assert driver.mode_in_use == "poll"
            assert "BadTooManySubscriptions" in driver.fallback_reason
            batch = await driver.read("main")
            assert batch.errors == {} and batch.values == expected(plant, plant.clock.t)
        finally:
            await driver.close()

    iserver.max_subscriptions = 0
    try:
        run(main())
    finally:
        iserver.max_subscriptions = saved


def test_connect_to_nothing_is_a_comm_failure() -> None:
    port = free_port()

    async def main() -> None:
        driver = OpcUaDriver(device(f"opc.tcp://127.0.0.1:{port}", timeout=0.5))
        driver.configure({"g": [PointConfig(1, "i=2258", "int64")]})
        started = time.monotonic()
        with pytest.raises(DriverError) as exc:
            await driver.connect()
        assert time.monotonic() - started < 3
        assert exc.value.reason is Reason.COMM_FAILURE
        assert str(exc.value).startswith(f"cannot connect to opc.tcp://127.0.0.1:{port}: ")
        assert not driver.connected and driver.health.consecutive_failures == 1
        with pytest.raises(DriverError) as exc:
            await driver.read("g")
        assert exc.value.reason is Reason.COMM_FAILURE
        await driver.close()
        await driver.close()

    run(main())


class Proxy:
    """A TCP relay that can freeze: the sockets stay open but nothing gets through (a hung server)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = False
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if not self.frozen:
                        dst.write(data)
                        await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_hung_server_is_detected_on_read(plant: Plant) -> None:
    proxy = Proxy(plant.sim.port)
    plant.thread.call(proxy.start())

    async def main() -> None:
        driver = OpcUaDriver(device(f"opc.tcp://127.0.0.1:{proxy.port}", timeout=1.0))
        driver.configure({"g": [PointConfig(1, plant.node(SDM, "frequency"), "float32")]})
        await driver.connect()
        try:
            await wait_batch(driver, "g", all_values)
            proxy.frozen = True
            started = time.monotonic()
            with pytest.raises(DriverError) as exc:
                await wait_batch(driver, "g", lambda b: False, timeout=10)
            assert exc.value.reason is Reason.COMM_FAILURE
            assert time.monotonic() - started < 3.5
            assert not driver.connected
            assert driver.health.errors["timeout"] == 1
        finally:
            started = time.monotonic()
            await driver.close()
            await driver.close()
            assert time.monotonic() - started < 3.5

    try:
        run(main())
    finally:
        plant.thread.call(proxy.stop())


def test_stopped_server_raises_comm_failure() -> None:
    own = Plant(["sdm630"])
    try:

        async def main() -> None:
            point = PointConfig(1, own.node(0, "power_total"), "float32")
            drivers = [OpcUaDriver(device(own.sim.endpoint, mode=m, timeout=1.0)) for m in ("subscribe", "poll")]
            for d in drivers:
                d.configure({"g": [point]})
                await d.connect()
                await wait_batch(d, "g", all_values)
            await asyncio.to_thread(own.thread.call, own.sim.stop())
            for d in drivers:
                started = time.monotonic()
                with pytest.raises(DriverError) as exc:
                    await wait_batch(d, "g", lambda b: False, timeout=10)
                assert exc.value.reason is Reason.COMM_FAILURE, d.mode_in_use
                assert time.monotonic() - started < 3
                assert not d.connected
                with pytest.raises(DriverError):
                    await d.read_point(point)
                await d.close()
                await d.close()
            # Nothing listens any more: a reconnect fails cleanly.
            with pytest.raises(DriverError) as exc:
                await drivers[0].connect()
            assert exc.value.reason is Reason.COMM_FAILURE

        run(main())
    finally:
        own.stop()


def test_device_config_errors_and_close_before_connect() -> None:
    async def main() -> None:
        driver = OpcUaDriver(device("opc.tcp://127.0.0.1:1"))
        await driver.close()  # never connected: a no-op
        assert not driver.connected and driver.mode_in_use == "subscribe"
        for config in (
            DeviceConfig(name="x", protocol="opcua", endpoint_url=None),
            DeviceConfig(name="x", protocol="opcua", endpoint_url="opc.tcp://127.0.0.1:1", opcua_mode="push"),
        ):
            with pytest.raises(DriverError) as exc:
                await OpcUaDriver(config).connect()
            assert exc.value.reason is Reason.CONFIG_ERROR

    run(main())
