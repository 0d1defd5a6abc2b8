"""Serve simulated devices over Modbus TCP: one pymodbus server per device, one asyncio loop.

This is the only module of the simulator that imports pymodbus (tested with
3.16). It uses the datastore model pymodbus introduced to replace
``ModbusDeviceContext``/``ModbusSequentialDataBlock`` (deprecated in 3.16):

* ``SimDevice`` with four separate ``SimData`` lists (coils, discrete inputs,
  holding, input registers), each table its own address space as on real
  devices; addresses the map does not define answer exception 02.
* ``SimDevice(action=...)``, the documented per-request hook: it refuses
  client writes to read-only points, records writes to writable ones for the
  model, and answers the ``exception`` fault.
* ``ModbusTcpServer.async_setValues``, the documented way for the owner of a
  server to change values while it serves, for the periodic model update.
  It runs through the same action hook; the hook recognises these pushes
  because they carry values under a read function code (1-4), which no
  client request can do.
* The server's ``trace_pdu`` hook drops requests for another unit id.
* The server's ``trace_packet`` hook (called with every outgoing frame) for
  the ``timeout`` fault (the reply is dropped) and the ``garbage`` fault (the
  reply's PDU is replaced). The SimDevice hook cannot do either: it can only
  return an exception code.
* ``disconnect`` closes the server (listener and connections) and, once
  cleared, starts a new one on the same port from the device's current
  register image, so nothing a client wrote is lost.

Every device keeps a shadow copy of its tables (``SimulatedDevice.tables``):
the model writes into it, client writes land in it through the hook, and
each update pushes it to the server. A server can therefore be rebuilt from
it at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from drivers.simulator.faults import Fault, FaultKind, garble
from drivers.simulator.model import Clock, Model, create_model, filler_values
from drivers.simulator.profiles import PROFILES, Function, PointSpec, Profile, decode_point, encode_point, filler_points

__all__ = ["SimulatedDevice", "Simulator", "Table"]

log = logging.getLogger(__name__)

_READ_CODES = frozenset({1, 2, 3, 4})
_TABLE_OF_CODE = {
    1: Function.COIL,
    5: Function.COIL,
    15: Function.COIL,
    2: Function.DISCRETE_INPUT,
    3: Function.HOLDING,
    6: Function.HOLDING,
    16: Function.HOLDING,
    22: Function.HOLDING,
    23: Function.HOLDING,
    4: Function.INPUT,
}


@dataclass
class Table:
    """The shadow of one Modbus table of one device: exactly what the device serves.

    ``values[i]`` is address ``start + i`` (registers as ints, coils and
    discrete inputs as bools). ``runs`` are the [start, end) address ranges
    the device implements; bit tables are one run aligned to 16 bits, as
    pymodbus stores bits sixteen to a word.
    """

    function: Function
    start: int
    values: list
    runs: list[tuple[int, int]]
    writable: frozenset[int]
    status_words: list[int] = field(default_factory=list)

    def get(self, address: int, count: int = 1) -> list:
        return self.values[address - self.start : address - self.start + count]


def _build_table(function: Function, points: Sequence[PointSpec], fill_gap: int) -> Table:
    spans = sorted((p.address, p.end) for p in points)
    if function.is_bit:
        lo = spans[0][0] // 16 * 16
        hi = -(-max(e for _, e in spans) // 16) * 16
        runs = [(lo, hi)]
    else:
        runs = []
        for a, e in spans:
            if runs and a - runs[-1][1] <= fill_gap:
                runs[-1] = (runs[-1][0], max(runs[-1][1], e))
            else:
                runs.append((a, e))
        lo, hi = runs[0][0], runs[-1][1]
    writable = frozenset(a for p in points if p.writable for a in range(p.address, p.end))
    status = sorted({p.address - lo for p in points if p.bit is not None})
    blank: bool | int = False if function.is_bit else 0
    return Table(function, lo, [blank] * (hi - lo), runs, writable, status)


def _simdata(table: Table | None, function: Function) -> list[SimData]:
    """SimData entries serving ``table`` (a placeholder the hook refuses if the device lacks it)."""
    if table is None:
        # SimDevice wants all four lists non-empty; a device without this
        # table gets an entry that _on_access answers with exception 02.
        if function.is_bit:
            return [SimData(0, values=[False] * 16, datatype=SimType.BITS)]
        return [SimData(0, datatype=SimType.INVALID)]
    if function.is_bit:
        return [SimData(table.start, values=list(table.values), datatype=SimType.BITS)]
    return [SimData(a, values=table.get(a, e - a), datatype=SimType.REGISTERS) for a, e in table.runs]


class SimulatedDevice:
    """One simulated field device: its model, register image, fault and Modbus TCP server."""

    def __init__(
        self,
        index: int,
        profile: Profile,
        *,
        seed: int,
        host: str = "127.0.0.1",
        port: int = 0,
        unit: int = 1,
        tags: int = 0,
        utc_offset_h: float = 0.0,
    ) -> None:
        self.index = index
        self.profile = profile
        self.kind = profile.kind
        self.seed = seed
        self.host = host
        self.requested_port = port
        self.port = port
        self.unit = unit
        self.model: Model = create_model(profile.model, index, seed, utc_offset_h)
        self.fillers = filler_points(tags)
        self.points: tuple[PointSpec, ...] = profile.points + tuple(self.fillers)
        self.fault: Fault | None = None
        self.signals: dict[str, float | int | bool] = {}
        self.updated_at: float | None = None
        self._server: ModbusTcpServer | None = None
        self._dirty = False
        self._garble_rng = random.Random(f"garbage:{seed}:{index}")

        by_table: dict[Function, list[PointSpec]] = {}
        for p in self.points:
            by_table.setdefault(p.function, []).append(p)
        self.tables: dict[Function, Table] = {
            fn: _build_table(fn, pts, profile.fill_gap) for fn, pts in sorted(by_table.items())
        }
        self._profile_points = [(p, self.tables[p.function]) for p in profile.points]
        self._writable_points = [(p, self.tables[p.function]) for p in profile.points if p.writable]
        if self.fillers:
            table = self.tables[Function.INPUT]
            self._filler_offset = self.fillers[0].address - table.start
            self._filler_format = struct.Struct(f">{len(self.fillers)}f")
            self._filler_words = struct.Struct(f">{2 * len(self.fillers)}H")

    # -- model -> register image -------------------------------------------

    def _apply_writes(self) -> None:
        """Hand the values clients wrote since the last update to the model."""
        if not self._dirty:
            return
        self._dirty = False
        for point, table in self._writable_points:
            self.model.apply(point.signal, decode_point(point, table.get(point.address, point.count)))

    def _encode(self, signals: dict[str, float | int | bool], now: float) -> None:
        for table in self.tables.values():
            for offset in table.status_words:
                table.values[offset] = 0
        for point, table in self._profile_points:
            regs = encode_point(point, signals[point.signal])
            offset = point.address - table.start
            if table.function.is_bit:
                table.values[offset] = bool(regs[0])
            elif point.bit is not None:
                table.values[offset] |= regs[0]
            else:
                table.values[offset : offset + len(regs)] = regs
        if self.fillers:
            # One struct call for the whole block: this is the hot path of load tests
            # (equivalent to encode_point on each float32 big-endian filler point).
            values = filler_values(self.index, self.seed, now, len(self.fillers))
            words = self._filler_words.unpack(self._filler_format.pack(*values))
            table = self.tables[Function.INPUT]
            table.values[self._filler_offset : self._filler_offset + len(words)] = words

    async def update(self, now: float) -> None:
        """Advance the model to ``now`` (taking client writes into account) and serve the new values."""
        self._apply_writes()
        self.signals = self.model.update(now)
        self._encode(self.signals, now)
        self.updated_at = now
        await self._push()

    async def _push(self) -> None:
        server = self._server
        if server is None:
            return
        for table in self.tables.values():
            for a, e in table.runs:
                await server.async_setValues(self.unit, int(table.function), a, table.get(a, e - a))

    # -- the pymodbus hooks -------------------------------------------------

    async def _on_access(
        self,
        function_code: int,
        _start_address: int,
        address: int,
        count: int,
        _registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """SimDevice action: called by pymodbus for every access that passed its own address checks."""
        if set_values is not None and function_code in _READ_CODES:
            return None  # our own push from _push (see module docstring)
        table = self.tables.get(_TABLE_OF_CODE.get(function_code, Function.COIL))
        if table is None:
            return ExcCodes.ILLEGAL_ADDRESS
        if set_values is None:
            fault = self.fault
            if fault is not None and function_code in _READ_CODES:
                # pymodbus passes bit reads as the bit address and a count of 16-bit words.
                units = count * 16 - address % 16 if table.function.is_bit else count
                code = fault.read_exception(function_code, address, units)
                if code is not None:
                    return ExcCodes(code)
            return None
        end = address + len(set_values)
        if any(a not in table.writable for a in range(address, end)):
            return ExcCodes.ILLEGAL_ADDRESS
        offset = address - table.start
        if table.function.is_bit:
            table.values[offset : offset + len(set_values)] = [bool(v) for v in set_values]
        else:
            table.values[offset : offset + len(set_values)] = list(set_values)
        self._dirty = True
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending or self.fault is None:
            return data
        if self.fault.kind is FaultKind.TIMEOUT:
            return b""  # transport.write(b"") sends nothing: the request goes unanswered
        if self.fault.kind is FaultKind.GARBAGE:
            return garble(data, self._garble_rng)
        return data

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        # A request for another unit id is ignored, as pymodbus's own
        # ignore_missing_devices does and as an RTU slave would: the client
        # times out. (Left to SimDevice it would log a traceback and answer 04.)
        if not sending and pdu.dev_id != self.unit:
            return None
        return pdu

    # -- listener -----------------------------------------------------------

    def _simdevice(self) -> SimDevice:
        lists = tuple(_simdata(self.tables.get(fn), fn) for fn in Function)
        return SimDevice(self.unit, simdata=lists, action=self._on_access)

    async def listen(self) -> None:
        """Start serving on ``host:port`` (the port bound first, when it was 0)."""
        if self._server is not None or (self.fault is not None and self.fault.kind is FaultKind.DISCONNECT):
            return
        server = ModbusTcpServer(
            self._simdevice(),
            address=(self.host, self.port),
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,  # type: ignore[arg-type]  # None drops the request
        )
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise OSError(f"device {self.index} ({self.kind}) cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = server.transport.sockets[0].getsockname()[1]
        self._server = server

    def close(self) -> None:
        """Stop listening and drop every connection (synchronous, immediate)."""
        server, self._server = self._server, None
        if server is not None:
            server.serving.cancel()
            server.close()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def connection_count(self) -> int:
        return 0 if self._server is None else len(self._server.active_connections)

    def set_fault(self, fault: Fault | None) -> bool:
        """Switch to ``fault`` (None or ``clear`` removes it). True if the listener must be reopened."""
        if fault is not None and fault.kind is FaultKind.CLEAR:
            fault = None
        was_disconnected = self.fault is not None and self.fault.kind is FaultKind.DISCONNECT
        self.fault = fault
        if fault is not None and fault.kind is FaultKind.DISCONNECT:
            self.close()
            return False
        return was_disconnected


class Simulator:
    """N simulated devices, each its own Modbus TCP server, updated by one periodic task.

    ``kinds`` lists the device types in order (``PROFILES`` keys); device
    ``i`` listens on ``base_port + i`` (or a free port each when
    ``base_port`` is 0: read them from ``ports`` after ``start``). ``clock``
    gives simulated time (default ``time.time``); ``interval`` is the update
    period in seconds, or None for no periodic task (call ``update``).
    ``tags_per_device`` adds that many float32 filler input registers per
    device from address ``FILLER_START`` (1000).
    """

    def __init__(
        self,
        kinds: Sequence[str],
        *,
        base_port: int = 0,
        host: str = "127.0.0.1",
        unit: int = 1,
        seed: int = 1,
        clock: Clock | None = None,
        interval: float | None = 1.0,
        tags_per_device: int = 0,
        utc_offset_h: float = 0.0,
    ) -> None:
        unknown = [k for k in kinds if k not in PROFILES]
        if unknown:
            raise ValueError(f"unknown device type(s) {', '.join(unknown)} (one of {', '.join(PROFILES)})")
        if not 0 <= unit <= 255:
            raise ValueError(f"unit id {unit} outside 0..255")
        if base_port and base_port + len(kinds) - 1 > 65535:
            raise ValueError(f"ports {base_port}..{base_port + len(kinds) - 1} exceed 65535")
        if interval is not None and interval <= 0:
            raise ValueError(f"update interval must be positive, got {interval}")
        self.clock: Clock = clock or time.time
        self.interval = interval
        self.devices = [
            SimulatedDevice(
                i,
                PROFILES[kind],
                seed=seed,
                host=host,
                port=base_port + i if base_port else 0,
                unit=unit,
                tags=tags_per_device,
                utc_offset_h=utc_offset_h,
            )
            for i, kind in enumerate(kinds)
        ]
        self.update_count = 0
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()

    @classmethod
    def mixed(cls, count: int, types: Sequence[str], **kwargs) -> Simulator:
        """``count`` devices cycling through ``types`` (device i is ``types[i % len(types)]``)."""
        if not types:
            raise ValueError("at least one device type is needed")
        return cls([types[i % len(types)] for i in range(count)], **kwargs)

    @property
    def ports(self) -> list[int]:
        """The port each device listens on (bound ports once started)."""
        return [d.port for d in self.devices]

    async def start(self) -> None:
        """Compute the first values, open every listener, start the periodic update."""
        now = self.clock()
        try:
            for device in self.devices:
                await device.update(now)
                await device.listen()
        except BaseException:
            await self.stop()
            raise
        self.update_count += 1
        if self.interval is not None:
            self._task = asyncio.create_task(self._run(), name="simulator update")

    async def stop(self) -> None:
        """Stop updating and close every listener and connection."""
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for device in self.devices:
            device.close()

    async def update(self) -> None:
        """One update of every device at the clock's current time."""
        now = self.clock()
        for device in self.devices:
            try:
                await device.update(now)
            except Exception:
                # One broken device must not freeze the rest of the plant.
                log.exception("simulated device %d (%s) failed to update", device.index, device.kind)
        self.update_count += 1

    async def _run(self) -> None:
        assert self.interval is not None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.interval
            delay = next_at - loop.time()
            if delay < 0:  # fell behind (a stalled loop): skip the missed ticks
                next_at, delay = loop.time(), 0.0
            await asyncio.sleep(delay)
            await self.update()

    def set_fault(self, device: int, fault: Fault | None) -> Awaitable[None]:
        """Set (or with None / ``Fault.clear()`` remove) the fault of device ``device``.

        The change is immediate; when clearing ``disconnect`` the listener is
        reopened in the background and the returned awaitable completes once
        it listens again (await it before connecting; raises OSError if the
        port has been taken meanwhile).
        """
        dev = self.devices[device]
        if dev.set_fault(fault):
            task = asyncio.create_task(self._relisten(dev), name=f"simulator relisten {device}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return task
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def _relisten(self, device: SimulatedDevice) -> None:
        try:
            await device.listen()
        except OSError:
            log.exception("simulated device %d could not listen again", device.index)
            raise

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
