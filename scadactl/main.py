"""scadactl: the root command, its global options, and the exit-code contract."""

from __future__ import annotations

from typing import Annotated

import typer

from scadactl import (
    alarms,
    audit,
    console,
    db,
    devices,
    energy,
    equipment,
    history,
    login,
    meters,
    roles,
    scangroups,
    sessions,
    sim,
    sites,
    system,
    tags,
    users,
)
from scadactl.output import Globals

app = typer.Typer(
    name="scadactl",
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Command line for the SCADA daemon (scadad): status, plant configuration, raw API calls.\n\n"
    "Exit codes: 0 ok, 1 the daemon returned an error, 2 usage, 3 the daemon is unreachable.",
    epilog="See scadactl(1). The socket comes from --socket, $SCADA_SOCKET, or the daemon's default.",
)


@app.callback()
def root(
    ctx: typer.Context,
    socket: Annotated[
        str | None, typer.Option("--socket", "-S", envvar="SCADA_SOCKET", help="path of scadad's API socket")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", "-j", help="machine output: one JSON document (NDJSON for streams)")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only what a script needs")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for an answer")] = 30.0,
) -> None:
    ctx.obj = Globals(socket=socket, json=json_out, quiet=quiet, timeout=timeout)


app.command("status")(system.status)
app.command("describe")(system.describe)
app.command("call")(system.call)
app.add_typer(db.app, name="db")
app.add_typer(sites.app, name="site")
app.add_typer(equipment.app, name="equipment")
app.command("login")(login.login)
app.command("logout")(login.logout)
app.command("whoami")(login.whoami)
app.add_typer(users.app, name="user")
app.add_typer(roles.app, name="role")
app.add_typer(sessions.session_app, name="session")
app.add_typer(sessions.token_app, name="token")
app.add_typer(audit.app, name="audit")
app.add_typer(devices.app, name="device")
app.add_typer(tags.app, name="tag")
app.add_typer(scangroups.app, name="scangroup")
app.command("history")(history.history)
app.add_typer(alarms.app, name="alarm")
app.add_typer(meters.app, name="meter")
app.add_typer(energy.app, name="energy")
app.add_typer(sim.app, name="sim")
app.command("console")(console.console)


def main() -> None:
    """Console entry point; click already exits 2 on usage errors."""
    app(prog_name="scadactl")


if __name__ == "__main__":
    main()
