"""scadactl's pure parts: CSV/TOML definition files, and the parsers and formatters of
the device, tag, history and sim commands (no daemon needed)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scadactl import files
from scadactl.devices import address, age_of, format_age, parse_iso
from scadactl.files import DEVICES, TAGS, SpecFileError
from scadactl.history import csv_text, parse_duration, parse_every, parse_time, utc_text
from scadactl.sim import split_types
from scadactl.tags import (
    format_value,
    parse_deadband,
    parse_scale,
    parse_write_value,
    quality_text,
    source_text,
)
from scadad.api.tag_messages import DeviceSpec, TagSpec

DEVICE_SPECS = [
    DeviceSpec(name="meter-1", protocol="modbus_tcp", host="10.0.0.5", port=5020, unit_id=7, description="Main, \"incomer\""),
    DeviceSpec(name="rtu_2", protocol="modbus_rtu", serial_port="/dev/ttyUSB0", baudrate=19200, parity="E",
               stopbits=2, address_base=1, byte_order="little", word_order="little", timeout_ms=250, retries=3,
               max_gap=0, max_registers=60, enabled=False, description="line one\nline two"),
    DeviceSpec(name="ua", protocol="opcua", endpoint_url="opc.tcp://plc:4840/ua", opcua_mode="poll",
               description="Zählerschrank ✓"),
]  # fmt: skip

TAG_SPECS = [
    TagSpec(path="north/meter-1/power", device="meter-1", address="3000", function=4, units="kW",
            raw_low=-32768.0, raw_high=32767.0, eng_low=-3276.8, eng_high=3276.7, deadband=0.5,
            deadband_mode="percent", retention_days=400),
    TagSpec(path="north/meter-1/breaker", data_type="bool", device="meter-1", address="12.3", writable=True,
            byte_order="little", word_order="big", scan_group="fast"),
    TagSpec(path="north/meter-1/serial", data_type="string", device="meter-1", address="5000", string_length=16),
    TagSpec(path="north/total", source="computed", expression="({north/a} + {north/b}) * 0.001, 'x'",
            description='with "quotes", commas'),
    TagSpec(path="north/setpoint", data_type="float64", source="memory", initial_value="42.5", writable=True,
            eng_low=1e-9, deadband=0.1),
]  # fmt: skip


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["csv", "toml"])
@pytest.mark.parametrize(("kind", "specs"), [(DEVICES, DEVICE_SPECS), (TAGS, TAG_SPECS)], ids=["devices", "tags"])
def test_export_then_import_gives_the_same_specs(fmt, kind, specs) -> None:
    text = files.dumps(specs, kind, fmt)
    back = files.loads(text, kind, fmt, f"x.{fmt}")
    assert back == specs
    # Field by field too: None stays None, floats stay floats, Literal ints stay ints.
    for a, b in zip(back, specs, strict=True):
        for f in kind.fields:
            assert type(getattr(a, f)) is type(getattr(b, f)), f


@pytest.mark.parametrize("fmt", ["csv", "toml"])
def test_round_trip_through_files(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / f"tags.{fmt}"
    files.write_file(p, TAG_SPECS, TAGS)  # format from the extension
    assert files.read_file(p, TAGS) == TAG_SPECS
    d = tmp_path / "devs.txt"
    files.write_file(d, DEVICE_SPECS, DEVICES, fmt)
    assert files.read_file(d, DEVICES, fmt) == DEVICE_SPECS


def test_empty_lists_round_trip() -> None:
    for fmt in files.FORMATS:
        assert files.loads(files.dumps([], TAGS, fmt), TAGS, fmt, "x") == []


def test_toml_leaves_none_out_and_uses_an_array_of_tables() -> None:
    text = files.dumps_toml(TAG_SPECS[:1], TAGS)
    assert text.startswith("[[tags]]\n")
    assert "expression" not in text and "initial_value" not in text
    assert 'path = "north/meter-1/power"' in text and "retention_days = 400" in text


def test_csv_header_is_the_field_names_in_order() -> None:
    header = files.dumps_csv(DEVICE_SPECS, DEVICES).splitlines()[0]
    assert header.split(",") == list(DeviceSpec.__struct_fields__)


_floats = st.floats(allow_nan=False, width=64)
_text = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)


@settings(max_examples=60, deadline=None)
@given(lo=_floats, hi=_floats, elo=_floats, ehi=_floats, desc=_text, units=_text.map(lambda s: s[:32]),
       writable=st.booleans(), fn=st.sampled_from([None, 1, 2, 3, 4]), days=st.none() | st.integers(1, 36500))  # fmt: skip
def test_round_trip_property(lo, hi, elo, ehi, desc, units, writable, fn, days) -> None:
    spec = TagSpec(path="a/b", device="d", address="1", raw_low=lo, raw_high=hi, eng_low=elo, eng_high=ehi,
                   description=desc, units=units, writable=writable, function=fn, retention_days=days)  # fmt: skip
    assert files.loads_toml(files.dumps_toml([spec], TAGS), TAGS) == [spec]
    back = files.loads_csv(files.dumps_csv([spec], TAGS), TAGS)
    # CSV has no way to tell an empty string from "not given"; only text fields with a ""
    # default are affected, and those come back as "" anyway.
    assert back == [spec]


# ---------------------------------------------------------------- CSV reading


def test_csv_subset_of_columns_and_empty_cells_take_defaults() -> None:
    text = "path,device,address,writable,raw_low,function\nn/a,m1,7,,,\nn/b,m1,8,yes,0.5,2\n"
    a, b = files.loads_csv(text, TAGS, "t.csv")
    assert a == TagSpec(path="n/a", device="m1", address="7")
    assert a.raw_low is None and a.function is None and a.writable is False and a.scan_group == "default"
    assert b.writable is True and b.raw_low == 0.5 and b.function == 2


@pytest.mark.parametrize(("cell", "want"), [("true", True), ("TRUE", True), ("1", True), ("yes", True),
                                            ("Yes", True), ("false", False), ("0", False), ("no", False)])  # fmt: skip
def test_csv_booleans(cell: str, want: bool) -> None:
    [d] = files.loads_csv(f"name,protocol,host,enabled\nd1,modbus_tcp,h,{cell}\n", DEVICES)
    assert d.enabled is want


def test_csv_bom_crlf_blank_lines_and_column_order() -> None:
    text = "\ufeffprotocol,name,port\r\nmodbus_tcp,a,502\r\n\r\nmodbus_tcp,b,\r\n"
    a, b = files.loads_csv(text, DEVICES)
    assert (a.name, a.port, b.name, b.port) == ("a", 502, "b", None)


def test_csv_nameless_trailing_column_is_ignored_when_empty() -> None:
    [d] = files.loads_csv("name,protocol,\nd,opcua,\n", DEVICES)
    assert d.protocol == "opcua"
    with pytest.raises(SpecFileError, match=r"d.csv row 2: a value in column 3"):
        files.loads_csv("name,protocol,\nd,opcua,x\n", DEVICES, "d.csv")


# ---------------------------------------------------------------- malformed files


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,adress\nn/a,1\n", "tags.csv row 1, field 'adress': unknown column"),
        ("path,path\nn/a,n/b\n", "tags.csv row 1, field 'path': column given twice"),
        ("path,function\nn/a,3\nn/b,9\n", "tags.csv row 3, field 'function': expected one of 1, 2, 3, 4, got '9'"),
        ("path,raw_low\nn/a,lots\n", "tags.csv row 2, field 'raw_low': expected a number, got 'lots'"),
        ("path,string_length\nn/a,1.5\n", "tags.csv row 2, field 'string_length': expected an integer, got '1.5'"),
        ("path,writable\nn/a,maybe\n", "tags.csv row 2, field 'writable': expected true or false, got 'maybe'"),
        ("path,data_type\nn/a,float\n", "tags.csv row 2, field 'data_type': expected one of bool, float32, "),
        ("path,units\n,kW\n", "tags.csv row 2, field 'path': required, but missing or empty"),
        ("path,units\nN/A,kW\n", "tags.csv row 2, field 'path': Expected `str` matching regex"),
        ("path,retention_days\nn/a,0\n", "tags.csv row 2, field 'retention_days': Expected `int` >= 1 (got 0)"),
        ("path\nn/a\n\nn/a\n", "tags.csv row 4, field 'path': 'n/a' is already defined at tags.csv row 2"),
        ("path,units\nn/a,kW,extra\n", "tags.csv row 2: 3 cells but the header has 2 columns"),
        ("", "tags.csv row 1: no header row"),
    ],
)
def test_malformed_csv_names_file_row_and_field(text: str, message: str) -> None:
    with pytest.raises(SpecFileError) as exc:
        files.loads_csv(text, TAGS, "tags.csv")
    assert str(exc.value).startswith(message), str(exc.value)


def test_csv_row_numbers_count_the_header_as_row_1() -> None:
    rows = ["path,device,address"] + [f"p/t{i},d,{i}" for i in range(2, 14)] + ["P/BAD,d,1"]
    with pytest.raises(SpecFileError, match=r"^tags.csv row 14, field 'path'"):
        files.loads_csv("\n".join(rows) + "\n", TAGS, "tags.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[tags]]\npath = 'a'\n[[tags]\n", "tags.toml: not valid TOML: "),
        ("[[tags]]\npath = 'a'\n\n[[tags]]\npath = 'b'\nfunction = 7\n",
         "tags.toml entry 2 (line 4), field 'function': expected one of 1, 2, 3, 4 (got 7)"),
        ("[[tags]]\npath = 'a'\nscale = 1\n", "tags.toml entry 1 (line 1), field 'scale': unknown field"),
        ("[[tags]]\npath = 'a'\nstring_length = '3'\n",
         "tags.toml entry 1 (line 1), field 'string_length': Expected `int`, got `str` (got '3')"),
        ("[[tags]]\nunits = 'kW'\n", "tags.toml entry 1 (line 1), field 'path': required, but missing or empty"),
        ("[[tag]]\npath = 'a'\n", "tags.toml: unexpected 'tag' (a tag file holds [[tags]] tables)"),
        ("tags = 3\n", "tags.toml: 'tags' must be an array of tables"),
        ("[[tags]]\npath = 'a'\n[[tags]]\npath = 'a'\n",
         "tags.toml entry 2 (line 3), field 'path': 'a' is already defined at tags.toml entry 1 (line 1)"),
    ],
)  # fmt: skip
def test_malformed_toml_names_file_entry_and_field(text: str, message: str) -> None:
    with pytest.raises(SpecFileError) as exc:
        files.loads_toml(text, TAGS, "tags.toml")
    assert str(exc.value).startswith(message), str(exc.value)


def test_broken_toml_says_where() -> None:
    with pytest.raises(SpecFileError, match=r"at line 3"):
        files.loads_toml("[[devices]]\nname = 'a'\nprotocol = \n", DEVICES, "d.toml")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecFileError, match=r"no-such\.csv: No such file"):
        files.read_file(tmp_path / "no-such.csv", TAGS)
    with pytest.raises(SpecFileError, match=r"cannot tell the format .* --format"):
        files.read_file(tmp_path / "tags.txt", TAGS)
    with pytest.raises(SpecFileError, match=r"unknown format 'xml'"):
        files.format_of("a.csv", "xml")
    (tmp_path / "latin1.csv").write_bytes(b"path,units\nn/a,\xb0C\n")
    with pytest.raises(SpecFileError, match=r"latin1\.csv: not UTF-8"):
        files.read_file(tmp_path / "latin1.csv", TAGS)
    assert files.format_of("x/T.TOML") == "toml"


# ---------------------------------------------------------------- history parsers

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("2w", 1209600),
                                               ("1h30m", 5400), ("90", 90), ("1.5h", 5400), ("15min", 900),
                                               ("500ms", 0.5), (" 2 H ", 7200)])  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5x", "1h junk", "-5m", "abc"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_every() -> None:
    assert parse_every("1h") == 3600 and parse_every("30s") == 30
    for bad in ("500ms", "1.5s", "0s"):
        with pytest.raises(ValueError):
            parse_every(bad)


def test_parse_time_relative_and_now() -> None:
    assert parse_time("now", NOW) == NOW
    assert parse_time("-2h", NOW) == NOW - timedelta(hours=2)
    assert parse_time("-30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_time("-7d", NOW) == NOW - timedelta(days=7)


def test_parse_time_iso() -> None:
    assert parse_time("2026-01-31T08:00:00Z", NOW) == datetime(2026, 1, 31, 8, tzinfo=UTC)
    t = parse_time("2026-01-31T08:00:00+05:30", NOW)
    assert t == datetime(2026, 1, 31, 2, 30, tzinfo=UTC) and t.utcoffset() == timedelta(hours=5, minutes=30)
    naive = parse_time("2026-01-31T08:00", NOW)  # local time
    assert naive.tzinfo is not None and naive == datetime(2026, 1, 31, 8).astimezone()
    assert parse_time("2026-01-31", NOW) == datetime(2026, 1, 31).astimezone()


@pytest.mark.parametrize("text", ["yesterday", "-2x", "2026-13-01", "12:00:00Z-"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a time like"):
        parse_time(text, NOW)


def test_history_csv_samples_and_buckets() -> None:
    res = {"path": "a/b", "units": "kW", "start": "", "end": "", "every_s": None, "truncated": False,
           "samples": [{"time": "2026-03-01T12:00:00.250000+01:00", "value": 1.5, "quality": "GOOD"},
                       {"time": "2026-03-01T11:00:01Z", "value": None, "quality": "BAD"}],
           "buckets": []}  # fmt: skip
    assert csv_text(res) == "time,value,quality\n2026-03-01T11:00:00.250000Z,1.5,GOOD\n2026-03-01T11:00:01Z,,BAD\n"
    res = {**res, "every_s": 60, "samples": [],
           "buckets": [{"time": "2026-03-01T11:00:00Z", "min": 1.0, "max": 2.0, "avg": 1.25, "last": 2.0,
                        "count": 4, "bad_count": 1}]}  # fmt: skip
    assert csv_text(res) == "time,min,max,avg,last,count,bad_count\n2026-03-01T11:00:00Z,1.0,2.0,1.25,2.0,4,1\n"
    assert (
        utc_text(datetime(2026, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == "2026-01-01T00:00:00Z"
    )


# ---------------------------------------------------------------- tag parsers and formatters


def test_parse_scale() -> None:
    assert parse_scale("0:65535:0:100") == (0.0, 65535.0, 0.0, 100.0)
    assert parse_scale("-32768:32767:-10.5:10.5") == (-32768.0, 32767.0, -10.5, 10.5)
    assert parse_scale("none") is None and parse_scale("") is None
    for bad in ("0:1:2", "0:1:2:x", "5:5:0:1", "0:1:2:3:4"):
        with pytest.raises(ValueError):
            parse_scale(bad)


def test_parse_deadband() -> None:
    assert parse_deadband("0.5") == (0.5, "absolute")
    assert parse_deadband("2%") == (2.0, "percent")
    assert parse_deadband(" 1.5 % ") == (1.5, "percent")
    for bad in ("-1", "x%", "inf", "%"):
        with pytest.raises(ValueError):
            parse_deadband(bad)


def test_parse_write_value_leaves_typing_to_the_daemon_except_big_integers() -> None:
    assert parse_write_value("42.5") == "42.5"
    assert parse_write_value("on") == "on"
    assert parse_write_value("007") == "007"  # a string tag keeps its leading zeros
    assert parse_write_value(str(2**60)) == 2**60  # an int64 counter keeps every digit
    assert parse_write_value(str(-(2**60))) == -(2**60)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "true"), (False, "false"), (0.0, "0"), (42, "42"), ("on", "on"),
     (3.14159265, "3.14159"), (0.000123456789, "0.000123457"), (123456.7, "123457"), (1234567.8, "1234568"),
     (-2.5, "-2.5"), (1e-9, "1e-09"), (1.5e20, "1.5e+20"), (float("inf"), "inf"), (230.0, "230")],
)  # fmt: skip
def test_format_value(value, text: str) -> None:
    assert format_value(value) == text


def test_quality_and_source_text() -> None:
    assert quality_text({"quality": "GOOD", "reason": None}) == "GOOD"
    assert quality_text({"quality": "BAD", "reason": "comm_failure"}) == "BAD (comm_failure)"
    assert source_text({"source": "device", "device": "m1", "address": "3000"}) == "m1:3000"
    assert source_text({"source": "computed", "expression": "{a} * 2"}) == "= {a} * 2"
    assert source_text({"source": "memory"}) == "memory"


# ---------------------------------------------------------------- device and sim helpers


@pytest.mark.parametrize(("seconds", "text"), [(0.42, "0.4 s"), (-1, "0.0 s"), (12.3, "12 s"), (119, "119 s"),
                                               (180, "3 min"), (5 * 3600, "5 h"), (3 * 86400, "3 d")])  # fmt: skip
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_age_of_and_parse_iso() -> None:
    assert age_of(None) == "" and parse_iso(None) is None
    assert age_of("2026-03-01T11:59:59.6Z", NOW) == "0.4 s"
    assert parse_iso("2026-03-01T12:00:00") == NOW  # a wire time without offset is UTC


def test_device_address() -> None:
    base = msgspec.to_builtins(DeviceSpec(name="x", protocol="modbus_tcp", host="h"))
    assert address(base) == "h:502"
    assert address({**base, "port": 1502}) == "h:1502"
    rtu = msgspec.to_builtins(DEVICE_SPECS[1])
    assert address(rtu) == "/dev/ttyUSB0 19200 8E2"
    assert address(msgspec.to_builtins(DEVICE_SPECS[2])) == "opc.tcp://plc:4840/ua"


def test_split_types() -> None:
    assert split_types(None) is None
    assert split_types("sdm630, inverter,,") == ["sdm630", "inverter"]


def test_float_formatting_survives_csv() -> None:
    # repr() is the shortest text that reads back as the same float.
    for x in (0.1, 1 / 3, -3276.8, 1e-300, 5e-324, 1.7976931348623157e308):
        [t] = files.loads_csv(files.dumps_csv([TagSpec(path="a", eng_low=x)], TAGS), TAGS)
        assert t.eng_low == x and not math.isnan(t.eng_low)
