"""drivers.registers: register decode/encode, scaling and "not available" markers."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.registers import (
    ByteOrder,
    CodecError,
    DataType,
    WordOrder,
    apply_scaling,
    decode,
    encode,
    is_nan,
    is_sentinel,
    register_count,
    reverse_scaling,
)

ORDERS = [(b, w) for b in ("big", "little") for w in ("big", "little")]


def f32(x: float) -> float:
    """x rounded to the nearest float32, as a meter would hold it."""
    return struct.unpack(">f", struct.pack(">f", x))[0]


# (type, value, {(byte order, word order): registers as read from the device}).
# Written out by hand from the big-endian struct packing in
# test_vectors_match_struct_packing: word order "little" reverses the
# registers, byte order "little" swaps the two bytes inside each register.
VECTORS: list[tuple[DataType, int | float, dict[tuple[str, str], list[int]]]] = [
    (
        DataType.FLOAT32,
        f32(123.456),  # 0x42F6E979
        {
            ("big", "big"): [0x42F6, 0xE979],
            ("big", "little"): [0xE979, 0x42F6],
            ("little", "big"): [0xF642, 0x79E9],
            ("little", "little"): [0x79E9, 0xF642],
        },
    ),
    (
        DataType.INT32,
        -123456789,  # 0xF8A432EB
        {
            ("big", "big"): [0xF8A4, 0x32EB],
            ("big", "little"): [0x32EB, 0xF8A4],
            ("little", "big"): [0xA4F8, 0xEB32],
            ("little", "little"): [0xEB32, 0xA4F8],
        },
    ),
    (
        DataType.UINT32,
        3_000_000_000,  # 0xB2D05E00
        {
            ("big", "big"): [0xB2D0, 0x5E00],
            ("big", "little"): [0x5E00, 0xB2D0],
            ("little", "big"): [0xD0B2, 0x005E],
            ("little", "little"): [0x005E, 0xD0B2],
        },
    ),
    (
        DataType.INT64,
        -1234567890123456789,  # 0xEEDDEF0B82167EEB
        {
            ("big", "big"): [0xEEDD, 0xEF0B, 0x8216, 0x7EEB],
            ("big", "little"): [0x7EEB, 0x8216, 0xEF0B, 0xEEDD],
            ("little", "big"): [0xDDEE, 0x0BEF, 0x1682, 0xEB7E],
            ("little", "little"): [0xEB7E, 0x1682, 0x0BEF, 0xDDEE],
        },
    ),
    (
        DataType.UINT64,
        0x0123456789ABCDEF,
        {
            ("big", "big"): [0x0123, 0x4567, 0x89AB, 0xCDEF],
            ("big", "little"): [0xCDEF, 0x89AB, 0x4567, 0x0123],
            ("little", "big"): [0x2301, 0x6745, 0xAB89, 0xEFCD],
            ("little", "little"): [0xEFCD, 0xAB89, 0x6745, 0x2301],
        },
    ),
    (
        DataType.FLOAT64,
        -123.456,  # 0xC05EDD2F1A9FBE77
        {
            ("big", "big"): [0xC05E, 0xDD2F, 0x1A9F, 0xBE77],
            ("big", "little"): [0xBE77, 0x1A9F, 0xDD2F, 0xC05E],
            ("little", "big"): [0x5EC0, 0x2FDD, 0x9F1A, 0x77BE],
            ("little", "little"): [0x77BE, 0x9F1A, 0x2FDD, 0x5EC0],
        },
    ),
    (
        DataType.INT16,
        -12345,  # 0xCFC7; word order cannot matter for one register
        {
            ("big", "big"): [0xCFC7],
            ("big", "little"): [0xCFC7],
            ("little", "big"): [0xC7CF],
            ("little", "little"): [0xC7CF],
        },
    ),
    (
        DataType.UINT16,
        0xBEEF,
        {
            ("big", "big"): [0xBEEF],
            ("big", "little"): [0xBEEF],
            ("little", "big"): [0xEFBE],
            ("little", "little"): [0xEFBE],
        },
    ),
]

STRUCT_FORMATS = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.INT64: ">q",
    DataType.UINT64: ">Q",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}

VECTOR_CASES = [
    pytest.param(dt, value, bo, wo, regs, id=f"{dt}-{bo}-{wo}")
    for dt, value, by_order in VECTORS
    for (bo, wo), regs in by_order.items()
]


def test_vectors_match_struct_packing() -> None:
    # The hand-written big/big rows must be the plain big-endian packing, so
    # the other three rows (derived by hand from them) rest on struct, not on
    # the code under test.
    assert {dt for dt, _, _ in VECTORS} == set(STRUCT_FORMATS)
    for dt, value, by_order in VECTORS:
        raw = struct.pack(STRUCT_FORMATS[dt], value)
        assert by_order[("big", "big")] == [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


@pytest.mark.parametrize(("data_type", "value", "byte_order", "word_order", "registers"), VECTOR_CASES)
def test_known_vectors(
    data_type: DataType, value: int | float, byte_order: str, word_order: str, registers: list[int]
) -> None:
    decoded = decode(registers, data_type, byte_order, word_order)
    assert decoded == value
    assert type(decoded) is type(value)
    assert encode(value, data_type, byte_order, word_order) == registers
    assert register_count(data_type) == len(registers)


def test_schneider_and_carlo_gavazzi_orders() -> None:
    # Schneider PM5xxx: float32 most significant register first.
    assert decode([0x42F6, 0xE979], DataType.FLOAT32, ByteOrder.BIG, WordOrder.BIG) == f32(123.456)
    # Carlo Gavazzi EM24: int32 least significant register first (230.5 V at 0.1 V/LSB).
    assert decode([2305, 0], DataType.INT32, ByteOrder.BIG, WordOrder.LITTLE) == 2305
    assert decode([0xFFFF, 0xFFFF], DataType.INT32, "big", "little") == -1


@pytest.mark.parametrize(("byte_order", "word_order"), ORDERS)
def test_bool_bits(byte_order: str, word_order: str) -> None:
    low = encode(True, DataType.BOOL, byte_order, word_order, bit=0)
    high = encode(True, DataType.BOOL, byte_order, word_order, bit=15)
    # Byte order applies before the bit is picked, so bit 0 of a byte-swapped
    # device sits in the high byte of the raw register.
    assert low == ([0x0001] if byte_order == "big" else [0x0100])
    assert high == ([0x8000] if byte_order == "big" else [0x0080])
    assert decode(low, DataType.BOOL, byte_order, word_order, bit=0) is True
    assert decode(low, DataType.BOOL, byte_order, word_order, bit=15) is False
    assert decode(high, DataType.BOOL, byte_order, word_order, bit=15) is True
    assert decode(high, DataType.BOOL, byte_order, word_order, bit=0) is False
    assert encode(False, DataType.BOOL, byte_order, word_order, bit=7) == [0]
    assert decode([0xFFFF], DataType.BOOL, byte_order, word_order, bit=9) is True


def test_bool_bit_of_a_status_word() -> None:
    status = [0b1010_0000_0000_0101]
    bits = [decode(status, DataType.BOOL, bit=b) for b in range(16)]
    assert [b for b, on in enumerate(bits) if on] == [0, 2, 13, 15]


@pytest.mark.parametrize(("byte_order", "word_order"), ORDERS)
def test_string_with_padding(byte_order: str, word_order: str) -> None:
    # Word order does not apply to text: first characters in the first register.
    big = byte_order == "big"
    regs = encode("PM5560", DataType.STRING, byte_order, word_order, string_length=10)
    assert regs == ([0x504D, 0x3535, 0x3630, 0, 0] if big else [0x4D50, 0x3535, 0x3036, 0, 0])
    assert decode(regs, DataType.STRING, byte_order, word_order, string_length=10) == "PM5560"
    # Odd length: the last register carries one character and a NUL.
    regs = encode("ABC", DataType.STRING, byte_order, word_order)
    assert regs == ([0x4142, 0x4300] if big else [0x4241, 0x0043])
    assert decode(regs, DataType.STRING, byte_order, word_order) == "ABC"


def test_string_strips_trailing_nuls_and_spaces_only() -> None:
    regs = [0x2041, 0x2042, 0x2020, 0x0000]  # " A B  \0\0"
    assert decode(regs, DataType.STRING) == " A B"
    # string_length cuts before stripping; the register count must match it.
    assert decode([0x4142, 0x4344], DataType.STRING, string_length=3) == "ABC"
    assert register_count(DataType.STRING, 3) == 2
    assert register_count(DataType.STRING, 4) == 2


def test_string_non_ascii_is_replaced_not_raised() -> None:
    assert decode([0x41FF], DataType.STRING) == "A\ufffd"


NUMERIC = [DataType(t) for t in STRUCT_FORMATS]


def _value_strategy(dt: DataType) -> st.SearchStrategy[int | float]:
    if dt is DataType.FLOAT32:
        return st.floats(width=32, allow_nan=False)
    if dt is DataType.FLOAT64:
        return st.floats(allow_nan=False)
    bits = int(dt.removeprefix("u").removeprefix("int"))
    signed = not dt.startswith("u")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return st.integers(low, high)


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[DataType, int | float, str, str]:
    dt = draw(st.sampled_from(NUMERIC))
    bo, wo = draw(st.sampled_from(ORDERS))
    return dt, draw(_value_strategy(dt)), bo, wo


@settings(max_examples=300, deadline=None)
@given(typed_values())
def test_round_trip_value_registers_value(case: tuple[DataType, int | float, str, str]) -> None:
    dt, value, bo, wo = case
    regs = encode(value, dt, bo, wo)
    assert len(regs) == register_count(dt)
    assert all(0 <= r <= 0xFFFF for r in regs)
    decoded = decode(regs, dt, bo, wo)
    fmt = STRUCT_FORMATS[dt]
    # Struct-exact: tells -0.0 from 0.0 and pins float32 rounding.
    assert struct.pack(fmt, decoded) == struct.pack(fmt, value)
    if dt is not DataType.FLOAT32:
        assert decoded == value


@st.composite
def typed_registers(draw: st.DrawFn) -> tuple[DataType, list[int], str, str]:
    dt = draw(st.sampled_from(NUMERIC))
    bo, wo = draw(st.sampled_from(ORDERS))
    regs = draw(st.lists(st.integers(0, 0xFFFF), min_size=register_count(dt), max_size=register_count(dt)))
    return dt, regs, bo, wo


@settings(max_examples=300, deadline=None)
@given(typed_registers())
def test_round_trip_registers_value_registers(case: tuple[DataType, list[int], str, str]) -> None:
    dt, regs, bo, wo = case
    value = decode(regs, dt, bo, wo)
    if isinstance(value, float) and math.isnan(value):
        return  # NaN payloads need not survive a trip through a Python float
    assert encode(value, dt, bo, wo) == regs


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decode([0x42F6], DataType.FLOAT32), "float32 needs 2 registers, got 1"),
        (lambda: decode([1, 2], DataType.INT16), "int16 needs 1 register, got 2"),
        (lambda: decode([1, 2, 3], DataType.FLOAT64), "float64 needs 4 registers, got 3"),
        (lambda: decode([0x10000, 0], DataType.UINT32), "register 0 value 65536 out of range 0..65535"),
        (lambda: decode([0, -1], DataType.UINT32), "register 1 value -1 out of range 0..65535"),
        (lambda: decode([1.5], DataType.UINT16), "register 0 is float"),
        (lambda: decode([1], DataType.BOOL), "bool from a register needs bit 0..15, got None"),
        (lambda: decode([1], DataType.BOOL, bit=16), "bool from a register needs bit 0..15, got 16"),
        (lambda: decode([1, 2], DataType.BOOL, bit=0), "bool needs 1 register, got 2"),
        (lambda: decode([], DataType.STRING), "string needs at least 1 register, got 0"),
        (lambda: decode([1, 2], DataType.STRING, string_length=5), "string of 5 characters needs 3 registers, got 2"),
        (lambda: decode([1], DataType.STRING, string_length=0), "string needs string_length >= 1, got 0"),
        (lambda: decode([1], "int8"), "unknown data type 'int8'"),
        (lambda: decode([1], DataType.INT16, "middle"), "unknown byte order 'middle'"),
        (lambda: decode([1], DataType.INT16, "big", "cdab"), "unknown word order 'cdab'"),
        (lambda: encode(40000, DataType.INT16), "int16 value 40000 out of range -32768..32767"),
        (lambda: encode(-1, DataType.UINT16), "uint16 value -1 out of range 0..65535"),
        (lambda: encode(2**32, DataType.UINT32), "uint32 value 4294967296 out of range 0..4294967295"),
        (lambda: encode(-(2**63) - 1, DataType.INT64), "int64 value -9223372036854775809 out of range"),
        (lambda: encode(2**64, DataType.UINT64), "uint64 value 18446744073709551616 out of range"),
        (lambda: encode(1.5, DataType.INT32), "int32 value must be int, got float 1.5"),
        (lambda: encode(True, DataType.UINT16), "uint16 value must be int, got bool"),
        (lambda: encode(1e39, DataType.FLOAT32), "float32 cannot hold 1e+39"),
        (lambda: encode("1.0", DataType.FLOAT64), "float64 value must be a number, got str"),
        (lambda: encode(True, DataType.BOOL), "bool from a register needs bit 0..15, got None"),
        (lambda: encode(1, DataType.BOOL, bit=0), "bool value must be bool, got int"),
        (lambda: encode("ABCDE", DataType.STRING, string_length=4), "string value of 5 characters exceeds"),
        (lambda: encode("Ω", DataType.STRING), "string value 'Ω' is not ASCII"),
        (lambda: encode("", DataType.STRING), "string needs string_length >= 1, got 0"),
        (lambda: encode(12, DataType.STRING), "string value must be str, got int"),
        (lambda: register_count(DataType.STRING), "string needs string_length >= 1, got 0"),
        (lambda: apply_scaling(5, 4, 4, 0, 100), "scaling needs raw_low != raw_high, both are 4"),
        (lambda: reverse_scaling(5, 4, 4, 0, 100), "scaling needs raw_low != raw_high, both are 4"),
        (lambda: reverse_scaling(5, 4, 20, 7, 7), "reverse scaling needs eng_low != eng_high, both are 7"),
    ],
)
def test_codec_errors(call: object, message: str) -> None:
    with pytest.raises(CodecError) as exc:
        call()  # type: ignore[operator]
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_float_extremes_encode() -> None:
    # Overflow is refused, but the largest float32 and the special values are not.
    big = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]
    assert encode(big, DataType.FLOAT32) == [0x7F7F, 0xFFFF]
    assert encode(math.inf, DataType.FLOAT32) == [0x7F80, 0x0000]
    assert encode(-math.inf, DataType.FLOAT32, "little", "little") == [0x0000, 0x80FF]
    assert encode(1, DataType.FLOAT32) == [0x3F80, 0x0000]


def test_scaling_known_values() -> None:
    # 4..20 mA transmitter for 0..100 %, and a 0..27648 S7-style analogue input for -50..150 °C.
    assert apply_scaling(12, 4, 20, 0, 100) == 50
    assert apply_scaling(4, 4, 20, 0, 100) == 0
    assert apply_scaling(13824, 0, 27648, -50, 150) == 50
    assert reverse_scaling(50, 0, 27648, -50, 150) == 13824
    # Not clamped: over-range extrapolates; inverted ranges work.
    assert apply_scaling(24, 4, 20, 0, 100) == 125
    assert apply_scaling(0, 0, 100, 100, 0) == 100


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(raw=finite, raw_low=finite, raw_high=finite, eng_low=finite, eng_high=finite)
def test_scaling_round_trip(raw: float, raw_low: float, raw_high: float, eng_low: float, eng_high: float) -> None:
    # Ranges narrower than ~1e-3 of their magnitude make the round trip
    # ill-conditioned; no real transmitter is configured that way.
    scale = max(abs(raw_low), abs(raw_high), abs(eng_low), abs(eng_high), abs(raw), 1.0)
    if abs(raw_high - raw_low) < 1e-3 * scale or abs(eng_high - eng_low) < 1e-3 * scale:
        return
    eng = apply_scaling(raw, raw_low, raw_high, eng_low, eng_high)
    back = reverse_scaling(eng, raw_low, raw_high, eng_low, eng_high)
    assert math.isclose(back, raw, rel_tol=1e-9, abs_tol=1e-9 * scale)


@pytest.mark.parametrize(("byte_order", "word_order"), ORDERS)
def test_float_nan_decodes_to_nan(byte_order: str, word_order: str) -> None:
    regs32 = encode(math.nan, DataType.FLOAT32, byte_order, word_order)
    regs64 = encode(math.nan, DataType.FLOAT64, byte_order, word_order)
    for regs, dt in ((regs32, DataType.FLOAT32), (regs64, DataType.FLOAT64)):
        value = decode(regs, dt, byte_order, word_order)
        assert isinstance(value, float) and math.isnan(value)
        assert is_nan(value)
    # A NaN with another payload and the sign bit set is still a NaN.
    assert math.isnan(decode([0xFFC1, 0x2345], DataType.FLOAT32))
    assert not is_nan(0.0) and not is_nan(1) and not is_nan("nan")


def test_sentinels() -> None:
    sentinels = [(0xFFFF, 0xFFFF), [0x8000, 0x0000], (0x7FFF,)]
    assert is_sentinel([0xFFFF, 0xFFFF], sentinels)
    assert is_sentinel((0x8000, 0x0000), sentinels)
    assert is_sentinel([0x7FFF], sentinels)
    assert not is_sentinel([0xFFFF, 0xFFFE], sentinels)
    assert not is_sentinel([0x8000], sentinels)  # a prefix is not a match
    assert not is_sentinel([0x8000, 0x0000, 0x0000], sentinels)
    assert not is_sentinel([0xFFFF, 0xFFFF], [])
    # Accepts any iterable, including a one-shot generator.
    assert is_sentinel([1, 2], (s for s in [(3, 4), (1, 2)]))
    # 0x8000 0x0000 as int32 is the most negative value, the usual int32 "n/a".
    assert decode([0x8000, 0x0000], DataType.INT32) == -(2**31)
