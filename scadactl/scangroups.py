"""scadactl scangroup: how often tags are read."""

from __future__ import annotations

from typing import Annotated

import typer

from scadactl.output import Column, call, done, emit_json, globals_of, present, render_rows

app = typer.Typer(no_args_is_help=True, help="Scan groups: how often their tags are read.")

Name = Annotated[str, typer.Argument(help="scan group name: lowercase letters, digits, '_' and '-'")]

COLUMNS = [
    Column("name", "NAME"),
    Column("interval_ms", "INTERVAL ms", justify="right"),
    Column("tag_count", "TAGS", justify="right"),
    Column("description", "DESCRIPTION"),
]


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """All scan groups with their interval and tag count."""
    g = globals_of(ctx)
    groups = call(g, "ScanGroups.List")["scan_groups"]
    if g.json:
        emit_json(groups)
        return
    render_rows(g, groups, COLUMNS, title="scan groups")


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Name,
    interval_ms: Annotated[int, typer.Argument(help="scan interval in milliseconds (50 to 86400000)")],
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
) -> None:
    """Create a scan group or change its interval; pollers take the new rate at once."""
    g = globals_of(ctx)
    grp = call(g, "ScanGroups.Set", present(name=name, interval_ms=interval_ms, description=description))
    done(g, f"scan group {grp['name']}: every {grp['interval_ms']} ms", grp)


@app.command("rm")
def remove(ctx: typer.Context, name: Name) -> None:
    """Remove a scan group no tag uses (the default group stays)."""
    g = globals_of(ctx)
    res = call(g, "ScanGroups.Delete", {"name": name})
    done(g, f"scan group {name} removed", res)
