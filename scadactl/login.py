"""scadactl login / logout / whoami."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from scadactl import credentials
from scadactl.output import api, done, emit_json, fail, globals_of, render_record
from scadad.api.client import Client
from scadad.api.errors import ScadaError, Unauthenticated


def read_secret(prompt: str, from_stdin: bool) -> str:
    """A password from a hidden prompt, or the first line of stdin (scripts)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def login(
    ctx: typer.Context,
    username: Annotated[str | None, typer.Argument(help="SCADA user (default: your Unix login)")] = None,
    totp: Annotated[str | None, typer.Option("--totp", help="TOTP or recovery code (prompted when needed)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Log in; later commands use the session until it expires or `scadactl logout`."""
    g = globals_of(ctx)
    user = username or getpass.getuser()
    password = read_secret(f"password for {user}: ", password_stdin)
    client = Client(g.socket_path, timeout=g.timeout)
    try:
        params = {"username": user, "password": password, **({"totp": totp} if totp else {})}
        try:
            res = client.call("Auth.Login", params)
        except Unauthenticated as exc:
            if not exc.details.get("mfa_required") or totp or password_stdin:
                raise
            params["totp"] = input("TOTP code (or a recovery code): ").strip()
            res = client.call("Auth.Login", params)
    except ScadaError as exc:
        fail(g, exc)
    finally:
        client.close()
    where = credentials.save(g.socket_path, res["token"])
    shown = {k: v for k, v in res.items() if k != "token"}
    done(g, f"logged in as {res['username']} ({', '.join(res['roles']) or 'no roles'}) until {res['expires_at']};"
            f" session kept in {where}", shown)  # fmt: skip


def logout(ctx: typer.Context) -> None:
    """End the session on the daemon and forget its token here."""
    g = globals_of(ctx)
    token = credentials.load(g.socket_path)
    if token is None:
        done(g, "not logged in", {"ok": True})
        return
    client = Client(g.socket_path, token=token, timeout=g.timeout)
    try:
        client.call("Auth.Logout")
    except Unauthenticated:
        pass  # already expired or revoked: forgetting it is all that is left
    except ScadaError as exc:
        fail(g, exc)
    finally:
        client.close()
        credentials.forget(g.socket_path)
    done(g, "logged out", {"ok": True})


def whoami(ctx: typer.Context) -> None:
    """The identity your calls act as, with roles and permissions."""
    g = globals_of(ctx)
    with api(g) as c:
        me = c.call("Auth.WhoAmI")
    if g.json:
        emit_json(me)
        return
    render_record(g, {**me, "permissions": " ".join(me["permissions"])})
