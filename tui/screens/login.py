"""Log in: username, password, and a TOTP code when the account needs one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from scadad.api.errors import ScadaError

if TYPE_CHECKING:
    from tui.app import ConsoleApp


class LoginScreen(ModalScreen[dict[str, Any] | None]):
    """Dismisses with the `Auth.Login` result, or None when cancelled (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen > Vertical { width: 52; max-width: 95%; height: auto; border: round $primary; background: $surface; padding: 1 2; }
    LoginScreen Label { margin-top: 1; }
    LoginScreen #login-title { text-style: bold; }
    LoginScreen #login-error { color: $error; text-style: bold; margin-top: 1; height: auto; }
    LoginScreen #totp-label, LoginScreen #totp { display: none; }
    LoginScreen.-totp #totp-label, LoginScreen.-totp #totp { display: block; }
    LoginScreen Button { margin-top: 1; width: 100%; }
    """

    def __init__(self, site: str = "", username: str = "") -> None:
        super().__init__()
        self.site = site
        self.username = username

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Log in to {self.site or 'scadad'}", id="login-title")
            yield Label("Username")
            yield Input(value=self.username, id="username", placeholder="user name")
            yield Label("Password")
            yield Input(password=True, id="password", placeholder="password")
            yield Label("TOTP code (or a recovery code)", id="totp-label")
            yield Input(id="totp", placeholder="6 digits")
            yield Static("", id="login-error")
            yield Button("Log in", id="login", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#password" if self.username else "#username", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        order = ["username", "password"] + (["totp"] if self.has_class("-totp") else [])
        current = event.input.id or ""
        if current in order and current != order[-1] and not self.query_one(f"#{order[-1]}", Input).value:
            self.query_one(f"#{order[order.index(current) + 1]}", Input).focus()
            return
        self.run_worker(self._login(), exclusive=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.run_worker(self._login(), exclusive=True)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _error(self, text: str) -> None:
        self.query_one("#login-error", Static).update(text)

    async def _login(self) -> None:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        totp = self.query_one("#totp", Input).value.strip() or None
        if not username:
            self._error("Type a username.")
            self.query_one("#username", Input).focus()
            return
        if not password:
            self._error("Type the password.")
            self.query_one("#password", Input).focus()
            return
        params: dict[str, Any] = {"username": username, "password": password}
        if totp:
            params["totp"] = totp
        self._error("")
        try:
            result = await app.link.call("Auth.Login", params)
        except ScadaError as exc:
            self._show_refusal(exc, bool(totp))
            return
        self.dismiss(result)

    def _show_refusal(self, exc: ScadaError, sent_totp: bool) -> None:
        details = exc.details or {}
        if details.get("mfa_required"):
            self.add_class("-totp")
            box = self.query_one("#totp", Input)
            box.value = ""
            box.focus()
            self._error(
                "Wrong or already used code; type the current one." if sent_totp else "This account needs a TOTP code."
            )
            return
        pw = self.query_one("#password", Input)
        pw.value = ""
        pw.focus()
        self._error(exc.message)
