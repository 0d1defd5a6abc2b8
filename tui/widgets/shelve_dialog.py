"""Ask how long to shelve an alarm and why (ISA-18.2: always time-limited, always with a reason)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui.alarm_data import parse_duration

REASON_MAX = 1000


class ShelveDialog(ModalScreen[tuple[int, str] | None]):
    """Dismisses with (duration in seconds, reason), or None (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ShelveDialog { align: center middle; }
    ShelveDialog > Vertical { width: 68; max-width: 95%; height: auto; border: round $primary; background: $surface; padding: 1 2; }
    ShelveDialog #shelve-title { text-style: bold; }
    ShelveDialog Label { margin-top: 1; }
    ShelveDialog #shelve-error { color: $error; text-style: bold; height: auto; }
    ShelveDialog .muted { color: $text-muted; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.alarm_name = name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Shelve {escape(self.alarm_name)}", id="shelve-title")
            yield Static(
                "A shelved alarm is still recorded but not shown or notified until the time runs out "
                "(or u unshelves it).",
                classes="muted",
            )
            yield Label("For how long: 30m, 2h, 8h, 1d")
            yield Input(placeholder="e.g. 2h", id="shelve-duration")
            yield Label("Reason (required)")
            yield Input(placeholder="why it may stay off the list", id="shelve-reason", max_length=REASON_MAX)
            yield Static("", id="shelve-error")
            yield Static("Enter: shelve   Esc: cancel", classes="muted")

    def on_mount(self) -> None:
        self.query_one("#shelve-duration", Input).focus()

    def _error(self, text: str) -> None:
        self.query_one("#shelve-error", Static).update(escape(text))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        duration = self.query_one("#shelve-duration", Input)
        reason = self.query_one("#shelve-reason", Input)
        try:
            seconds = parse_duration(duration.value)
        except ValueError as exc:
            self._error(str(exc))
            duration.focus()
            return
        if event.input is duration and not reason.value.strip():
            self._error("")
            reason.focus()
            return
        if not reason.value.strip():
            self._error("Say why: a shelve needs a reason.")
            reason.focus()
            return
        self.dismiss((seconds, reason.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
