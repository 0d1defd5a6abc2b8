"""scadactl site: the plants this daemon supervises."""

from __future__ import annotations

from typing import Annotated

import typer

from scadactl.output import (
    Column,
    call,
    confirm_remove,
    done,
    globals_of,
    present,
    render_record,
    render_rows,
)

app = typer.Typer(no_args_is_help=True, help="Sites: add, list, show, edit, remove.")

Name = Annotated[str, typer.Argument(help="site name: lowercase letters, digits, '_' and '-'")]

COLUMNS = [
    Column("name", "SITE"),
    Column("display_name", "DISPLAY NAME"),
    Column("timezone", "TIME ZONE"),
    Column("equipment_count", "EQUIPMENT", justify="right"),
    Column("description", "DESCRIPTION"),
]


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """All sites."""
    g = globals_of(ctx)
    render_rows(g, call(g, "Sites.List")["sites"], COLUMNS, title="sites")


@app.command("show")
def show(ctx: typer.Context, name: Name) -> None:
    """One site, every field."""
    g = globals_of(ctx)
    render_record(g, call(g, "Sites.Get", {"name": name}))


@app.command("add")
def add(
    ctx: typer.Context,
    name: Name,
    display_name: Annotated[str | None, typer.Option("--display-name", "-n", help="name shown to people")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", "-z", help="IANA zone, e.g. Asia/Kolkata")] = None,
    latitude: Annotated[float | None, typer.Option("--lat")] = None,
    longitude: Annotated[float | None, typer.Option("--lon")] = None,
) -> None:
    """Add a site."""
    g = globals_of(ctx)
    params = present(name=name, display_name=display_name, description=description, timezone=timezone,
                     latitude=latitude, longitude=longitude)  # fmt: skip
    site = call(g, "Sites.Create", params)
    done(g, f"site {site['name']} added", site)


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: Name,
    display_name: Annotated[str | None, typer.Option("--display-name", "-n")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", "-z")] = None,
    latitude: Annotated[float | None, typer.Option("--lat")] = None,
    longitude: Annotated[float | None, typer.Option("--lon")] = None,
) -> None:
    """Change a site's fields; options left out keep their value."""
    g = globals_of(ctx)
    params = present(name=name, display_name=display_name, description=description, timezone=timezone,
                     latitude=latitude, longitude=longitude)  # fmt: skip
    site = call(g, "Sites.Update", params)
    done(g, f"site {site['name']} updated", site)


@app.command("rm")
def remove(
    ctx: typer.Context,
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove a site (it must have no equipment left)."""
    confirm_remove(globals_of(ctx), f"site {name}", "Sites.Delete", {"name": name}, yes)
