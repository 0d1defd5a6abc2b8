"""Alarm display rules without Textual: what is shown, in which order, in which look,
and when the console rings.

The alarms come as the daemon's `Alarm` structs (dicts off the wire). ISA-18.2 states:
unack_active (UNACK), ack_active (ACK), rtn_unack (RTN: back to normal, not yet
acknowledged), latched (LATCHED: back to normal, needs a reset), normal. Shelved,
suppressed and out of service are flags beside the state; an alarm with any of them
is not annunciated and is only listed on request (the Alarms screen's `v`).

ISA-101 look: an acknowledged alarm is plain grey text; an unacknowledged one is bold
in its priority's colour, a critical one in reverse video (steady, not blinking: the
same every time it is drawn); hidden (shelved, suppressed, out of service) and normal
ones are dim.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any

from rich.text import Text

from tui import format as fmt

Alarm = dict[str, Any]

PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
PRIORITY_SHORT = {"critical": "crit", "high": "high", "medium": "med", "low": "low"}
UNACKED = frozenset({"unack_active", "rtn_unack", "latched"})
STATE_LABEL = {
    "unack_active": "UNACK",
    "ack_active": "ACK",
    "rtn_unack": "RTN",
    "latched": "LATCHED",
    "normal": "NORMAL",
}
STATE_WORDS = {
    "unack_active": "active, unacknowledged",
    "ack_active": "active, acknowledged",
    "rtn_unack": "returned to normal, unacknowledged",
    "latched": "latched: returned to normal, needs a reset (acknowledge)",
    "normal": "normal",
}
# The look of a whole row (see the module docstring).
UNACKED_STYLE = {"critical": "bold reverse red", "high": "bold red", "medium": "bold yellow", "low": "bold"}
# The priority word keeps its colour once acknowledged: priority at a glance, calmly.
PRIORITY_STYLE = {"critical": "red", "high": "red", "medium": "yellow", "low": ""}
HIDDEN_STYLE = "dim"


def is_unacked(a: Alarm) -> bool:
    return a.get("state") in UNACKED


def is_hidden(a: Alarm) -> bool:
    """Shelved, suppressed by design or out of service: not annunciated."""
    return bool(a.get("shelved_until") or a.get("suppressed") or a.get("out_of_service"))


def is_listed(a: Alarm, show_hidden: bool = False) -> bool:
    """Whether the alarm list shows ``a``: annunciated ones always, hidden ones (even in
    normal state, so they can be unshelved) when ``show_hidden``."""
    if is_hidden(a):
        return show_hidden
    return a.get("state", "normal") != "normal"


def matches(a: Alarm, query: str) -> bool:
    """Case-insensitive substring of the name, message, area, priority or state."""
    q = query.strip().lower()
    if not q:
        return True
    hay = (
        " ".join(str(a.get(k) or "") for k in ("name", "message", "area", "priority"))
        + f" {STATE_LABEL.get(a.get('state', ''), '')}"
    )
    return q in hay.lower()


def since_s(a: Alarm) -> float:
    """When the alarm became active (else last changed), as epoch seconds (0 if never)."""
    t = fmt.parse_time(a.get("active_since") or a.get("last_change"))
    return t.timestamp() if t is not None else 0.0


def sort_key(a: Alarm) -> tuple[int, float, str]:
    """Most urgent first: priority, then the newest, then by name (as `Alarms.List`)."""
    return (PRIORITY_RANK.get(a.get("priority", ""), 9), -since_s(a), a.get("name", ""))


def listed(alarms: dict[Any, Alarm], show_hidden: bool = False, query: str = "") -> list[Alarm]:
    """The alarms the list shows, in its order."""
    return sorted((a for a in alarms.values() if is_listed(a, show_hidden) and matches(a, query)), key=sort_key)


def row_style(a: Alarm) -> str:
    """The whole row's look: loud while unacknowledged, grey once acknowledged, dim when
    hidden or normal."""
    if is_hidden(a) or a.get("state") == "normal":
        return HIDDEN_STYLE
    if is_unacked(a):
        return UNACKED_STYLE.get(a.get("priority", ""), "bold")
    return ""


def flags_text(a: Alarm) -> str:
    flags = []
    if a.get("shelved_until"):
        flags.append("SHELVED")
    if a.get("suppressed"):
        flags.append("SUPP")
    if a.get("out_of_service"):
        flags.append("OOS")
    return " ".join(flags)


def value_text(a: Alarm) -> str:
    """The value that (last) tripped the alarm, with its units."""
    value = a.get("value")
    if value is None:
        return "—"
    return f"{fmt.format_value(value)} {a.get('units') or ''}".rstrip()


time_text = fmt.local_time_text


def alarm_cells(a: Alarm, now: float, tz: tzinfo, short: bool = False) -> dict[str, Text]:
    """The table cells of one alarm, by column key (``short``: abbreviated priority)."""
    prio = a.get("priority", "")
    # An unacknowledged row has its colour from the row style; the priority word is
    # coloured on its own only once acknowledged (a coloured word in a reverse row
    # would read as a hole in it).
    prio_style = "" if is_unacked(a) or is_hidden(a) else PRIORITY_STYLE.get(prio, "")
    return {
        "priority": Text(PRIORITY_SHORT.get(prio, prio) if short else prio, style=prio_style),
        "state": Text(STATE_LABEL.get(a.get("state", ""), a.get("state", ""))),
        "time": Text(time_text(a.get("active_since") or a.get("last_change"), now, tz)),
        "name": Text(a.get("name", ""), no_wrap=True, overflow="ellipsis"),
        "value": Text(value_text(a), justify="right"),
        "message": Text(a.get("message") or "", no_wrap=True, overflow="ellipsis"),
        "flags": Text(flags_text(a)),
    }


def alarm_detail(a: Alarm | None, now: float, tz: tzinfo) -> Text:
    """Three lines on the selected alarm: what, its message and value, and who did what."""
    if a is None:
        return Text("No alarm selected.", style="dim")
    t = Text(no_wrap=False)
    t.append(a.get("name", ""), style="bold")
    t.append(f"  {a.get('priority', '')}  {STATE_WORDS.get(a.get('state', ''), a.get('state', ''))}")
    if a.get("area"):
        t.append(f"  area {a['area']}")
    t.append("\n")
    t.append(a.get("message") or "—")
    units = a.get("units") or ""
    t.append(f"   value {value_text(a)}")
    if a.get("limit") is not None:
        t.append(f"   limit {fmt.format_value(a['limit'])} {units}".rstrip())
    t.append("\n")
    parts: list[str] = []
    since = fmt.parse_time(a.get("active_since"))
    if since is not None:
        parts.append(
            f"active since {fmt.local_time(since, tz, with_date=True)} ({fmt.duration(max(0.0, now - since.timestamp()))})"
        )
    if a.get("acked_by") or a.get("acked_at"):
        at = fmt.parse_time(a.get("acked_at"))
        parts.append(f"acknowledged by {a.get('acked_by') or '?'} at {time_text(at, now, tz)}")
    if a.get("shelved_until"):
        parts.append(
            f"shelved by {a.get('shelved_by') or '?'} until {time_text(a['shelved_until'], now, tz)}: "
            f"{a.get('shelve_reason') or ''}"
        )
    if a.get("suppressed"):
        parts.append("suppressed by design")
    if a.get("out_of_service"):
        parts.append(f"out of service: {a.get('oos_reason') or ''}")
    t.append(" · ".join(parts) or "—", style="dim" if not parts else "")
    return t


def rings_bell(event: dict[str, Any]) -> bool:
    """Whether an `Alarms.Watch` event brings a new critical alarm to the operator: a
    journal row "activated" of priority critical, for an alarm that is not shelved,
    suppressed or out of service. The initial event (the alarms already standing when
    the stream opened) never rings."""
    if event.get("initial"):
        return False
    alarms = {a.get("id"): a for a in event.get("alarms") or []}
    for row in event.get("events") or []:
        if row.get("event") != "activated" or row.get("priority") != "critical":
            continue
        a = alarms.get(row.get("alarm_id"))
        if a is None or not is_hidden(a):
            return True
    return False


_BARE_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_SHELVE_S = 366 * 86400


def parse_duration(text: str) -> int:
    """A shelve duration typed by an operator, in whole seconds: 90m, 2h, 8h, 1d, 1h30m
    (a bare number is minutes). ValueError says what is wrong."""
    t = text.strip().lower().replace(" ", "")
    if not t:
        raise ValueError("type a duration, e.g. 30m, 2h, 8h")
    if _BARE_NUMBER.fullmatch(t):
        seconds = float(t) * 60
    else:
        parts = _PART.findall(t)
        if not parts or "".join(n + u for n, u in parts) != t:
            raise ValueError(f"{text.strip()!r} is not a duration: type e.g. 30m, 2h, 8h, 1d")
        seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds < 1:
        raise ValueError("a shelve lasts at least 1 s")
    if seconds > MAX_SHELVE_S:
        raise ValueError("a shelve lasts at most 366 d")
    return int(round(seconds))


def history_cells(row: dict[str, Any], tz: tzinfo, with_year: bool) -> tuple[str, str, str, str, str]:
    """One journal row for the history table: time, event, state, user, detail."""
    t = fmt.parse_time(row.get("time"))
    when = "—" if t is None else t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if with_year else "%m-%d %H:%M:%S")
    detail = row.get("comment") or ""
    if not detail and row.get("event") in ("activated", "cleared") and row.get("value") is not None:
        detail = f"value {fmt.format_value(row['value'])}"
    state = STATE_LABEL.get(row.get("state") or "", row.get("state") or "")
    return when, row.get("event", ""), state, row.get("user") or "", detail
