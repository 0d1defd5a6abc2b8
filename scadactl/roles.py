"""scadactl role: built-in and custom roles, grants, and the permission matrix."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from scadactl import users
from scadactl.output import Column, call, done, emit_json, globals_of, render_rows

app = typer.Typer(no_args_is_help=True, help="Roles: list, matrix, add, rm, grant, revoke.")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every role with its permissions."""
    g = globals_of(ctx)
    render_rows(
        g,
        call(g, "Roles.List")["roles"],
        [
            Column("name", "ROLE"),
            Column("builtin", "BUILT-IN", fmt=lambda v: "yes" if v else ""),
            Column("members", "MEMBERS", justify="right"),
            Column("permissions", "PERMISSIONS", fmt=lambda v: " ".join(v)),
        ],
        title="roles",
    )


@app.command("matrix")
def matrix(
    ctx: typer.Context,
    methods: Annotated[bool, typer.Option("--methods", help="also list each API method and its permission")] = False,
) -> None:
    """The permission matrix: which role holds which permission (the RBAC policy, as data)."""
    g = globals_of(ctx)
    m = call(g, "Roles.Matrix")
    if g.json:
        emit_json(m)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("PERMISSION")
    for role in m["roles"]:
        table.add_column(role.upper(), justify="center")
    table.add_column("ALLOWS")
    for perm in m["permissions"]:
        held = set(m["allowed"][perm])
        table.add_row(perm, *("x" if r in held else "·" for r in m["roles"]), m["descriptions"][perm])
    g.out.print(table, highlight=False)
    g.out.print("public: anyone on the socket · self: any logged-in user, on their own account", highlight=False)
    if methods:
        rows = [{"method": k, "permission": v} for k, v in sorted(m["methods"].items())]
        render_rows(g, rows, [Column("method", "METHOD"), Column("permission", "NEEDS")])


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="role name")],
    permission: Annotated[list[str], typer.Option("--permission", "-p", help="permission to include (repeatable)")],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
) -> None:
    """Add a custom role from permissions listed by `scadactl role matrix`."""
    g = globals_of(ctx)
    res = call(g, "Roles.Create", {"name": name, "permissions": permission, "description": description})
    done(g, f"role {name} added", res)


@app.command("rm")
def remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="custom role name")]) -> None:
    """Remove a custom role nobody holds."""
    g = globals_of(ctx)
    done(g, f"role {name} removed", call(g, "Roles.Delete", {"name": name}))


app.command("grant", help="Give USERNAME the ROLE.")(users.role_grant)
app.command("revoke", help="Take ROLE from USERNAME.")(users.role_revoke)
