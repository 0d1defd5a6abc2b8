"""Modbus point parsing and the fast block decoder of the Modbus driver (pure, stdlib only).

``parse_point`` turns a configured ``PointConfig`` into a ``ModbusPoint`` (table,
0-based wire address, size, type, orders) or raises ``PointError`` naming the
field that is wrong. ``BlockDecoder`` is compiled once per read request and
turns the request's registers (or bits) into every point's value on each scan.

The decoder gives exactly what ``registers.decode`` gives, without its per-call
validation: the response's registers are packed once into a byte image
(``struct.pack(">nH")``, plus the byte-swapped image ``"<nH"`` when a point
needs it) and each value is unpacked from it at a precomputed offset. All four
byte/word order combinations reduce to an image and an endianness:

====== ====== ============ ==========
byte   word   image        unpack
====== ====== ============ ==========
big    big    as read      big-endian
little big    bytes swapped big-endian
big    little bytes swapped little-endian
little little as read      little-endian
====== ====== ============ ==========

(reading a byte-swapped image little-endian reverses the registers and restores
each register's byte order; reading the unswapped image little-endian reverses
both.) Non-overlapping numeric points sharing an image and endianness are
unpacked together by one ``struct.Struct`` with pad bytes between them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.registers import NUMERIC_LAYOUT, DataType

__all__ = [
    "BIT_TABLES",
    "TABLE_NAMES",
    "BlockDecoder",
    "ModbusPoint",
    "PointError",
    "parse_point",
]

TABLE_NAMES = {1: "coil", 2: "discrete input", 3: "holding", 4: "input"}
BIT_TABLES = frozenset({1, 2})
_ORDERS = ("big", "little")
_MAX_REGISTERS = 125  # one read request (Modbus Application Protocol 6.3)

_NUMERIC = NUMERIC_LAYOUT  # struct code (no byte order) and register count per numeric type


class PointError(ValueError):
    """A point configuration the driver cannot read; ``str()`` is ``"field: message"``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    """A parsed point: ``count`` registers (or 1 bit) of ``table`` from 0-based wire ``address``."""

    table: int  # 1 coils, 2 discrete inputs, 3 holding, 4 input registers
    address: int
    count: int
    data_type: DataType
    bit: int | None = None  # bit 0..15 of a register (bool in a register table)
    string_length: int = 0
    byte_order: str = "big"
    word_order: str = "big"

    @property
    def end(self) -> int:
        return self.address + self.count


def parse_point(
    address: str,
    data_type: str,
    function: int | None = None,
    string_length: int = 0,
    byte_order: str | None = None,
    word_order: str | None = None,
    *,
    address_base: int = 0,
    device_byte_order: str = "big",
    device_word_order: str = "big",
) -> ModbusPoint:
    """Parse one point's configuration; raises PointError naming the bad field."""
    try:
        dt = DataType(data_type)
    except ValueError:
        names = ", ".join(t.value for t in DataType)
        raise PointError("data_type", f"unknown type {data_type!r} (one of {names})") from None

    text = address.strip() if isinstance(address, str) else ""
    reg_text, dot, bit_text = text.partition(".")
    if not _is_number(reg_text) or (dot and not _is_number(bit_text)):
        raise PointError("address", f"{address!r} is not N or N.B (register number, optional bit 0..15)")
    number = int(reg_text)
    bit = int(bit_text) if dot else None
    if bit is not None and not 0 <= bit <= 15:
        raise PointError("address", f"bit {bit} in {address!r} is outside 0..15")
    if address_base not in (0, 1):
        raise PointError("address", f"device address_base must be 0 or 1, got {address_base!r}")
    if number < address_base:
        raise PointError("address", f"{address!r} is below the device's address_base {address_base}")
    wire = number - address_base
    if wire > 0xFFFF:
        raise PointError("address", f"{address!r} is past the last address {0xFFFF + address_base}")

    table = function
    if table is None:
        table = 1 if dt is DataType.BOOL and bit is None else 3
    if isinstance(table, bool) or table not in TABLE_NAMES:
        raise PointError(
            "function", f"{function!r} is not a read table (1 coils, 2 discrete inputs, 3 holding, 4 input)"
        )

    if table in BIT_TABLES:
        if dt is not DataType.BOOL:
            raise PointError("data_type", f"{TABLE_NAMES[table]}s hold bits: data_type must be bool, got {dt.value}")
        if bit is not None:
            raise PointError("address", f"{address!r}: a {TABLE_NAMES[table]} is one bit, it takes no .B")
        return ModbusPoint(table, wire, 1, dt)

    bo = byte_order if byte_order is not None else device_byte_order
    wo = word_order if word_order is not None else device_word_order
    if bo not in _ORDERS:
        raise PointError("byte_order", f"{bo!r} is not big or little")
    if wo not in _ORDERS:
        raise PointError("word_order", f"{wo!r} is not big or little")

    length = 0
    if dt is DataType.BOOL:
        if bit is None:
            raise PointError("address", f"a bool in a register table needs N.B (bit 0..15), got {address!r}")
        count = 1
    else:
        if bit is not None:
            raise PointError("address", f"{address!r}: only a bool takes a bit (.B), not {dt.value}")
        if dt is DataType.STRING:
            if isinstance(string_length, bool) or not isinstance(string_length, int) or string_length < 1:
                raise PointError("string_length", f"a string needs string_length >= 1, got {string_length!r}")
            length = string_length
            count = (length + 1) // 2
            if count > _MAX_REGISTERS:
                raise PointError(
                    "string_length", f"{length} characters need {count} registers, more than one request's 125"
                )
        else:
            count = _NUMERIC[dt][1]
    if wire + count > 0x10000:
        raise PointError("address", f"{address!r} + {count} registers runs past the last address")
    return ModbusPoint(table, wire, count, dt, bit, length, bo, wo)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _layout(p: ModbusPoint) -> tuple[bool, str]:
    """(read the byte-swapped image?, struct endianness) for a register point."""
    return p.byte_order != p.word_order, ">" if p.word_order == "big" else "<"


class BlockDecoder:
    """Decodes one read request's response into the values of the points it covers.

    ``slots`` are (index into the output list, point) for every point of the
    request; ``address``/``count`` are the request's wire span. Built once per
    request at configure time; ``decode`` runs on every scan.
    """

    __slots__ = (
        "count",
        "_bit_slots",
        "_groups",
        "_singles",
        "_need_plain",
        "_need_swapped",
        "_pack_plain",
        "_pack_swapped",
        "is_bits",
    )

    def __init__(self, table: int, address: int, count: int, slots: Sequence[tuple[int, ModbusPoint]]) -> None:
        self.count = count
        self.is_bits = table in BIT_TABLES
        self._bit_slots: tuple[tuple[int, int], ...] = ()
        self._groups: list[tuple[bool, struct.Struct, int, tuple[int, ...]]] = []
        # (index, swapped image?, struct, byte offset, kind, extra): kind 0 number, 1 bit, 2 string
        self._singles: list[tuple[int, bool, struct.Struct | None, int, int, int]] = []
        self._need_plain = self._need_swapped = False
        self._pack_plain = struct.Struct(f">{count}H").pack
        self._pack_swapped = struct.Struct(f"<{count}H").pack
        for _, p in slots:
            if p.address < address or p.end > address + count:
                raise ValueError(f"point at {p.address}+{p.count} lies outside the request {address}+{count}")
        if self.is_bits:
            self._bit_slots = tuple((i, p.address - address) for i, p in slots)
            return

        # Numeric points, per (image, endianness), packed into one Struct while they do not overlap.
        by_layout: dict[tuple[bool, str], list[tuple[int, int, int, str]]] = {}
        for i, p in slots:
            swapped, endian = _layout(p)
            offset = 2 * (p.address - address)
            if p.data_type is DataType.STRING:
                # Text: two characters per register, high byte first after byte order; no word order.
                self._singles.append((i, p.byte_order == "little", None, offset, 2, p.string_length))
            elif p.data_type is DataType.BOOL:
                assert p.bit is not None
                self._singles.append((i, swapped, struct.Struct(endian + "H"), offset, 1, p.bit))
            else:
                code, regs = _NUMERIC[p.data_type]
                by_layout.setdefault((swapped, endian), []).append((offset, 2 * regs, i, code))
        for (swapped, endian), items in by_layout.items():
            items.sort()
            fmt, indices, pos, start = [], [], None, items[0][0]
            for offset, size, i, code in items:
                if pos is not None and offset < pos:
                    # Overlaps the previous point: unpack it alone.
                    self._singles.append((i, swapped, struct.Struct(endian + code), offset, 0, 0))
                    continue
                if pos is not None and offset > pos:
                    fmt.append(f"{offset - pos}x")
                fmt.append(code)
                indices.append(i)
                pos = offset + size
            self._groups.append((swapped, struct.Struct(endian + "".join(fmt)), start, tuple(indices)))
        layouts = [g[0] for g in self._groups] + [s[1] for s in self._singles]
        self._need_plain = not all(layouts)
        self._need_swapped = any(layouts)

    def decode(self, data: Sequence[int] | Sequence[bool], out: list) -> None:
        """Write every point's value into ``out`` from a response of ``count`` registers (or >= count bits)."""
        if self.is_bits:
            for i, offset in self._bit_slots:
                out[i] = bool(data[offset])
            return
        plain = self._pack_plain(*data) if self._need_plain else b""
        swapped = self._pack_swapped(*data) if self._need_swapped else b""
        for use_swapped, st, start, indices in self._groups:
            values = st.unpack_from(swapped if use_swapped else plain, start)
            if len(indices) == 1:
                out[indices[0]] = values[0]
            else:
                for i, v in zip(indices, values, strict=True):
                    out[i] = v
        for i, use_swapped, st, offset, kind, extra in self._singles:
            image = swapped if use_swapped else plain
            if kind == 0:
                out[i] = st.unpack_from(image, offset)[0]  # type: ignore[union-attr]
            elif kind == 1:
                out[i] = bool((st.unpack_from(image, offset)[0] >> extra) & 1)  # type: ignore[union-attr]
            else:
                out[i] = image[offset : offset + extra].rstrip(b"\x00 ").decode("ascii", errors="replace")
