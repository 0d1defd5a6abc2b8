"""Ask for a value to write to a tag, typed as the tag's data type.

`parse_value` is the console's reading of what an operator typed (pure, unit-tested);
the daemon parses again and is the authority. The dialog only asks: the screen that
opened it confirms and calls `Tags.Write`.
"""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Static

Value = bool | int | float | str

TRUE_WORDS = frozenset({"1", "true", "on", "yes"})
FALSE_WORDS = frozenset({"0", "false", "off", "no"})

# Ranges of the unscaled integer types: a value outside cannot reach the register.
INT_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def parse_value(text: str, data_type: str, scaled: bool = False) -> Value:
    """What an operator typed, as a value of ``data_type``; ValueError says what is wrong.

    bool takes on/off, true/false, yes/no, 1/0; float types and scaled integer tags
    (whose engineering value has decimals) take any finite number; integer tags take
    whole numbers within the type's range; string tags take the text as typed.
    """
    if data_type == "string":
        return text
    t = text.strip()
    if not t:
        raise ValueError("type a value")
    if data_type == "bool":
        low = t.lower()
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
        raise ValueError(f"{t!r} is not on/off, true/false or 1/0")
    try:
        x = float(t)
    except ValueError:
        raise ValueError(f"{t!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{t!r} is not a finite number")
    if data_type in ("float32", "float64") or scaled:
        return x
    try:
        n = int(t)
    except ValueError:
        if x != math.floor(x):
            raise ValueError(f"{data_type} takes whole numbers, not {t}") from None
        n = int(x)
    lo, hi = INT_RANGES.get(data_type, (-(2**63), 2**63 - 1))
    if not lo <= n <= hi:
        raise ValueError(f"{n} is outside {data_type} ({lo} … {hi})")
    return n


def input_hint(data_type: str, scaled: bool = False) -> str:
    if data_type == "bool":
        return "on/off, 1/0, true/false"
    if data_type == "string":
        return "text"
    if data_type in ("float32", "float64") or scaled:
        return "a number"
    return "a whole number"


class WriteValueDialog(ModalScreen[Value | None]):
    """Dismisses with the parsed value (Enter), or None (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    WriteValueDialog { align: center middle; }
    WriteValueDialog > Vertical { width: 64; max-width: 95%; height: auto; border: round $primary; background: $surface; padding: 1 2; }
    WriteValueDialog #write-title { text-style: bold; }
    WriteValueDialog Input { margin-top: 1; }
    WriteValueDialog #write-error { color: $error; text-style: bold; height: auto; }
    WriteValueDialog #write-warning { color: $warning; height: auto; }
    WriteValueDialog .muted { color: $text-muted; }
    """

    def __init__(
        self, path: str, data_type: str, units: str, current: str, *, scaled: bool = False, warning: str = ""
    ) -> None:
        super().__init__()
        self.path = path
        self.data_type = data_type
        self.units = units
        self.current = current
        self.scaled = scaled
        self.warning = warning

    def compose(self) -> ComposeResult:
        kind = f"{self.data_type}{', scaled: engineering units' if self.scaled else ''}"
        with Vertical():
            yield Static(f"Write {escape(self.path)}", id="write-title")
            yield Static(f"now {escape(self.current)} {escape(self.units)}   ({kind})", classes="muted")
            yield Static(escape(self.warning), id="write-warning")
            yield Input(placeholder=f"new value: {input_hint(self.data_type, self.scaled)}", id="write-value")
            yield Static("", id="write-error")
            yield Static("Enter: next (you confirm before anything is written)   Esc: cancel", classes="muted")

    def on_mount(self) -> None:
        self.query_one("#write-warning", Static).display = bool(self.warning)
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = parse_value(event.value, self.data_type, self.scaled)
        except ValueError as exc:
            self.query_one("#write-error", Static).update(escape(str(exc)))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
