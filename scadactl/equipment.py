"""scadactl equipment: meters, generators, pumps ... at a site."""

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
from scadad.api.messages import EQUIPMENT_KINDS

app = typer.Typer(no_args_is_help=True, help="Equipment at a site: add, list, show, edit, remove.")

Site = Annotated[str, typer.Argument(help="site name")]
Name = Annotated[str, typer.Argument(help="equipment name: lowercase letters, digits, '_' and '-'")]
KIND_HELP = "one of: " + ", ".join(EQUIPMENT_KINDS)

COLUMNS = [
    Column("site", "SITE"),
    Column("name", "EQUIPMENT"),
    Column("kind", "KIND"),
    Column("parent", "PARENT"),
    Column("manufacturer", "MAKE"),
    Column("model", "MODEL"),
    Column("location", "LOCATION"),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option("--site", "-s", help="only this site")] = None,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help=KIND_HELP)] = None,
) -> None:
    """Equipment, optionally of one site or kind."""
    g = globals_of(ctx)
    rows = call(g, "Equipment.List", present(site=site, kind=kind))["equipment"]
    render_rows(g, rows, COLUMNS, title="equipment")


@app.command("show")
def show(ctx: typer.Context, site: Site, name: Name) -> None:
    """One piece of equipment, every field."""
    g = globals_of(ctx)
    render_record(g, call(g, "Equipment.Get", {"site": site, "name": name}))


@app.command("add")
def add(
    ctx: typer.Context,
    site: Site,
    name: Name,
    kind: Annotated[str, typer.Option("--kind", "-k", help=KIND_HELP)] = "other",
    parent: Annotated[str | None, typer.Option("--parent", "-p", help="parent equipment at the same site")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    manufacturer: Annotated[str | None, typer.Option("--manufacturer")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    serial_number: Annotated[str | None, typer.Option("--serial")] = None,
    location: Annotated[str | None, typer.Option("--location")] = None,
) -> None:
    """Add equipment to a site."""
    g = globals_of(ctx)
    params = present(site=site, name=name, kind=kind, parent=parent, description=description,
                     manufacturer=manufacturer, model=model, serial_number=serial_number, location=location)  # fmt: skip
    eq = call(g, "Equipment.Create", params)
    done(g, f"equipment {site}/{eq['name']} added", eq)


@app.command("edit")
def edit(
    ctx: typer.Context,
    site: Site,
    name: Name,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help=KIND_HELP)] = None,
    parent: Annotated[str | None, typer.Option("--parent", "-p", help="new parent")] = None,
    top_level: Annotated[bool, typer.Option("--top-level", help="remove the parent")] = False,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    manufacturer: Annotated[str | None, typer.Option("--manufacturer")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    serial_number: Annotated[str | None, typer.Option("--serial")] = None,
    location: Annotated[str | None, typer.Option("--location")] = None,
) -> None:
    """Change equipment fields; options left out keep their value."""
    g = globals_of(ctx)
    if parent and top_level:
        raise typer.BadParameter("give --parent or --top-level, not both", param_hint="--top-level")
    params = present(site=site, name=name, kind=kind, parent=parent, description=description,
                     manufacturer=manufacturer, model=model, serial_number=serial_number, location=location)  # fmt: skip
    if top_level:
        params["parent"] = None
    eq = call(g, "Equipment.Update", params)
    done(g, f"equipment {site}/{eq['name']} updated", eq)


@app.command("rm")
def remove(
    ctx: typer.Context,
    site: Site,
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove equipment (it must have no children)."""
    confirm_remove(globals_of(ctx), f"equipment {site}/{name}", "Equipment.Delete", {"site": site, "name": name}, yes)
