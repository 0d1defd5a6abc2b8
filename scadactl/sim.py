"""scadactl sim: the built-in simulated plant (Modbus TCP simulators on loopback)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from scadactl.output import Column, call, emit_json, globals_of, present, render_rows

app = typer.Typer(no_args_is_help=True, help="The simulated plant: start, stop, status, inject faults.")

COLUMNS = [
    Column("name", "DEVICE"),
    Column("kind", "KIND"),
    Column("port", "PORT", justify="right"),
    Column("tags", "TAGS", justify="right"),
    Column("fault", "FAULT", style=lambda v: "" if v in ("none", "", None) else "yellow"),
]


def _show(ctx: typer.Context, st: dict[str, Any], headline: str) -> None:
    g = globals_of(ctx)
    if g.json:
        emit_json(st)
        return
    if not g.quiet:
        g.out.print(headline, highlight=False)
    if st["devices"]:
        render_rows(g, st["devices"], COLUMNS, title="simulated devices")


def split_types(text: str | None) -> list[str] | None:
    """--types 'sdm630,inverter' as a list (None when not given)."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


@app.command("start")
def start(
    ctx: typer.Context,
    devices: Annotated[
        int | None, typer.Option("--devices", "-d", help="number of devices (default: one of each type)", min=1)
    ] = None,
    tags_per_device: Annotated[
        int | None, typer.Option("--tags-per-device", "-t", help="extra filler tags per device (load tests)", min=0)
    ] = None,
    types: Annotated[str | None, typer.Option("--types", help="device types, comma separated (default: all)")] = None,
    base_port: Annotated[
        int | None, typer.Option("--base-port", help="first TCP port, then one per device (default: any free port)")
    ] = None,
    site: Annotated[
        str | None, typer.Option("--site", "-s", help="first segment of the tag paths (default sim)")
    ] = None,
    scan_ms: Annotated[
        int | None, typer.Option("--scan-ms", help="scan interval of the new tags (default 1000)")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="seed of the models: same seed, same plant (default: the daemon's \\[simulator] seed)", min=0
        ),
    ] = None,
) -> None:
    """Start simulated devices on loopback and add their devices and tags (SITE/KIND-N/POINT)."""
    g = globals_of(ctx)
    params = present(devices=devices, tags_per_device=tags_per_device, types=split_types(types), base_port=base_port,
                     site=site, scan_ms=scan_ms, seed=seed)  # fmt: skip
    st = call(g, "Sim.Start", params)
    n_tags = sum(d["tags"] for d in st["devices"])
    _show(ctx, st, f"simulated plant started: {len(st['devices'])} devices, {n_tags} tags")


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the simulators; their devices and tags stay configured (and go BAD)."""
    g = globals_of(ctx)
    st = call(g, "Sim.Stop")
    _show(ctx, st, "simulated plant stopped")


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Whether the simulated plant runs; its devices, ports, tag counts and faults."""
    g = globals_of(ctx)
    st = call(g, "Sim.Status")
    _show(ctx, st, "simulated plant running" if st["running"] else "simulated plant not running")


@app.command("fault")
def fault(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="simulated device, e.g. sdm630-1")],
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND",
            help="timeout, exception[:START[-END]][:CODE] (e.g. exception:3000-3010:4), disconnect, garbage, or clear",
        ),
    ],
) -> None:
    """Break a simulated device: no replies, Modbus exceptions, dropped connections, garbled frames; clear undoes it."""
    g = globals_of(ctx)
    st = call(g, "Sim.Fault", {"device": device, "fault": kind})
    if g.json:
        emit_json(st)
        return
    now = next((d["fault"] for d in st["devices"] if d["name"] == device), kind)
    if not g.quiet:
        g.out.print(f"{device}: fault {now}", highlight=False, markup=False)
