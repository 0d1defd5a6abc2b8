"""Ask for an operator's comment on an alarm (it goes into the alarm's journal)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Static

COMMENT_MAX = 1000


class CommentDialog(ModalScreen[str | None]):
    """Dismisses with the comment (Enter), or None (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    CommentDialog { align: center middle; }
    CommentDialog > Vertical { width: 68; max-width: 95%; height: auto; border: round $primary; background: $surface; padding: 1 2; }
    CommentDialog #comment-title { text-style: bold; }
    CommentDialog Input { margin-top: 1; }
    CommentDialog #comment-error { color: $error; text-style: bold; height: auto; }
    CommentDialog .muted { color: $text-muted; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.alarm_name = name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Comment on {escape(self.alarm_name)}", id="comment-title")
            yield Input(placeholder="what you saw or did", id="comment-text", max_length=COMMENT_MAX)
            yield Static("", id="comment-error")
            yield Static("Enter: add to the alarm's journal   Esc: cancel", classes="muted")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.query_one("#comment-error", Static).update("Type a comment (or Esc).")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
