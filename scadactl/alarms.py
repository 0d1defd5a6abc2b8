"""scadactl alarm: current alarms, acknowledgement, shelving, the journal, KPIs and rules.

An alarm is named `<tag path>:<kind>` (plant/tank/level:hi) or by its rule id. Times
people read are in the site's time zone (System.Status); CSV and JSON keep the wire's
ISO-8601 UTC.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import typer
from rich.markup import escape

from scadactl import files
from scadactl.devices import export_specs, format_age, parse_iso, print_import, spec_file_error
from scadactl.history import parse_duration, parse_time, utc_text
from scadactl.output import (
    Column,
    Globals,
    api,
    call,
    confirm_remove,
    done,
    emit_json,
    fail,
    globals_of,
    present,
    render_record,
    render_rows,
    require_change,
)
from scadactl.tags import format_value
from scadad.api.alarm_messages import KINDS, PRIORITIES, AlarmRuleSpec, EventKind
from scadad.api.alarm_messages import Kind as AlarmKind
from scadad.api.client import Client
from scadad.api.errors import ScadaError

app = typer.Typer(
    no_args_is_help=True,
    help="Alarms: list, acknowledge, shelve, comment, take out of service; the journal, KPIs and rules.",
)
rule_app = typer.Typer(
    no_args_is_help=True,
    help="Alarm rules: add, list, show, edit, remove, import and export (CSV or TOML).",
)
app.add_typer(rule_app, name="rule")

EVENTS: tuple[str, ...] = get_args(EventKind)
NAME_HELP = "<tag path>:<kind> (e.g. plant/tank/level:hi) or the rule id"
PATTERN_HELP = "'*' is one path segment (or part of one), '**' any depth"

NameArg = Annotated[str, typer.Argument(help=f"the alarm: {NAME_HELP}", metavar="NAME")]
NamesArg = Annotated[list[str], typer.Argument(help=f"one or more alarms, each {NAME_HELP}", metavar="NAME")]
AreaOpt = Annotated[
    str | None, typer.Option("--area", "-A", help="only this area and the areas below it (e.g. north/pumps)")
]
PriorityOpt = Annotated[
    list[str] | None,
    typer.Option("--priority", "-P", help="only this priority: critical, high, medium or low (repeatable)"),
]

# ISA-101: colour is for alarms, one colour per priority; unacknowledged ones are bold,
# and an unacknowledged critical one is reversed so it cannot be overlooked.
PRIORITY_STYLE = {"critical": "red", "high": "dark_orange", "medium": "yellow", "low": "cyan"}
STATE_TEXT = {
    "unack_active": "UNACK",
    "ack_active": "ACKED",
    "rtn_unack": "RTN UNACK",
    "latched": "LATCHED",
    "normal": "normal",
}
UNACKED_STATES = frozenset({"unack_active", "rtn_unack", "latched"})


# ---------------------------------------------------------------- pure helpers


def parse_ref(text: str) -> int | str:
    """An alarm as the API takes it: a rule id (digits) or `<tag path>:<kind>`."""
    t = text.strip()
    return int(t) if t.isdigit() else t


def parse_delay_ms(text: str) -> int:
    """An on/off delay like 5s, 500ms, 2m (a bare number is seconds) as milliseconds."""
    s = parse_duration(text)
    if s < 0:
        raise ValueError(f"a delay is 0 or more, got {text!r}")
    return round(s * 1000)


def parse_shelve_s(text: str) -> int:
    """A shelve duration like 30m, 2h, 1d (a bare number is seconds) as whole seconds, at least 1."""
    s = parse_duration(text)
    if s < 1:
        raise ValueError(f"shelve for at least 1 s, got {text!r}")
    return round(s)


def delay_text(ms: int | None) -> str:
    """Milliseconds for people: 0, 500ms, 5s, 2m, 1h."""
    if not ms:
        return "0"
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms / 1000:g}s" if ms > 1000 else f"{ms}ms"


def choices(values: Sequence[str] | None, allowed: Sequence[str], option: str) -> list[str] | None:
    """A repeatable option's values, each one of `allowed` (a usage error names the bad one)."""
    if not values:
        return None
    for v in values:
        if v not in allowed:
            raise typer.BadParameter(f"{v!r} is not one of {', '.join(allowed)}", param_hint=option)
    return list(values)


def event_name(e: dict[str, Any]) -> str:
    """A journal row's alarm name: <tag>:<kind>, or the tag alone when the row has no kind."""
    return f"{e['tag']}:{e['kind']}" if e.get("kind") else e["tag"]


def time_text(text: str | None, zone: tzinfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    t = parse_iso(text)
    return "" if t is None else t.astimezone(zone).strftime(fmt)


def ms_time_text(text: str | None, zone: tzinfo) -> str:
    """A wire time in `zone` to the millisecond: 2026-01-31 08:00:00.123."""
    t = parse_iso(text)
    return "" if t is None else t.astimezone(zone).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


def value_text(value: Any, units: str = "") -> str:
    if value is None:
        return ""
    return format_value(value) + (f" {units}" if units else "")


def state_style(priority: str | None, state: str | None) -> str:
    """How an alarm's state cell looks: its priority's colour, bold while unacknowledged."""
    colour = PRIORITY_STYLE.get(priority or "", "")
    if state == "normal" or not colour:
        return "dim" if state == "normal" else ""
    if state in UNACKED_STATES:
        return "bold reverse red" if priority == "critical" else f"bold {colour}"
    return colour


def flags_text(a: dict[str, Any], zone: tzinfo, now: datetime) -> str:
    """SHELVED until HH:MM (date too when not today), SUPPRESSED, OOS."""
    out = []
    until = parse_iso(a.get("shelved_until"))
    if until is not None:
        local = until.astimezone(zone)
        same_day = local.date() == now.astimezone(zone).date()
        out.append(f"SHELVED until {local.strftime('%H:%M' if same_day else '%Y-%m-%d %H:%M')}")
    if a.get("suppressed"):
        out.append("SUPPRESSED")
    if a.get("out_of_service"):
        out.append("OOS")
    return " ".join(out)


def counts_text(counts: dict[str, Any]) -> str:
    """The counts line: annunciated, unacknowledged by priority, shelved, suppressed, out of service."""
    by = counts.get("unacked_by_priority") or {}
    parts = [f"{p} {by[p]}" for p in PRIORITIES if by.get(p)]
    unacked = f"{counts['unacked']} unacknowledged" + (f" ({', '.join(parts)})" if parts else "")
    return (
        f"{counts['active']} active, {unacked}, {counts['shelved']} shelved, "
        f"{counts['suppressed']} suppressed, {counts['out_of_service']} out of service"
    )


def limit_text(r: dict[str, Any]) -> str:
    """What trips a rule, as people say it: > 80, < 10, = 1, |x - sp| > 5, |rate| > 2/s, BAD."""
    kind, limit = r["kind"], r.get("limit")
    lim = "" if limit is None else format_value(limit)
    if kind in ("hihi", "hi"):
        return f"> {lim}"
    if kind in ("lo", "lolo"):
        return f"< {lim}"
    if kind == "discrete":
        return f"{'=' if r.get('discrete_op', 'eq') == 'eq' else '!='} {lim or 'true'}"
    if kind == "rate_of_change":
        return f"|rate| > {lim}/s"
    if kind == "deviation":
        return f"|x - {r.get('setpoint_tag') or '?'}| > {lim}"
    return "quality BAD"


def rule_flags(r: dict[str, Any]) -> str:
    out = []
    if not r.get("enabled", True):
        out.append("DISABLED")
    if r.get("latching"):
        out.append("latching")
    if r.get("open_work_order"):
        out.append("work-order")
    if r.get("suppress_when"):
        out.append(f"suppress when {r['suppress_when']}")
    return ", ".join(out)


def styled(text: str, style: str) -> tuple[str, str]:
    """A table cell with its own style (Column fmt/style below take it apart)."""
    return (text, style)


def _cell_text(v: Any) -> str:
    return "" if v is None else (v[0] if isinstance(v, tuple) else str(v))


def _cell_style(v: Any) -> str:
    return v[1] if isinstance(v, tuple) else ""


def cell(key: str, header: str, **kw: Any) -> Column:
    return Column(key, header, fmt=_cell_text, style=_cell_style, **kw)


# ---------------------------------------------------------------- site time zone


def site_zone(client: Client) -> tzinfo:
    """The site's time zone from System.Status; this machine's zone when it cannot be had."""
    try:
        return ZoneInfo(client.call("System.Status")["timezone"])
    except (ScadaError, ZoneInfoNotFoundError, KeyError, ValueError):
        return datetime.now().astimezone().tzinfo or UTC


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or datetime.now(zone).tzname() or "local"


def call_with_zone(g: Globals, method: str, params: dict[str, Any]) -> tuple[Any, tzinfo]:
    """One call, and the site's zone on the same connection (only asked when people read the answer)."""
    with api(g) as client:
        res = client.call(method, params)
        zone = UTC if g.json else site_zone(client)
    return res, zone


def time_option(text: str | None, option: str, now: datetime) -> str | None:
    if text is None:
        return None
    try:
        return parse_time(text, now).isoformat()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


# ---------------------------------------------------------------- list


def alarm_row(a: dict[str, Any], zone: tzinfo, now: datetime) -> dict[str, Any]:
    style = state_style(a["priority"], a["state"])
    since = parse_iso(a.get("active_since") or a.get("last_change"))
    name_style = "bold" if a["state"] in UNACKED_STATES else ""
    return {
        "priority": styled(a["priority"], PRIORITY_STYLE.get(a["priority"], "") if a["state"] != "normal" else ""),
        "state": styled(STATE_TEXT.get(a["state"], a["state"]), style),
        "name": styled(a["name"], name_style),
        "value": value_text(a.get("value"), a.get("units") or ""),
        "message": a.get("message") or "",
        "since": format_age((now - since).total_seconds()) if since else "",
        "flags": flags_text(a, zone, now),
    }


ALARM_COLUMNS = [
    cell("priority", "PRIORITY"),
    cell("state", "STATE"),
    cell("name", "ALARM", no_wrap=True),
    Column("value", "VALUE", justify="right"),
    Column("message", "MESSAGE"),
    Column("since", "SINCE", justify="right"),
    Column("flags", "FLAGS"),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help=f"tag path pattern: {PATTERN_HELP}")] = "**",
    area: AreaOpt = None,
    priority: PriorityOpt = None,
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="also shelved, suppressed and out-of-service alarms")
    ] = False,
    normal: Annotated[bool, typer.Option("--normal", help="every alarm, including those in normal state")] = False,
) -> None:
    """Current alarms, most urgent first (priority, then newest), and the counts.

    Unacknowledged alarms are bold in their priority's colour (critical ones reversed); SINCE is how long it has been active (for one back to normal: since its last change). --json prints the API result: {alarms: [...], counts: {...}}.
    """
    g = globals_of(ctx)
    params = present(pattern=pattern, area=area, priority=choices(priority, PRIORITIES, "--priority"),
                     all=all_ or None, include_normal=normal or None)  # fmt: skip
    res, zone = call_with_zone(g, "Alarms.List", params)
    if g.json:
        emit_json(res)
        return
    now = datetime.now(UTC)
    render_rows(g, [alarm_row(a, zone, now) for a in res["alarms"]], ALARM_COLUMNS, title="alarms")
    if not g.quiet:
        g.out.print(counts_text(res["counts"]), highlight=False, markup=False)


# ---------------------------------------------------------------- operator actions


@app.command("ack")
def ack(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"alarms to acknowledge, each {NAME_HELP}; with --all, one tag path pattern", metavar="NAME"
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="every unacknowledged alarm shown (matching PATTERN and --area)")
    ] = False,
    area: AreaOpt = None,
    comment: Annotated[str | None, typer.Option("--comment", "-c", help="a note kept in the journal")] = None,
) -> None:
    """Acknowledge alarms (acknowledging a latched alarm resets it).

    Prints what was acknowledged and what was skipped (not unacknowledged).
    """
    g = globals_of(ctx)
    names = names or []
    if all_:
        if len(names) > 1:
            raise typer.BadParameter("with --all give at most one tag path pattern", param_hint="NAME")
        params = present(all=True, pattern=names[0] if names else None, area=area, comment=comment)
    else:
        if not names:
            raise typer.BadParameter("name the alarms to acknowledge, or use --all", param_hint="NAME")
        if area is not None:
            raise typer.BadParameter("--area goes with --all", param_hint="--area")
        params = present(alarms=[parse_ref(n) for n in names], comment=comment)
    res = call(g, "Alarms.Acknowledge", params)
    if g.json:
        emit_json(res)
        return
    if g.quiet:
        return
    acked, skipped = res["acknowledged"], res["skipped"]
    if acked:
        g.out.print(f"acknowledged {len(acked)}: {', '.join(acked)}", highlight=False, markup=False)
    elif all_:
        g.out.print("nothing to acknowledge", highlight=False)
    if skipped:
        g.out.print(f"skipped {len(skipped)} (not unacknowledged): {', '.join(skipped)}", highlight=False, markup=False)


@app.command("shelve")
def shelve(
    ctx: typer.Context,
    names: NamesArg,
    for_: Annotated[
        str,
        typer.Option("--for", help="how long: 30m, 2h, 1d, or seconds (the site sets a maximum)", metavar="DURATION"),
    ],
    reason: Annotated[str, typer.Option("--reason", "-r", help="why (kept in the journal)")],
) -> None:
    """Shelve alarms for a time, with a reason; they unshelve themselves when it is up.

    Shelved alarms keep being evaluated and journalled but are not shown or notified.
    """
    g = globals_of(ctx)
    try:
        seconds = parse_shelve_s(for_)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--for") from None
    params = {"alarms": [parse_ref(n) for n in names], "duration_s": seconds, "reason": reason}
    res, zone = call_with_zone(g, "Alarms.Shelve", params)
    if g.json:
        emit_json(res)
        return
    if not g.quiet:
        for a in res["alarms"]:
            until = time_text(a.get("shelved_until"), zone, "%Y-%m-%d %H:%M")
            g.out.print(f"shelved {a['name']} until {until} ({zone_name(zone)})", highlight=False, markup=False)


@app.command("unshelve")
def unshelve(ctx: typer.Context, names: NamesArg) -> None:
    """End the shelving of alarms now (an active alarm is shown again at once)."""
    g = globals_of(ctx)
    res = call(g, "Alarms.Unshelve", {"alarms": [parse_ref(n) for n in names]})
    done(g, "\n".join(f"unshelved {escape(a['name'])}" for a in res["alarms"]), res)


@app.command("comment")
def comment(
    ctx: typer.Context,
    name: NameArg,
    text: Annotated[str, typer.Argument(help="the comment (quote it)")],
) -> None:
    """Add an operator's comment to an alarm's journal."""
    g = globals_of(ctx)
    res = call(g, "Alarms.Comment", {"alarm": parse_ref(name), "comment": text})
    done(g, f"comment added to {escape(res['alarms'][0]['name'])}", res)


@app.command("oos")
def oos(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="why it goes out of service (required)")],
) -> None:
    """Take an alarm out of service (engineering), with a reason.

    It is forced to normal and not evaluated until `alarm in-service`.
    """
    g = globals_of(ctx)
    res = call(g, "Alarms.OutOfService", {"alarm": parse_ref(name), "out_of_service": True, "reason": reason})
    done(g, f"{escape(res['alarms'][0]['name'])} out of service", res)


@app.command("in-service")
def in_service(ctx: typer.Context, name: NameArg) -> None:
    """Put an out-of-service alarm back in service; it is evaluated afresh from the tag's value."""
    g = globals_of(ctx)
    res = call(g, "Alarms.OutOfService", {"alarm": parse_ref(name), "out_of_service": False})
    a = res["alarms"][0]
    done(g, f"{escape(a['name'])} in service ({STATE_TEXT.get(a['state'], a['state'])})", res)


# ---------------------------------------------------------------- journal

EVENT_FIELDS = ("time", "alarm_id", "name", "tag", "kind", "event", "state", "priority", "area", "value", "user",
                "comment", "message")  # fmt: skip


def events_csv(events: Sequence[dict[str, Any]]) -> str:
    """Journal rows as CSV, times ISO-8601 UTC (as `scadactl history --csv`)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EVENT_FIELDS)
    for e in events:
        row = {**e, "name": event_name(e), "time": utc_text(parse_iso(e["time"]))}  # type: ignore[arg-type]
        w.writerow([files.format_cell(row.get(f)) for f in EVENT_FIELDS])
    return out.getvalue()


def event_row(e: dict[str, Any], zone: tzinfo, day: bool) -> dict[str, Any]:
    """A journal row for the table; `day` puts the date in TIME (rows from more than one day)."""
    style = PRIORITY_STYLE.get(e.get("priority") or "", "") if e["event"] == "activated" else ""
    return {
        "time": time_text(e["time"], zone, "%Y-%m-%d %H:%M:%S") if day else ms_time_text(e["time"], zone)[11:],
        "event": styled(e["event"], style),
        "name": event_name(e),
        "state": STATE_TEXT.get(e.get("state") or "", e.get("state") or ""),
        "value": format_value(e.get("value")),
        "user": e.get("user") or "",
        "comment": e.get("comment") or "",
    }


EVENT_COLUMNS = [
    Column("time", "TIME", no_wrap=True),
    cell("event", "EVENT", no_wrap=True),
    Column("name", "ALARM", no_wrap=True),
    Column("state", "STATE", no_wrap=True),
    Column("value", "VALUE", justify="right"),
    Column("user", "BY", no_wrap=True),
    Column("comment", "COMMENT"),
]


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help=f"only this alarm: {NAME_HELP}")] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="start: ISO-8601 (local time without offset), -2h, -7d, now; default -24h"),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="end, as --from; default now")] = None,
    area: AreaOpt = None,
    priority: PriorityOpt = None,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help=f"only this event (repeatable): {', '.join(EVENTS)}"),
    ] = None,
    pattern: Annotated[
        str | None, typer.Option("--pattern", "-p", help=f"only alarms on matching tags ({PATTERN_HELP})")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="at most N rows (default 10000)", min=1)] = None,
    newest: Annotated[bool, typer.Option("--newest", help="with --limit: the newest N rows, not the oldest")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on standard output, times ISO-8601 UTC")] = False,
) -> None:
    """The alarm journal in [--from, --to), oldest first.

    Activations, acknowledgements, clears, shelving, comments, out of service. Times in the table are in the site's time zone; --csv writes UTC.
    """
    g = globals_of(ctx)
    if csv_out and g.json:
        raise typer.BadParameter("choose one of --csv and --json", param_hint="--csv")
    now = datetime.now(UTC)
    params = present(
        start=time_option(start, "--from", now), end=time_option(end, "--to", now),
        alarm=parse_ref(name) if name else None, pattern=pattern, area=area,
        priority=choices(priority, PRIORITIES, "--priority"), events=choices(event, EVENTS, "--event"),
        limit=limit, newest=newest or None,
    )  # fmt: skip
    res, zone = call_with_zone(g, "Alarms.History", params)
    if g.json:
        emit_json(res)
        return
    events = res["events"]
    if res["truncated"] and not g.quiet:
        g.err.print(
            f"[yellow]truncated[/] at {len(events)} rows: narrow the range or the filters, or raise --limit",
            highlight=False,
        )
    if csv_out:
        sys.stdout.write(events_csv(events))
        return
    if not events:
        if not g.quiet:
            g.err.print("no alarm events in that period", highlight=False)
        return
    days = {time_text(e["time"], zone, "%Y-%m-%d") for e in events}
    if not g.quiet:
        on = f" on {next(iter(days))}" if len(days) == 1 else ""
        g.out.print(f"alarm journal{on} ({zone_name(zone)}): {len(events)} events", highlight=False, markup=False)
    render_rows(g, [event_row(e, zone, len(days) > 1) for e in events], EVENT_COLUMNS)


def watch_line(e: dict[str, Any], zone: tzinfo) -> str:
    """One journal row as a line of rich markup: time, event, priority, alarm, state, value, who, text."""
    when = time_text(e["time"], zone, "%H:%M:%S.%f")[:-3]
    style = PRIORITY_STYLE.get(e.get("priority") or "", "") if e["event"] == "activated" else ""
    ev = escape(e["event"].ljust(14))
    ev = f"[{style}]{ev}[/]" if style else ev
    state = STATE_TEXT.get(e.get("state") or "", e.get("state") or "")
    value = format_value(e.get("value"))
    who = f"  by {e['user']}" if e.get("user") else ""
    text = e.get("comment") or e.get("message") or ""
    rest = escape(f"{(e.get('priority') or '').ljust(8)}  {event_name(e)}  {state}  {value}{who}  {text}".rstrip())
    return f"{when}  {ev}  {rest}"


@app.command("watch")
def watch(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help=f"tag path pattern: {PATTERN_HELP}")] = "**",
    area: AreaOpt = None,
    no_initial: Annotated[
        bool,
        typer.Option(
            "--no-initial", help="skip the alarms not in normal state (or shelved, out of service) at the start"
        ),
    ] = False,
) -> None:
    """Follow the alarm journal live, one line per event (NDJSON with --json); Ctrl-C stops.

    With --json each line is one API event (changed alarms, journal rows, counts). First come the alarms not in normal state (unless --no-initial), marked `now`.
    """
    g = globals_of(ctx)
    params = present(pattern=pattern, area=area, initial=False if no_initial else None)
    with api(g) as client:
        zone = UTC if g.json else site_zone(client)
        client.set_timeout(None)
        try:
            for ev in client.stream("Alarms.Watch", params):
                if g.json:
                    emit_json(ev)
                    continue
                if ev.get("initial"):
                    for a in ev["alarms"]:
                        flags = flags_text(a, zone, datetime.now(UTC))
                        line = (f"{'now'.ljust(12)}  {'current'.ljust(14)}  {a['priority'].ljust(8)}  {a['name']}  "
                                f"{STATE_TEXT.get(a['state'], a['state'])}  "
                                f"{value_text(a.get('value'), a.get('units') or '')}  {flags}")  # fmt: skip
                        g.out.print(escape(line.rstrip()), highlight=False, soft_wrap=True)
                    continue
                for e in ev["events"]:
                    g.out.print(watch_line(e, zone), highlight=False, soft_wrap=True)
        except KeyboardInterrupt:
            pass


# ---------------------------------------------------------------- KPIs


def kpi_summary(k: dict[str, Any], zone: tzinfo) -> dict[str, str]:
    """The headline figures as label -> text (what `alarm kpi` prints above the tables)."""
    ops = k["operators"]
    per = "per operator " if ops > 1 else ""
    return {
        "period": f"{time_text(k['start'], zone)} to {time_text(k['end'], zone)} ({zone_name(zone)})",
        "operators": str(ops),
        "activations": str(k["activations"]),
        f"{per}per 10 min": f"avg {k['per_operator_per_10min_avg']:.2f}, max {k['per_operator_per_10min_max']:.2f}",
        f"{per}per day": f"{k['per_operator_per_day']:.2f}",
        "flood": (
            f"{k['flood_pct']:.2f} % ({k['flood_windows']} of {k['windows']} 10-min windows "
            f"with more than {10 * ops} activations)"
        ),
    }


def _kpi_table(g: Globals, title: str, rows: list[dict[str, Any]], columns: list[Column]) -> None:
    g.out.print()
    if not rows:
        g.out.print(f"{title}: none", highlight=False, markup=False)
        return
    g.out.print(f"{title}:", highlight=False, markup=False)
    render_rows(g, rows, columns)


@app.command("kpi")
def kpi(
    ctx: typer.Context,
    start: Annotated[
        str | None,
        typer.Option("--from", help="start: ISO-8601 (local time without offset), -24h, -7d, now; default -24h"),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="end, as --from; default now")] = None,
    operators: Annotated[
        int | None, typer.Option("--operators", "-o", help="operators sharing the load (rates are per operator)", min=1)
    ] = None,
    area: AreaOpt = None,
    top: Annotated[int | None, typer.Option("--top", "-t", help="bad actors listed (default 10)", min=1)] = None,
) -> None:
    """ISA-18.2 / EEMUA 191 alarm KPIs over [--from, --to) from the journal.

    Activations; rates per operator per 10 minutes (average, max) and per day; flood % (10-minute windows with more than 10 activations per operator, of all windows); the bad actors (most activations); chattering alarms (3 or more activations within 60 s, with the most in any 60 s); standing alarms (active 24 h or more at --to); and the priority distribution. --json prints the AlarmKpis object.
    """
    g = globals_of(ctx)
    now = datetime.now(UTC)
    params = present(start=time_option(start, "--from", now), end=time_option(end, "--to", now),
                     operators=operators, area=area, top=top)  # fmt: skip
    k, zone = call_with_zone(g, "Alarms.Kpis", params)
    if g.json:
        emit_json(k)
        return
    if not g.quiet:
        g.out.print(f"alarm KPIs{f' for area {area}' if area else ''}", highlight=False, markup=False)
    render_record(g, kpi_summary(k, zone))
    total = k["activations"] or 1
    _kpi_table(
        g,
        "bad actors",
        [{**c, "share": f"{100 * c['count'] / total:.1f}"} for c in k["bad_actors"]],
        [
            Column("name", "ALARM", no_wrap=True),
            Column("priority", "PRIORITY"),
            Column("count", "ACTIVATIONS", justify="right"),
            Column("share", "%", justify="right"),
        ],
    )
    _kpi_table(
        g,
        "chattering (3 or more within 60 s)",
        k["chattering"],
        [
            Column("name", "ALARM", no_wrap=True),
            Column("priority", "PRIORITY"),
            Column("count", "MOST IN 60 S", justify="right"),
        ],
    )
    _kpi_table(
        g,
        "standing (active 24 h or more)",
        [{**s, "since": time_text(s["active_since"], zone, "%Y-%m-%d %H:%M")} for s in k["standing"]],
        [
            Column("name", "ALARM", no_wrap=True),
            Column("priority", "PRIORITY"),
            Column("since", "ACTIVE SINCE"),
            Column("hours", "HOURS", justify="right"),
        ],
    )
    _kpi_table(
        g,
        "priority distribution",
        [
            {"priority": p, "count": n, "pct": f"{k['priority_distribution'].get(p, 0.0):.1f}"}
            for p, n in k["priority_counts"].items()
        ],
        [
            Column("priority", "PRIORITY"),
            Column("count", "ACTIVATIONS", justify="right"),
            Column("pct", "%", justify="right"),
        ],
    )


# ---------------------------------------------------------------- rules


class RuleFileSpec(AlarmRuleSpec):
    """An AlarmRuleSpec as a file row; `name` (<tag>:<kind>) is what must be unique in a file."""

    @property
    def name(self) -> str:
        return f"{self.tag}:{self.kind}"


RULES = files.Kind("rules", RuleFileSpec, "name")

RULE_COLUMNS = [
    Column("id", "ID", justify="right"),
    Column("name", "ALARM", no_wrap=True),
    Column("priority", "PRIORITY"),
    Column("trip", "TRIP"),
    Column("deadband", "DEADBAND", fmt=lambda v: format_value(v) if v else "", justify="right"),
    Column("delays", "ON/OFF"),
    Column("area", "AREA"),
    Column("flags", "FLAGS"),
]


def rule_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "name": f"{r['tag']}:{r['kind']}",
        "trip": limit_text(r),
        "delays": f"{delay_text(r['on_delay_ms'])}/{delay_text(r['off_delay_ms'])}",
        "flags": rule_flags(r),
    }


@rule_app.command("list")
def rule_list(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help=f"tag path pattern: {PATTERN_HELP}")] = "**",
    area: AreaOpt = None,
) -> None:
    """Alarm rules by tag and kind. --json prints the API result: {rules: [...]}."""
    g = globals_of(ctx)
    res = call(g, "AlarmRules.List", present(pattern=pattern, area=area))
    if g.json:
        emit_json(res)
        return
    render_rows(g, [rule_row(r) for r in res["rules"]], RULE_COLUMNS, title="alarm rules")


@rule_app.command("show")
def rule_show(ctx: typer.Context, name: NameArg) -> None:
    """One alarm rule: every field, with what trips it in words."""
    g = globals_of(ctx)
    r, zone = call_with_zone(g, "AlarmRules.Get", {"alarm": parse_ref(name)})
    if g.json:
        emit_json(r)
        return
    record: dict[str, Any] = {"id": r["id"], "alarm": f"{r['tag']}:{r['kind']}", "trips when": limit_text(r)}
    for key, value in r.items():
        if key in ("id", "created_at", "updated_at"):
            continue
        if key in ("on_delay_ms", "off_delay_ms"):
            key, value = key.removesuffix("_ms").replace("_", " "), delay_text(value)
        elif key == "discrete_op" and r["kind"] != "discrete":
            continue
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, float):
            value = format_value(value)
        record[key.replace("_", " ")] = value
    record["created"] = time_text(r["created_at"], zone) + f" ({zone_name(zone)})"
    record["updated"] = time_text(r["updated_at"], zone) + f" ({zone_name(zone)})"
    render_record(g, record)


LimitOpt = Annotated[
    float | None,
    typer.Option(
        "--limit",
        "-l",
        help="trip point (hihi/hi/lo/lolo), allowed difference (deviation), units per second "
        "(rate_of_change) or the state compared (discrete)",
    ),
]
DeadbandOpt = Annotated[
    float | None, typer.Option("--deadband", help="hysteresis: how far back past the limit before it clears", min=0)
]
OnDelayOpt = Annotated[
    str | None, typer.Option("--on-delay", help="condition must hold this long before it alarms: 5s, 500ms, 1m")
]
OffDelayOpt = Annotated[
    str | None, typer.Option("--off-delay", help="condition must be gone this long before it clears: 5s, 1m")
]
PrioritySetOpt = Annotated[
    Literal["critical", "high", "medium", "low"] | None,
    typer.Option("--priority", "-P", help="critical, high, medium (default) or low"),
]
MessageOpt = Annotated[
    str | None,
    typer.Option(
        "--message",
        "-m",
        help="text shown and notified; may name {tag} {kind} {value} {units} {limit} {priority} {area} {description}",
    ),
]
AreaSetOpt = Annotated[str | None, typer.Option("--area", "-A", help="plant area (default: the tag's first segment)")]
SetpointOpt = Annotated[
    str | None, typer.Option("--setpoint", help="deviation alarms: the setpoint tag compared with", metavar="TAG")
]
DiscreteOpOpt = Annotated[
    Literal["eq", "ne"] | None,
    typer.Option("--discrete-op", help="discrete alarms: eq (alarm while equal to --limit, default) or ne"),
]
SuppressOpt = Annotated[
    str | None,
    typer.Option(
        "--suppress-when",
        help="suppress by design while this expression is true, e.g. '{plant/pump/running} == 0'",
        metavar="EXPR",
    ),
]


def _delays(on_delay: str | None, off_delay: str | None) -> dict[str, int]:
    out = {}
    for option, text, key in (("--on-delay", on_delay, "on_delay_ms"), ("--off-delay", off_delay, "off_delay_ms")):
        if text is not None:
            try:
                out[key] = parse_delay_ms(text)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=option) from None
    return out


def _clearable(text: str | None) -> str | None | Literal[False]:
    """An edit option that may be cleared: '' or 'none' -> None; not given -> False."""
    if text is None:
        return False
    return None if text.strip().lower() in ("", "none") else text


@rule_app.command("add")
def rule_add(
    ctx: typer.Context,
    tag: Annotated[str, typer.Argument(help="tag path, e.g. plant/tank/level")],
    kind: Annotated[AlarmKind, typer.Argument(help=f"alarm kind: {', '.join(KINDS)}")],
    limit: LimitOpt = None,
    deadband: DeadbandOpt = None,
    on_delay: OnDelayOpt = None,
    off_delay: OffDelayOpt = None,
    priority: PrioritySetOpt = None,
    latching: Annotated[
        bool, typer.Option("--latching", help="stays latched after it clears until reset (ack)")
    ] = False,
    message: MessageOpt = None,
    area: AreaSetOpt = None,
    setpoint: SetpointOpt = None,
    discrete_op: DiscreteOpOpt = None,
    suppress_when: SuppressOpt = None,
    work_order: Annotated[bool, typer.Option("--work-order", help="open a work order when it activates")] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="define it, but do not evaluate it yet")] = False,
) -> None:
    """Add an alarm rule on a tag; it is evaluated at once against the tag's value."""
    g = globals_of(ctx)
    params = present(tag=tag, kind=kind, limit=limit, deadband=deadband, priority=priority,
                     latching=latching or None, message=message, area=area, setpoint_tag=setpoint,
                     discrete_op=discrete_op, suppress_when=suppress_when, open_work_order=work_order or None,
                     enabled=False if disabled else None)  # fmt: skip
    params.update(_delays(on_delay, off_delay))
    r = call(g, "AlarmRules.Create", params)
    done(g, f"alarm {escape(r['tag'])}:{r['kind']} added (id {r['id']}, {r['priority']}, {escape(limit_text(r))})", r)


@rule_app.command("edit")
def rule_edit(
    ctx: typer.Context,
    name: NameArg,
    limit: LimitOpt = None,
    deadband: DeadbandOpt = None,
    on_delay: OnDelayOpt = None,
    off_delay: OffDelayOpt = None,
    priority: PrioritySetOpt = None,
    latching: Annotated[
        bool | None, typer.Option("--latching/--no-latching", help="stays latched after it clears until reset")
    ] = None,
    message: MessageOpt = None,
    area: AreaSetOpt = None,
    setpoint: Annotated[
        str | None, typer.Option("--setpoint", help="deviation alarms: the setpoint tag", metavar="TAG")
    ] = None,
    discrete_op: DiscreteOpOpt = None,
    suppress_when: Annotated[
        str | None,
        typer.Option("--suppress-when", help="suppression expression ('none' removes it)", metavar="EXPR"),
    ] = None,
    work_order: Annotated[
        bool | None, typer.Option("--work-order/--no-work-order", help="open a work order when it activates")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="evaluate it or not (disabled returns it to normal)")
    ] = None,
) -> None:
    """Change an alarm rule's fields; options left out keep their value.

    The alarm keeps its state and is evaluated again.
    """
    g = globals_of(ctx)
    params: dict[str, Any] = present(
        alarm=parse_ref(name), limit=limit, deadband=deadband, priority=priority, latching=latching, message=message,
        area=area, setpoint_tag=setpoint, discrete_op=discrete_op, open_work_order=work_order, enabled=enabled,
    )  # fmt: skip
    if (sw := _clearable(suppress_when)) is not False:
        params["suppress_when"] = sw
    params.update(_delays(on_delay, off_delay))
    require_change(params)
    r = call(g, "AlarmRules.Update", params)
    done(g, f"alarm {escape(r['tag'])}:{r['kind']} updated ({r['priority']}, {escape(limit_text(r))})", r)


@rule_app.command("rm")
def rule_rm(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove an alarm rule (its journal rows stay)."""
    confirm_remove(globals_of(ctx), f"alarm {name}", "AlarmRules.Delete", {"alarm": parse_ref(name)}, yes)


# ---------------------------------------------------------------- rule files

_DUPLICATE = re.compile(r", field 'name': ('[^']*') is already defined at ")
_AT_RULE = re.compile(r"^params\.rules\[(\d+)\](?:\.(\w+))?")


def read_rules(path: str, fmt: str | None) -> list[RuleFileSpec]:
    """Rules from a CSV or TOML file; SpecFileError names the file, row and field."""
    try:
        return files.read_file(path, RULES, fmt)
    except files.SpecFileError as exc:
        # Two rows for one alarm: say so in the file's words (there is no 'name' column).
        raise files.SpecFileError(_DUPLICATE.sub(r": alarm \1 is already defined at ", str(exc))) from None


def row_places(path: str, fmt: str, count: int) -> list[str]:
    """Where each of a file's `count` rules is, as read_rules names them ("FILE row 3",
    "FILE entry 2 (line 7)"), so a refusal by the daemon can point into the file."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read().removeprefix("\ufeff")
    if fmt == "csv":
        places = []
        for row_no, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
            if row_no > 1 and any(c.strip() for c in row):
                places.append(f"{path} row {row_no}")
        return places
    header = re.compile(r"^\s*\[\[\s*[\"']?rules[\"']?\s*\]\]")
    lines = [n for n, line in enumerate(text.splitlines(), 1) if header.match(line)]
    return [f"{path} entry {i + 1}" + (f" (line {lines[i]})" if len(lines) == count else "") for i in range(count)]


def in_file(exc: ScadaError, path: str, fmt: str, count: int) -> ScadaError:
    """A daemon error about params.rules[i].field, re-worded to name the file's row and field."""
    m = _AT_RULE.match(str(exc.details.get("field") or ""))
    if not m:
        return exc
    try:
        places = row_places(path, fmt, count)
        where = places[int(m[1])]
    except (OSError, IndexError, UnicodeDecodeError, csv.Error):
        return exc
    field = f", field {m[2]!r}" if m[2] else ""
    wire = exc.to_wire()
    wire["message"] = f"{where}{field}: {exc.message}"
    wire["details"] = {**exc.details, "file": path, "where": where}
    return ScadaError.from_wire(wire)


FormatOpt = Annotated[
    Literal["csv", "toml"] | None, typer.Option("--format", "-f", help="csv or toml (default: from the extension)")
]


@rule_app.command("import")
def rule_import(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="a .csv or .toml file (as `alarm rule export` writes)")],
    update: Annotated[bool, typer.Option("--update", help="change rules that exist to match the file")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="check and report, change nothing")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Add the alarm rules of a CSV or TOML file; all or nothing.

    CSV: a header row of field names (tag and kind required), one rule per row; TOML: an array of tables named rules, one per rule. A rule that exists and differs is an error unless --update. A malformed file exits 2 naming the file, row and field; a rule the daemon refuses (an unknown tag, a missing limit) exits 1, naming them too.
    """
    g = globals_of(ctx)
    try:
        fmt = files.format_of(file, fmt)
        specs = read_rules(file, fmt)
    except files.SpecFileError as exc:
        raise spec_file_error(g, exc) from None
    params = {"rules": msgspec.to_builtins(specs), "update": update, "dry_run": dry_run}
    client = g.client()
    try:
        res = client.call("AlarmRules.Import", params)
    except ScadaError as exc:
        fail(g, in_file(exc, file, fmt, len(specs)))
    finally:
        client.close()
    print_import(g, res, file, len(specs), "rules")


@rule_app.command("export")
def rule_export(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(help="a .csv or .toml file (default: standard output)")] = None,
    pattern: Annotated[str | None, typer.Option("--pattern", "-p", help=f"only matching tags ({PATTERN_HELP})")] = None,
    area: AreaOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Write alarm rules to a CSV or TOML file, or to standard output (CSV by default).

    The file is what `alarm rule import` reads back.
    """
    g = globals_of(ctx)
    export_specs(g, RULES, call(g, "AlarmRules.Export", present(pattern=pattern, area=area)), file, fmt)
