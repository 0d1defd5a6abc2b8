"""scadactl user: accounts, passwords, MFA, lockouts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from scadactl.login import read_secret
from scadactl.output import Column, api, call, done, emit_json, globals_of, present, render_record, render_rows

app = typer.Typer(
    no_args_is_help=True, help="Users: add, list, show, edit, disable, enable, unlock, passwd, mfa, role."
)
mfa_app = typer.Typer(no_args_is_help=True, help="TOTP second factor: enrol yourself, or reset someone's.")
app.add_typer(mfa_app, name="mfa")
role_app = typer.Typer(no_args_is_help=True, help="Grant or revoke a role (same as `scadactl role grant|revoke`).")
app.add_typer(role_app, name="role")

Name = Annotated[str, typer.Argument(help="username")]

COLUMNS = [
    Column("username", "USER"),
    Column("display_name", "NAME"),
    Column("roles", "ROLES", fmt=lambda v: ",".join(v)),
    Column("mfa_enabled", "MFA", fmt=lambda v: "yes" if v else ""),
    Column("disabled", "STATE", fmt=lambda v: "disabled" if v else "active", style=lambda v: "yellow" if v else ""),
    Column("locked_until", "LOCKED UNTIL", style=lambda v: "bold red" if v else ""),
    Column("last_login", "LAST LOGIN"),
]


def show_enrolment(g: Any, enrolment: dict[str, Any]) -> None:
    """Print the TOTP secret, a terminal QR code of its URI, and the recovery codes."""
    if g.json:
        return
    import io

    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(enrolment["uri"])
    buf = io.StringIO()
    qr.print_ascii(out=buf, invert=True)
    g.out.print(f"MFA for {enrolment['username']}: scan this with an authenticator app (shown once)", highlight=False)
    g.out.print(buf.getvalue(), highlight=False, markup=False)
    g.out.print(f"secret: {enrolment['secret']}\nuri:    {enrolment['uri']}", highlight=False, markup=False)
    g.out.print("recovery codes (each works once; keep them offline):", highlight=False)
    for code in enrolment["recovery_codes"]:
        g.out.print(f"  {code}", highlight=False)


@app.command("add")
def add(
    ctx: typer.Context,
    username: Name,
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help="role to grant (repeatable)")] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="grant the admin role (the first admin: run on the daemon's host)")
    ] = False,
    display_name: Annotated[str | None, typer.Option("--display-name", "-n")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Add a user; prompts for the password. MFA is enrolled at once when a role requires it."""
    g = globals_of(ctx)
    roles = list(role or []) + (["admin"] if admin and "admin" not in (role or []) else [])
    password = read_secret(f"password for {username}: ", password_stdin)
    if not password_stdin and read_secret("again: ", False) != password:
        raise typer.BadParameter("the two passwords differ", param_hint="password")
    res = call(g, "Users.Create", present(username=username, password=password, roles=roles,
                                          display_name=display_name, email=email))  # fmt: skip
    done(g, f"user {username} added with roles {', '.join(roles) or '(none)'}", res)
    if res.get("mfa"):
        show_enrolment(g, res["mfa"])


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every user."""
    g = globals_of(ctx)
    render_rows(g, call(g, "Users.List")["users"], COLUMNS, title="users")


@app.command("show")
def show(ctx: typer.Context, username: Name) -> None:
    """One user, every field."""
    g = globals_of(ctx)
    render_record(g, call(g, "Users.Get", {"username": username}))


@app.command("edit")
def edit(
    ctx: typer.Context,
    username: Name,
    display_name: Annotated[str | None, typer.Option("--display-name", "-n")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
) -> None:
    """Change display name or e-mail."""
    g = globals_of(ctx)
    res = call(g, "Users.Update", present(username=username, display_name=display_name, email=email))
    done(g, f"user {username} updated", res)


def _simple(method: str, verb: str):  # type: ignore[no-untyped-def]
    def command(ctx: typer.Context, username: Name) -> None:
        g = globals_of(ctx)
        done(g, f"user {username} {verb}", call(g, method, {"username": username}))

    return command


app.command("disable", help="Disable an account and end its sessions.")(_simple("Users.Disable", "disabled"))
app.command("enable", help="Enable a disabled account.")(_simple("Users.Enable", "enabled"))
app.command("unlock", help="Lift a lockout after failed logins.")(_simple("Users.Unlock", "unlocked"))


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    username: Annotated[str | None, typer.Argument(help="whose password (admins); default: your own")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read old (own) and new password from stdin")
    ] = False,
) -> None:
    """Change your password (asks for the old one), or as an admin set another user's."""
    g = globals_of(ctx)
    with api(g) as c:
        me = c.call("Auth.WhoAmI")
        params: dict[str, Any] = {}
        own = username is None or username == me["username"]
        if username:
            params["username"] = username
        if own and me["kind"] in ("session", "unix"):
            params["old_password"] = read_secret("current password: ", password_stdin)
        params["new_password"] = read_secret("new password: ", password_stdin)
        if not password_stdin and read_secret("again: ", False) != params["new_password"]:
            raise typer.BadParameter("the two passwords differ", param_hint="password")
        res = c.call("Users.SetPassword", params)
    done(g, "password changed; other sessions of that user were ended", res)


@mfa_app.command("enroll")
def mfa_enroll(
    ctx: typer.Context,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Enrol (or re-enrol) your own authenticator app; asks for your password."""
    g = globals_of(ctx)
    res = call(g, "Users.MfaEnroll", {"password": read_secret("password: ", password_stdin)})
    if g.json:
        emit_json(res)
    show_enrolment(g, res)


@mfa_app.command("reset")
def mfa_reset(ctx: typer.Context, username: Name) -> None:
    """Give a user a new TOTP secret and recovery codes (lost phone); ends their sessions."""
    g = globals_of(ctx)
    res = call(g, "Users.MfaReset", {"username": username})
    if g.json:
        emit_json(res)
    show_enrolment(g, res)


@role_app.command("grant")
def role_grant(ctx: typer.Context, username: Name, role: Annotated[str, typer.Argument(help="role name")]) -> None:
    """Give USERNAME the ROLE."""
    g = globals_of(ctx)
    done(g, f"{username} now has role {role}", call(g, "Roles.Grant", {"username": username, "role": role}))


@role_app.command("revoke")
def role_revoke(ctx: typer.Context, username: Name, role: Annotated[str, typer.Argument(help="role name")]) -> None:
    """Take ROLE from USERNAME."""
    g = globals_of(ctx)
    done(g, f"{username} no longer has role {role}", call(g, "Roles.Revoke", {"username": username, "role": role}))
