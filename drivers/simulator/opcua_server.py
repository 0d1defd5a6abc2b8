"""Serve the simulated devices over OPC UA: one asyncua server, one object per device.

The same deterministic models as the Modbus simulator (``create_model``) feed
an asyncua ``Server`` (tested with asyncua 2.1) on loopback, security None, no
certificates, so it starts in the time asyncua needs to load the standard
address space (about 2 s) and nothing else.

Address space: namespace ``urn:scada:simulator``; under Objects one object per
device, ``ns=<idx>;s=<kind>-<index>`` (``pump_plc-0``), holding one variable
per profile point, ``ns=<idx>;s=<kind>-<index>.<point name>``
(``ns=2;s=sdm630-0.power_total``). ``node_id(index, point)`` spells it.

Values are engineering values, in the point's documented unit: exactly what
a Modbus client reading the same point gets after applying the point's
``scale`` (``profiles``: raw * scale = model signal * gain). So the OPC UA
value is ``signal * gain`` (the SDM630 ``power_total`` is in W, the model's
signal in kW), with the Modbus point's resolution:

* float32 points publish a ``Float`` (float32, as the registers carry it);
  float64 points a ``Double``;
* integer points with ``scale == 1`` publish their own integer type
  (``UInt16``, ``Int32``, ``UInt32``, ``Int64`` ...), rounded and clamped to
  the type's range like the device's register;
* integer points with another ``scale`` (the pump's level, x10) publish a
  ``Double`` rounded to the register's step (``round(eng / scale)`` steps, so
  the tank level 54.9 % and not 54.8731 %);
* bools publish a ``Boolean``.

``opcua_value(point, signal)`` gives that value and ``variant_type(point)``
its type, for tests that compute what the server must publish.

Every value carries the simulated time of the update as its SourceTimestamp
(and ServerTimestamp). Writable points (setpoints, commands) are writable
variables of the same type; a client write is handed to the model with
``apply(signal, value / gain)`` right away, taken into account at the next
update, which then publishes the model's view (clamped setpoint, cleared
command). Every other variable refuses writes (the server answers
``BadUserAccessDenied`` / ``BadNotWritable``).

``models`` lets the OPC UA server share the model objects of a Modbus
``Simulator`` (``python -m drivers.simulator --opcua-port``), so both
protocols serve one plant: a write through either reaches the same model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback

from drivers.registers import INT_RANGES, DataType
from drivers.simulator.model import Clock, Model, create_model
from drivers.simulator.profiles import PROFILES, PointSpec, Profile

__all__ = ["NAMESPACE_URI", "OpcUaDevice", "OpcUaSimulator", "opcua_value", "variant_type"]

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:scada:simulator"

_INT_VARIANTS = {
    DataType.INT16: ua.VariantType.Int16,
    DataType.UINT16: ua.VariantType.UInt16,
    DataType.INT32: ua.VariantType.Int32,
    DataType.UINT32: ua.VariantType.UInt32,
    DataType.INT64: ua.VariantType.Int64,
    DataType.UINT64: ua.VariantType.UInt64,
}
_F32 = struct.Struct("<f")


def variant_type(point: PointSpec) -> ua.VariantType:
    """The OPC UA type a point is published as (see the module docstring)."""
    if point.data_type is DataType.BOOL:
        return ua.VariantType.Boolean
    if point.data_type is DataType.FLOAT32:
        return ua.VariantType.Float
    if point.data_type is DataType.FLOAT64 or point.scale != 1:
        return ua.VariantType.Double
    return _INT_VARIANTS[point.data_type]


def opcua_value(point: PointSpec, signal: float | int | bool) -> float | int | bool:
    """The engineering value a Modbus client reads for ``point`` when the model says ``signal``."""
    if point.data_type is DataType.BOOL:
        return bool(signal)
    eng = signal * point.gain
    if point.data_type is DataType.FLOAT32:
        try:
            return _F32.unpack(_F32.pack(float(eng)))[0]
        except OverflowError:
            return math.copysign(math.inf, eng)
    if point.data_type is DataType.FLOAT64:
        return float(eng)
    x = eng / point.scale
    raw = 0 if math.isnan(x) else int(round(x)) if math.isfinite(x) else (1 << 64 if x > 0 else -(1 << 64))
    low, high = INT_RANGES[point.data_type]
    raw = min(max(raw, low), high)
    if point.scale == 1:
        return raw
    # As decode_point: divide by 10, 1000 ... rather than multiply by 0.1, 0.001.
    inverse = 1 / point.scale
    return raw / round(inverse) if abs(inverse - round(inverse)) < 1e-9 else raw * point.scale


class OpcUaDevice:
    """One simulated device in the OPC UA address space: its model and node ids."""

    def __init__(self, index: int, profile: Profile, model: Model) -> None:
        self.index = index
        self.profile = profile
        self.kind = profile.kind
        self.name = f"{profile.kind}-{index}"
        self.model = model
        self.signals: dict[str, float | int | bool] = {}
        self.nodes: dict[str, ua.NodeId] = {}  # point name -> node id (filled by the server)

    def values(self) -> list[tuple[PointSpec, float | int | bool]]:
        """Every point with the value it publishes for the current ``signals``."""
        return [(p, opcua_value(p, self.signals[p.signal])) for p in self.profile.points]


class OpcUaSimulator:
    """The simulated plant as one OPC UA server on ``host:port`` (0 picks a free port).

    ``kinds`` lists the device types (``PROFILES`` keys), device ``i`` being
    ``kinds[i]`` named ``<kind>-<i>``. ``clock`` gives simulated time (default
    ``time.time``); ``interval`` is the update period in seconds, or None for
    no periodic task (call ``update``). ``models`` (one per kind) replaces the
    fresh ``create_model`` instances, to share them with a Modbus simulator.
    """

    def __init__(
        self,
        kinds: Sequence[str],
        port: int = 0,
        seed: int = 1,
        interval: float | None = 1.0,
        *,
        host: str = "127.0.0.1",
        clock: Clock | None = None,
        utc_offset_h: float = 0.0,
        models: Sequence[Model] | None = None,
    ) -> None:
        unknown = [k for k in kinds if k not in PROFILES]
        if unknown:
            raise ValueError(f"unknown device type(s) {', '.join(unknown)} (one of {', '.join(PROFILES)})")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} outside 0..65535")
        if interval is not None and interval <= 0:
            raise ValueError(f"update interval must be positive, got {interval}")
        if models is not None and len(models) != len(kinds):
            raise ValueError(f"{len(models)} models for {len(kinds)} devices")
        self.host = host
        self.requested_port = port
        self.port = port
        self.seed = seed
        self.interval = interval
        self.clock: Clock = clock or time.time
        self.devices = [
            OpcUaDevice(
                i,
                PROFILES[kind],
                models[i] if models is not None else create_model(PROFILES[kind].model, i, seed, utc_offset_h),
            )
            for i, kind in enumerate(kinds)
        ]
        self.namespace_index: int | None = None
        self.update_count = 0
        self._server: Server | None = None
        self._task: asyncio.Task | None = None
        self._writable: dict[ua.NodeId, tuple[OpcUaDevice, PointSpec]] = {}

    # -- naming ----------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The URL clients connect to (the bound port once started)."""
        return f"opc.tcp://{self.host}:{self.port}"

    def node_id(self, device_index: int, point_name: str) -> str:
        """``ns=<idx>;s=<kind>-<index>.<point>`` of a device's point (the index is known once started)."""
        device = self.devices[device_index]
        if point_name not in device.profile.by_name:
            raise KeyError(f"{device.name} has no point {point_name!r}")
        ns = self.namespace_index if self.namespace_index is not None else 2
        return f"ns={ns};s={device.name}.{point_name}"

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Build the address space, compute the first values, listen, start the periodic update."""
        if self._server is not None:
            return
        server = Server()
        await server.init()
        try:
            server.set_endpoint(f"opc.tcp://{self.host}:{self.requested_port}/")
            server.set_server_name("SCADA plant simulator")
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
            idx = await server.register_namespace(NAMESPACE_URI)
            self.namespace_index = idx
            now = self.clock()
            objects = server.nodes.objects
            for device in self.devices:
                device.signals = device.model.update(now)
                folder = await objects.add_object(ua.NodeId(device.name, idx), device.name)
                for point, value in device.values():
                    nodeid = ua.NodeId(f"{device.name}.{point.name}", idx)
                    var = await folder.add_variable(nodeid, point.name, ua.Variant(value, variant_type(point)))
                    device.nodes[point.name] = nodeid
                    if point.writable:
                        await var.set_writable()
                        self._writable[nodeid] = (device, point)
            await self._publish(server, now)
            server.subscribe_server_callback(CallbackType.PostWrite, self._on_write)
            await server.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await server.stop()
            raise
        assert server.bserver is not None
        self.port = server.bserver.port
        self._server = server
        self.update_count += 1
        if self.interval is not None:
            self._task = asyncio.create_task(self._run(), name="opcua simulator update")

    async def stop(self) -> None:
        """Stop updating, drop every client and stop listening (safe to call twice)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def server(self) -> Server | None:
        """The asyncua server while running (for tests that tune it, e.g. ``iserver.max_subscriptions``)."""
        return self._server

    async def __aenter__(self) -> OpcUaSimulator:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- updates ---------------------------------------------------------------

    async def update(self) -> None:
        """One update of every device at the clock's current time."""
        server = self._server
        if server is None:
            return
        now = self.clock()
        for device in self.devices:
            try:
                device.signals = device.model.update(now)
            except Exception:
                log.exception("simulated device %s failed to update", device.name)
        await self._publish(server, now)
        self.update_count += 1

    async def _publish(self, server: Server, now: float) -> None:
        stamp = datetime.fromtimestamp(now, UTC)
        for device in self.devices:
            if not device.signals:
                continue
            for point, value in device.values():
                dv = ua.DataValue(ua.Variant(value, variant_type(point)), SourceTimestamp=stamp, ServerTimestamp=stamp)
                await server.write_attribute_value(device.nodes[point.name], dv)

    async def _run(self) -> None:
        assert self.interval is not None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.interval
            delay = next_at - loop.time()
            if delay < 0:  # fell behind: skip the missed ticks
                next_at, delay = loop.time(), 0.0
            await asyncio.sleep(delay)
            try:
                await self.update()
            except Exception:
                log.exception("OPC UA simulator update failed")

    # -- client writes ---------------------------------------------------------

    def _on_write(self, event: ServerItemCallback, _dispatcher: object) -> None:
        """PostWrite hook: hand every accepted client write of a writable point to its model."""
        results = event.response_params or []
        for write, status in zip(event.request_params.NodesToWrite, results, strict=False):
            target = self._writable.get(write.NodeId)
            if target is None or write.AttributeId != ua.AttributeIds.Value or not status.is_good():
                continue
            device, point = target
            value = write.Value.Value.Value if write.Value is not None and write.Value.Value is not None else None
            if value is None:
                continue
            if not isinstance(value, bool) and point.gain != 1:
                value = value / point.gain
            try:
                device.model.apply(point.signal, value)
            except (KeyError, TypeError, ValueError):
                log.exception("%s: write of %r to %s refused by the model", device.name, value, point.name)
