"""Register maps of the simulated devices, as data (stdlib and ``drivers.registers`` only).

Each profile lists the points one product family exposes: name, Modbus
function, 0-based PDU address, data type, byte/word order, scaling, unit and
the model signal that feeds it. The maps follow the manuals of real devices
closely enough that a meter template written for the real thing reads the
simulator, but they are not complete copies of any manual.

Scaling, one rule everywhere::

    engineering value = raw register value * scale      (scale: device encoding)
    engineering value = model signal * gain             (gain: unit conversion, e.g. kW -> W)

Addresses are PDU addresses (what goes on the wire, starting at 0). Manuals
that number registers from 1 (Schneider) or as 3xxxx/4xxxx (Eastron) are
converted here; the docstring of each profile says how.

``fill_gap``: a real device usually answers a read that spans unused
registers between two points inside one "page" (returning zeros), but refuses
one that strays into addresses it does not implement. Gaps of up to
``fill_gap`` registers between points are readable zeros; a larger gap and
everything outside the map answer exception 02 (illegal data address). The
PM5xxx profile has ``fill_gap = 0`` so that the read planner's ``split`` path
(a merged request the device rejects) has a device to be tested against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from drivers.registers import INT_RANGES, ByteOrder, DataType, WordOrder, decode, encode, register_count

__all__ = [
    "FILLER_START",
    "PROFILES",
    "Function",
    "PointSpec",
    "Profile",
    "decode_point",
    "encode_point",
    "filler_points",
]


class Function(IntEnum):
    """The four Modbus data tables, numbered by their read function code."""

    COIL = 1
    DISCRETE_INPUT = 2
    HOLDING = 3
    INPUT = 4

    @property
    def is_bit(self) -> bool:
        return self in (Function.COIL, Function.DISCRETE_INPUT)


_FLOATS = (DataType.FLOAT32, DataType.FLOAT64)


@dataclass(frozen=True, slots=True)
class PointSpec:
    """One value a device exposes.

    ``bit`` places a bool inside a register (a status word); bools on the
    coil and discrete-input tables take one bit address each and no ``bit``.
    ``writable`` points accept client writes, which the model reads at the
    next update (setpoints, commands); every other point refuses writes with
    exception 02, as read-only registers of real devices do.
    """

    name: str
    function: Function
    address: int
    data_type: DataType
    signal: str
    unit: str = ""
    word_order: WordOrder = WordOrder.BIG
    byte_order: ByteOrder = ByteOrder.BIG
    scale: float = 1.0
    gain: float = 1.0
    bit: int | None = None
    writable: bool = False
    description: str = ""

    @property
    def count(self) -> int:
        """Registers (or bits, on the bit tables) the point occupies."""
        if self.function.is_bit:
            return 1
        return register_count(self.data_type)

    @property
    def end(self) -> int:
        """First address after the point."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class Profile:
    """A device type: its register map and the model that drives it."""

    kind: str
    title: str
    model: str
    points: tuple[PointSpec, ...]
    fill_gap: int = 0
    notes: str = ""
    by_name: dict[str, PointSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_points(self.kind, self.points)
        object.__setattr__(self, "by_name", {p.name: p for p in self.points})

    def point(self, name: str) -> PointSpec:
        return self.by_name[name]

    def functions(self) -> list[Function]:
        return sorted({p.function for p in self.points})

    def summary(self) -> str:
        """One line per table: function, address range, point count and types."""
        parts = []
        for fn in self.functions():
            pts = [p for p in self.points if p.function is fn]
            lo = min(p.address for p in pts)
            hi = max(p.end for p in pts) - 1
            types = sorted({_type_label(p) for p in pts})
            parts.append(f"{fn.name.lower()} {lo}-{hi} ({len(pts)} pts: {', '.join(types)})")
        return "; ".join(parts)


def _type_label(p: PointSpec) -> str:
    if p.data_type is DataType.BOOL:
        return "bit" if p.bit is not None else "bool"
    if register_count(p.data_type) > 1:
        return f"{p.data_type} {'hi-lo' if p.word_order is WordOrder.BIG else 'lo-hi'} words"
    return str(p.data_type)


def _check_points(kind: str, points: Sequence[PointSpec]) -> None:
    """Refuse a map with overlapping points, bad addresses or impossible types."""
    seen_names: set[str] = set()
    taken: dict[tuple[Function, int], str] = {}
    bits_taken: dict[tuple[Function, int], set[int]] = {}
    for p in points:
        if p.name in seen_names:
            raise ValueError(f"{kind}: duplicate point name {p.name!r}")
        seen_names.add(p.name)
        if not 0 <= p.address or p.end > 0x10000:
            raise ValueError(f"{kind}.{p.name}: address {p.address} outside 0..65535")
        if p.function.is_bit:
            if p.data_type is not DataType.BOOL or p.bit is not None:
                raise ValueError(f"{kind}.{p.name}: coils and discrete inputs hold plain bools")
        elif p.data_type is DataType.BOOL:
            if p.bit is None or not 0 <= p.bit <= 15:
                raise ValueError(f"{kind}.{p.name}: a bool in a register needs bit 0..15")
            key = (p.function, p.address)
            if key in taken:
                raise ValueError(f"{kind}.{p.name}: register {p.address} already holds {taken[key]}")
            used = bits_taken.setdefault(key, set())
            if p.bit in used:
                raise ValueError(f"{kind}.{p.name}: bit {p.bit} of register {p.address} used twice")
            used.add(p.bit)
            continue
        if p.data_type is DataType.STRING:
            raise ValueError(f"{kind}.{p.name}: string points are not simulated")
        if p.scale == 0 or p.gain == 0:
            raise ValueError(f"{kind}.{p.name}: scale and gain must be non-zero")
        for a in range(p.address, p.end):
            key = (p.function, a)
            if key in taken or key in bits_taken:
                raise ValueError(f"{kind}.{p.name}: address {a} overlaps {taken.get(key, 'a status word')}")
            taken[key] = p.name


def encode_point(point: PointSpec, value: float | int | bool) -> list[int]:
    """Registers (or one 0/1 bit on the bit tables) for a model signal value.

    Integers are rounded to the nearest raw step and clamped to the type's
    range, as a device's firmware saturates rather than wraps a reading.
    A bool in a register returns the register with only its bit set or clear.
    """
    if point.data_type is DataType.BOOL:
        if point.function.is_bit:
            return [1 if value else 0]
        return encode(bool(value), DataType.BOOL, point.byte_order, point.word_order, bit=point.bit)
    eng = value * point.gain
    if point.data_type in _FLOATS:
        return encode(float(eng / point.scale), point.data_type, point.byte_order, point.word_order)
    raw = _round_raw(eng / point.scale)
    low, high = INT_RANGES[point.data_type]
    return encode(min(max(raw, low), high), point.data_type, point.byte_order, point.word_order)


def _round_raw(x: float) -> int:
    if math.isnan(x):
        return 0
    return int(round(x))


def decode_point(point: PointSpec, registers: Sequence[int] | Sequence[bool]) -> float | int | bool:
    """The model signal value a point's registers (or bit) stand for: the inverse of ``encode_point``.

    Integer points with ``scale == gain == 1`` return the raw int; other
    numeric points return a float; bools return bool.
    """
    if point.data_type is DataType.BOOL:
        if point.function.is_bit:
            return bool(registers[0])
        return bool(decode(list(registers), DataType.BOOL, point.byte_order, point.word_order, bit=point.bit))
    raw = decode(list(registers), point.data_type, point.byte_order, point.word_order)
    if point.scale == 1 and point.gain == 1:
        return raw
    # Divide by 10, 1000... rather than multiply by 0.1, 0.001: 549 / 10 is 54.9, 549 * 0.1 is not.
    inverse = 1 / point.scale
    eng = raw / round(inverse) if abs(inverse - round(inverse)) < 1e-9 else raw * point.scale
    return eng / point.gain


# ---------------------------------------------------------------------------
# Filler points: extra float32 input registers for load tests of many tags.

FILLER_START = 1000
"""First address of the filler block (FC4): above every profile's input map."""


def filler_points(count: int, start: int = FILLER_START) -> list[PointSpec]:
    """``count`` float32 input-register points at ``start``, ``start+2``... fed by ``filler_<k>``."""
    if count < 0 or start + 2 * count > 0x10000:
        raise ValueError(f"cannot place {count} float32 filler points from address {start}")
    return [
        PointSpec(f"filler_{k:05d}", Function.INPUT, start + 2 * k, DataType.FLOAT32, f"filler_{k}", unit="")
        for k in range(count)
    ]


# ---------------------------------------------------------------------------
# The profiles.

F32, U16, I16, U32, I32, I64, BOOL = (
    DataType.FLOAT32,
    DataType.UINT16,
    DataType.INT16,
    DataType.UINT32,
    DataType.INT32,
    DataType.INT64,
    DataType.BOOL,
)
IR, HR, CO, DI = Function.INPUT, Function.HOLDING, Function.COIL, Function.DISCRETE_INPUT
LW = WordOrder.LITTLE


def _pts(function: Function, data_type: DataType, rows: Iterable[tuple], **common) -> tuple[PointSpec, ...]:
    """Points sharing a table and type: rows of (name, address, signal, unit[, extra kwargs])."""
    out = []
    for row in rows:
        name, address, signal, unit, *extra = row
        kwargs = {**common, **(extra[0] if extra else {})}
        out.append(PointSpec(name, function, address, data_type, signal, unit, **kwargs))
    return tuple(out)


SDM630 = Profile(
    kind="sdm630",
    title="Eastron SDM630-style three-phase meter",
    model="meter",
    fill_gap=300,
    notes="FC4 input registers, float32 high word first; manual 3xxxx numbers minus 30001 (30001 -> 0x0000).",
    points=_pts(
        IR,
        F32,
        [
            ("voltage_l1", 0x0000, "voltage_l1", "V"),
            ("voltage_l2", 0x0002, "voltage_l2", "V"),
            ("voltage_l3", 0x0004, "voltage_l3", "V"),
            ("current_l1", 0x0006, "current_l1", "A"),
            ("current_l2", 0x0008, "current_l2", "A"),
            ("current_l3", 0x000A, "current_l3", "A"),
            ("power_l1", 0x000C, "power_l1", "W", {"gain": 1000.0}),
            ("power_l2", 0x000E, "power_l2", "W", {"gain": 1000.0}),
            ("power_l3", 0x0010, "power_l3", "W", {"gain": 1000.0}),
            ("power_total", 0x0034, "power_total", "W", {"gain": 1000.0}),
            ("pf_total", 0x003E, "pf_total", ""),
            ("frequency", 0x0046, "frequency", "Hz"),
            ("import_kwh", 0x0048, "import_kwh", "kWh"),
            ("export_kwh", 0x004A, "export_kwh", "kWh"),
            ("total_kwh", 0x0156, "total_kwh", "kWh"),
        ],
    ),
)

PM5XXX = Profile(
    kind="pm5xxx",
    title="Schneider PM5100/PM5300-style meter",
    model="meter",
    fill_gap=0,
    notes=(
        "FC3 holding registers, float32 high word first. The manual numbers registers from 1: "
        "register 3000 (Current A) is PDU address 2999, and so on. Energy is int64 Wh, four registers."
    ),
    points=_pts(
        HR,
        F32,
        [
            ("current_l1", 2999, "current_l1", "A"),
            ("current_l2", 3001, "current_l2", "A"),
            ("current_l3", 3003, "current_l3", "A"),
            ("voltage_l1", 3027, "voltage_l1", "V"),
            ("voltage_l2", 3029, "voltage_l2", "V"),
            ("voltage_l3", 3031, "voltage_l3", "V"),
            ("power_l1", 3053, "power_l1", "kW"),
            ("power_l2", 3055, "power_l2", "kW"),
            ("power_l3", 3057, "power_l3", "kW"),
            ("power_total", 3059, "power_total", "kW"),
            ("pf_total", 3083, "pf_total", ""),
            ("frequency", 3109, "frequency", "Hz"),
        ],
    )
    + _pts(HR, I64, [("import_wh", 3203, "import_kwh", "Wh", {"gain": 1000.0})]),
)

EM24 = Profile(
    kind="em24",
    title="Carlo Gavazzi EM24-style meter",
    model="meter",
    fill_gap=100,
    notes=(
        "FC4 input registers; int32 low word first with fixed weights: V x10, A x1000, W x10, "
        "kWh x10; PF int16 x1000 (0x0031), Hz int16 x10 (0x0033)."
    ),
    points=_pts(
        IR,
        I32,
        [
            ("voltage_l1", 0x0000, "voltage_l1", "V", {"scale": 0.1}),
            ("voltage_l2", 0x0002, "voltage_l2", "V", {"scale": 0.1}),
            ("voltage_l3", 0x0004, "voltage_l3", "V", {"scale": 0.1}),
            ("current_l1", 0x000C, "current_l1", "A", {"scale": 0.001}),
            ("current_l2", 0x000E, "current_l2", "A", {"scale": 0.001}),
            ("current_l3", 0x0010, "current_l3", "A", {"scale": 0.001}),
            ("power_l1", 0x0012, "power_l1", "W", {"scale": 0.1, "gain": 1000.0}),
            ("power_l2", 0x0014, "power_l2", "W", {"scale": 0.1, "gain": 1000.0}),
            ("power_l3", 0x0016, "power_l3", "W", {"scale": 0.1, "gain": 1000.0}),
            ("power_total", 0x0028, "power_total", "W", {"scale": 0.1, "gain": 1000.0}),
            ("import_kwh", 0x0034, "import_kwh", "kWh", {"scale": 0.1}),
            ("export_kwh", 0x004E, "export_kwh", "kWh", {"scale": 0.1}),
        ],
        word_order=LW,
    )
    + _pts(
        IR,
        I16,
        [
            ("pf_total", 0x0031, "pf_total", "", {"scale": 0.001}),
            ("frequency", 0x0033, "frequency", "Hz", {"scale": 0.1}),
        ],
    ),
)

# Deep Sea GenComm numbers registers as page * 256 + offset (page 3 status,
# page 4 instrumentation, page 7 accumulated, page 16 control). The offsets
# here are in that spirit, not a copy of any controller's full map.
DG_START = 35705
DG_STOP = 35700

DG = Profile(
    kind="dg",
    title="Diesel generator controller (Deep Sea GenComm-style)",
    model="dg",
    fill_gap=64,
    notes=(
        "FC3 holding registers, 32-bit values high word first. Status word 768: bit 0 running, "
        f"bit 1 low fuel. Control: write key to 4104 and 65535-key to 4105 in one request or two "
        f"(key {DG_START} start, {DG_STOP} stop); the controller clears both once acted on."
    ),
    points=_pts(
        HR,
        BOOL,
        [
            ("running", 768, "running", "", {"bit": 0}),
            ("low_fuel_alarm", 768, "low_fuel_alarm", "", {"bit": 1}),
        ],
    )
    + _pts(
        HR,
        U16,
        [
            ("oil_pressure", 1024, "oil_pressure_kpa", "kPa"),
            ("fuel_level", 1027, "fuel_level", "%", {"scale": 0.1}),
            ("engine_speed", 1030, "rpm", "rpm"),
            ("frequency", 1031, "frequency", "Hz", {"scale": 0.1}),
        ],
    )
    + _pts(HR, I32, [("power_total", 1060, "power_kw", "W", {"gain": 1000.0})])
    + _pts(
        HR,
        U32,
        [
            ("engine_hours", 1798, "engine_hours", "h", {"scale": 1 / 3600}),
            ("energy_kwh", 1800, "energy_kwh", "kWh", {"scale": 0.1}),
            ("start_count", 1808, "start_count", ""),
        ],
    )
    + _pts(
        HR,
        U16,
        [
            ("control_key", 4104, "control_key", "", {"writable": True}),
            ("control_check", 4105, "control_check", "", {"writable": True}),
        ],
    ),
)

INVERTER = Profile(
    kind="inverter",
    title="Solar PV inverter",
    model="inverter",
    fill_gap=16,
    notes=(
        "FC4 input registers; float32 LOW word first (CDAB, as several inverter brands send it); "
        "total energy uint32 x10 high word first; status uint16 (SunSpec St: 2 sleeping, 4 MPPT); "
        "heat-sink temperature int16 x10."
    ),
    points=_pts(
        IR,
        F32,
        [
            ("ac_power", 0, "ac_power_kw", "kW"),
            ("dc_voltage", 2, "dc_voltage", "V"),
            ("dc_current", 4, "dc_current", "A"),
            ("daily_energy", 6, "daily_kwh", "kWh"),
        ],
        word_order=LW,
    )
    + _pts(IR, U32, [("total_energy", 8, "total_kwh", "kWh", {"scale": 0.1})])
    + _pts(IR, U16, [("status", 10, "status", "")])
    + _pts(IR, I16, [("temperature", 11, "temperature", "degC", {"scale": 0.1})]),
)

PUMP_PLC = Profile(
    kind="pump_plc",
    title="Pump station PLC (tank and transfer pump)",
    model="pump",
    fill_gap=16,
    notes=(
        "FC3 uint16 x10: level 0, pump flow 1, demand outflow 2; setpoints high 10 and low 11 "
        "(writable, %). Coils: 0 pump running (read-only), 1 manual run command (writable). "
        "Discrete inputs: 0 low level alarm, 1 high level alarm. In auto the pump starts at or "
        "below the low setpoint and stops at or above the high one; the manual command runs it "
        "regardless, up to the 98 % high-high interlock."
    ),
    points=_pts(
        HR,
        U16,
        [
            ("tank_level", 0, "level", "%", {"scale": 0.1}),
            ("pump_flow", 1, "flow", "m3/h", {"scale": 0.1}),
            ("outflow", 2, "outflow", "m3/h", {"scale": 0.1}),
            ("level_high_sp", 10, "level_high_sp", "%", {"scale": 0.1, "writable": True}),
            ("level_low_sp", 11, "level_low_sp", "%", {"scale": 0.1, "writable": True}),
        ],
    )
    + _pts(
        CO,
        BOOL,
        [
            ("pump_running", 0, "running", ""),
            ("manual_run", 1, "manual_run", "", {"writable": True}),
        ],
    )
    + _pts(
        DI,
        BOOL,
        [
            ("low_level_alarm", 0, "low_level_alarm", ""),
            ("high_level_alarm", 1, "high_level_alarm", ""),
        ],
    ),
)

PROFILES: dict[str, Profile] = {p.kind: p for p in (SDM630, PM5XXX, EM24, DG, INVERTER, PUMP_PLC)}
"""Every simulated device type by its ``kind`` (the ``--types`` names)."""
