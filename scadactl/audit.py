"""scadactl audit: the hash-chained audit trail."""

from __future__ import annotations

from typing import Annotated

import typer

from scadactl.output import Column, api, call, emit_json, globals_of, present, render_rows

app = typer.Typer(no_args_is_help=True, help="The audit trail: list records, follow them live, verify the hash chain.")


@app.command("list")
def list_(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="SCADA user (local:NAME for the local admin)")
    ] = None,
    method: Annotated[str | None, typer.Option("--method", "-m", help="method, or a prefix like 'Users.'")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="ok or error")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 time with offset")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO-8601 time with offset")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="newest N records")] = 50,
) -> None:
    """Audit records, oldest first (the newest LIMIT of those matching)."""
    g = globals_of(ctx)
    params = present(user=user, method=method, outcome=outcome, since=since, until=until, limit=limit)
    rows = call(g, "Audit.List", params)["records"]
    render_rows(
        g,
        rows,
        [
            Column("id", "ID", justify="right"),
            Column("time", "TIME"),
            Column("scada_user", "USER"),
            Column("unix_user", "UNIX"),
            Column("method", "METHOD"),
            Column("target", "TARGET"),
            Column("outcome", "OUTCOME", style=lambda v: "" if v == "ok" else "yellow"),
            Column("error_code", "ERROR"),
        ],  # fmt: skip
        title="audit records",
    )


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check the whole hash chain; exits 1 and names the first broken record if it fails."""
    g = globals_of(ctx)
    res = call(g, "Audit.Verify")
    if g.json:
        emit_json(res)
    elif res["ok"]:
        if not g.quiet:
            g.out.print(f"audit chain intact: {res['records']} records", highlight=False)
    else:
        where = f"record {res['first_broken_id']}" if res["first_broken_id"] is not None else "the end of the log"
        g.err.print(f"[bold red]audit chain broken[/] at {where}: {res['reason']}", highlight=False)
    if not res["ok"]:
        raise typer.Exit(1)


@app.command("watch")
def watch(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this SCADA user")] = None,
    method: Annotated[str | None, typer.Option("--method", "-m", help="method, or a prefix like 'Users.'")] = None,
) -> None:
    """Follow the audit trail live, one line per new record (NDJSON with --json); Ctrl-C stops."""
    g = globals_of(ctx)
    with api(g) as client:
        client.set_timeout(None)
        try:
            for rec in client.stream("Audit.Watch", present(user=user, method=method)):
                if g.json:
                    emit_json(rec)
                    continue
                err = f" {rec['error_code']}" if rec["error_code"] else ""
                g.out.print(
                    f"{rec['time']}  #{rec['id']}  {rec['scada_user'] or '-'} ({rec['unix_user']})  "
                    f"{rec['method']} {rec['target'] or ''}  {rec['outcome']}{err}",
                    highlight=False,
                    markup=False,
                )
        except KeyboardInterrupt:
            pass
