"""Build data once, render twice: a rich table for people, JSON for scripts.

Exit codes live here and only here (documented in scadactl(1)):
  0 ok · 1 the daemon answered with an error · 2 usage · 3 the daemon is unreachable
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scadactl import credentials
from scadad.api.client import Client, DaemonUnreachable
from scadad.api.errors import ScadaError
from scadad.api.protocol import default_socket_path

EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

# States and qualities get colour; everything normal stays plain (ISA-101 habit).
STATE_STYLE = {"ok": "", "degraded": "yellow", "down": "bold red"}


@dataclass
class Globals:
    """Options given before the command (`scadactl --json status`)."""

    socket: str | None = None
    json: bool = False
    quiet: bool = False
    timeout: float = 30.0
    out: Console = field(default_factory=lambda: Console(soft_wrap=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    @property
    def socket_path(self) -> Path:
        return Path(self.socket) if self.socket else default_socket_path()

    def client(self) -> Client:
        return Client(self.socket_path, token=credentials.load(self.socket_path), timeout=self.timeout)


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    if not isinstance(obj, Globals):  # a sub-app invoked on its own (tests)
        obj = Globals()
        ctx.find_root().obj = obj
    return obj


def fail(g: Globals, error: ScadaError) -> NoReturn:
    code = EXIT_UNREACHABLE if isinstance(error, DaemonUnreachable) else EXIT_DAEMON_ERROR
    if g.json:
        print(json.dumps({"error": error.to_wire()}))
    else:
        g.err.print(f"[bold red]error[/] {error.code.value}: {escape(error.message)}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def api(g: Globals) -> Iterator[Client]:
    """A connected client; any API error ends the command with the right exit code."""
    client = g.client()
    try:
        yield client
    except ScadaError as exc:
        fail(g, exc)
    finally:
        client.close()


def call(g: Globals, method: str, params: dict[str, Any] | None = None) -> Any:
    with api(g) as client:
        return client.call(method, params)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: Callable[[Any], str] = lambda v: "" if v is None else str(v)
    style: Callable[[Any], str] | None = None
    justify: str = "left"
    # Identifying columns (names, paths) never shrink: other columns wrap instead, so
    # rows stay tellable apart in an 80-column SSH session.
    no_wrap: bool = False


def emit_json(doc: Any) -> None:
    # Flushed per document: streams (`tag watch --json`) feed pipes line by line.
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=None, default=str) + "\n")
    sys.stdout.flush()


def render_rows(g: Globals, rows: Sequence[dict[str, Any]], columns: Sequence[Column], title: str = "") -> None:
    """A list of records: one JSON array, or a table."""
    if g.json:
        emit_json(list(rows))
        return
    if not rows:
        if not g.quiet:
            g.err.print(f"no {title or 'rows'}")
        return
    table = Table(title=title or None, header_style="bold", box=None, pad_edge=False)
    for col in columns:
        table.add_column(col.header, justify=col.justify, no_wrap=col.no_wrap)  # type: ignore[arg-type]
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col.key)
            text = escape(col.fmt(value))
            style = col.style(value) if col.style else ""
            cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(*cells)
    g.out.print(table, highlight=False)


def render_record(g: Globals, record: dict[str, Any], title: str = "") -> None:
    """One record: a JSON object, or a key/value table."""
    if g.json:
        emit_json(record)
        return
    table = Table(title=title or None, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in record.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
        table.add_row(key, escape(text))
    g.out.print(table, highlight=False)


def done(g: Globals, message: str, doc: Any) -> None:
    """Report a successful change: the object as JSON, or one line for people."""
    if g.json:
        emit_json(doc)
    elif not g.quiet:
        g.out.print(message, highlight=False)


def confirm_remove(g: Globals, what: str, method: str, params: dict[str, Any], yes: bool,
                   removed: str | None = None) -> None:  # fmt: skip
    """Delete `what` through `method` after asking (not with --yes, --json or without a
    terminal), and report it (`removed`: the message when it says more than "removed")."""
    if not yes and not g.json and interactive():
        typer.confirm(f"remove {what}?", abort=True, err=True)
    res = call(g, method, params)
    done(g, escape(removed or f"{what} removed"), res)


def require_change(params: dict[str, Any], keys: int = 1) -> None:
    """An edit that names only the object (`keys` fields) changes nothing: a usage error."""
    if len(params) <= keys:
        raise typer.BadParameter("nothing to change: give at least one option", param_hint="OPTIONS")


def usage_error(message: str) -> NoReturn:
    raise typer.BadParameter(message)


def parse_json_option(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None


def present(**values: Any) -> dict[str, Any]:
    """Only the options the user gave (None means "not given")."""
    return {k: v for k, v in values.items() if v is not None}


def interactive() -> bool:
    return sys.stdin.isatty()
