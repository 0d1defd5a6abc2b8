"""The one-line status header: site, screen, clock, connection, user, alarm counts.

The alarm counts and the link state are never cut: on a narrow terminal the figures
take a shorter form and the user and the site give way (see `header_text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widget import Widget

from tui.alarm_data import PRIORITY_RANK, PRIORITY_SHORT, UNACKED_STYLE

# ISA-101: colour only for what needs the operator; the most urgent the loudest.
FLASH_STYLE = "bold reverse red"


@dataclass(frozen=True)
class AlarmSummary:
    """The header's alarm figures: annunciated alarms, and the unacknowledged ones by
    priority (most urgent first, only priorities that have any)."""

    active: int = 0
    unacked: int = 0
    unacked_by_priority: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_counts(cls, counts: dict[str, Any]) -> AlarmSummary:
        """From the daemon's `AlarmCounts` (as sent in every `Alarms.Watch` event)."""
        by = counts.get("unacked_by_priority") or {}
        ranked = sorted((p for p in by if by[p]), key=lambda p: (PRIORITY_RANK.get(p, 9), p))
        return cls(
            active=int(counts.get("active") or 0),
            unacked=int(counts.get("unacked") or 0),
            unacked_by_priority=tuple((p, int(by[p])) for p in ranked),
        )


@dataclass
class HeaderState:
    """What the header shows; the app owns one and every screen's header draws it."""

    site: str = "—"
    screen_title: str = ""
    clock_text: str = ""
    link: str = "connecting"
    user: str = ""
    alarms: AlarmSummary | None = None  # None: not known or not readable (alarms.read), shown as —
    alarm_flash: bool = False  # on for moments after a new critical alarm


def alarm_text(alarms: AlarmSummary | None, form: str = "long", flash: bool = False) -> Text:
    """The header's alarm figures in one of three forms, the longest that fits:

    - long:  ``alarms 1 crit 2 high · 3 unack / 7 active``
    - short: ``alarms 1 crit 2 high 3/7 unack``
    - tiny:  ``alarms 1C 2H 3/7``

    ``alarms none`` when nothing is annunciated; ``alarms —`` when not known (not
    readable without alarms.read, or the link is down). Priorities are coloured only
    when they have unacknowledged alarms; a flash shows the whole part in reverse red."""
    t = Text("alarms ")
    if alarms is None:
        t.append("—", style="dim")
    elif not alarms.active and not alarms.unacked:
        t.append("none")
    else:
        for prio, n in alarms.unacked_by_priority:
            label = PRIORITY_SHORT.get(prio, prio)
            t.append(
                f"{n}{label[0].upper()}" if form == "tiny" else f"{n} {label}", style=UNACKED_STYLE.get(prio, "bold")
            )
            t.append(" ")
        unack_style = "bold" if alarms.unacked else ""
        if form == "tiny":
            t.append(f"{alarms.unacked}/{alarms.active}", style=unack_style)
        elif form == "short":
            t.append(f"{alarms.unacked}/{alarms.active} unack", style=unack_style)
        else:
            if alarms.unacked_by_priority:
                t.append("· ")
            t.append(f"{alarms.unacked} unack", style=unack_style)
            t.append(f" / {alarms.active} active")
    if flash:
        t = Text(t.plain, style=FLASH_STYLE)
    return t


def _left(s: HeaderState, user: bool = True, site: bool = True) -> Text:
    t = Text()
    t.append(" SCADA ", style="bold reverse")
    if site:
        t.append(f" {s.site}")
    if s.screen_title:
        t.append(f" · {s.screen_title}", style="bold")
    t.append(f"  {s.clock_text}")
    if s.link == "online":
        t.append("  ● online")
    else:
        t.append(f" ✖ {'connection lost' if s.link == 'lost' else s.link} ", style="bold reverse red")
    if s.user and user:
        t.append(f"  {s.user}")
    return t


def header_text(s: HeaderState, width: int = 0) -> Text:
    """The header line for a terminal ``width`` cells wide (0: as long as it takes).

    The alarm figures and the link state are what must never be cut: when the line is
    too long the figures take a shorter form, then the user and the site give way, and
    only then is the rest cut with an ellipsis."""
    tries = [
        ({}, "long"),
        ({}, "short"),
        ({"user": False}, "short"),
        ({"user": False}, "tiny"),
        ({"user": False, "site": False}, "tiny"),
    ]
    for left_parts, form in tries:
        left = _left(s, **left_parts)
        alarms = alarm_text(s.alarms, form, flash=s.alarm_flash)
        if not width or left.cell_len + 2 + alarms.cell_len <= width:
            break
    else:
        left.truncate(max(0, width - 2 - alarms.cell_len), overflow="ellipsis")
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append_text(left)
    t.append("  ")
    t.append_text(alarms)
    return t


class StatusHeader(Widget):
    """Everything an operator checks at a glance, in one line (colour only when abnormal)."""

    DEFAULT_CSS = """
    StatusHeader { dock: top; height: 1; background: $panel; color: $foreground; }
    """

    def render(self) -> Text:
        state = getattr(self.app, "header_state", None)
        return header_text(state if state is not None else HeaderState(), self.size.width)
