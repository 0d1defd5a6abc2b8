"""Meter templates: the register map of one meter model, once, as a TOML file.

A template says where a model keeps each reading (Modbus table, register, type, word
order, fixed scale, unit) under a fixed vocabulary of quantities (`QUANTITIES`), so
that adding a meter to the plant is "this is a PM5300 behind 200/5 A CTs and
11000/110 V PTs" instead of thirty hand-written tags. `template_tags` turns a template
plus the installation's CT/PT ratios into ordinary `TagSpec`s: one tag per point, at
``<prefix>/<quantity>``, in the quantity's canonical unit (kW, kWh, V, A ...), with
the register scale, the unit conversion and the CT/PT ratio folded into the tag's
linear scaling.

The shipped templates live in ``etc/meter-templates/*.toml`` (`SHIPPED`).

File format::

    name = "schneider-pm5xxx"           # [a-z0-9_-], unique among the loaded templates
    manufacturer = "Schneider Electric"
    model = "PM5100 / PM5300"
    description = "..."                 # optional
    function = 3                        # optional default of every point (3 if absent)
    word_order = "big"                  # optional default (big if absent)
    byte_order = "big"                  # optional default (big if absent)

    [[points]]
    quantity = "voltage_l1"   # one of QUANTITIES
    address = 3027            # 0-based register (PDU address, what goes on the wire)
    type = "float32"          # int16 uint16 int32 uint32 int64 float32 float64 bool
    unit = "V"                # the unit of raw x scale; W, Wh, var, VA, varh, kV, s ...
                              # are converted to the quantity's canonical unit (`canonical`)
    scale = 1.0               # optional: raw x scale = value in `unit` (not 0)
    ratio = "voltage"         # optional: current | voltage | power | energy | none
                              # (default: the quantity's ratio class)
    sentinels = [-32768]      # optional: raw values meaning "not available" (<= 8)
    transform = "pf_4q"       # optional: Schneider four-quadrant power factor
    function = 4              # optional: override the file's default
    word_order = "little"     # optional: override the file's default
    byte_order = "little"     # optional: override the file's default
    bit = 0                   # bool in a holding/input register: its bit (0..15)

Every mistake is a `TemplateError` whose message starts with ``<file>:<line>: `` and
names the field: ``meters.toml:41: points[3].type: unknown type 'float33'``. TOML
syntax errors keep tomllib's line; other errors point at the offending ``[[points]]``
header (or the top-level key).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from scadad.api.tag_messages import TagSpec
from scadad.energy.math import ratio_factor

__all__ = [
    "QUANTITIES",
    "SHIPPED",
    "MeterTemplate",
    "Quantity",
    "TemplateError",
    "TemplatePoint",
    "canonical",
    "load_dir",
    "parse_template",
    "template_tags",
]


@dataclass(frozen=True, slots=True)
class Quantity:
    """One word of the vocabulary: its canonical unit, default ratio class and meaning."""

    unit: str
    ratio: str
    description: str
    boolean: bool = False


# The words templates may use. Energy reports, dashboards and alarms find a meter's
# readings by these names, so a template cannot invent its own: add the word here.
QUANTITIES: dict[str, Quantity] = {
    "voltage_l1": Quantity("V", "voltage", "Voltage L1-N"),
    "voltage_l2": Quantity("V", "voltage", "Voltage L2-N"),
    "voltage_l3": Quantity("V", "voltage", "Voltage L3-N"),
    "voltage_l12": Quantity("V", "voltage", "Voltage L1-L2"),
    "voltage_l23": Quantity("V", "voltage", "Voltage L2-L3"),
    "voltage_l31": Quantity("V", "voltage", "Voltage L3-L1"),
    "current_l1": Quantity("A", "current", "Current L1"),
    "current_l2": Quantity("A", "current", "Current L2"),
    "current_l3": Quantity("A", "current", "Current L3"),
    "current_n": Quantity("A", "current", "Current neutral"),
    "power_l1": Quantity("kW", "power", "Active power L1"),
    "power_l2": Quantity("kW", "power", "Active power L2"),
    "power_l3": Quantity("kW", "power", "Active power L3"),
    "power_total": Quantity("kW", "power", "Active power total"),
    "reactive_total": Quantity("kvar", "power", "Reactive power total"),
    "apparent_total": Quantity("kVA", "power", "Apparent power total"),
    "pf_l1": Quantity("", "none", "Power factor L1"),
    "pf_l2": Quantity("", "none", "Power factor L2"),
    "pf_l3": Quantity("", "none", "Power factor L3"),
    "pf_total": Quantity("", "none", "Power factor total"),
    "frequency": Quantity("Hz", "none", "Frequency"),
    "import_kwh": Quantity("kWh", "energy", "Active energy imported (delivered)"),
    "export_kwh": Quantity("kWh", "energy", "Active energy exported (received)"),
    "total_kwh": Quantity("kWh", "energy", "Active energy total (import + export)"),
    "import_kvarh": Quantity("kvarh", "energy", "Reactive energy imported (delivered)"),
    "fuel_level": Quantity("%", "none", "Fuel level"),
    "run_hours": Quantity("h", "none", "Engine run hours"),
    "starts": Quantity("count", "none", "Number of starts"),
    "running": Quantity("", "none", "Running", boolean=True),
    "low_fuel_alarm": Quantity("", "none", "Low fuel alarm", boolean=True),
    "engine_speed": Quantity("rpm", "none", "Engine speed"),
    "oil_pressure": Quantity("kPa", "none", "Oil pressure"),
    "dc_voltage": Quantity("V", "none", "DC voltage"),
    "dc_current": Quantity("A", "none", "DC current"),
    # An inverter's own daily counter is no CT reading: never ratio-scaled.
    "daily_kwh": Quantity("kWh", "none", "Energy today"),
    "status": Quantity("", "none", "Operating status"),
    "temperature": Quantity("degC", "none", "Temperature"),
}

RATIOS = ("current", "voltage", "power", "energy", "none")
TRANSFORMS = ("pf_4q",)
# Register count per type; uint64 and string are left out: no tag type / no reading.
TYPES: dict[str, int] = {
    "bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "float32": 2, "float64": 4,
}  # fmt: skip
_INT_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# A float register has no natural range; scaling only needs two points. A power of
# two keeps eng/raw exactly the factor (the table recomputes k from the four values).
_FLOAT_RANGE = (-(2.0**100), 2.0**100)
_MAX_SENTINELS = 8  # TagSpec.sentinels' limit

# Unit -> (canonical unit, factor). Units not listed are canonical already.
_UNITS: dict[str, tuple[str, float]] = {
    "W": ("kW", 0.001), "MW": ("kW", 1000.0),
    "Wh": ("kWh", 0.001), "MWh": ("kWh", 1000.0),
    "var": ("kvar", 0.001), "Mvar": ("kvar", 1000.0),
    "VA": ("kVA", 0.001), "MVA": ("kVA", 1000.0),
    "varh": ("kvarh", 0.001), "Mvarh": ("kvarh", 1000.0),
    "VAh": ("kVAh", 0.001),
    "kV": ("V", 1000.0), "mV": ("V", 0.001),
    "kA": ("A", 1000.0), "mA": ("A", 0.001),
    "s": ("h", 1 / 3600), "min": ("h", 1 / 60),
    "bar": ("kPa", 100.0), "MPa": ("kPa", 1000.0),
    "mHz": ("Hz", 0.001),
}  # fmt: skip

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_POINTS_HEADER = re.compile(r"^\s*\[\[\s*points\s*\]\]")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)$")

_TOP_KEYS = {"name", "manufacturer", "model", "description", "function", "word_order", "byte_order", "points"}
_POINT_KEYS = {
    "quantity", "address", "type", "unit", "scale", "ratio", "sentinels", "transform",
    "function", "word_order", "byte_order", "bit",
}  # fmt: skip


class TemplateError(ValueError):
    """A template that cannot be used; the message is ``<source>:<line>: <field>: <what>``."""


@dataclass(frozen=True, slots=True)
class TemplatePoint:
    """One reading of a meter model. ``address`` is 0-based; ``unit`` is what raw x scale is in."""

    quantity: str
    address: int
    function: int
    data_type: str
    word_order: str
    byte_order: str
    scale: float
    unit: str
    ratio: str
    sentinels: tuple[float, ...]
    transform: str | None
    bit: int | None
    line: int

    @property
    def count(self) -> int:
        """Registers (or bits, on the coil / discrete input tables) the point takes."""
        return 1 if self.function in (1, 2) else TYPES[self.data_type]


@dataclass(frozen=True, slots=True)
class MeterTemplate:
    """A meter model's register map; ``source`` is the file it came from."""

    name: str
    manufacturer: str
    model: str
    description: str
    points: tuple[TemplatePoint, ...]
    source: str

    def point(self, quantity: str) -> TemplatePoint:
        for p in self.points:
            if p.quantity == quantity:
                return p
        raise KeyError(quantity)


def canonical(unit: str) -> tuple[str, float]:
    """The canonical unit for ``unit`` and the factor into it: ``W`` -> ``("kW", 0.001)``.

    Units without a conversion (``V``, ``kWh``, ``Hz``, ``%``, ``rpm`` ...) come back
    unchanged with factor 1.
    """
    return _UNITS.get(unit, (unit, 1.0))


# --------------------------------------------------------------------------- parsing


def parse_template(text: str, source: str = "<template>") -> MeterTemplate:
    """Parse and check one template file's text; raises TemplateError naming source, line and field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_LINE.search(msg)
        # tomllib names no line for an error at the end of the document: that is the last line.
        line = int(m.group(1)) if m else max(1, len(text.rstrip("\n").splitlines()))
        raise TemplateError(f"{source}:{line}: TOML syntax: {_TOML_LINE.sub('', msg).strip()}") from None
    return _Parser(text, source).template(doc)


class _Parser:
    """Checks a decoded document; knows the text's lines so errors can point at them."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = text.splitlines()
        self.headers = [n for n, line in enumerate(self.lines, 1) if _POINTS_HEADER.match(line)]

    def _key_line(self, key: str) -> int:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        table = re.compile(rf"^\s*\[+\s*{re.escape(key)}\s*\]")  # an unknown `[key]` table
        for n, line in enumerate(self.lines, 1):
            if table.match(line):
                return n
        for n, line in enumerate(self.lines, 1):
            if line.lstrip().startswith("["):
                break  # past the top-level table
            if pattern.match(line):
                return n
        return 1

    def _point_line(self, index: int) -> int:
        # Points written as `[[points]]` tables map to their headers in order; an inline
        # `points = [...]` array has no headers, so its errors point at `points =`.
        if len(self.headers) > index:
            return self.headers[index]
        return self._key_line("points")

    def fail(self, line: int, field: str, message: str) -> TemplateError:
        return TemplateError(f"{self.source}:{line}: {field}: {message}")

    def template(self, doc: dict[str, Any]) -> MeterTemplate:
        def top(msg: str, key: str) -> TemplateError:
            return self.fail(self._key_line(key), key, msg)

        for key in doc:
            if key not in _TOP_KEYS:
                raise top(f"unknown key (one of {', '.join(sorted(_TOP_KEYS))})", key)
        name = self._text(doc, "name", top, required=True)
        if not _NAME.match(name):
            raise top(f"{name!r} is not a name ([a-z0-9_-], starting with a letter or digit)", "name")
        manufacturer = self._text(doc, "manufacturer", top, required=True)
        model = self._text(doc, "model", top, required=True)
        description = self._text(doc, "description", top)
        function = self._function(doc.get("function", 3), lambda m: top(m, "function"))
        word_order = self._order(doc.get("word_order", "big"), lambda m: top(m, "word_order"))
        byte_order = self._order(doc.get("byte_order", "big"), lambda m: top(m, "byte_order"))
        raw_points = doc.get("points")
        if not isinstance(raw_points, list) or not raw_points:
            raise top("a template needs at least one [[points]] entry", "points")
        points = tuple(self.point(i, raw, function, word_order, byte_order) for i, raw in enumerate(raw_points))
        self._check_layout(points)
        return MeterTemplate(name, manufacturer, model, description, points, self.source)

    @staticmethod
    def _text(doc: dict[str, Any], key: str, fail: Any, required: bool = False) -> str:
        value = doc.get(key)
        if value is None:
            if required:
                raise fail("required", key)
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            raise fail(f"must be a non-empty string, got {value!r}" if required else "must be a string", key)
        return value

    @staticmethod
    def _function(value: Any, fail: Any) -> int:
        if isinstance(value, bool) or value not in (1, 2, 3, 4):
            raise fail(f"{value!r} is not a Modbus table (1 coils, 2 discrete inputs, 3 holding, 4 input)")
        return int(value)

    @staticmethod
    def _order(value: Any, fail: Any) -> str:
        if value not in ("big", "little"):
            raise fail(f"{value!r} is not big or little")
        return str(value)

    def point(self, i: int, raw: Any, function: int, word_order: str, byte_order: str) -> TemplatePoint:
        line = self._point_line(i)
        at = f"points[{i}]"

        def fail(field: str, message: str) -> TemplateError:
            return self.fail(line, f"{at}.{field}" if field else at, message)

        if not isinstance(raw, dict):
            raise fail("", "must be a table ([[points]])")
        for key in raw:
            if key not in _POINT_KEYS:
                raise fail(key, f"unknown key (one of {', '.join(sorted(_POINT_KEYS))})")
        for key in ("quantity", "address", "type", "unit"):
            if key not in raw:
                raise fail(key, "required")

        quantity = raw["quantity"]
        if quantity not in QUANTITIES:
            raise fail("quantity", f"unknown quantity {quantity!r} (see QUANTITIES in scadad/energy/templates.py)")
        q = QUANTITIES[quantity]
        data_type = raw["type"]
        if data_type not in TYPES:
            raise fail("type", f"unknown type {data_type!r} (one of {', '.join(TYPES)})")
        address = raw["address"]
        if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 0xFFFF:
            raise fail("address", f"{address!r} is not a register number 0..65535")
        fn = self._function(raw.get("function", function), lambda m: fail("function", m))
        wo = self._order(raw.get("word_order", word_order), lambda m: fail("word_order", m))
        bo = self._order(raw.get("byte_order", byte_order), lambda m: fail("byte_order", m))

        is_bool = data_type == "bool"
        if q.boolean != is_bool:
            want = "bool" if q.boolean else "a numeric type"
            raise fail("type", f"{quantity} needs {want}, got {data_type}")
        bit = raw.get("bit")
        if fn in (1, 2):
            if not is_bool:
                raise fail("type", f"function {fn} holds bits: type must be bool, got {data_type}")
            if bit is not None:
                raise fail("bit", f"function {fn} is one bit per address: no bit")
        elif is_bool:
            if isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit <= 15:
                raise fail("bit", f"a bool in a register needs bit 0..15, got {bit!r}")
        elif bit is not None:
            raise fail("bit", f"only a bool takes a bit, not {data_type}")
        count = 1 if fn in (1, 2) else TYPES[data_type]
        if address + count > 0x10000:
            raise fail("address", f"{address} + {count} registers runs past 65535")

        unit = raw["unit"]
        if not isinstance(unit, str):
            raise fail("unit", f"must be a string, got {unit!r}")
        canon = canonical(unit)[0]
        if canon != q.unit:
            raise fail("unit", f"{unit!r} is not a unit of {quantity} (want {q.unit!r} or one converted to it)")

        scale = raw.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0 or not math.isfinite(scale):
            raise fail("scale", f"must be a non-zero number, got {scale!r}")
        if is_bool and scale != 1:
            raise fail("scale", "a bool is not scaled")
        ratio = raw.get("ratio", q.ratio)
        if ratio not in RATIOS:
            raise fail("ratio", f"{ratio!r} is not one of {', '.join(RATIOS)}")

        sentinels = raw.get("sentinels", [])
        if not isinstance(sentinels, list) or len(sentinels) > _MAX_SENTINELS:
            raise fail("sentinels", f"must be a list of at most {_MAX_SENTINELS} numbers")
        if sentinels and is_bool:
            raise fail("sentinels", "a bool has no 'not available' value")
        for s in sentinels:
            if isinstance(s, bool) or not isinstance(s, int | float):
                raise fail("sentinels", f"{s!r} is not a number")
            lim = _INT_RANGES.get(data_type)
            # A sentinel the register cannot hold is a typo (0xFFFF on an int16 is -1).
            if lim is not None and not (s == int(s) and lim[0] <= s <= lim[1]):
                raise fail("sentinels", f"{s!r} cannot occur in an {data_type} register ({lim[0]}..{lim[1]})")

        transform = raw.get("transform")
        if transform is not None and (transform not in TRANSFORMS or is_bool):
            raise fail("transform", f"{transform!r} is not one of {', '.join(TRANSFORMS)} (numeric points only)")

        return TemplatePoint(
            quantity=quantity, address=address, function=fn, data_type=data_type, word_order=wo, byte_order=bo,
            scale=float(scale), unit=unit, ratio=ratio, sentinels=tuple(float(s) for s in sentinels),
            transform=transform, bit=bit, line=line,
        )  # fmt: skip

    def _check_layout(self, points: tuple[TemplatePoint, ...]) -> None:
        """Refuse a quantity twice and points sharing a register (bits of one status word aside)."""
        seen: dict[str, int] = {}
        owner: dict[tuple[int, int], int] = {}  # (function, register) -> first point index in it
        bits: dict[tuple[int, int], dict[int, int]] = {}  # status word -> bit -> point index
        for i, p in enumerate(points):
            if p.quantity in seen:
                raise self.fail(p.line, f"points[{i}].quantity", f"{p.quantity} already at points[{seen[p.quantity]}]")
            seen[p.quantity] = i
            for a in range(p.address, p.address + p.count):
                key = (p.function, a)
                j = owner.get(key)
                if j is not None and not (p.bit is not None and points[j].bit is not None):
                    what = f"register {a} (function {p.function}) overlaps points[{j}] {points[j].quantity}"
                    raise self.fail(p.line, f"points[{i}].address", what)
                owner.setdefault(key, i)
            if p.bit is not None:
                used = bits.setdefault((p.function, p.address), {})
                if p.bit in used:
                    what = f"bit {p.bit} of register {p.address} already used by points[{used[p.bit]}]"
                    raise self.fail(p.line, f"points[{i}].bit", what)
                used[p.bit] = i


def load_dir(path: Path) -> list[MeterTemplate]:
    """Every ``*.toml`` template in ``path``, sorted by name; a name used twice is refused."""
    templates: list[MeterTemplate] = []
    by_name: dict[str, MeterTemplate] = {}
    for file in sorted(Path(path).glob("*.toml")):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"{file}:1: cannot read: {exc}") from None
        t = parse_template(text, str(file))
        if t.name in by_name:
            line = _Parser(text, str(file))._key_line("name")
            raise TemplateError(f"{file}:{line}: name: {t.name!r} is also the name of {by_name[t.name].source}")
        by_name[t.name] = t
        templates.append(t)
    return sorted(templates, key=lambda t: t.name)


def _shipped_dir() -> Path:
    """etc/meter-templates of the source tree, or its copy installed as ``scadad.meter_templates``.

    The installed copy works like sql/ (``scadad.sql``): it needs ``"scadad.meter_templates" =
    "etc/meter-templates"`` in pyproject's package-dir and ``["*.toml"]`` as its package data.
    """
    source = Path(__file__).resolve().parents[2] / "etc" / "meter-templates"
    if source.is_dir():
        return source
    try:
        return Path(str(resources.files("scadad.meter_templates")))
    except ModuleNotFoundError:
        return source  # nothing installed: load_dir finds no templates there


SHIPPED = _shipped_dir()
"""The templates that come with scadad (``etc/meter-templates``)."""


# --------------------------------------------------------------------------- tags


def _product(*factors: float) -> float:
    # Through Decimal so 0.1 x 0.001 x 4000 is 0.4, not 0.4000000000000001: the tag's
    # scaling (and the digits the tag table rounds to) come from this number.
    out = Decimal(1)
    for f in factors:
        out *= Decimal(repr(float(f)))
    return float(out)


def template_tags(
    t: MeterTemplate,
    *,
    prefix: str,
    device: str,
    scan_group: str = "default",
    ct: tuple[float, float] = (1, 1),
    pt: tuple[float, float] = (1, 1),
    applied_in_meter: bool = False,
    address_base: int = 0,
) -> list[TagSpec]:
    """The tags that read one installed meter of template ``t``: one per point at ``prefix/quantity``.

    ``ct`` and ``pt`` are the installation's (primary, secondary) ratios; with
    ``applied_in_meter`` the meter was programmed with them and reports primary values
    already, so they are not applied again. ``address_base`` is the device's (1 for
    devices configured with 1-based addresses). Values come out in the quantity's
    canonical unit: register scale x unit conversion x CT/PT ratio is the tag's
    linear scaling (none when it is exactly 1). Raises ValueError for a bad ratio.
    """
    tags = []
    for p in t.points:
        q = QUANTITIES[p.quantity]
        unit, factor = canonical(p.unit)
        k = _product(p.scale, factor, ratio_factor(p.ratio, ct[0], ct[1], pt[0], pt[1], applied_in_meter))
        scaling: dict[str, float] = {}
        if p.data_type != "bool" and k != 1.0:
            lo, hi = _INT_RANGES.get(p.data_type, _FLOAT_RANGE)
            scaling = {"raw_low": float(lo), "raw_high": float(hi), "eng_low": lo * k, "eng_high": hi * k}
        number = p.address + address_base
        tags.append(
            TagSpec(
                path=f"{prefix}/{p.quantity}",
                data_type=p.data_type,  # type: ignore[arg-type]
                device=device,
                address=str(number) if p.bit is None else f"{number}.{p.bit}",
                function=p.function,  # type: ignore[arg-type]
                byte_order=None if p.byte_order == "big" else "little",
                word_order=None if p.word_order == "big" else "little",
                units=unit,
                description=q.description,
                scan_group=scan_group,
                sentinels=list(p.sentinels),
                transform=p.transform,  # type: ignore[arg-type]
                **scaling,
            )
        )
    return tags
