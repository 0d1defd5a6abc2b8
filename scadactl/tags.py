"""scadactl tag: tag definitions, live values, writes and a live watch."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from scadactl import files
from scadactl.devices import age_of, export_specs, import_specs, parse_iso
from scadactl.output import (
    Column,
    api,
    call,
    confirm_remove,
    done,
    emit_json,
    globals_of,
    present,
    render_record,
    render_rows,
    require_change,
)
from scadad.api.tag_messages import DataType, Order

app = typer.Typer(
    no_args_is_help=True,
    help="Tags: define, list, read, write and watch values; import and export definitions.",
)

PathArg = Annotated[str, typer.Argument(help="tag path, e.g. north/meter-1/active_power")]
PATTERN_HELP = "'*' is one path segment (or part of one), '**' any depth"

# Qualities get colour only when not GOOD (ISA-101 habit).
QUALITY_STYLE = {"GOOD": "", "UNCERTAIN": "yellow", "BAD": "bold red"}


# ---------------------------------------------------------------- pure helpers


def format_value(v: Any) -> str:
    """A tag value for people: floats to about 6 significant digits (never fewer than the
    integer part needs, so 123456.7 kWh shows as 123457, not 1.23457e+05)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        a = abs(v)
        if v == 0:
            return "0"
        if 1e-4 <= a < 1e15:
            digits = max(6, len(str(int(a))))
            return f"{v:.{digits}g}"
        return f"{v:.6g}"
    return str(v)


def quality_text(v: dict[str, Any]) -> str:
    """GOOD, UNCERTAIN (reason) or BAD (reason)."""
    q = v.get("quality") or ""
    reason = v.get("reason")
    return f"{q} ({reason})" if reason and q != "GOOD" else q


def quality_style(text: Any) -> str:
    return QUALITY_STYLE.get(str(text).split(" ", 1)[0], "")


def source_text(spec: dict[str, Any]) -> str:
    """Where a tag's value comes from: device:address, = expression, or memory."""
    if spec.get("source") == "computed":
        return f"= {spec.get('expression') or ''}"
    if spec.get("source") == "memory":
        return "memory"
    return f"{spec.get('device') or '?'}:{spec.get('address') or '?'}"


def parse_scale(text: str) -> tuple[float, float, float, float] | None:
    """'RAW_LO:RAW_HI:ENG_LO:ENG_HI' as four floats; 'none' (or '') means no scaling."""
    if text.strip().lower() in ("", "none", "off"):
        return None
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(f"expected RAW_LO:RAW_HI:ENG_LO:ENG_HI (four numbers), got {text!r}")
    try:
        lo, hi, elo, ehi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected four numbers RAW_LO:RAW_HI:ENG_LO:ENG_HI, got {text!r}") from None
    if lo == hi:
        raise ValueError(f"the raw range is empty ({lo:g} to {hi:g})")
    return lo, hi, elo, ehi


def parse_deadband(text: str) -> tuple[float, Literal["absolute", "percent"]]:
    """'0.5' (engineering units) or '2%' (of the span) as (value, mode)."""
    t = text.strip()
    mode: Literal["absolute", "percent"] = "percent" if t.endswith("%") else "absolute"
    try:
        value = float(t.removesuffix("%").strip())
    except ValueError:
        raise ValueError(f"expected a number, or a number and '%', got {text!r}") from None
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"a deadband is a finite number >= 0, got {text!r}")
    return value, mode


_BIG_INT = re.compile(r"^[+-]?\d+$")


def parse_write_value(text: str) -> str | int:
    """A VALUE to send to Tags.Write. The daemon reads text as the tag's type (number,
    true/false/on/off/1/0, string), so text goes as it is, except a whole number too large
    for a float to carry exactly (an int64 counter), which goes as an integer."""
    if _BIG_INT.match(text.strip()):
        n = int(text.strip())
        if abs(n) > 2**53:
            return n
    return text


# ---------------------------------------------------------------- list, show, read

VALUE_COLUMNS = [
    Column("path", "PATH", no_wrap=True),
    Column("value_text", "VALUE", justify="right"),
    Column("units", "UNITS"),
    Column("quality_text", "QUALITY", style=quality_style),
    Column("age", "AGE", justify="right"),
]


def value_row(v: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "path": v["path"],
        "value_text": format_value(v.get("value")),
        "units": v.get("units") or "",
        "quality_text": quality_text(v),
        "age": age_of(v.get("source_time"), now),
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help=f"tag path pattern: {PATTERN_HELP}")] = "**",
    device: Annotated[str | None, typer.Option("--device", "-D", help="only tags of this device")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="at most N tags")] = None,
) -> None:
    """Tags with their live value, units, quality, age and source.

    --json prints the whole API result: {tags: [{id, spec, value, ...}], total}.
    """
    g = globals_of(ctx)
    res = call(g, "Tags.List", present(pattern=pattern, device=device, limit=limit))
    if g.json:
        emit_json(res)
        return
    now = datetime.now(UTC)
    rows = [{**value_row({**t["value"], "units": t["spec"]["units"]}, now), "source": source_text(t["spec"])}
            for t in res["tags"]]  # fmt: skip
    render_rows(g, rows, [*VALUE_COLUMNS, Column("source", "SOURCE")], title="tags")
    if len(rows) < res["total"] and not g.quiet:
        g.err.print(f"showing {len(rows)} of {res['total']} tags (--limit)", highlight=False)


def _scale_text(s: dict[str, Any]) -> str | None:
    if s.get("raw_low") is None:
        return None

    def f(v: float) -> str:
        return f"{v:.12g}"

    return f"{f(s['raw_low'])}..{f(s['raw_high'])} -> {f(s['eng_low'])}..{f(s['eng_high'])}"


@app.command("show")
def show(ctx: typer.Context, path: PathArg) -> None:
    """One tag: its whole definition and its live value."""
    g = globals_of(ctx)
    tag = call(g, "Tags.Get", {"path": path})
    if g.json:
        emit_json(tag)
        return
    spec, v = dict(tag["spec"]), tag["value"]
    scale = _scale_text(spec)
    for k in ("raw_low", "raw_high", "eng_low", "eng_high"):
        spec.pop(k, None)
    record: dict[str, Any] = {"id": tag["id"]}
    for key, value in spec.items():
        if key == "deadband_mode":
            continue
        if key == "deadband":
            value = f"{format_value(value)}{' %' if spec['deadband_mode'] == 'percent' else ''}"
        if value is not None:
            record[key] = value
    if scale:
        record["scaling"] = scale
    now = datetime.now(UTC)
    record.update({
        "value": format_value(v.get("value")),
        "quality": quality_text(v) + (f": {v['detail']}" if v.get("detail") else ""),
        "source time": _local(v.get("source_time")),
        "age": age_of(v.get("source_time"), now),
        "server time": _local(v.get("server_time")),
        "created": _local(tag["created_at"]),
        "updated": _local(tag["updated_at"]),
    })  # fmt: skip
    render_record(g, record)


def _local(text: str | None) -> str:
    t = parse_iso(text)
    return "" if t is None else t.astimezone().isoformat(sep=" ", timespec="milliseconds")


@app.command("read")
def read(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help=f"tag paths or patterns ({PATTERN_HELP})")],
) -> None:
    """Current values of tags (no device read: the latest scan)."""
    g = globals_of(ctx)
    values = call(g, "Tags.Read", {"paths": paths})["values"]
    if g.json:
        emit_json(values)
        return
    now = datetime.now(UTC)
    render_rows(g, [value_row(v, now) for v in values], VALUE_COLUMNS, title="tags")


# ---------------------------------------------------------------- add, edit, rm

TypeOpt = Annotated[DataType | None, typer.Option("--type", "-t", help="data type (default float32)")]
DeviceOpt = Annotated[str | None, typer.Option("--device", "-D", help="the device it reads from")]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address", "-a", help="Modbus register/coil N (N.B for bit B), in the device's address base; OPC UA node id"
    ),
]
FunctionOpt = Annotated[
    Literal[1, 2, 3, 4] | None,
    typer.Option("--function", help="Modbus table: 1 coils, 2 discrete inputs, 3 holding (default), 4 input registers"),
]
StringLength = Annotated[int | None, typer.Option("--string-length", help="string tags: characters (0-246)")]
ByteOrder = Annotated[Order | None, typer.Option("--byte-order", help="override the device's byte order")]
WordOrder = Annotated[Order | None, typer.Option("--word-order", help="override the device's word order")]
ScanGroup = Annotated[str | None, typer.Option("--scan-group", "-g", help="scan group (default: default)")]
Expression = Annotated[
    str | None, typer.Option("--expression", "-e", help="a computed tag: expression over other tags")
]
Memory = Annotated[bool, typer.Option("--memory", help="a memory tag: holds what is written to it")]
Units = Annotated[str | None, typer.Option("--units", help="engineering units, e.g. kW")]
Description = Annotated[str | None, typer.Option("--description", "-d")]
Scale = Annotated[
    str | None,
    typer.Option("--scale", help="linear scaling RAW_LO:RAW_HI:ENG_LO:ENG_HI, e.g. 0:65535:0:100 ('none' removes it)"),
]
Deadband = Annotated[
    str | None, typer.Option("--deadband", help="N (engineering units) or N% (of the span) for history and events")
]
InitialValue = Annotated[str | None, typer.Option("--initial-value", help="value of a memory tag at start")]
Retention = Annotated[int | None, typer.Option("--retention-days", help="history kept, in days (default: historian's)")]


def _options(scale: str | None, deadband: str | None) -> dict[str, Any]:
    """--scale and --deadband as fields; a malformed one is a usage error."""
    out: dict[str, Any] = {}
    if scale is not None:
        try:
            s = parse_scale(scale)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scale") from None
        out.update(zip(("raw_low", "raw_high", "eng_low", "eng_high"), s or (None,) * 4, strict=True))
    if deadband is not None:
        try:
            out["deadband"], out["deadband_mode"] = parse_deadband(deadband)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--deadband") from None
    return out


def _source(expression: str | None, memory: bool) -> str | None:
    if expression is not None and memory:
        raise typer.BadParameter(
            "a tag is computed (--expression) or memory (--memory), not both", param_hint="--memory"
        )
    return "computed" if expression is not None else ("memory" if memory else None)


@app.command("add")
def add(
    ctx: typer.Context,
    path: PathArg,
    data_type: TypeOpt = None,
    device: DeviceOpt = None,
    address: AddressOpt = None,
    function: FunctionOpt = None,
    string_length: StringLength = None,
    byte_order: ByteOrder = None,
    word_order: WordOrder = None,
    scan_group: ScanGroup = None,
    expression: Expression = None,
    memory: Memory = False,
    units: Units = None,
    description: Description = None,
    scale: Scale = None,
    deadband: Deadband = None,
    writable: Annotated[
        bool, typer.Option("--writable", "-w", help="device tags: allow `tag write` (memory tags always take writes)")
    ] = False,
    initial_value: InitialValue = None,
    retention_days: Retention = None,
) -> None:
    """Add a tag: read from --device at --address, computed from --expression, or a --memory tag."""
    g = globals_of(ctx)
    source = _source(expression, memory) or "device"
    params = present(path=path, data_type=data_type, source=source, device=device, address=address,
                     function=function, string_length=string_length, byte_order=byte_order, word_order=word_order,
                     scan_group=scan_group, expression=expression, units=units, description=description,
                     writable=writable or None, initial_value=initial_value, retention_days=retention_days)  # fmt: skip
    params.update({k: v for k, v in _options(scale, deadband).items() if v is not None})
    tag = call(g, "Tags.Create", params)
    done(g, f"tag {tag['spec']['path']} added ({source_text(tag['spec'])})", tag)


@app.command("edit")
def edit(
    ctx: typer.Context,
    path: PathArg,
    data_type: TypeOpt = None,
    device: DeviceOpt = None,
    address: AddressOpt = None,
    function: FunctionOpt = None,
    string_length: StringLength = None,
    byte_order: ByteOrder = None,
    word_order: WordOrder = None,
    scan_group: ScanGroup = None,
    expression: Expression = None,
    memory: Annotated[bool, typer.Option("--memory", help="make it a memory tag")] = False,
    units: Units = None,
    description: Description = None,
    scale: Scale = None,
    deadband: Deadband = None,
    writable: Annotated[
        bool | None, typer.Option("--writable/--read-only", "-w/-W", help="device tags: allow `tag write` or not")
    ] = None,
    initial_value: InitialValue = None,
    retention_days: Annotated[
        int | None, typer.Option("--retention-days", help="history kept, in days (0: the historian's default)")
    ] = None,
) -> None:
    """Change a tag's fields; options left out keep their value.

    --expression makes it computed, --memory a memory tag, --device a device tag.
    """
    g = globals_of(ctx)
    source = _source(expression, memory) or ("device" if device is not None else None)
    params = present(path=path, data_type=data_type, source=source, device=device, address=address,
                     function=function, string_length=string_length, byte_order=byte_order, word_order=word_order,
                     scan_group=scan_group, expression=expression, units=units, description=description,
                     writable=writable, initial_value=initial_value)  # fmt: skip
    if retention_days is not None:
        params["retention_days"] = retention_days or None
    params.update(_options(scale, deadband))
    require_change(params)
    tag = call(g, "Tags.Update", params)
    done(g, f"tag {tag['spec']['path']} updated", tag)


@app.command("rm")
def remove(
    ctx: typer.Context,
    path: PathArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove a tag (its history stays until retention removes it)."""
    confirm_remove(globals_of(ctx), f"tag {path}", "Tags.Delete", {"path": path}, yes)


# ---------------------------------------------------------------- files

FormatOpt = Annotated[
    Literal["csv", "toml"] | None, typer.Option("--format", "-f", help="csv or toml (default: from the extension)")
]


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="a .csv or .toml file")],
    update: Annotated[bool, typer.Option("--update", help="change tags that exist to match the file")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="check and report, change nothing")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Add the tags of a CSV or TOML file (as `tag export` writes); all or nothing.

    A tag that exists already is an error unless --update. A bad file exits 2 naming
    the file, row and field.
    """
    import_specs(globals_of(ctx), files.TAGS, "Tags.Import", file, fmt, update, dry_run)


@app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(help="a .csv or .toml file (default: standard output)")] = None,
    pattern: Annotated[str | None, typer.Option("--pattern", "-p", help=f"only matching tags ({PATTERN_HELP})")] = None,
    device: Annotated[str | None, typer.Option("--device", "-D", help="only tags of this device")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Write tag definitions to a CSV or TOML file, or to standard output (CSV by default)."""
    g = globals_of(ctx)
    export_specs(g, files.TAGS, call(g, "Tags.Export", present(pattern=pattern, device=device)), file, fmt)


# ---------------------------------------------------------------- write, watch


@app.command("write")
def write(
    ctx: typer.Context,
    path: PathArg,
    value: Annotated[str, typer.Argument(help="engineering value: a number, true/false/on/off/1/0, or text")],
    no_confirm: Annotated[
        bool, typer.Option("--no-confirm", help="do not read the value back from the device")
    ] = False,
) -> None:
    """Write a value to a writable tag and read it back from the device.

    Prints what was written, the raw value sent after reverse scaling, the read-back
    value and whether it matched.
    """
    g = globals_of(ctx)
    res = call(g, "Tags.Write", {"path": path, "value": parse_write_value(value), "confirm": not no_confirm})
    if g.json:
        emit_json(res)
        return
    back = res.get("read_back")
    units = f" {back['units']}" if back and back.get("units") else ""
    render_record(
        g,
        {
            "path": res["path"],
            "written": format_value(res["written"]) + units,
            "raw": format_value(res["raw"]) if res["raw"] is not None else "",
            "read back": f"{format_value(back.get('value'))}{units} {quality_text(back)}" if back else "(not read)",
            "confirmed": "yes" if res["confirmed"] else ("no" if not no_confirm else "not asked"),
        },
    )


@app.command("watch")
def watch(
    ctx: typer.Context,
    patterns: Annotated[
        list[str] | None, typer.Argument(help=f"tag paths or patterns ({PATTERN_HELP}; default **)")
    ] = None,
    deadband: Annotated[
        float | None, typer.Option("--deadband", help="only changes larger than this (engineering units)", min=0)
    ] = None,
    quality_only: Annotated[bool, typer.Option("--quality-only", help="only quality changes")] = False,
    interval: Annotated[
        int | None, typer.Option("--interval", help="at most one batch per MS milliseconds", metavar="MS", min=0)
    ] = None,
    no_initial: Annotated[bool, typer.Option("--no-initial", help="skip the current values at the start")] = False,
) -> None:
    """Follow tag values live, one line per change (NDJSON, one event per line, with --json); Ctrl-C stops.

    The first batch is the current value of every matching tag.
    """
    g = globals_of(ctx)
    params = present(patterns=patterns or None, deadband=deadband, quality_only=quality_only or None,
                     min_interval_ms=interval, initial=False if no_initial else None)  # fmt: skip
    width = 0  # paths line up; the column only grows
    with api(g) as client:
        client.set_timeout(None)
        try:
            for event in client.stream("Tags.Watch", params):
                if g.json:
                    emit_json(event)
                    continue
                width = max([width, *(len(v["path"]) for v in event["values"])])
                for v in event["values"]:
                    t = parse_iso(v.get("source_time") or v.get("server_time"))
                    when = t.astimezone().strftime("%H:%M:%S.%f")[:-3] if t else " " * 12
                    q = quality_text(v)
                    style = quality_style(q)
                    qcell = f"[{style}]{escape(q)}[/]" if style else escape(q)
                    units = f" {v['units']}" if v.get("units") else ""
                    g.out.print(
                        f"{when}  {escape(v['path'].ljust(width))}  {escape(format_value(v.get('value')) + units)}  {qcell}",
                        highlight=False,
                        soft_wrap=True,
                    )
        except KeyboardInterrupt:
            pass
