"""scadactl session / token: live logins, and read-only API tokens for remote viewers."""

from __future__ import annotations

from typing import Annotated

import typer

from scadactl.output import Column, call, done, globals_of, present, render_rows

session_app = typer.Typer(no_args_is_help=True, help="Live sessions: list, revoke.")
token_app = typer.Typer(no_args_is_help=True, help="Read-only API tokens for remote viewers: add, list, rm.")


@session_app.command("list")
def list_sessions(ctx: typer.Context) -> None:
    """Live sessions, oldest first."""
    g = globals_of(ctx)
    render_rows(
        g,
        call(g, "Sessions.List")["sessions"],
        [
            Column("id", "ID", justify="right"),
            Column("username", "USER"),
            Column("unix_user", "UNIX USER"),
            Column("created_at", "SINCE"),
            Column("last_seen", "LAST SEEN"),
            Column("expires_at", "EXPIRES"),
        ],  # fmt: skip
        title="sessions",
    )


@session_app.command("revoke")
def revoke_session(
    ctx: typer.Context,
    session_id: Annotated[int | None, typer.Argument(help="session id from `session list`")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="every session of this user")] = None,
) -> None:
    """End one session, or all sessions of a user."""
    g = globals_of(ctx)
    res = call(g, "Sessions.Revoke", present(id=session_id, username=user))
    done(g, f"{res['revoked']} session(s) revoked", res)


@token_app.command("add")
def add_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="what the token is for, e.g. wallboard-1")],
    days: Annotated[int, typer.Option("--days", help="lifetime in days")] = 90,
) -> None:
    """Issue a read-only token; it is printed once and cannot be shown again."""
    g = globals_of(ctx)
    res = call(g, "Tokens.Create", {"name": name, "days": days})
    done(g, f"token {name} (read-only, expires {res['info']['expires_at']}):\n{res['token']}", res)


@token_app.command("list")
def list_tokens(ctx: typer.Context) -> None:
    """Every API token (never the token itself)."""
    g = globals_of(ctx)
    render_rows(
        g,
        call(g, "Tokens.List")["tokens"],
        [
            Column("name", "TOKEN"),
            Column("scope", "SCOPE"),
            Column("created_by", "BY"),
            Column("expires_at", "EXPIRES"),
            Column("last_used", "LAST USED"),
            Column("revoked", "STATE", fmt=lambda v: "revoked" if v else "active"),
        ],  # fmt: skip
        title="tokens",
    )


@token_app.command("rm")
def revoke_token(ctx: typer.Context, name: str) -> None:
    """Revoke a token; it stops working at once."""
    g = globals_of(ctx)
    done(g, f"token {name} revoked", call(g, "Tokens.Revoke", {"name": name}))
