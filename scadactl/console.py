"""scadactl console (and the `scada-console` script): the full-screen operator console."""

from __future__ import annotations

from typing import Annotated

import typer

from scadactl import credentials
from scadactl.output import EXIT_USAGE, globals_of
from tui.screens import SCREENS

SCREEN_NAMES = [e.name for e in SCREENS]


def console(
    ctx: typer.Context,
    screen: Annotated[
        str, typer.Option("--screen", help=f"first screen: {', '.join(SCREEN_NAMES)}", show_default=True)
    ] = "overview",
    light: Annotated[bool, typer.Option("--light", help="light theme (bright control rooms); Ctrl+T toggles")] = False,
    login: Annotated[
        bool, typer.Option("--login", help="log in at start even if your Unix identity or a saved session works")
    ] = False,
    bell: Annotated[
        bool,
        typer.Option(
            "--bell/--no-bell", help="ring the terminal bell on a new critical alarm (the header flashes either way)"
        ),
    ] = True,
) -> None:
    """Full-screen operator console: overview, tags, trends, devices, alarms, energy. Press ? for keys, Ctrl+P for every action.

    Uses the session saved by `scadactl login` (or $SCADA_TOKEN) if there is one; otherwise the console asks you to log in when the daemon needs it. A session opened inside the console lives as long as the console and is logged out when you quit.

    The daemon's socket: --socket PATH (scadactl --socket PATH console, or scada-console --socket PATH), else $SCADA_SOCKET. See scada-console(1).
    """
    g = globals_of(ctx)
    if screen not in SCREEN_NAMES:
        g.err.print(f"[bold red]error:[/] --screen {screen!r} is not a screen (one of {', '.join(SCREEN_NAMES)})")
        raise typer.Exit(EXIT_USAGE)
    from tui.app import ConsoleApp

    app = ConsoleApp(
        g.socket_path,
        credentials.load(g.socket_path),
        theme="scada-light" if light else "scada-dark",
        login=login,
        start=screen,
        bell=bell,
    )
    app.run()


def main() -> None:
    """The `scada-console` script: `scadactl [--socket S] console [options]`."""
    import sys

    from scadactl.main import app

    app(prog_name="scada-console", args=console_argv(sys.argv[1:]))


def console_argv(argv: list[str]) -> list[str]:
    """Move the global options (--socket/-S, --timeout) in front of `console`."""
    front: list[str] = []
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in ("--socket", "-S", "--timeout"):
            front += [arg, next(it, "")]
        elif arg.startswith(("--socket=", "--timeout=")):
            front.append(arg)
        else:
            rest.append(arg)
    return [*front, "console", *rest]
