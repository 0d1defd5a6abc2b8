"""Decode and encode Modbus register values (pure functions, stdlib only).

A Modbus register is 16 bits; anything wider is spread over consecutive
registers, and meters disagree about two independent orders:

* byte order - the order of the two bytes inside each register ("big" = high
  byte first, as the Modbus spec says; "little" = the two bytes swapped);
* word order - the order of the registers for a value wider than 16 bits
  ("big" = most significant register first, e.g. Schneider PM5xxx float32;
  "little" = least significant register first, e.g. Carlo Gavazzi EM24 int32).

The model follows pymodbus ``convert_from_registers`` and Home Assistant's
modbus ``unpack_structure_result``: put the registers in most-significant-first
order, lay each one out as two bytes, then unpack the bytes big-endian with
``struct``. ``encode`` is the exact inverse of ``decode``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from enum import StrEnum

__all__ = [
    "ByteOrder",
    "CodecError",
    "DataType",
    "INT_RANGES",
    "NUMERIC_LAYOUT",
    "WordOrder",
    "apply_scaling",
    "decode",
    "encode",
    "is_nan",
    "is_sentinel",
    "register_count",
    "reverse_scaling",
]


class CodecError(ValueError):
    """Registers or a value that cannot be decoded or encoded as asked."""


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class ByteOrder(StrEnum):
    BIG = "big"
    LITTLE = "little"


class WordOrder(StrEnum):
    BIG = "big"
    LITTLE = "little"


# struct code (no byte order) and register count of every fixed-width numeric type;
# the Modbus driver's precompiled decoders use the same table.
NUMERIC_LAYOUT: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4),
    DataType.UINT64: ("Q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}
# Big-endian formats, applied after the registers are put in canonical order.
_NUMERIC: dict[DataType, tuple[str, int]] = {dt: (">" + code, n) for dt, (code, n) in NUMERIC_LAYOUT.items()}

INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}


def _data_type(data_type: DataType | str) -> DataType:
    try:
        return DataType(data_type)
    except ValueError:
        raise CodecError(f"unknown data type {data_type!r}") from None


def _orders(byte_order: ByteOrder | str, word_order: WordOrder | str) -> tuple[ByteOrder, WordOrder]:
    try:
        bo = ByteOrder(byte_order)
    except ValueError:
        raise CodecError(f"unknown byte order {byte_order!r} (big or little)") from None
    try:
        wo = WordOrder(word_order)
    except ValueError:
        raise CodecError(f"unknown word order {word_order!r} (big or little)") from None
    return bo, wo


def _check_string_length(string_length: int) -> None:
    # bool is an int subclass; a True here is a config mistake, not a length of 1.
    if isinstance(string_length, bool) or not isinstance(string_length, int) or string_length < 1:
        raise CodecError(f"string needs string_length >= 1, got {string_length!r}")


def _check_bit(bit: int | None) -> int:
    if bit is None or isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit <= 15:
        raise CodecError(f"bool from a register needs bit 0..15, got {bit!r}")
    return bit


def register_count(data_type: DataType | str, string_length: int = 0) -> int:
    """Number of 16-bit registers a value of ``data_type`` occupies.

    A string of ``string_length`` characters takes ceil(length / 2) registers
    (two ASCII characters per register); a bool is one bit of one register.
    """
    dt = _data_type(data_type)
    if dt is DataType.STRING:
        _check_string_length(string_length)
        return (string_length + 1) // 2
    if dt is DataType.BOOL:
        return 1
    return _NUMERIC[dt][1]


def _check_registers(registers: Sequence[int]) -> list[int]:
    out: list[int] = []
    for i, r in enumerate(registers):
        if isinstance(r, bool) or not isinstance(r, int):
            raise CodecError(f"register {i} is {type(r).__name__} {r!r}, not an int")
        if not 0 <= r <= 0xFFFF:
            raise CodecError(f"register {i} value {r} out of range 0..65535")
        out.append(r)
    return out


def _to_bytes(registers: list[int], byte_order: ByteOrder, word_order: WordOrder) -> bytes:
    # Canonical order = most significant register first, high byte first;
    # struct then unpacks it big-endian.
    if word_order is WordOrder.LITTLE:
        registers = registers[::-1]
    raw = b"".join(r.to_bytes(2, "big") for r in registers)
    if byte_order is ByteOrder.LITTLE:
        raw = _swap_pairs(raw)
    return raw


def _from_bytes(raw: bytes, byte_order: ByteOrder, word_order: WordOrder) -> list[int]:
    if byte_order is ByteOrder.LITTLE:
        raw = _swap_pairs(raw)
    registers = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if word_order is WordOrder.LITTLE:
        registers.reverse()
    return registers


def _swap_pairs(raw: bytes) -> bytes:
    swapped = bytearray(raw)
    swapped[0::2], swapped[1::2] = raw[1::2], raw[0::2]
    return bytes(swapped)


def decode(
    registers: Sequence[int],
    data_type: DataType | str,
    byte_order: ByteOrder | str = "big",
    word_order: WordOrder | str = "big",
    bit: int | None = None,
    string_length: int | None = None,
) -> int | float | bool | str:
    """Decode the registers of one point, as read from the device, into a value.

    * numeric types need exactly ``register_count(data_type)`` registers; a
      float NaN (a common "not available" marker) decodes to ``float("nan")``;
    * ``bool`` takes one register and returns bit ``bit`` (0 = least
      significant) of it, after byte order is applied - so a byte-swapped
      device's status word keeps the bit numbering of its manual;
    * ``string`` reads two ASCII characters per register, first character in
      the high byte; word order does not apply (text is not a number whose
      registers could be reversed, and Home Assistant rejects a word swap for
      strings too). With ``string_length`` the register count must match
      ceil(length / 2) and the text is cut to that length; trailing NULs and
      spaces are stripped and non-ASCII bytes become U+FFFD.

    Raises CodecError for registers outside 0..65535, the wrong register
    count, a missing/invalid bit or string length, or an unknown type/order.
    """
    dt = _data_type(data_type)
    bo, wo = _orders(byte_order, word_order)
    regs = _check_registers(registers)

    if dt is DataType.STRING:
        if string_length is None:
            if not regs:
                raise CodecError("string needs at least 1 register, got 0")
            length = 2 * len(regs)
        else:
            _check_string_length(string_length)
            need = register_count(dt, string_length)
            if len(regs) != need:
                raise CodecError(f"string of {string_length} characters needs {need} registers, got {len(regs)}")
            length = string_length
        raw = _to_bytes(regs, bo, WordOrder.BIG)[:length]
        return raw.rstrip(b"\x00 ").decode("ascii", errors="replace")

    if dt is DataType.BOOL:
        b = _check_bit(bit)
        if len(regs) != 1:
            raise CodecError(f"bool needs 1 register, got {len(regs)}")
        word = _from_bytes(_to_bytes(regs, bo, wo), ByteOrder.BIG, WordOrder.BIG)[0]
        return bool((word >> b) & 1)

    fmt, need = _NUMERIC[dt]
    if len(regs) != need:
        plural = "register" if need == 1 else "registers"
        raise CodecError(f"{dt} needs {need} {plural}, got {len(regs)}")
    (value,) = struct.unpack(fmt, _to_bytes(regs, bo, wo))
    return value


def encode(
    value: int | float | bool | str,
    data_type: DataType | str,
    byte_order: ByteOrder | str = "big",
    word_order: WordOrder | str = "big",
    string_length: int | None = None,
    bit: int | None = None,
) -> list[int]:
    """Encode a value into the registers to write, the exact inverse of ``decode``.

    * integers must be ``int`` within the type's range (no silent wrap or
      truncation: a wrong setpoint is worse than a refused one);
    * floats accept int or float; a finite value too large for float32
      raises, NaN and infinities encode as themselves;
    * ``bool`` needs ``bit`` and returns one register with only that bit set
      or clear - to change one bit of a live status word the caller must
      read-modify-write;
    * ``string`` must be ASCII; it is padded with NULs to ``string_length``
      (default: its own length) and to a whole number of registers.

    Raises CodecError naming the type and the problem.
    """
    dt = _data_type(data_type)
    bo, wo = _orders(byte_order, word_order)

    if dt is DataType.STRING:
        if not isinstance(value, str):
            raise CodecError(f"string value must be str, got {type(value).__name__}")
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise CodecError(f"string value {value!r} is not ASCII") from None
        length = len(raw) if string_length is None else string_length
        _check_string_length(length)
        if len(raw) > length:
            raise CodecError(f"string value of {len(raw)} characters exceeds string_length {length}")
        raw = raw.ljust(2 * register_count(dt, length), b"\x00")
        return _from_bytes(raw, bo, WordOrder.BIG)

    if dt is DataType.BOOL:
        b = _check_bit(bit)
        if not isinstance(value, bool):
            raise CodecError(f"bool value must be bool, got {type(value).__name__}")
        return _from_bytes((int(value) << b).to_bytes(2, "big"), bo, wo)

    fmt, _ = _NUMERIC[dt]
    if dt in INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError(f"{dt} value must be int, got {type(value).__name__} {value!r}")
        low, high = INT_RANGES[dt]
        if not low <= value <= high:
            raise CodecError(f"{dt} value {value} out of range {low}..{high}")
        raw = struct.pack(fmt, value)
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CodecError(f"{dt} value must be a number, got {type(value).__name__} {value!r}")
        try:
            raw = struct.pack(fmt, value)
        except (OverflowError, struct.error):
            # struct refuses to round a finite value up to infinity.
            raise CodecError(f"{dt} cannot hold {value!r}") from None
    return _from_bytes(raw, bo, wo)


def apply_scaling(raw: float, raw_low: float, raw_high: float, eng_low: float, eng_high: float) -> float:
    """Map a raw value linearly from [raw_low, raw_high] to [eng_low, eng_high].

    Not clamped: a value outside the raw range extrapolates, because an
    over-range reading is information the operator should see, not hide.
    Raises CodecError if raw_low == raw_high.
    """
    if raw_low == raw_high:
        raise CodecError(f"scaling needs raw_low != raw_high, both are {raw_low!r}")
    return eng_low + (raw - raw_low) * (eng_high - eng_low) / (raw_high - raw_low)


def reverse_scaling(eng: float, raw_low: float, raw_high: float, eng_low: float, eng_high: float) -> float:
    """Inverse of ``apply_scaling``: engineering units back to a raw value.

    Takes the same range arguments as ``apply_scaling``; the caller rounds the
    result before ``encode`` for integer types. Raises CodecError if
    raw_low == raw_high or eng_low == eng_high.
    """
    if raw_low == raw_high:
        raise CodecError(f"scaling needs raw_low != raw_high, both are {raw_low!r}")
    if eng_low == eng_high:
        raise CodecError(f"reverse scaling needs eng_low != eng_high, both are {eng_low!r}")
    return raw_low + (eng - eng_low) * (raw_high - raw_low) / (eng_high - eng_low)


def is_sentinel(registers: Sequence[int], sentinels: Iterable[Sequence[int]]) -> bool:
    """True if the registers exactly match one of the device's "not available" patterns.

    Meters signal a missing value with fixed register contents (e.g.
    ``(0xFFFF, 0xFFFF)`` or ``(0x8000, 0x0000)``), compared here as read,
    before any byte or word reordering, so the pattern is written exactly as
    the device manual prints it. A float NaN has many bit patterns; check it
    after ``decode`` with ``math.isnan`` (see ``is_nan``).
    """
    regs = tuple(registers)
    return any(regs == tuple(s) for s in sentinels)


def is_nan(value: object) -> bool:
    """True if a decoded value is a float NaN (the float "not available" marker)."""
    return isinstance(value, float) and math.isnan(value)
