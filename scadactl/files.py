"""Device and tag definitions as CSV and TOML files (pure: no I/O beyond the file itself).

CSV: a header row of field names (any order, any subset that includes the required
ones), one device or tag per row; an empty cell means the field's default (None where
the default is None); booleans are true/false, 1/0 or yes/no. TOML: an array of tables,
`[[devices]]` or `[[tags]]`, one per device or tag, None fields left out.

Every value goes through msgspec.convert into DeviceSpec / TagSpec, so a file is
checked by the same rules as the API, and an error names the file, the row (CSV rows
count the header as row 1) or entry, and the field.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import tomli_w

from scadad.api.tag_messages import DeviceSpec, TagSpec

FORMATS = ("csv", "toml")
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class SpecFileError(ValueError):
    """A file that cannot be read as device or tag definitions; str() is the whole message."""


@dataclass(frozen=True)
class Kind:
    """What a file holds: its TOML table name, the spec type, and the field that names an entry."""

    table: str
    spec: type[msgspec.Struct]
    key: str

    @property
    def fields(self) -> tuple[str, ...]:
        return self.spec.__struct_fields__

    @property
    def singular(self) -> str:
        return self.table.removesuffix("s")


DEVICES = Kind("devices", DeviceSpec, "name")
TAGS = Kind("tags", TagSpec, "path")


def format_of(path: str | Path, given: str | None = None) -> str:
    """The file format: `given`, else from the extension (.csv, .toml)."""
    if given:
        if given not in FORMATS:
            raise SpecFileError(f"unknown format {given!r} (csv or toml)")
        return given
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise SpecFileError(
            f"{path}: cannot tell the format from the extension; name it .csv or .toml, or give --format"
        )
    return ext


# ---------------------------------------------------------------- field types


@functools.cache
def _types_of(kind: Kind) -> dict[str, list[msgspec.inspect.Type]]:
    """Each field's possible types, None left out (a `port: int | None` is [IntType])."""
    info = msgspec.inspect.type_info(kind.spec)
    assert isinstance(info, msgspec.inspect.StructType)
    out = {}
    for f in info.fields:
        t = f.type
        types = list(t.types) if isinstance(t, msgspec.inspect.UnionType) else [t]
        out[f.name] = [x for x in types if not isinstance(x, msgspec.inspect.NoneType)]
    return out


def parse_cell(text: str, types: Sequence[msgspec.inspect.Type]) -> Any:
    """A CSV cell as the field's type; raises ValueError with a short reason."""
    I = msgspec.inspect  # noqa: E741, N806
    for t in types:
        if isinstance(t, I.ListType):
            # A list in one cell: items separated by ';' (e.g. sentinels "-32768;65535").
            return [parse_cell(x, [t.item_type]) for x in text.split(";") if x.strip()]
        if isinstance(t, I.LiteralType):
            for v in t.values:
                if str(v) == text.strip():
                    return v
            raise ValueError(f"expected one of {', '.join(map(str, t.values))}, got {text!r}")
        if isinstance(t, I.BoolType):
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if isinstance(t, I.IntType):
            try:
                return int(text.strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {text!r}") from None
        if isinstance(t, I.FloatType):
            try:
                return float(text.strip())
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
    return text


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(format_cell(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ---------------------------------------------------------------- validation

_AT = re.compile(r"^(?P<msg>.*?) - at `\$\.(?P<field>\w+)[^`]*`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>\w+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>\w+)`")


def _convert(kind: Kind, data: dict[str, Any], where: str) -> msgspec.Struct:
    """`data` as the spec type; a validation error becomes "<where>, field 'x': reason"."""
    try:
        return msgspec.convert(data, kind.spec)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if m := _MISSING.match(text):
            raise SpecFileError(f"{where}, field {m['field']!r}: required, but missing or empty") from None
        if m := _UNKNOWN.match(text):
            raise SpecFileError(
                f"{where}, field {m['field']!r}: unknown field (fields are: {', '.join(kind.fields)})"
            ) from None
        if m := _AT.match(text):
            field, msg = m["field"], m["msg"]
            got = f" (got {data[field]!r})" if field in data else ""
            literals = [t for t in _types_of(kind).get(field, []) if isinstance(t, msgspec.inspect.LiteralType)]
            if msg.startswith("Invalid enum value") and literals:
                msg = "expected one of " + ", ".join(map(str, literals[0].values))
            raise SpecFileError(f"{where}, field {field!r}: {msg}{got}") from None
        raise SpecFileError(f"{where}: {text}") from None


def _check_unique(kind: Kind, keys: list[tuple[str, str]]) -> None:
    """No two entries with the same name/path; `keys` are (where, key)."""
    seen: dict[str, str] = {}
    for where, key in keys:
        if key in seen:
            raise SpecFileError(f"{where}, field {kind.key!r}: {key!r} is already defined at {seen[key]}")
        seen[key] = where


# ---------------------------------------------------------------- CSV


def dumps_csv(specs: Sequence[msgspec.Struct], kind: Kind) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    # The csv module quotes a cell with '\n' but not one with a lone '\r' when lines end
    # in '\n'; such rows are written with every cell quoted.
    quote_all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(kind.fields)
    for spec in specs:
        row = [format_cell(getattr(spec, f)) for f in kind.fields]
        (quote_all if any("\r" in c for c in row) else w).writerow(row)
    return out.getvalue()


def loads_csv(text: str, kind: Kind, name: str = "<csv>") -> list[Any]:
    types = _types_of(kind)
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise SpecFileError(f"{name} row 1: {exc}") from None
    if not header or not any(h.strip() for h in header):
        raise SpecFileError(f"{name} row 1: no header row (expected field names: {', '.join(kind.fields)})")
    columns = [h.strip() for h in header]
    for i, col in enumerate(columns):
        if col == "":
            continue  # a nameless column (a trailing comma): its cells must stay empty
        if col not in types:
            raise SpecFileError(f"{name} row 1, field {col!r}: unknown column (fields are: {', '.join(kind.fields)})")
        if col in columns[:i]:
            raise SpecFileError(f"{name} row 1, field {col!r}: column given twice")
    specs: list[Any] = []
    keys: list[tuple[str, str]] = []
    row_no = 1
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise SpecFileError(f"{name} row {row_no + 1}: {exc}") from None
        row_no += 1
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        where = f"{name} row {row_no}"
        if len(row) > len(columns):
            raise SpecFileError(f"{where}: {len(row)} cells but the header has {len(columns)} columns")
        data: dict[str, Any] = {}
        for n, (col, cell) in enumerate(zip(columns, row, strict=False), 1):
            if cell == "":
                continue
            if col == "":
                raise SpecFileError(f"{where}: a value in column {n}, which has no name in the header row")
            try:
                data[col] = parse_cell(cell, types[col])
            except ValueError as exc:
                raise SpecFileError(f"{where}, field {col!r}: {exc}") from None
        spec = _convert(kind, data, where)
        specs.append(spec)
        keys.append((where, getattr(spec, kind.key)))
    _check_unique(kind, keys)
    return specs


# ---------------------------------------------------------------- TOML


def dumps_toml(specs: Sequence[msgspec.Struct], kind: Kind) -> str:
    entries = [{k: v for k, v in msgspec.to_builtins(s).items() if v is not None} for s in specs]
    return tomli_w.dumps({kind.table: entries})


def loads_toml(text: str, kind: Kind, name: str = "<toml>") -> list[Any]:
    try:
        doc = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecFileError(f"{name}: not valid TOML: {exc}") from None
    other = [k for k in doc if k != kind.table]
    if other:
        raise SpecFileError(
            f"{name}: unexpected {', '.join(map(repr, other))} (a {kind.singular} file holds [[{kind.table}]] tables)"
        )
    entries = doc.get(kind.table, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SpecFileError(f"{name}: {kind.table!r} must be an array of tables ([[{kind.table}]])")
    header = re.compile(r"^\s*\[\[\s*[\"']?" + re.escape(kind.table) + r"[\"']?\s*\]\]")
    lines = [n for n, line in enumerate(text.splitlines(), 1) if header.match(line)]
    specs: list[Any] = []
    keys: list[tuple[str, str]] = []
    for i, entry in enumerate(entries):
        line = f" (line {lines[i]})" if len(lines) == len(entries) else ""
        where = f"{name} entry {i + 1}{line}"
        spec = _convert(kind, entry, where)
        specs.append(spec)
        keys.append((where, getattr(spec, kind.key)))
    _check_unique(kind, keys)
    return specs


# ---------------------------------------------------------------- both


def dumps(specs: Sequence[msgspec.Struct], kind: Kind, fmt: str) -> str:
    return dumps_toml(specs, kind) if fmt == "toml" else dumps_csv(specs, kind)


def loads(text: str, kind: Kind, fmt: str, name: str) -> list[Any]:
    return loads_toml(text, kind, name) if fmt == "toml" else loads_csv(text, kind, name)


def read_file(path: str | Path, kind: Kind, fmt: str | None = None) -> list[Any]:
    """Definitions from a file; SpecFileError names file, row and field on any problem."""
    fmt = format_of(path, fmt)
    try:
        with open(path, encoding="utf-8", newline="") as f:  # keep a '\r' inside a quoted cell
            text = f.read()
    except UnicodeDecodeError as exc:
        raise SpecFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SpecFileError(f"{path}: {exc.strerror or exc}") from None
    return loads(text, kind, fmt, str(path))


def write_file(path: str | Path, specs: Sequence[msgspec.Struct], kind: Kind, fmt: str | None = None) -> None:
    fmt = format_of(path, fmt)
    try:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(dumps(specs, kind, fmt))
    except OSError as exc:
        raise SpecFileError(f"{path}: {exc.strerror or exc}") from None
