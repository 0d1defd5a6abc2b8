"""One alarm's journal, newest first: when, what happened, the state after, who, and
their comment (or the value, for activations and clears).

Pushed over the Alarms screen (h, or Enter on a row); Esc goes back. It asks
`Alarms.History` once for the newest rows of the last 90 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.alarm_data import history_cells

if TYPE_CHECKING:
    from tui.app import ConsoleApp

HISTORY_LIMIT = 200
HISTORY_DAYS = 90
WIDE_AT = 120
# The detail column's share of the box: the box's inner width less the fixed columns.
FIXED_W = {"event": 14, "state": 7, "user": 12}


class AlarmHistoryScreen(ModalScreen[None]):
    """The journal of alarm ``name``; loads when shown."""

    BINDINGS = [Binding("escape,q,h", "dismiss", "Close history")]
    DEFAULT_CSS = """
    AlarmHistoryScreen { align: center middle; }
    AlarmHistoryScreen > Vertical { width: 95%; max-width: 140; height: 90%; border: round $primary; background: $surface; }
    AlarmHistoryScreen #history-title { padding: 0 1; text-style: bold; }
    AlarmHistoryScreen #history-note { padding: 0 1; color: $text-muted; }
    AlarmHistoryScreen DataTable { height: 1fr; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.alarm_name = name
        self.rows: list[dict[str, Any]] = []
        self.loaded = False  # tests wait on it

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"History — {escape(self.alarm_name)}   (Esc closes)", id="history-title")
            yield Static("Loading …", id="history-note")
            yield DataTable(cursor_type="row", zebra_stripes=False, id="history-table")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        box = min(self.app.size.width * 95 // 100, 140) - 2  # inside the border
        wide = self.app.size.width >= WIDE_AT
        time_w = 19 if wide else 14
        fixed = time_w + sum(FIXED_W.values()) + 5 * 2 + 1  # cell padding, scrollbar
        table.add_column("Time", width=time_w, key="time")
        table.add_column("Event", width=FIXED_W["event"], key="event")
        table.add_column("State", width=FIXED_W["state"], key="state")
        table.add_column("User", width=FIXED_W["user"], key="user")
        table.add_column("Comment / value", width=max(10, box - fixed), key="detail")
        table.focus()
        self.run_worker(self._load, exclusive=True, group="history")

    async def _load(self) -> None:
        start = datetime.fromtimestamp(self.console.clock(), UTC) - timedelta(days=HISTORY_DAYS)
        params = {"alarm": self.alarm_name, "newest": True, "limit": HISTORY_LIMIT, "start": start.isoformat()}
        note = self.query_one("#history-note", Static)
        try:
            result = await self.console.link.call("Alarms.History", params)
        except Exception as exc:  # noqa: BLE001 - said in the box and as a toast, never raised
            note.update(Text(f"Could not read the history: {getattr(exc, 'message', exc)}", style="bold red"))
            self.console.report_error(exc)
            return
        self.rows = list(reversed(result.get("events") or []))  # newest first
        self.show_rows(bool(result.get("truncated")))
        self.loaded = True

    def show_rows(self, truncated: bool) -> None:
        table = self.query_one(DataTable)
        table.clear()
        wide = self.app.size.width >= WIDE_AT
        tz = self.console.tz
        for row in self.rows:
            table.add_row(*(Text(c, no_wrap=True, overflow="ellipsis") for c in history_cells(row, tz, wide)))
        if not self.rows:
            text = f"No journal rows in the last {HISTORY_DAYS} days."
        elif truncated:
            text = f"The newest {len(self.rows)} rows, newest first; older ones are not listed."
        else:
            text = f"{len(self.rows)} rows in the last {HISTORY_DAYS} days, newest first."
        self.query_one("#history-note", Static).update(text)
