"""Current alarms, most urgent first; acknowledge, shelve, comment, history.

One `Alarms.Watch` stream feeds the list: its first (initial) event is the baseline, every
later one carries the alarms that changed. The handler only keeps the newest copy of
each alarm; a 0.2 s tick draws what arrived. A change that keeps the order (an
acknowledgement, a new value) updates that row's cells and look in place; one that
changes which alarms are listed or their order (a new alarm on top, a shelve) sets the
rows again, the cursor staying on its alarm.

Order: priority, then the newest (active since), as `Alarms.List`. Look (ISA-101, see
`tui.alarm_data`): unacknowledged rows bold in their priority's colour, critical ones in
reverse video; acknowledged rows plain grey; shelved, suppressed and out-of-service
ones are listed only with `v`, dimmed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import Input, Static

from scadad.api.errors import ResourceExhausted, ScadaError
from tui import alarm_data as ad
from tui import format as fmt
from tui.link import Subscription
from tui.screens.alarm_history import AlarmHistoryScreen
from tui.screens.base import ConsoleScreen
from tui.widgets.comment_dialog import CommentDialog
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.live_table import CELL_PADDING, Column, LiveTable
from tui.widgets.shelve_dialog import ShelveDialog

FLUSH_S = 0.2
# How long the first load waits for the stream's baseline (so `loaded` means "drawn").
BASELINE_WAIT_S = 3.0
# After the daemon dropped the stream (the console fell too far behind): open it again.
REOPEN_S = 1.0
SCROLLBAR_W = 1
PAD = 2 * CELL_PADDING
WIDE_AT = 120  # screen width from which the priority is spelled out
MESSAGE_FROM = 56  # cells left for name and message from which the message gets a column
NAME_W = 36


# ---------------------------------------------------------------------- pure helpers


def column_plan(avail: int) -> tuple[Column, ...]:
    """Columns for a table ``avail`` cells wide: fixed priority, state, time, value and
    flags; the name gets the rest, and the message appears once there is room for it."""
    wide = avail >= WIDE_AT - SCROLLBAR_W
    prio = Column("priority", "Priority" if wide else "Prio", 8 if wide else 4)
    state = Column("state", "State", 7)
    since = Column("time", "Since", 11)
    value = Column("value", "Value", 12, right=True)
    flags = Column("flags", "Flags", 8 if wide else 7)
    fixed = prio.width + state.width + since.width + value.width + flags.width + 6 * PAD
    rest = avail - fixed
    if rest >= MESSAGE_FROM:
        name = Column("name", "Alarm", min(NAME_W, rest // 2))
        message = Column("message", "Message", rest - name.width - PAD)
        return (prio, state, since, name, value, message, flags)
    return (prio, state, since, Column("name", "Alarm", max(12, rest)), value, flags)


def status_text(shown: int, alarms: list[ad.Alarm], show_hidden: bool, query: str) -> Text:
    """The line below the list: how many are shown, unacknowledged, hidden; the filter."""
    annunciated = [a for a in alarms if ad.is_listed(a)]
    unacked = sum(1 for a in annunciated if ad.is_unacked(a))
    hidden = sum(1 for a in alarms if ad.is_hidden(a))
    if not annunciated and not (show_hidden and hidden):
        parts = ["No current alarms"]
    else:
        parts = [f"{shown} listed", f"{unacked} unacknowledged"]
    if hidden:
        parts.append(f"{hidden} shelved/suppressed/OOS {'listed' if show_hidden else 'hidden'} (v)")
    if query:
        parts.append(f"filter “{query}”")
    return Text(" · ".join(parts), no_wrap=True, overflow="ellipsis")


def cursor_after_removal(old: tuple[str, ...], cursor: str | None, new: list[str]) -> str | None:
    """Where the cursor goes when its row left the list: the next row that stayed, else
    the one before; None when its row is still there (or nothing is)."""
    if cursor is None or cursor in new or cursor not in old:
        return None
    kept = set(new)
    i = old.index(cursor)
    return next((k for k in old[i + 1 :] if k in kept), None) or next((k for k in reversed(old[:i]) if k in kept), None)


def left_ellipsis(text: str, width: int) -> str:
    """Shorten from the left: the end of an alarm's name (point and kind) tells them apart."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


# ---------------------------------------------------------------------- widgets


class AlarmTable(LiveTable):
    """The alarm list; Enter opens the history of the alarm under the cursor."""

    BINDINGS = [Binding("enter", "select_cursor", "History", show=False)]


class AlarmsScreen(ConsoleScreen):
    """The alarm summary: `a` acknowledges, `A` acknowledges all listed, `s` shelves,
    `u` unshelves, `c` comments, `h` shows the history, `/` filters, `v` lists hidden ones."""

    TITLE = "Alarms"
    BINDINGS = [
        Binding("a", "ack", "Ack"),
        Binding("A", "ack_all", "Ack all"),
        Binding("s", "shelve", "Shelve"),
        Binding("c", "comment", "Comment"),
        Binding("h", "history", "History"),
        Binding("slash", "filter", "Filter"),
        Binding("v", "toggle_hidden", "Show shelved"),
        Binding("u", "unshelve", "Unshelve", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    DEFAULT_CSS = f"""
    AlarmsScreen #alarm-filter {{ display: none; height: 1; border: none; padding: 0 1; background: $panel; }}
    AlarmsScreen.-filtering #alarm-filter {{ display: block; }}
    AlarmsScreen #alarm-table {{ height: 1fr; scrollbar-size-vertical: {SCROLLBAR_W}; }}
    AlarmsScreen #alarm-detail {{ height: 3; padding: 0 1; }}
    AlarmsScreen #alarms-status {{ height: 1; padding: 0 1; color: $text-muted; }}
    """

    def __init__(self) -> None:
        super().__init__()
        self.alarms: dict[int, ad.Alarm] = {}  # by rule id: every alarm not normal, or hidden
        self.by_name: dict[str, ad.Alarm] = {}
        self._pending: dict[int, ad.Alarm | None] = {}  # arrived since the last flush (None: removed)
        self._rebase = False  # the pending alarms are a new baseline (initial event)
        self._baseline = asyncio.Event()
        self.shown: list[str] = []  # names listed, in order
        self.show_hidden = False
        self.query_text = ""
        self.plan: tuple[Column, ...] = ()
        self.sub: Subscription | None = None
        self._timer: Timer | None = None
        self._filter_timer: Timer | None = None
        self.refused = ""  # why the daemon will not stream alarms to this user, if it will not

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="filter name, message, area (Enter: to list, Esc: clear)", id="alarm-filter")
        yield AlarmTable(id="alarm-table", classes="live")
        yield Static(id="alarm-detail", classes="live")
        yield Static(id="alarms-status")

    @property
    def table(self) -> AlarmTable:
        return self.query_one(AlarmTable)

    def on_mount(self) -> None:
        self._timer = self.set_interval(FLUSH_S, self.flush)
        self.every_while_shown(1.0, self._show_detail)  # "active since ... (for 3 min)" moves on
        self.table.focus()

    def on_unmount(self) -> None:
        if self.sub is not None:
            self.sub.cancel()

    def on_screen_suspend(self) -> None:
        # Under a dialog or another mode: keep collecting, stop drawing.
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
            self.flush()

    def on_resize(self) -> None:
        plan = column_plan(self.size.width - SCROLLBAR_W)
        if plan != self.plan:
            self.plan = plan
            self.table.set_columns(plan)
            self._fill_rows()

    # ------------------------------------------------------------------ the stream

    async def on_link_up(self) -> None:
        if self.sub is None:
            self.sub = self.link.subscribe("Alarms.Watch", {"initial": True}, self.on_alarm_event, self._stream_failed)
        try:
            await asyncio.wait_for(self._baseline.wait(), BASELINE_WAIT_S)
        except TimeoutError:
            pass  # a slow daemon: the list fills when the baseline comes
        self.flush()

    def on_alarm_event(self, event: dict[str, Any]) -> None:
        """Stream handler: keep the newest copy of each alarm; `flush` draws them."""
        if event.get("initial"):
            self._pending = {}
            self._rebase = True
            self.refused = ""
        for a in event.get("alarms") or []:
            self._pending[a["id"]] = a
        # Rules deleted while active, should the daemon name them (it does not yet: then
        # such an alarm stays listed until the stream is opened again).
        for rid in event.get("removed") or []:
            self._pending[rid] = None
        self._baseline.set()

    def _stream_failed(self, exc: ScadaError) -> None:
        self._baseline.set()
        if isinstance(exc, ResourceExhausted) and self.sub is not None:
            # The daemon dropped us in a flood: open again (its initial event re-bases the list).
            self.set_timer(REOPEN_S, self._reopen)
            return
        # Refused (no alarms.read, logged out): what is listed is no longer known.
        self.refused = exc.message
        self._pending, self._rebase = {}, True
        self.console.report_error(exc)

    def _reopen(self) -> None:
        if self.sub is not None:
            self.link.restart(self.sub)

    def flush(self) -> None:
        """Take what arrived into the list: in place when the listed order stays."""
        if not self._pending and not self._rebase:
            return
        batch, self._pending = self._pending, {}
        if self._rebase:
            self._rebase = False
            self.alarms = {}
        changed = set()
        for rid, a in batch.items():
            old = self.alarms.pop(rid, None)
            if old is not None:
                changed.add(old.get("name", ""))
            if a is not None and (a.get("state", "normal") != "normal" or ad.is_hidden(a)):
                self.alarms[rid] = a  # (normal again and acknowledged: off the list)
                changed.add(a.get("name", ""))
        self.by_name = {a["name"]: a for a in self.alarms.values()}
        self._fill_rows(changed=changed)

    # ------------------------------------------------------------------ drawing

    def _fill_rows(self, changed: set[str] | None = None) -> None:
        """Show the listed alarms; rebuild the rows only when which or their order changed."""
        if not self.plan:
            return  # not laid out yet: the first resize fills the table
        table = self.table
        now, tz = self.now(), self.tz
        short = self.plan[0].width < 8
        name_w = next(c.width for c in self.plan if c.key == "name")
        listed = ad.listed(self.alarms, self.show_hidden, self.query_text)
        names = [a["name"] for a in listed]

        def cells(a: ad.Alarm) -> list[Text]:
            by_key = ad.alarm_cells(a, now, tz, short)
            by_key["name"].plain = left_ellipsis(by_key["name"].plain, name_w)
            return [by_key[c.key] for c in self.plan]

        if changed is not None and tuple(names) == table.keys:
            for a in listed:
                if a["name"] in changed:
                    for column, cell in zip(self.plan, cells(a), strict=True):
                        table.update_cell(a["name"], column.key, cell)
                    table.set_row_style(a["name"], ad.row_style(a) or None)
        else:
            old, cursor = table.keys, table.cursor_key
            table.set_rows(((a["name"], cells(a)) for a in listed), {a["name"]: ad.row_style(a) for a in listed})
            follow = cursor_after_removal(old, cursor, names)
            if follow is not None:
                table.move_cursor(follow)  # the operator acknowledging down the list stays in place
        self.shown = names
        self._show_detail()
        self._show_status()

    def _show_detail(self) -> None:
        self.query_one("#alarm-detail", Static).update(ad.alarm_detail(self.selected(), self.now(), self.tz))

    def _show_status(self) -> None:
        if self.refused:
            status = Text(f"Alarms not shown: {self.refused}", style="bold red", no_wrap=True, overflow="ellipsis")
        else:
            status = status_text(len(self.shown), list(self.alarms.values()), self.show_hidden, self.query_text)
        self.query_one("#alarms-status", Static).update(status)

    @on(LiveTable.RowHighlighted, "#alarm-table")
    def _row_moved(self, event: LiveTable.RowHighlighted) -> None:
        self._show_detail()

    @on(LiveTable.RowSelected, "#alarm-table")
    def _row_chosen(self, event: LiveTable.RowSelected) -> None:
        self.action_history()

    def selected(self) -> ad.Alarm | None:
        """The alarm under the cursor (None when the list is empty)."""
        name = self.table.cursor_key
        return None if name is None else self.by_name.get(name)

    def _need_selected(self) -> ad.Alarm | None:
        a = self.selected()
        if a is None:
            self.notify("No alarm selected.", severity="warning", timeout=3)
        return a

    def _may(self, permission: str, what: str) -> bool:
        """Say it before asking anything, when the identity lacks ``permission`` (the
        daemon checks again anyway)."""
        if self.console.may(permission):
            return True
        self.notify(f"{what} needs permission '{permission}'.", title="Permission denied", severity="error")
        return False

    # ------------------------------------------------------------------ filter

    @on(Input.Changed, "#alarm-filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(0.1, self._fill_rows)

    @on(Input.Submitted, "#alarm-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.table.focus()
        if not self.query_text:
            self.remove_class("-filtering")

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one("#alarm-filter", Input).focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        box = self.query_one("#alarm-filter", Input)
        self.remove_class("-filtering")
        self.table.focus()
        if box.value:
            box.value = ""  # its Input.Changed lists every alarm again
            self.query_text = ""
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return self.has_class("-filtering") or bool(self.query_text)
        return True

    def action_toggle_hidden(self) -> None:
        self.show_hidden = not self.show_hidden
        self._fill_rows()
        shown = "listed (dimmed)" if self.show_hidden else "hidden"
        self.notify(f"Shelved, suppressed and out-of-service alarms {shown}.", timeout=2)

    # ------------------------------------------------------------------ actions

    def action_ack(self) -> None:
        a = self._need_selected()
        if a is None:
            return
        if not ad.is_unacked(a):
            self.notify(f"{a['name']} is already acknowledged.", timeout=3, markup=False)
            return
        self._acknowledge([a["name"]], quiet=True)

    def action_ack_all(self) -> None:
        names = [n for n in self.shown if (a := self.by_name.get(n)) is not None and ad.is_unacked(a)]
        if not names:
            self.notify("No unacknowledged alarm is listed.", timeout=3)
            return
        if not self._may("alarms.ack", "Acknowledging alarms"):
            return
        n = len(names)
        title = f"Acknowledge {n} alarm{'s' if n != 1 else ''}?"
        body = "Every unacknowledged alarm listed" + (f" (filter “{self.query_text}”)" if self.query_text else "") + "."

        def answered(yes: bool | None) -> None:
            if yes:
                self._acknowledge(names)

        self.app.push_screen(ConfirmDialog(title, body), answered)

    @work(group="ack")
    async def _acknowledge(self, names: list[str], quiet: bool = False) -> None:
        what = names[0] if len(names) == 1 else f"{len(names)} alarms"
        try:
            result = await self.call("Alarms.Acknowledge", {"alarms": names})
        except Exception as exc:  # noqa: BLE001 - PERMISSION_DENIED, a lost link and the like: say it, go on
            self.console.report_error(exc, unconfirmed=f"{what}: the acknowledgement")
            return
        done, skipped = result.get("acknowledged") or [], result.get("skipped") or []
        if not quiet:
            self.notify(f"Acknowledged {len(done)} alarm{'s' if len(done) != 1 else ''}.", timeout=3)
        if skipped:
            self.notify(
                f"Not unacknowledged any more: {', '.join(skipped[:5])}{' …' if len(skipped) > 5 else ''}",
                timeout=4,
                markup=False,
            )

    def action_shelve(self) -> None:
        a = self._need_selected()
        if a is None or not self._may("alarms.shelve", "Shelving an alarm"):
            return
        name = a["name"]

        def answered(result: tuple[int, str] | None) -> None:
            if result is not None:
                self._shelve(name, *result)

        self.app.push_screen(ShelveDialog(name), answered)

    @work(group="shelve")
    async def _shelve(self, name: str, seconds: int, reason: str) -> None:
        try:
            await self.call("Alarms.Shelve", {"alarms": [name], "duration_s": seconds, "reason": reason})
        except Exception as exc:  # noqa: BLE001
            self.console.report_error(exc, unconfirmed=f"{name}: the shelve")
            return
        self.notify(f"{name} shelved for {fmt.duration(seconds)}: {reason}", timeout=4, markup=False)

    def action_unshelve(self) -> None:
        a = self._need_selected()
        if a is None:
            return
        if not a.get("shelved_until"):
            self.notify(f"{a['name']} is not shelved.", timeout=3, markup=False)
            return
        if self._may("alarms.shelve", "Unshelving an alarm"):
            self._unshelve(a["name"])

    @work(group="shelve")
    async def _unshelve(self, name: str) -> None:
        try:
            await self.call("Alarms.Unshelve", {"alarms": [name]})
        except Exception as exc:  # noqa: BLE001
            self.console.report_error(exc, unconfirmed=f"{name}: the unshelve")
            return
        self.notify(f"{name} unshelved.", timeout=3, markup=False)

    def action_comment(self) -> None:
        a = self._need_selected()
        if a is None or not self._may("alarms.ack", "Commenting an alarm"):
            return
        name = a["name"]

        def answered(text: str | None) -> None:
            if text:
                self._comment(name, text)

        self.app.push_screen(CommentDialog(name), answered)

    @work(group="comment")
    async def _comment(self, name: str, text: str) -> None:
        try:
            await self.call("Alarms.Comment", {"alarm": name, "comment": text})
        except Exception as exc:  # noqa: BLE001
            self.console.report_error(exc, unconfirmed=f"{name}: the comment")
            return
        self.notify(f"Comment added to {name}.", timeout=3, markup=False)

    def action_history(self) -> None:
        a = self._need_selected()
        if a is not None:
            self.app.push_screen(AlarmHistoryScreen(a["name"]))
