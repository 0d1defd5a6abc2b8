"""The help screen: generated from the bindings in force, so it cannot go out of date."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.screens import SCREENS


def binding_rows(bindings: dict[str, tuple[str, Binding]]) -> list[tuple[str, str, str]]:
    """(keys, action, where) rows; keys bound to one action are joined."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for key_display, (where, binding) in bindings.items():
        if not binding.description:
            continue
        grouped.setdefault((binding.description, where), []).append(key_display)
    return [(" ".join(keys), desc, where) for (desc, where), keys in grouped.items()]


class HelpScreen(ModalScreen[None]):
    """Keys of the screen it was opened from, then the console's own keys and screens."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90%; max-width: 100; height: 90%; border: round $primary; background: $surface; }
    HelpScreen DataTable { height: 1fr; }
    HelpScreen #help-title { padding: 0 1; text-style: bold; }
    """

    def __init__(self, screen_title: str, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.screen_title = screen_title
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Help — {self.screen_title}   (Esc closes; Ctrl+P finds any action)", id="help-title")
            yield DataTable(cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # Inside the box (90 % of the screen, at most 100, minus its border): three
        # columns with one cell of padding each side, and room for the scrollbar.
        inner = min(self.app.size.width * 9 // 10, 100) - 2
        table.add_column("Keys", width=12)
        table.add_column("Action", width=max(16, inner - 12 - 9 - 6 - 2))
        table.add_column("Where", width=9)
        for row in self.rows:
            table.add_row(*row)
        table.add_row("^p", "Command palette: every screen and action by name", "console")
        for entry in SCREENS:
            table.add_row(f"{entry.key} {entry.mnemonic}", f"{entry.title}: {entry.help}", "screens")
        table.focus()
