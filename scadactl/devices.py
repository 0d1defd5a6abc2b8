"""scadactl device: field devices (Modbus TCP/RTU, OPC UA), their files and their health.

Also the helpers the tag commands share: ages, import and export through scadactl.files.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import typer
from rich.markup import escape

from scadactl import files
from scadactl.output import (
    EXIT_USAGE,
    Column,
    Globals,
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
from scadad.api.tag_messages import Order, Protocol

app = typer.Typer(no_args_is_help=True, help="Field devices: add, list, show, edit, remove, import, export, health.")

Name = Annotated[str, typer.Argument(help="device name: lowercase letters, digits, '_' and '-'")]

# Abnormal device states get colour, normal ones stay plain (ISA-101 habit).
DEVICE_STATE_STYLE = {"offline": "bold red", "degraded": "yellow", "connecting": "yellow", "disabled": "dim"}


def state_style(state: Any) -> str:
    return DEVICE_STATE_STYLE.get(str(state), "")


# ---------------------------------------------------------------- shared helpers


def parse_iso(text: str | None) -> datetime | None:
    """A wire time (ISO-8601 with offset or Z) as an aware datetime; None stays None."""
    if not text:
        return None
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def format_age(seconds: float) -> str:
    """A duration for people: '0.4 s', '12 s', '3 min', '5 h', '2 d'."""
    s = max(0.0, seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def age_of(text: str | None, now: datetime | None = None) -> str:
    """How long ago a wire time was ('' when there is none)."""
    t = parse_iso(text)
    if t is None:
        return ""
    return format_age(((now or datetime.now(UTC)) - t).total_seconds())


def spec_file_error(g: Globals, exc: files.SpecFileError) -> typer.Exit:
    """A bad definitions file: its message on standard error, exit 2 (a usage error)."""
    g.err.print(f"[bold red]error[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(EXIT_USAGE)


def import_specs(g: Globals, kind: files.Kind, method: str, file: str, fmt: str | None, update: bool,
                 dry_run: bool) -> None:  # fmt: skip
    """Read a CSV/TOML file and send it to Devices.Import / Tags.Import in one call."""
    try:
        specs = files.read_file(file, kind, fmt)
    except files.SpecFileError as exc:
        raise spec_file_error(g, exc) from None
    res = call(g, method, {kind.table: msgspec.to_builtins(specs), "update": update, "dry_run": dry_run})
    print_import(g, res, file, len(specs), kind.table)


def print_import(g: Globals, res: dict[str, Any], file: str, count: int, noun: str) -> None:
    """An ImportResult for people: the counts, then what was (or would be) created and updated."""
    if g.json:
        emit_json(res)
        return
    if g.quiet:
        return
    created, updated, unchanged = res["created"], res["updated"], res["unchanged"]
    if res["dry_run"]:
        head = (
            f"dry run of {file} ({count} {noun}), nothing changed: would create {len(created)}, update {len(updated)}"
        )
    else:
        head = f"imported {file} ({count} {noun}): created {len(created)}, updated {len(updated)}"
    g.out.print(f"{escape(head)}, {len(unchanged)} unchanged", highlight=False)
    for label, names in (("created" if not res["dry_run"] else "to create", created),
                         ("updated" if not res["dry_run"] else "to update", updated)):  # fmt: skip
        if names:
            shown = ", ".join(names[:10]) + (f" ... (+{len(names) - 10})" if len(names) > 10 else "")
            g.out.print(f"  {label}: {escape(shown)}", highlight=False)


def export_specs(g: Globals, kind: files.Kind, result: dict[str, Any], file: str | None, fmt: str | None) -> None:
    """Write an Export result to FILE (format from --format or the extension) or to standard output."""
    try:
        specs = msgspec.convert(result[kind.table], list[kind.spec])  # type: ignore[name-defined]
        if file is None or file == "-":
            if g.json and fmt is None:
                emit_json(result)
            else:
                sys.stdout.write(files.dumps(specs, kind, files.format_of("-", fmt or "csv")))
            return
        fmt = files.format_of(file, fmt)
        files.write_file(file, specs, kind, fmt)
    except files.SpecFileError as exc:
        raise spec_file_error(g, exc) from None
    done(g, f"exported {len(specs)} {kind.table} to {file}", {"path": file, "format": fmt, "count": len(specs)})


# ---------------------------------------------------------------- list, show


def address(d: dict[str, Any]) -> str:
    """Where a device is: host:port, the serial line, or the OPC UA endpoint."""
    if d["protocol"] == "modbus_tcp":
        return f"{d.get('host') or '?'}:{d.get('port') or 502}"
    if d["protocol"] == "modbus_rtu":
        return f"{d.get('serial_port') or '?'} {d['baudrate']} 8{d['parity']}{d['stopbits']}"
    return d.get("endpoint_url") or "?"


COLUMNS = [
    Column("name", "NAME", no_wrap=True),
    Column("protocol", "PROTOCOL"),
    Column("address", "ADDRESS"),
    Column("unit_id", "UNIT", justify="right"),
    Column("tag_count", "TAGS", justify="right"),
    Column("state", "STATE", style=state_style),
]


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """All devices: protocol, address, tag count and connection state."""
    g = globals_of(ctx)
    devices = call(g, "Devices.List")["devices"]
    if g.json:
        emit_json(devices)
        return
    rows = [{**d, "address": address(d), "unit_id": d["unit_id"] if d["protocol"] != "opcua" else None}
            for d in devices]  # fmt: skip
    render_rows(g, rows, COLUMNS, title="devices")


@app.command("show")
def show(ctx: typer.Context, name: Name) -> None:
    """One device, every field."""
    g = globals_of(ctx)
    render_record(g, call(g, "Devices.Get", {"name": name}))


# ---------------------------------------------------------------- add, edit, rm

ProtocolOpt = Annotated[Protocol, typer.Option("--protocol", "-p", help="modbus_tcp, modbus_rtu or opcua")]
Host = Annotated[str | None, typer.Option("--host", help="Modbus TCP: host name or IP address")]
Port = Annotated[int | None, typer.Option("--port", help="Modbus TCP port (default 502)")]
Unit = Annotated[int | None, typer.Option("--unit", "-u", help="Modbus unit (slave) id, 0-255 (default 1)")]
SerialPort = Annotated[str | None, typer.Option("--serial-port", help="Modbus RTU: serial device, e.g. /dev/ttyUSB0")]
Baudrate = Annotated[int | None, typer.Option("--baudrate", help="Modbus RTU: bits per second (default 9600)")]
Parity = Annotated[Literal["N", "E", "O"] | None, typer.Option("--parity", help="Modbus RTU: N, E or O (default N)")]
Stopbits = Annotated[Literal[1, 2] | None, typer.Option("--stopbits", help="Modbus RTU: 1 or 2 (default 1)")]
Endpoint = Annotated[str | None, typer.Option("--endpoint-url", help="OPC UA: opc.tcp://host:port/path")]
AddressBase = Annotated[
    Literal[0, 1] | None, typer.Option("--address-base", help="register numbers in tag addresses start at 0 or 1")
]
ByteOrder = Annotated[Order | None, typer.Option("--byte-order", help="big or little: bytes within a register")]
WordOrder = Annotated[Order | None, typer.Option("--word-order", help="big or little: registers within a value")]
TimeoutMs = Annotated[int | None, typer.Option("--timeout-ms", help="answer timeout, 10-60000 ms (default 1000)")]
Retries = Annotated[int | None, typer.Option("--retries", help="retries of a failed request, 0-10 (default 0)")]
MaxGap = Annotated[
    int | None, typer.Option("--max-gap", help="unused registers a merged read may span, 0-2000 (default 16)")
]
MaxRegisters = Annotated[
    int | None, typer.Option("--max-registers", help="registers per read request, 1-125 (default 125)")
]
OpcuaMode = Annotated[
    Literal["subscribe", "poll"] | None, typer.Option("--opcua-mode", help="OPC UA: subscribe (default) or poll")
]
Description = Annotated[str | None, typer.Option("--description", "-d")]


def _nullable(text: str | None) -> str | None | msgspec.UnsetType:
    """An edit option that may clear a field: not given = keep, '' = clear."""
    if text is None:
        return msgspec.UNSET
    return text or None


@app.command("add")
def add(
    ctx: typer.Context,
    name: Name,
    protocol: ProtocolOpt,
    host: Host = None,
    port: Port = None,
    unit: Unit = None,
    serial_port: SerialPort = None,
    baudrate: Baudrate = None,
    parity: Parity = None,
    stopbits: Stopbits = None,
    endpoint_url: Endpoint = None,
    address_base: AddressBase = None,
    byte_order: ByteOrder = None,
    word_order: WordOrder = None,
    timeout_ms: TimeoutMs = None,
    retries: Retries = None,
    max_gap: MaxGap = None,
    max_registers: MaxRegisters = None,
    opcua_mode: OpcuaMode = None,
    description: Description = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="add it without polling it yet")] = False,
) -> None:
    """Add a device. Modbus TCP needs --host, RTU --serial-port, OPC UA --endpoint-url."""
    g = globals_of(ctx)
    params = present(name=name, protocol=protocol, host=host, port=port, unit_id=unit, serial_port=serial_port,
                     baudrate=baudrate, parity=parity, stopbits=stopbits, endpoint_url=endpoint_url,
                     address_base=address_base, byte_order=byte_order, word_order=word_order, timeout_ms=timeout_ms,
                     retries=retries, max_gap=max_gap, max_registers=max_registers, opcua_mode=opcua_mode,
                     description=description, enabled=False if disabled else None)  # fmt: skip
    dev = call(g, "Devices.Create", params)
    done(g, f"device {dev['name']} added ({address(dev)})", dev)


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: Name,
    host: Annotated[str | None, typer.Option("--host", help="Modbus TCP host ('' clears it)")] = None,
    port: Port = None,
    unit: Unit = None,
    serial_port: Annotated[
        str | None, typer.Option("--serial-port", help="Modbus RTU serial device ('' clears it)")
    ] = None,
    baudrate: Baudrate = None,
    parity: Parity = None,
    stopbits: Stopbits = None,
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="OPC UA endpoint ('' clears it)")] = None,
    address_base: AddressBase = None,
    byte_order: ByteOrder = None,
    word_order: WordOrder = None,
    timeout_ms: TimeoutMs = None,
    retries: Retries = None,
    max_gap: MaxGap = None,
    max_registers: MaxRegisters = None,
    opcua_mode: OpcuaMode = None,
    description: Description = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="start or stop polling it")] = None,
) -> None:
    """Change a device's fields; options left out keep their value (the protocol cannot change)."""
    g = globals_of(ctx)
    params = present(name=name, port=port, unit_id=unit, baudrate=baudrate, parity=parity, stopbits=stopbits,
                     address_base=address_base, byte_order=byte_order, word_order=word_order, timeout_ms=timeout_ms,
                     retries=retries, max_gap=max_gap, max_registers=max_registers, opcua_mode=opcua_mode,
                     description=description, enabled=enabled)  # fmt: skip
    for key, text in (("host", host), ("serial_port", serial_port), ("endpoint_url", endpoint_url)):
        value = _nullable(text)
        if value is not msgspec.UNSET:
            params[key] = value
    require_change(params)
    dev = call(g, "Devices.Update", params)
    done(g, f"device {dev['name']} updated", dev)


@app.command("rm")
def remove(
    ctx: typer.Context,
    name: Name,
    force: Annotated[bool, typer.Option("--force", help="remove it even though tags still read from it")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove a device. One that still has tags is refused unless --force (its tags then go BAD)."""
    confirm_remove(globals_of(ctx), f"device {name}", "Devices.Delete", {"name": name, "force": force}, yes)


# ---------------------------------------------------------------- files

FileArg = Annotated[str, typer.Argument(help="a .csv or .toml file")]
FormatOpt = Annotated[
    Literal["csv", "toml"] | None, typer.Option("--format", "-f", help="csv or toml (default: from the extension)")
]
Update = Annotated[bool, typer.Option("--update", help="change devices that exist to match the file")]
DryRun = Annotated[bool, typer.Option("--dry-run", "-n", help="check and report, change nothing")]


@app.command("import")
def import_(
    ctx: typer.Context, file: FileArg, update: Update = False, dry_run: DryRun = False, fmt: FormatOpt = None
) -> None:
    """Add the devices of a CSV or TOML file (as `device export` writes); all or nothing.

    A device that exists already is an error unless --update.
    """
    import_specs(globals_of(ctx), files.DEVICES, "Devices.Import", file, fmt, update, dry_run)


@app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(help="a .csv or .toml file (default: standard output)")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Write every device definition to a CSV or TOML file, or to standard output (CSV by default)."""
    g = globals_of(ctx)
    export_specs(g, files.DEVICES, call(g, "Devices.Export"), file, fmt)


# ---------------------------------------------------------------- health


def _ms(v: Any) -> str:
    return "" if v is None else f"{v:.1f}"


def health_row(h: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A DeviceHealth as table cells."""
    last_good = age_of(h.get("last_good"), now)
    return {
        **h,
        "last_good_age": f"{last_good} ago" if last_good else "never",
        "error_counts": " ".join(f"{k}={v}" for k, v in sorted(h.get("errors", {}).items()) if v),
        "tag_health": f"{h['tags_good']}/{h['tags_bad']}",
    }


HEALTH_COLUMNS = [
    Column("name", "NAME", no_wrap=True),
    Column("state", "STATE", style=state_style),
    Column("last_good_age", "LAST GOOD", justify="right"),
    Column("requests", "REQUESTS", justify="right"),
    Column("error_counts", "ERRORS"),
    Column("p50_ms", "P50 ms", fmt=_ms, justify="right"),
    Column("p99_ms", "P99 ms", fmt=_ms, justify="right"),
    Column("jitter_p99_ms", "JITTER p99", fmt=_ms, justify="right"),
    Column("tag_health", "TAGS good/bad", justify="right"),
    Column("last_error", "LAST ERROR"),
]


@app.command("status")
def status(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="only this device")] = None,
) -> None:
    """Communication health per device: state, last good read, requests, errors by kind,
    response time (p50/p99), scan jitter, tags good/bad, the last error."""
    g = globals_of(ctx)
    devices = call(g, "Devices.Status", present(name=name))["devices"]
    if g.json:
        emit_json(devices)
        return
    now = datetime.now(UTC)
    render_rows(g, [health_row(h, now) for h in devices], HEALTH_COLUMNS, title="device health")
