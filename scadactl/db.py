"""scadactl db: the metadata store's schema."""

from __future__ import annotations

import typer

from scadactl.output import Column, call, done, emit_json, globals_of, render_rows

app = typer.Typer(no_args_is_help=True, help="The metadata store: schema version and migrations.")


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Store dialect and every migration with when it was applied."""
    g = globals_of(ctx)
    st = call(g, "Db.Status")
    if g.json:
        emit_json(st)
        return
    g.out.print(
        f"{st['server_version']}  {st['url']}  schema {st['current_version']:04d} of {st['latest_version']:04d}",
        highlight=False,
    )
    render_rows(
        g,
        st["migrations"],
        [
            Column("version", "VERSION", fmt=lambda v: f"{v:04d}"),
            Column("name", "NAME"),
            Column("applied_at", "APPLIED", fmt=lambda v: v or "pending", style=lambda v: "" if v else "yellow"),
            Column(
                "modified",
                "FILE",
                fmt=lambda v: "modified since applied" if v else "",
                style=lambda v: "yellow" if v else "",
            ),
        ],
    )


@app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Apply pending migrations now (the daemon does this at start unless store.auto_migrate = false)."""
    g = globals_of(ctx)
    res = call(g, "Db.Migrate")
    names = ", ".join(f"{m['version']:04d}_{m['name']}" for m in res["applied"])
    done(g, f"applied {names}" if names else f"nothing to do; schema is at {res['current_version']:04d}", res)
