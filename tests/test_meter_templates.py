"""Meter templates: parsing, refusals with file:line, and decoding through the real stack.

The decoding tests put each shipped template's registers in a pymodbus TCP server,
encoded the way the real meter sends them (float32 high word first, int32 low word
first, int64 Wh, Schneider's four-quadrant PF, NaN and sentinel "not available"
values), then read them with tags from `template_tags` through the real Modbus driver
into a real TagTable, once with CT 200/5 A and PT 11000/110 V applied by scadad and
once with the ratios applied in the meter, and compare exact engineering values.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from drivers import registers
from drivers.base import Batch, DeviceConfig
from drivers.modbus import ModbusDriver
from drivers.simulator import PROFILES, Simulator
from scadad.api.tag_messages import TagSpec
from scadad.bus import Bus
from scadad.energy.templates import (
    QUANTITIES,
    SHIPPED,
    MeterTemplate,
    TemplateError,
    canonical,
    load_dir,
    parse_template,
    template_tags,
)
from scadad.simulate import tag_spec
from scadad.tags.catalog import point_config
from scadad.tags.table import BAD, GOOD, LiveTag, TagTable

CT = (200.0, 5.0)  # x40
PT = (11000.0, 110.0)  # x100; power and energy x4000
BAD_NA = ("BAD", "sensor_failure")  # expected: the device said "not available"


class Regs(list):
    """Registers written by hand, exactly as the manual prints them (no encoding)."""


# quantity -> (what the meter holds, value with CT/PT applied by scadad, value with
# the ratios applied in the meter). Floats are exact in float32 so the comparisons are too.
CASES: dict[str, dict[str, tuple[object, object, object]]] = {
    "schneider-pm5xxx": {
        "current_l1": (4.25, 170.0, 4.25),
        "current_l2": (4.5, 180.0, 4.5),
        "current_l3": (3.75, 150.0, 3.75),
        "current_n": (Regs([0xFFC0, 0x0000]), BAD_NA, BAD_NA),  # Schneider's NaN: not available
        "voltage_l12": (110.0, 11000.0, 110.0),
        "voltage_l23": (109.5, 10950.0, 109.5),
        "voltage_l31": (110.25, 11025.0, 110.25),
        "voltage_l1": (63.5, 6350.0, 63.5),
        "voltage_l2": (63.25, 6325.0, 63.25),
        "voltage_l3": (63.75, 6375.0, 63.75),
        "power_l1": (0.25, 1000.0, 0.25),
        "power_l2": (0.25, 1000.0, 0.25),
        "power_l3": (-0.125, -500.0, -0.125),
        "power_total": (0.375, 1500.0, 0.375),
        "reactive_total": (0.125, 500.0, 0.125),
        "apparent_total": (0.5, 2000.0, 0.5),
        # Four-quadrant PF: -1..1 as is; above 1 reads 2 - x, below -1 reads -2 - x.
        "pf_l1": (0.75, 0.75, 0.75),
        "pf_l2": (1.25, 0.75, 0.75),
        "pf_l3": (-0.5, -0.5, -0.5),
        "pf_total": (-1.25, -0.75, -0.75),
        "frequency": (50.0, 50.0, 50.0),
        "import_kwh": (1_234_567, 4_938_268.0, 1234.567),  # int64 Wh
        "export_kwh": (-(2**63), BAD_NA, BAD_NA),  # 0x8000000000000000: not available
        "import_kvarh": (987_654, 3_950_616.0, 987.654),
    },
    "eastron-sdm630": {
        "voltage_l1": (63.5, 6350.0, 63.5),
        "voltage_l2": (63.25, 6325.0, 63.25),
        "voltage_l3": (63.75, 6375.0, 63.75),
        "current_l1": (4.25, 170.0, 4.25),
        "current_l2": (4.5, 180.0, 4.5),
        "current_l3": (3.75, 150.0, 3.75),
        "power_l1": (250.0, 1000.0, 0.25),  # W
        "power_l2": (250.0, 1000.0, 0.25),
        "power_l3": (-125.0, -500.0, -0.125),
        "power_total": (375.0, 1500.0, 0.375),
        "apparent_total": (500.0, 2000.0, 0.5),
        "reactive_total": (125.0, 500.0, 0.125),
        "pf_total": (-0.5, -0.5, -0.5),
        "frequency": (49.75, 49.75, 49.75),
        "import_kwh": (1234.5, 4_938_000.0, 1234.5),
        "export_kwh": (12.25, 49_000.0, 12.25),
        "import_kvarh": (100.5, 402_000.0, 100.5),
        "voltage_l12": (110.0, 11000.0, 110.0),
        "voltage_l23": (109.5, 10950.0, 109.5),
        "voltage_l31": (110.25, 11025.0, 110.25),
        "current_n": (math.nan, BAD_NA, BAD_NA),
        "total_kwh": (1246.75, 4_987_000.0, 1246.75),
    },
    "carlo-gavazzi-em24": {
        "voltage_l1": (635, 6350.0, 63.5),  # int32 x0.1, low word first
        "voltage_l2": (632, 6320.0, 63.2),
        "voltage_l3": (638, 6380.0, 63.8),
        "voltage_l12": (1100, 11000.0, 110.0),
        "voltage_l23": (1098, 10980.0, 109.8),
        "voltage_l31": (1102, 11020.0, 110.2),
        "current_l1": (4250, 170.0, 4.25),  # x0.001
        "current_l2": (4501, 180.04, 4.501),
        "current_l3": (3999, 159.96, 3.999),
        "power_l1": (2500, 1000.0, 0.25),  # W x0.1
        "power_l2": (2499, 999.6, 0.2499),
        "power_l3": (-1250, -500.0, -0.125),
        "power_total": (3749, 1499.6, 0.3749),
        "apparent_total": (5000, 2000.0, 0.5),
        "reactive_total": (-1250, -500.0, -0.125),
        "pf_l1": (950, 0.95, 0.95),  # int16 x0.001
        "pf_l2": (-870, -0.87, -0.87),
        "pf_l3": (1000, 1.0, 1.0),
        "pf_total": (999, 0.999, 0.999),
        "frequency": (500, 50.0, 50.0),
        "import_kwh": (123_456_789, 49_382_715_600.0, 12_345_678.9),  # both words carry bits
        "import_kvarh": (6789, 2_715_600.0, 678.9),
        "export_kwh": (70_000, 28_000_000.0, 7000.0),
    },
    # The controller reports primary values: the CT given is not applied (ratio none).
    "deepsea-dg": {
        "running": (True, True, True),
        "low_fuel_alarm": (False, False, False),
        "oil_pressure": (65535, BAD_NA, BAD_NA),  # GenComm 0xFFFF: unimplemented
        "fuel_level": (735, 73.5, 73.5),
        "engine_speed": (1500, 1500, 1500),
        "frequency": (501, 50.1, 50.1),
        "power_total": (123_456, 123.456, 123.456),  # W
        "run_hours": (45_000, 12.5, 12.5),  # seconds
        "import_kwh": (98_765, 9876.5, 9876.5),
        "starts": (42, 42, 42),
    },
    "generic-solar-inverter": {
        "power_total": (12.5, 12.5, 12.5),  # float32 low word first
        "dc_voltage": (612.25, 612.25, 612.25),
        "dc_current": (20.5, 20.5, 20.5),
        "daily_kwh": (48.75, 48.75, 48.75),
        "import_kwh": (1_234_567, 123_456.7, 123_456.7),  # uint32 x0.1, high word first
        "status": (4, 4, 4),
        "temperature": (-32768, BAD_NA, BAD_NA),  # SunSpec int16 "not implemented"
    },
}
# The simulator's device types that mimic a templated model, and its point names that
# differ from the template's quantities.
SIM_TEMPLATES = {
    "pm5xxx": "schneider-pm5xxx",
    "sdm630": "eastron-sdm630",
    "em24": "carlo-gavazzi-em24",
    "dg": "deepsea-dg",
    "inverter": "generic-solar-inverter",
}
SIM_QUANTITY = {
    "engine_hours": "run_hours",
    "energy_kwh": "import_kwh",
    "start_count": "starts",
    "import_wh": "import_kwh",
    "ac_power": "power_total",
    "daily_energy": "daily_kwh",
    "total_energy": "import_kwh",
}
# Bits of the DG status word the template does not read: they must not leak into its bools.
DG_STATUS_EXTRA = 0b10_0000


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def shipped() -> dict[str, MeterTemplate]:
    return {t.name: t for t in load_dir(SHIPPED)}


# ---------------------------------------------------------------------------
# A pymodbus server holding the meter's registers.


def meter_tables(t: MeterTemplate, cases: dict[str, tuple[object, object, object]]) -> dict[int, dict[int, int]]:
    """function -> address -> register, every point encoded as the meter sends it."""
    tables: dict[int, dict[int, int]] = {3: {}, 4: {}}
    for p in t.points:
        raw = cases[p.quantity][0]
        table = tables[p.function]
        if p.data_type == "bool":
            word = registers.encode(bool(raw), "bool", p.byte_order, p.word_order, bit=p.bit)[0]
            table[p.address] = table.get(p.address, 0) | word
            continue
        regs = list(raw) if isinstance(raw, Regs) else registers.encode(raw, p.data_type, p.byte_order, p.word_order)
        for i, r in enumerate(regs):
            table[p.address + i] = r
    if t.name == "deepsea-dg":
        tables[3][768] |= DG_STATUS_EXTRA
    return tables


def _run_of(table: dict[int, int]) -> list[SimData]:
    # One contiguous block of registers (zeros between points), as a meter answers
    # reads over its unused registers inside a page.
    if not table:
        return [SimData(0, datatype=SimType.INVALID)]
    lo, hi = min(table), max(table)
    return [SimData(lo, values=[table.get(a, 0) for a in range(lo, hi + 1)], datatype=SimType.REGISTERS)]


class MeterServer:
    """A pymodbus TCP server on loopback with fixed holding and input registers."""

    def __init__(self, tables: dict[int, dict[int, int]]) -> None:
        bits = [SimData(0, values=[False] * 16, datatype=SimType.BITS)]
        self.device = SimDevice(1, simdata=(bits, bits, _run_of(tables[3]), _run_of(tables[4])))
        self.server: ModbusTcpServer | None = None
        self.port = 0

    async def __aenter__(self) -> MeterServer:
        self.server = ModbusTcpServer(self.device, address=("127.0.0.1", 0))
        await self.server.serve_forever(background=True)
        self.port = self.server.transport.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc) -> None:
        assert self.server is not None
        await self.server.shutdown()


async def read_tags(port: int, groups: dict[str, Sequence[TagSpec]]) -> dict[str, LiveTag]:
    """One scan of each group through the Modbus driver into a TagTable, as DevicePoller does it."""
    driver = ModbusDriver(DeviceConfig(name="meter", protocol="modbus_tcp", host="127.0.0.1", port=port))
    table = TagTable(Bus())
    live: dict[str, list[LiveTag]] = {}
    n = 0
    for group, specs in groups.items():
        live[group] = []
        for spec in specs:
            n += 1
            tag = LiveTag(n, spec)
            table.add(tag)
            live[group].append(tag)
    errors = driver.configure({g: [point_config(t.id, t.spec) for t in tags] for g, tags in live.items()})
    assert errors == {}
    await driver.connect()
    try:
        for group, tags in live.items():
            batch: Batch = await driver.read(group)
            table.apply_batch(tags, batch)
    finally:
        await driver.close()
    return table.by_path


# ---------------------------------------------------------------------------
# The shipped templates.


def test_every_shipped_template_parses():
    templates = load_dir(SHIPPED)
    names = [t.name for t in templates]
    assert names == sorted(CASES)
    for t in templates:
        assert Path(t.source).name == f"{t.name}.toml"
        assert t.manufacturer and t.model and t.description
        # Every point has a decoding case below, and the other way round.
        assert {p.quantity for p in t.points} == set(CASES[t.name]), t.name
        assert all(p.quantity in QUANTITIES for p in t.points)
    # At least one shipped point of each kind the tag table must handle.
    points = [p for t in templates for p in t.points]
    assert any(p.sentinels for p in points)
    assert any(p.transform == "pf_4q" for p in points)
    assert any(p.word_order == "little" for p in points) and any(p.data_type == "int64" for p in points)


def test_templates_follow_the_simulated_devices_maps():
    """Where the simulator mimics a meter, the template reads the same registers the same way."""
    templates = shipped()
    for kind, name in SIM_TEMPLATES.items():
        t = templates[name]
        for sp in PROFILES[kind].points:
            quantity = SIM_QUANTITY.get(sp.name, sp.name)
            if quantity not in QUANTITIES:
                continue  # control registers (DG start/stop keys), not readings
            p = t.point(quantity)
            wide = p.count > 1  # word order means nothing to a one-register value
            got = (p.function, p.address, p.data_type, wide and p.word_order, p.byte_order, p.bit)
            want = (int(sp.function), sp.address, sp.data_type.value)
            want += (wide and sp.word_order.value, sp.byte_order.value, sp.bit)
            assert got == want, (name, quantity)
            # raw x scale in the unit, converted to the canonical unit: the same factor.
            ours = p.scale * canonical(p.unit)[1]
            assert math.isclose(ours, sp.scale * canonical(sp.unit)[1], rel_tol=1e-12), (name, quantity)


# ---------------------------------------------------------------------------
# Decoding through pymodbus, the driver and the tag table.


@pytest.mark.parametrize("applied_in_meter", [False, True], ids=["ct-pt-in-scadad", "ct-pt-in-meter"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_decoding_each_template_from_a_real_server(name: str, applied_in_meter: bool):
    t = shipped()[name]
    cases = CASES[name]
    specs = template_tags(t, prefix="plant/m1", device="m1", ct=CT, pt=PT, applied_in_meter=applied_in_meter)
    assert [s.path for s in specs] == [f"plant/m1/{p.quantity}" for p in t.points]

    async def main():
        async with MeterServer(meter_tables(t, cases)) as server:
            return await read_tags(server.port, {"default": specs})

    tags = run(main())
    for p in t.points:
        tag = tags[f"plant/m1/{p.quantity}"]
        want = cases[p.quantity][2 if applied_in_meter else 1]
        if want == BAD_NA:
            assert (tag.quality, tag.reason) == (BAD, "sensor_failure"), (p.quantity, tag.detail)
            assert tag.value is None  # never read well, so no last good value either
            continue
        assert tag.quality is GOOD, (p.quantity, tag.reason, tag.detail)
        assert tag.value == want and type(tag.value) is type(want), (p.quantity, tag.value, want)
        assert tag.units == QUANTITIES[p.quantity].unit


def test_the_simulated_plant_reads_through_the_templates():
    """The simulator's devices read through a template give what the simulator's own tags give."""
    kinds = SIM_TEMPLATES
    templates = shipped()

    async def main():
        sim = Simulator(list(kinds), seed=7, clock=lambda: 1_750_000_000.0, interval=None)
        await sim.start()
        try:
            out = []
            for dev, (kind, name) in zip(sim.devices, kinds.items(), strict=True):
                ours = template_tags(templates[name], prefix="t", device="d", applied_in_meter=True)
                theirs = [tag_spec("s", "d", p, "default") for p in dev.points]
                out.append((kind, await read_tags(dev.port, {"t": ours, "s": theirs})))
            return out
        finally:
            await sim.stop()

    for kind, tags in run(main()):
        compared = 0
        for sp in PROFILES[kind].points:
            quantity = SIM_QUANTITY.get(sp.name, sp.name)
            if quantity not in QUANTITIES:
                continue
            ours, theirs = tags[f"t/{quantity}"], tags[f"s/d/{sp.name}"]
            assert ours.quality is GOOD and theirs.quality is GOOD, (kind, quantity, ours.detail, theirs.detail)
            if isinstance(theirs.value, float):
                assert math.isclose(ours.value, theirs.value, rel_tol=1e-12, abs_tol=1e-12), (kind, quantity)
            else:
                assert ours.value == theirs.value, (kind, quantity)
            compared += 1
        assert compared >= 7, kind


# ---------------------------------------------------------------------------
# template_tags on its own.


def test_template_tags_scaling_addresses_and_orders():
    t = shipped()["carlo-gavazzi-em24"]
    by = {s.path.rsplit("/", 1)[1]: s for s in template_tags(t, prefix="p", device="em", ct=CT, pt=PT)}
    v = by["voltage_l1"]
    assert (v.address, v.function, v.data_type, v.word_order, v.byte_order) == ("0", 4, "int32", "little", None)
    assert (v.raw_low, v.raw_high, v.eng_low, v.eng_high) == (
        -(2.0**31),
        2.0**31 - 1,
        -(2**31) * 10.0,
        (2**31 - 1) * 10.0,
    )
    assert (by["power_total"].units, by["power_total"].eng_high) == ("kW", (2**31 - 1) * 0.4)
    assert by["pf_total"].eng_high == 32767 * 0.001  # a ratio-free point keeps its scale only

    dg = template_tags(shipped()["deepsea-dg"], prefix="site/dg1", device="dg1", address_base=1, scan_group="fast")
    by = {s.path.rsplit("/", 1)[1]: s for s in dg}
    assert (by["running"].address, by["running"].data_type, by["running"].raw_low) == ("769.0", "bool", None)
    assert by["low_fuel_alarm"].address == "769.1"
    assert by["engine_speed"].raw_low is None  # k == 1: no scaling at all
    assert by["oil_pressure"].sentinels == [65535.0, 65534.0, 65533.0, 65532.0, 65531.0]
    assert (by["run_hours"].units, by["starts"].units) == ("h", "count")
    assert all(s.scan_group == "fast" and s.device == "dg1" for s in dg)

    pm = {s.path.rsplit("/", 1)[1]: s for s in template_tags(shipped()["schneider-pm5xxx"], prefix="p", device="m")}
    assert pm["pf_total"].transform == "pf_4q" and pm["pf_total"].raw_low is None
    assert pm["import_kwh"].sentinels == [-(2.0**63)] and pm["import_kwh"].units == "kWh"
    assert pm["current_l1"].description == "Current L1"
    with pytest.raises(ValueError, match="CT ratio"):
        template_tags(t, prefix="p", device="em", ct=(200, 0))


def test_canonical_units():
    assert canonical("W") == ("kW", 0.001)
    assert canonical("Wh") == ("kWh", 0.001)
    assert canonical("MWh") == ("kWh", 1000.0)
    assert canonical("var") == ("kvar", 0.001)
    assert canonical("VA") == ("kVA", 0.001)
    assert canonical("varh") == ("kvarh", 0.001)
    assert canonical("kV") == ("V", 1000.0)
    assert canonical("s") == ("h", 1 / 3600)
    assert canonical("kWh") == ("kWh", 1.0) and canonical("Hz") == ("Hz", 1.0) and canonical("") == ("", 1.0)


# ---------------------------------------------------------------------------
# Broken templates are refused with file:line and the field.

GOOD_TEXT = """\
name = "test-meter"
manufacturer = "ACME"
model = "M1"
function = 4

[[points]]
quantity = "voltage_l1"
address = 0
type = "float32"
unit = "V"

[[points]]
quantity = "current_l1"
address = 2
type = "float32"
unit = "A"

[[points]]
quantity = "running"
address = 10
type = "bool"
unit = ""
bit = 3
"""


def test_a_good_template_parses():
    t = parse_template(GOOD_TEXT, "m.toml")
    assert (t.name, t.manufacturer, t.model, t.description, t.source) == ("test-meter", "ACME", "M1", "", "m.toml")
    v, a, r = t.points
    got = (v.quantity, v.address, v.function, v.data_type, v.word_order, v.unit, v.ratio, v.line)
    assert got == ("voltage_l1", 0, 4, "float32", "big", "V", "voltage", 6)
    assert (a.ratio, a.line, r.bit, r.line, r.count) == ("current", 12, 3, 18, 1)


def _broken(old: str, new: str) -> str:
    assert old in GOOD_TEXT
    return GOOD_TEXT.replace(old, new, 1)


BROKEN: list[tuple[str, str]] = [
    # (template text, expected message start after "m.toml:")
    (_broken('type = "float32"\nunit = "V"', 'type = float32\nunit = "V"'), "9: TOML syntax: "),
    (_broken('unit = "A"', 'unit = "A"\nscael = 2'), "12: points[1].scael: unknown key"),
    (
        _broken('type = "float32"\nunit = "A"', 'type = "float33"\nunit = "A"'),
        "12: points[1].type: unknown type 'float33'",
    ),
    (
        _broken(
            '"current_l1"\naddress = 2\ntype = "float32"\nunit = "A"',
            '"voltage_l1"\naddress = 2\ntype = "float32"\nunit = "V"',
        ),
        "12: points[1].quantity: voltage_l1 already at points[0]",
    ),
    (
        _broken("address = 2", "address = 1"),
        "12: points[1].address: register 1 (function 4) overlaps points[0] voltage_l1",
    ),
    (_broken('model = "M1"', 'model = "M1"\nserial = 5'), "4: serial: unknown key"),
    (_broken('manufacturer = "ACME"\n', ""), "1: manufacturer: required"),
    (_broken('unit = "A"\n', ""), "12: points[1].unit: required"),
    (_broken('"current_l1"', '"curent_l1"'), "12: points[1].quantity: unknown quantity 'curent_l1'"),
    (_broken("address = 2", "address = 65535"), "12: points[1].address: 65535 + 2 registers runs past 65535"),
    (_broken("address = 2", "address = -1"), "12: points[1].address: -1 is not a register number 0..65535"),
    (_broken('unit = "A"', 'unit = "A"\nfunction = 7'), "12: points[1].function: 7 is not a Modbus table"),
    (_broken("function = 4", "function = 5"), "4: function: 5 is not a Modbus table"),
    (_broken("bit = 3", "bit = 16"), "18: points[2].bit: a bool in a register needs bit 0..15, got 16"),
    (_broken("bit = 3", "function = 1\nbit = 3"), "18: points[2].bit: function 1 is one bit per address"),
    (_broken('unit = "A"', 'unit = "A"\nbit = 1'), "12: points[1].bit: only a bool takes a bit"),
    (_broken('"running"', '"frequency"'), "18: points[2].type: frequency needs a numeric type, got bool"),
    (_broken('unit = "A"', 'unit = "V"'), "12: points[1].unit: 'V' is not a unit of current_l1"),
    (_broken('unit = "A"', 'unit = "mA"\nscale = 0'), "12: points[1].scale: must be a non-zero number, got 0"),
    (_broken('unit = "A"', 'unit = "A"\nratio = "ct"'), "12: points[1].ratio: 'ct' is not one of"),
    (_broken('unit = "A"', 'unit = "A"\ntransform = "pf"'), "12: points[1].transform: 'pf' is not one of pf_4q"),
    (_broken('unit = "A"', 'unit = "A"\nsentinels = ["n/a"]'), "12: points[1].sentinels: 'n/a' is not a number"),
    (
        _broken('type = "float32"\nunit = "A"', 'type = "int16"\nunit = "A"\nsentinels = [65535]'),
        "12: points[1].sentinels: 65535 cannot occur in an int16 register",
    ),
    (
        _broken('unit = "A"', 'unit = "A"\nword_order = "middle"'),
        "12: points[1].word_order: 'middle' is not big or little",
    ),
    (_broken('name = "test-meter"', 'name = "Test Meter"'), "1: name: 'Test Meter' is not a name"),
    (
        _broken(
            "bit = 3\n",
            'bit = 3\n\n[[points]]\nquantity = "low_fuel_alarm"\naddress = 10\ntype = "bool"\nunit = ""\nbit = 3\n',
        ),
        "25: points[3].bit: bit 3 of register 10 already used by points[2]",
    ),
    (
        _broken("address = 10", "address = 1"),
        "18: points[2].address: register 1 (function 4) overlaps points[0] voltage_l1",
    ),
    (GOOD_TEXT.split("[[points]]")[0], "1: points: a template needs at least one [[points]] entry"),
]


@pytest.mark.parametrize(
    ("text", "message"), BROKEN, ids=[m.split(":")[1].strip() + f"-{i}" for i, (_, m) in enumerate(BROKEN)]
)
def test_broken_templates_are_refused_with_line_and_field(text: str, message: str):
    with pytest.raises(TemplateError) as info:
        parse_template(text, "m.toml")
    assert str(info.value).startswith(f"m.toml:{message}"), str(info.value)


def test_load_dir_names_the_file_and_refuses_a_name_twice(tmp_path: Path):
    (tmp_path / "a.toml").write_text(GOOD_TEXT)
    (tmp_path / "notes.txt").write_text("not a template")
    assert [t.name for t in load_dir(tmp_path)] == ["test-meter"]

    (tmp_path / "b.toml").write_text(GOOD_TEXT)
    with pytest.raises(TemplateError) as info:
        load_dir(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'b.toml'}:1: name: 'test-meter' is also the name of ")

    (tmp_path / "b.toml").write_text(_broken('type = "float32"\nunit = "A"', 'type = "float33"\nunit = "A"'))
    with pytest.raises(TemplateError) as info:
        load_dir(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'b.toml'}:12: points[1].type: unknown type 'float33'")
