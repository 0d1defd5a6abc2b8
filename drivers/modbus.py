"""The Modbus TCP and RTU driver (pymodbus 3.16 asyncio clients).

One ``ModbusDriver`` talks to one device (``DeviceConfig.protocol`` ``modbus_tcp``
or ``modbus_rtu``). ``configure`` parses every point, plans each scan group's
reads with ``read_plan.plan`` and compiles one ``modbus_codec.BlockDecoder`` per
request, so a scan is: one round trip per request, one ``struct.pack`` of its
registers and one ``struct.unpack_from`` per run of like points.

Failures, and what the caller sees:

* a Modbus exception reply to a merged request (typically 02 because the block
  reads over a hole in the device's map) is retried in halves, recursively down
  to single points, within the same ``read``; the outcome replaces the request
  in the group's plan, so later scans neither merge across the hole again nor
  pay an exception for it. Points whose own request still fails get
  ``Batch.errors[i] = (DEVICE_EXCEPTION, "exception 2 (illegal data address)
  reading holding 3000..3001")`` (addresses as configured, in the device's
  ``address_base``). A block whose every part fails stays one request. Only
  codes that depend on the addresses read (1-4) are split; busy/gateway codes
  fail the block for this scan only.
* a transport failure (connect refused, connection lost, timeout, a garbled or
  mismatched reply) closes the connection and raises
  ``DriverError(COMM_FAILURE)``; reconnecting is the caller's job (pymodbus's
  own reconnect is off).

pymodbus resolves a pending request only by a reply or its timeout; the driver
fails it at once when the connection drops or an undecodable frame arrives
(hooks on the client's transaction manager), so a dead device costs no timeout.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, NoReturn

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from drivers import clock, read_plan
from drivers.base import Batch, DeviceConfig, Driver, DriverError, PointConfig, Reason, Value
from drivers.modbus_codec import BIT_TABLES, TABLE_NAMES, BlockDecoder, ModbusPoint, PointError, parse_point
from drivers.registers import CodecError, DataType, encode

__all__ = ["EXCEPTION_NAMES", "PROTOCOLS", "ModbusDriver"]

PROTOCOLS = ("modbus_tcp", "modbus_rtu")

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
# Exception codes that may depend on which addresses a request covers: worth splitting for.
SPLIT_CODES = frozenset({1, 2, 3, 4})
_READERS = {1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers", 4: "read_input_registers"}


# Read replies decoded in C: pymodbus unpacks a reply register by register (bit by bit),
# then formats the whole reply (every value) for a debug log line on every read.
# Registered on each client (``client.register``), they replace its FC 1-4 replies.
_BYTE_BITS = [tuple(bool(b >> i & 1) for i in range(8)) for b in range(256)]


def _byte_count(pdu: Any, data: bytes, unit: int) -> int:
    n = data[0] if data else 0
    if not data or n >= len(data) or n % unit:
        raise ModbusIOException(f"byte count {n} does not match a reply of {len(data)} bytes", pdu.function_code)
    return n


class _HoldingReply(ReadHoldingRegistersResponse):
    def decode(self, data: bytes) -> None:
        n = _byte_count(self, data, 2)
        self.registers = list(struct.unpack_from(f">{n // 2}H", data, 1))

    def __str__(self) -> str:
        return f"{type(self).__name__}(dev_id={self.dev_id}, registers={len(self.registers)})"


class _InputReply(ReadInputRegistersResponse):
    decode = _HoldingReply.decode
    __str__ = _HoldingReply.__str__


class _CoilReply(ReadCoilsResponse):
    def decode(self, data: bytes) -> None:
        n = _byte_count(self, data, 1)
        bits: list[bool] = []
        for byte in data[1 : n + 1]:
            bits.extend(_BYTE_BITS[byte])
        self.bits = bits

    def __str__(self) -> str:
        return f"{type(self).__name__}(dev_id={self.dev_id}, bits={len(self.bits)})"


class _DiscreteReply(ReadDiscreteInputsResponse):
    decode = _CoilReply.decode
    __str__ = _CoilReply.__str__


_FAST_REPLIES = (_CoilReply, _DiscreteReply, _HoldingReply, _InputReply)


class _ConnectionLost(Exception):
    pass


class _Garbled(Exception):
    pass


@dataclass(slots=True)
class _Block:
    """One read request of a group and how to decode its reply."""

    request: read_plan.Request  # keys are str(index of the point in the group)
    decoder: BlockDecoder
    indices: tuple[int, ...]
    label: str  # "holding 3000..3001"
    settled: bool = False  # the outcome of a split: not split again


@dataclass(slots=True)
class _Group:
    size: int
    config_errors: dict[int, tuple[Reason, str]]
    points: dict[str, read_plan.Point]
    parsed: dict[str, ModbusPoint]
    blocks: list[_Block] = field(default_factory=list)


class ModbusDriver(Driver):
    """One Modbus TCP connection or RTU serial port to one device (unit id)."""

    def __init__(self, config: DeviceConfig) -> None:
        super().__init__(config)
        if config.protocol not in PROTOCOLS:
            raise DriverError(Reason.CONFIG_ERROR, f"{config.name}: protocol {config.protocol!r} is not Modbus")
        if config.protocol == "modbus_tcp":
            if not config.host or config.port is None or not 0 < config.port < 65536:
                raise DriverError(
                    Reason.CONFIG_ERROR, f"{config.name}: modbus_tcp needs host and port 1..65535, got {config.port!r}"
                )
            self.endpoint = f"{config.host}:{config.port}"
        else:
            if not config.serial_port:
                raise DriverError(Reason.CONFIG_ERROR, f"{config.name}: modbus_rtu needs serial_port")
            if config.parity not in ("N", "E", "O"):
                raise DriverError(
                    Reason.CONFIG_ERROR, f"{config.name}: parity must be N, E or O, got {config.parity!r}"
                )
            self.endpoint = config.serial_port
        if not 0 <= config.unit_id <= 255:
            raise DriverError(Reason.CONFIG_ERROR, f"{config.name}: unit_id {config.unit_id} outside 0..255")
        if config.address_base not in (0, 1):
            raise DriverError(Reason.CONFIG_ERROR, f"{config.name}: address_base must be 0 or 1")
        try:
            self.limits = read_plan.Limits(config.max_registers, config.max_bits, config.max_gap)
        except ValueError as exc:
            raise DriverError(Reason.CONFIG_ERROR, f"{config.name}: {exc}") from None
        self._unit = config.unit_id
        self._base = config.address_base
        self._timeout_text = f"timeout after {round(config.timeout_s * 1000)} ms" + (
            f" ({config.retries + 1} tries)" if config.retries else ""
        )
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._pending: asyncio.Future | None = None  # the reply future of the request on the wire
        self._connect_error: BaseException | None = None
        self._groups: dict[str, _Group] = {}

    # -- configuration ----------------------------------------------------------

    def parse(self, point: PointConfig) -> ModbusPoint:
        """The point as the driver reads it; raises DriverError(CONFIG_ERROR) naming the bad field."""
        try:
            return self._parse(point)
        except PointError as exc:
            raise DriverError(Reason.CONFIG_ERROR, f"point {point.key}: {exc}") from None

    def _parse(self, point: PointConfig) -> ModbusPoint:
        cfg = self.config
        return parse_point(
            point.address,
            point.data_type,
            point.function,
            point.string_length,
            point.byte_order,
            point.word_order,
            address_base=self._base,
            device_byte_order=cfg.byte_order,
            device_word_order=cfg.word_order,
        )

    def configure(self, groups: Mapping[str, Sequence[PointConfig]]) -> dict[int, str]:
        bad: dict[int, str] = {}
        new: dict[str, _Group] = {}
        for name, points in groups.items():
            group = _Group(len(points), {}, {}, {})
            for i, pc in enumerate(points):
                try:
                    p = self._parse(pc)
                except PointError as exc:
                    bad[pc.key] = str(exc)
                    group.config_errors[i] = (Reason.CONFIG_ERROR, str(exc))
                    continue
                key = str(i)
                group.parsed[key] = p
                group.points[key] = read_plan.Point(key, p.table, p.address, p.count)
            group.blocks = [self._block(group, r) for r in read_plan.plan(group.points.values(), self.limits)]
            new[name] = group
        self._groups = new
        return bad

    def requests(self, group: str) -> list[read_plan.Request]:
        """The requests one scan of ``group`` makes now (after any splits learned from exceptions)."""
        return [b.request for b in self._groups[group].blocks]

    def _label(self, table: int, address: int, count: int) -> str:
        first = address + self._base
        span = str(first) if count == 1 else f"{first}..{first + count - 1}"
        return f"{TABLE_NAMES[table]} {span}"

    def _block(self, group: _Group, request: read_plan.Request) -> _Block:
        slots = [(int(k), group.parsed[k]) for k in request.keys]
        return _Block(
            request,
            BlockDecoder(request.function, request.address, request.count, slots),
            tuple(i for i, _ in slots),
            self._label(request.function, request.address, request.count),
        )

    # -- connection ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        cfg = self.config
        common: dict[str, Any] = {
            "name": cfg.name,
            "reconnect_delay": 0,  # the daemon owns reconnects
            "timeout": cfg.timeout_s,
            "retries": cfg.retries,
            "trace_pdu": self._trace_pdu,
            "trace_connect": self._trace_connect,
        }
        if cfg.protocol == "modbus_tcp":
            assert cfg.host is not None and cfg.port is not None
            return AsyncModbusTcpClient(cfg.host, port=cfg.port, **common)
        assert cfg.serial_port is not None
        return AsyncModbusSerialClient(
            cfg.serial_port,
            framer=FramerType.RTU,
            baudrate=cfg.baudrate,
            bytesize=cfg.bytesize,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
            **common,
        )

    def _hook(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> None:
        ctx = client.ctx
        create, on_data = ctx.call_create, ctx.callback_data

        async def call_create():  # keep why a connect failed (pymodbus only logs it)
            try:
                return await create()
            except Exception as exc:
                self._connect_error = exc
                raise

        def callback_data(data: bytes, addr: tuple | None = None) -> int:
            try:
                return on_data(data, addr=addr)
            except ModbusException as exc:  # a frame pymodbus cannot decode: fail the request now
                self._fail_pending(_Garbled(str(exc)))
                return len(data)

        ctx.call_create = call_create
        ctx.callback_data = callback_data  # type: ignore[method-assign]
        for reply in _FAST_REPLIES:
            client.register(reply)

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if sending and self._client is not None:
            # pdu_send calls this right after creating the future the request will await.
            self._pending = self._client.ctx.response_future
        return pdu

    def _trace_connect(self, up: bool) -> None:
        if not up:
            self._fail_pending(_ConnectionLost())

    def _fail_pending(self, exc: Exception) -> None:
        fut, self._pending = self._pending, None
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    async def connect(self) -> None:
        if self.connected:
            return
        await self.close()
        try:
            client = self._new_client()
        except (RuntimeError, ValueError, TypeError) as exc:  # e.g. pyserial missing, bad serial settings
            raise DriverError(Reason.CONFIG_ERROR, f"cannot connect to {self.endpoint}: {exc}") from None
        self._hook(client)
        self._connect_error = None
        self._client = client
        try:
            ok = await client.connect()
        except Exception as exc:
            self._connect_error, ok = exc, False
        if not ok or not client.connected:
            self._client = None
            client.close()
            message = f"cannot connect to {self.endpoint}: {self._connect_reason()}"
            self.health.request_failed("connect", message, clock.now_us())
            raise DriverError(Reason.COMM_FAILURE, message)

    def _connect_reason(self) -> str:
        exc = self._connect_error
        if exc is None or isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return f"no answer within {round(self.config.timeout_s * 1000)} ms"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, socket.gaierror):
            return f"unknown host ({exc.strerror})"
        if isinstance(exc, OSError) and exc.errno == errno.ENOENT and self.config.protocol == "modbus_rtu":
            return "no such serial port"
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
        return str(exc) or type(exc).__name__

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
            self._fail_pending(_ConnectionLost())

    def _require_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        client = self._client
        if client is None:
            raise DriverError(Reason.COMM_FAILURE, f"{self.endpoint}: not connected")
        if not client.connected:  # dropped by the device since the last request
            self._comm_failure("disconnected", "connection lost")
        return client

    # -- one request ----------------------------------------------------------------

    async def _call(self, fc: int, what: str, method: Any, *args: Any, expect: int = 0, **kwargs: Any) -> Any:
        """Run one request; the reply PDU, or the exception code (int) of an exception reply.

        ``expect`` > 0 checks a read reply's size (registers, or at least that many bits). Transport failures close the
        connection and raise DriverError(COMM_FAILURE).
        """
        start = perf_counter()
        try:
            rr = await method(*args, device_id=self._unit, **kwargs)
        except _Garbled as exc:
            self._comm_failure("garbage", f"garbled reply {what} ({exc})")
        except _ConnectionLost:
            self._comm_failure("disconnected", f"connection lost {what}")
        except ConnectionException:
            self._comm_failure("disconnected", f"not connected {what}")
        except ModbusIOException as exc:
            if "No response" in str(exc):
                self._comm_failure("timeout", f"{self._timeout_text} {what}")
            self._comm_failure("garbage", f"mismatched reply {what} ({exc})")
        except ModbusException as exc:
            self._comm_failure("garbage", f"bad reply {what} ({exc})")
        except OSError as exc:
            self._comm_failure("disconnected", f"{exc.strerror or exc} {what}")
        finally:
            self._pending = None
        elapsed = perf_counter() - start
        rfc = rr.function_code
        if rfc == fc:
            if expect:
                got = len(rr.bits) if fc in BIT_TABLES else len(rr.registers)
                if got < expect if fc in BIT_TABLES else got != expect:
                    self._comm_failure("garbage", f"reply with {got} values to a request for {expect} {what}")
            self.health.request_ok(elapsed, clock.now_us())
            return rr
        if rfc == fc | 0x80:
            code = rr.exception_code
            self.health.request_failed("exception", f"{self.endpoint}: {_exception_text(code)} {what}", clock.now_us())
            return code
        self._comm_failure("garbage", f"garbled reply (function code {rfc}) {what}")

    def _comm_failure(self, kind: str, detail: str) -> NoReturn:
        message = f"{self.endpoint}: {detail}"
        self.health.request_failed(kind, message, clock.now_us())
        client, self._client = self._client, None
        if client is not None:
            client.close()  # a late reply must not answer the next request
        raise DriverError(Reason.COMM_FAILURE, message)

    async def _read_block(self, client: Any, block: _Block) -> Any:
        r = block.request
        rr = await self._call(
            r.function,
            f"reading {block.label}",
            getattr(client, _READERS[r.function]),
            r.address,
            count=r.count,
            expect=r.count,
        )
        if type(rr) is int:
            return rr
        return rr.bits if r.function in BIT_TABLES else rr.registers

    # -- scans ------------------------------------------------------------------------

    async def read(self, group: str) -> Batch:
        g = self._groups.get(group)
        if g is None:
            raise DriverError(Reason.CONFIG_ERROR, f"{self.endpoint}: unknown scan group {group!r}")
        client = self._require_client()
        values: list[Value | None] = [None] * g.size
        errors = dict(g.config_errors)
        blocks = g.blocks
        learned: dict[int, list[_Block]] = {}
        for n, block in enumerate(blocks):
            data = await self._read_block(client, block)
            if type(data) is not int:
                block.decoder.decode(data, values)
            elif block.settled or len(block.indices) == 1 or data not in SPLIT_CODES:
                self._mark(block, data, errors)
            else:
                learned[n] = (await self._explore(client, g, block, values, errors))[0]
        if learned:
            g.blocks = [leaf for n, b in enumerate(blocks) for leaf in learned.get(n, (b,))]
        return Batch(values, errors, clock.now_us())

    def _mark(self, block: _Block, code: int, errors: dict[int, tuple[Reason, str]]) -> None:
        detail = f"{_exception_text(code)} reading {block.label}"
        for i in block.indices:
            errors[i] = (Reason.DEVICE_EXCEPTION, detail)

    async def _explore(
        self, client: Any, g: _Group, block: _Block, values: list, errors: dict[int, tuple[Reason, str]]
    ) -> tuple[list[_Block], bool]:
        """Read the two halves of a rejected block, recursively; (blocks to keep, every part failed)."""
        singles = read_plan.split(block.request, g.points, self.limits)
        half = len(singles) // 2
        leaves: list[_Block] = []
        all_failed = True
        for part in (singles[:half], singles[half:]):
            sub = self._block(g, _merge(part))
            sub.settled = True
            data = await self._read_block(client, sub)
            if type(data) is not int:
                sub.decoder.decode(data, values)
                leaves.append(sub)
                all_failed = False
            elif len(part) > 1 and data in SPLIT_CODES:
                sub_leaves, failed = await self._explore(client, g, sub, values, errors)
                leaves.extend(sub_leaves)
                all_failed = all_failed and failed
            else:
                self._mark(sub, data, errors)
                leaves.append(sub)
        if all_failed:
            block.settled = True  # the whole block is refused: one request for it, not many
            return [block], True
        return leaves, False

    # -- single points ------------------------------------------------------------------

    async def read_point(self, point: PointConfig) -> Value:
        p = self.parse(point)
        client = self._require_client()
        block = _Block(
            read_plan.Request(p.table, p.address, p.count, ("0",)),
            BlockDecoder(p.table, p.address, p.count, [(0, p)]),
            (0,),
            self._label(p.table, p.address, p.count),
        )
        data = await self._read_block(client, block)
        if type(data) is int:
            raise DriverError(
                Reason.DEVICE_EXCEPTION, f"{self.endpoint}: {_exception_text(data)} reading {block.label}", code=data
            )
        out: list[Value | None] = [None]
        block.decoder.decode(data, out)
        assert out[0] is not None
        return out[0]

    async def write(self, point: PointConfig, value: Value) -> None:
        p = self.parse(point)
        label = self._label(p.table, p.address, p.count)
        if p.table not in (1, 3):
            raise DriverError(Reason.CONFIG_ERROR, f"{self.endpoint}: {label} is read-only ({TABLE_NAMES[p.table]}s)")
        if p.data_type is DataType.BOOL:
            on = self._as_bool(value, label)
            client = self._require_client()
            if p.table == 1:
                await self._write(5, f"writing {label}", client.write_coil, p.address, on)
                return
            assert p.bit is not None
            rr = await self._call(3, f"reading {label}", client.read_holding_registers, p.address, count=1, expect=1)
            if type(rr) is int:
                raise DriverError(
                    Reason.DEVICE_EXCEPTION, f"{self.endpoint}: {_exception_text(rr)} reading {label}", code=rr
                )
            word = rr.registers[0]
            # The bit numbering is the decoded word's: after the byte order.
            mask = 1 << (p.bit if p.byte_order == "big" else (p.bit + 8) % 16)
            new = word | mask if on else word & ~mask
            await self._write(6, f"writing {label} (bit {p.bit})", client.write_register, p.address, new)
            return
        raw = value
        if isinstance(value, float) and p.data_type not in (DataType.FLOAT32, DataType.FLOAT64, DataType.STRING):
            if value.is_integer():
                raw = int(value)  # 42.0 for an integer register is 42
        try:
            regs = encode(raw, p.data_type, p.byte_order, p.word_order, string_length=p.string_length or None)
        except CodecError as exc:
            raise DriverError(
                Reason.OUT_OF_RANGE, f"{self.endpoint}: cannot write {value!r} to {label} as {p.data_type}: {exc}"
            ) from None
        client = self._require_client()
        if len(regs) == 1:
            await self._write(6, f"writing {label}", client.write_register, p.address, regs[0])
        else:
            await self._write(16, f"writing {label}", client.write_registers, p.address, regs)

    @staticmethod
    def _as_bool(value: Value, label: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise DriverError(Reason.OUT_OF_RANGE, f"cannot write {value!r} to {label} as bool (true/false or 0/1)")

    async def _write(self, fc: int, what: str, method: Any, *args: Any) -> None:
        rr = await self._call(fc, what, method, *args)
        if type(rr) is int:
            raise DriverError(Reason.DEVICE_EXCEPTION, f"{self.endpoint}: {_exception_text(rr)} {what}", code=rr)


def _exception_text(code: int) -> str:
    return f"exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})"


def _merge(parts: Sequence[read_plan.Request]) -> read_plan.Request:
    start = min(p.address for p in parts)
    end = max(p.end for p in parts)
    return read_plan.Request(parts[0].function, start, end - start, tuple(k for p in parts for k in p.keys))
