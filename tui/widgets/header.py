"""The one-line status header: site, screen, clock, connection, user, alarm counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget


@dataclass
class HeaderState:
    """What the header shows; the app owns one and every screen's header draws it."""

    site: str = "—"
    screen_title: str = ""
    clock_text: str = ""
    link: str = "connecting"
    user: str = ""
    alarms: dict[str, int] = field(default_factory=dict)  # priority -> active count (Alarms)


def header_text(s: HeaderState) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(" SCADA ", style="bold reverse")
    t.append(f" {s.site}")
    if s.screen_title:
        t.append(f" · {s.screen_title}", style="bold")
    t.append(f"  {s.clock_text}")
    if s.link == "online":
        t.append("  ● online")
    else:
        t.append(f" ✖ {'connection lost' if s.link == 'lost' else s.link} ", style="bold reverse red")
    if s.user:
        t.append(f"  {s.user}")
    t.append("  alarms ")
    if not s.alarms:
        t.append("—", style="dim")
    else:
        styles = {"critical": "bold reverse red", "high": "bold red", "medium": "bold yellow", "low": ""}
        for prio, n in s.alarms.items():
            t.append(f"{prio[0].upper()}{n} ", style=styles.get(prio, "") if n else "dim")
    return t


class StatusHeader(Widget):
    """Everything an operator checks at a glance, in one line (colour only when abnormal)."""

    DEFAULT_CSS = """
    StatusHeader { dock: top; height: 1; background: $panel; color: $foreground; }
    """

    def render(self) -> Text:
        state = getattr(self.app, "header_state", None)
        return header_text(state if state is not None else HeaderState())
