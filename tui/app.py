"""The console shell: header, footer, palette, help, screen switching, login, themes.

Each top-level screen is a Textual *mode* with its own stack (a tag detail opened from
the tag browser stays there when the operator flips to Devices and back). The screens
come from `tui.screens.SCREENS`; this module knows none of them by name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.theme import Theme

from scadad.api.errors import PermissionDenied, ResourceExhausted, ScadaError, Unavailable
from tui import format as fmt
from tui.alarm_data import rings_bell
from tui.link import Link, LinkState, Subscription
from tui.screens import SCREENS
from tui.screens.help import HelpScreen, binding_rows
from tui.screens.login import LoginScreen
from tui.widgets.header import AlarmSummary, HeaderState, StatusHeader

Clock = Callable[[], float]

# How long quitting or logging out waits for a hung daemon to end the session.
LOGOUT_TIMEOUT_S = 2.0
# A new critical alarm flashes the header's alarm figures: on and off, this many halves.
FLASH_STEPS = 6
FLASH_STEP_S = 0.5
# After the daemon dropped the alarm stream (a flood the console fell behind on).
ALARM_REOPEN_S = 1.0

# ISA-101 greys: a calm grey plant, so that red and amber mean "look here".
THEMES = [
    Theme(
        name="scada-dark",
        primary="#8c96a8",
        secondary="#6f7a8c",
        accent="#7e98c0",
        foreground="#c9ccd1",
        background="#1d1f23",
        surface="#25282d",
        panel="#30343a",
        success="#7d9c7d",
        warning="#e0a81c",
        error="#e5483d",
        dark=True,
    ),
    Theme(
        name="scada-light",
        primary="#5b6472",
        secondary="#6d7480",
        accent="#3d5f8f",
        foreground="#1c1d1f",
        background="#d4d5d7",
        surface="#e2e3e5",
        panel="#c3c5c9",
        success="#4c6e4c",
        warning="#a86d00",
        error="#c0241a",
        dark=False,
    ),
]


class ConsoleApp(App[None]):
    """The operator console. ``clock`` is injectable so snapshot tests get fixed times;
    ``bell`` False keeps the terminal bell silent on new critical alarms (the header's
    alarm figures still flash)."""

    TITLE = "SCADA console"
    CSS_PATH = Path(__file__).with_name("console.tcss")  # absolute: subclasses elsewhere find it too
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        *(Binding(e.key, f"show('{e.name}')", e.title, show=False) for e in SCREENS),
        *(Binding(e.mnemonic, f"show('{e.name}')", e.title, show=False) for e in SCREENS),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+l", "login", "Log in", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("q", "quit", "Quit"),
    ]
    MODES = {e.name: e.factory for e in SCREENS}

    link_state: reactive[LinkState] = reactive(LinkState.CONNECTING)
    # Bumped after each login or logout, so screens reload what the new user may see.
    session_epoch: reactive[int] = reactive(0)

    def __init__(
        self,
        socket_path: Path | str | None = None,
        token: str | None = None,
        *,
        clock: Clock = time.time,
        theme: str = "scada-dark",
        login: bool = False,
        start: str = "overview",
        bell: bool = True,
    ) -> None:
        super().__init__()
        self.link = Link(socket_path, token)
        self.clock = clock
        self.initial_theme = theme
        self.force_login = login
        self.start_mode = start
        self.site = ""
        self.tz: tzinfo = fmt.zone(None)
        self.whoami: dict[str, Any] = {}
        self.own_token: str | None = None  # a session this console opened (and closes at exit)
        self._login_open = False
        self.header_state = HeaderState()
        self.bell_on_critical = bell
        self.alarm_sub: Subscription | None = None
        self._flash_steps = 0

    # ------------------------------------------------------------------ lifecycle

    def refresh_header(self) -> None:
        if not self._screen_stack:
            return  # shutting down
        for header in self.screen.query(StatusHeader):
            header.refresh()

    async def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self.initial_theme
        self.link.on_state = self._on_link_state
        self.link.on_connect = self._on_connect
        await self.switch_mode(self.start_mode)
        self._tick()
        self.set_interval(1.0, self._tick)
        # The header's alarm figures: one stream for the console's life, restarted by the
        # link after every reconnect and login (refused without alarms.read: "—").
        self.alarm_sub = self.link.subscribe(
            "Alarms.Watch", {"initial": True}, self._on_alarm_event, on_error=self._on_alarm_error
        )
        self.link.start()

    async def on_unmount(self) -> None:
        self.link.on_state = lambda state: None
        self.link.on_connect = lambda: None  # a reconnect during the exit changes nothing on screen
        if self.own_token and self.link.state is LinkState.ONLINE:
            await self._logout_own()
        await self.link.stop()

    def _tick(self) -> None:
        t = datetime.fromtimestamp(self.clock(), self.tz)
        self.header_state.clock_text = fmt.local_time(t, self.tz, with_date=self.size.width >= 100)
        self.refresh_header()

    def _on_link_state(self, state: LinkState) -> None:
        if state is LinkState.ONLINE:
            return  # announced by _on_connect, once the site, zone and identity are known
        if state is LinkState.LOST:
            self.header_state.alarms = None  # not known while away; the stream re-bases it
        self._announce(state)
        if state is LinkState.LOST:
            self.notify("Connection to scadad lost; retrying.", title="Connection lost", severity="error", timeout=4)

    def _announce(self, state: LinkState) -> None:
        self.link_state = state
        self.header_state.link = state.value
        self.refresh_header()
        self.set_class(state is not LinkState.ONLINE, "-lost")

    async def _on_connect(self) -> None:
        try:
            await self._refresh_identity()
        finally:
            if self.link.state is LinkState.ONLINE:
                self._announce(LinkState.ONLINE)
        if self.link.connects > 1:
            self.notify("Reconnected to scadad.", title="Connection", timeout=3)
        needs_login = self.whoami.get("kind") == "anonymous" and not self.link.token
        if (needs_login or (self.force_login and not self.own_token)) and not self._login_open:
            self.action_login()

    async def _refresh_identity(self) -> None:
        try:
            status = await self.link.call("System.Status")
        except Unavailable:
            raise  # the link went down meanwhile: asked again once it is back
        except ScadaError:
            status = {}  # not logged in yet (asked again after the login), or no system.read
        if status:
            self.site = status.get("site", "")
            self.tz = fmt.zone(status.get("timezone"))
            self.header_state.site = self.site
        try:
            self.whoami = await self.link.call("Auth.WhoAmI")
        except Unavailable:
            raise  # not "anonymous": that would ask for a login the user does not need
        except ScadaError as exc:
            self.whoami = {"kind": "anonymous", "roles": [], "permissions": [], "error": exc.message}
        who = self.whoami
        name = who.get("username") or who.get("unix_user") or "anonymous"
        roles = ",".join(who.get("roles") or []) or "no role"
        self.header_state.user = f"{name} ({roles})"
        self.refresh_header()

    # ------------------------------------------------------------------ alarms

    def _on_alarm_event(self, event: dict[str, Any]) -> None:
        """Alarms.Watch: the header's counts; a new critical alarm rings and flashes."""
        self.header_state.alarms = AlarmSummary.from_counts(event.get("counts") or {})
        if rings_bell(event):
            self.alert_critical()
        self.refresh_header()

    def _on_alarm_error(self, exc: ScadaError) -> None:
        self.header_state.alarms = None
        self.refresh_header()
        if isinstance(exc, ResourceExhausted):
            self.set_timer(ALARM_REOPEN_S, self._reopen_alarms)

    def _reopen_alarms(self) -> None:
        if self.alarm_sub is not None:
            self.link.restart(self.alarm_sub)

    def alert_critical(self) -> None:
        """A new critical alarm: the terminal bell (unless silenced) and a flash of the
        header's alarm figures, wherever the operator is."""
        if self.bell_on_critical:
            self.bell()
        starting = self._flash_steps == 0
        self._flash_steps = FLASH_STEPS
        self.header_state.alarm_flash = True
        if starting:
            self.set_timer(FLASH_STEP_S, self._flash_step)

    def _flash_step(self) -> None:
        self._flash_steps -= 1
        self.header_state.alarm_flash = self._flash_steps > 0 and self._flash_steps % 2 == 0
        self.refresh_header()
        if self._flash_steps > 0:
            self.set_timer(FLASH_STEP_S, self._flash_step)

    def may(self, permission: str) -> bool:
        """Whether the current identity holds ``permission`` (the daemon decides anyway)."""
        perms = self.whoami.get("permissions") or []
        return permission in perms or "*" in perms

    def report_error(self, exc: BaseException, unconfirmed: str | None = None) -> None:
        """Show a failed call to the operator; never a traceback.

        A lost link is left to the header, except for an action the operator asked for
        (``unconfirmed`` says which): they must hear it is not known to have happened.
        """
        if isinstance(exc, Unavailable):
            if unconfirmed:
                self.notify(
                    f"{unconfirmed} is not confirmed ({exc.message}). Check it once the console is back online.",
                    title="Not confirmed",
                    severity="error",
                    timeout=10,
                    markup=False,
                )
            return
        text = exc.message if isinstance(exc, ScadaError) else f"{type(exc).__name__}: {exc}"
        title = "Permission denied" if isinstance(exc, PermissionDenied) else "Error"
        self.notify(text, title=title, severity="error", timeout=6)

    # ------------------------------------------------------------------ actions

    async def action_show(self, name: str) -> None:
        if name != self.current_mode:
            await self.switch_mode(name)

    def action_help(self) -> None:
        screen = self.screen
        title = getattr(screen, "TITLE", "") or type(screen).__name__
        found: dict[str, tuple[str, Binding]] = {}
        # The screen's keys first, then the console's; Textual's own scrolling and focus
        # keys are left out (they work everywhere and would bury the ones that matter).
        active = screen.active_bindings.values()
        ours = [a for a in active if a.node is not self and _is_ours(a.node, a.binding)]
        ours.sort(key=lambda a: not a.binding.show)  # the screen's actions before its navigation keys
        # Screen switching is listed with each screen's purpose by the help screen itself.
        mine = [
            a
            for a in active
            if a.node is self and _is_ours(a.node, a.binding) and not a.binding.action.startswith("show(")
        ]
        for active in ours + mine:
            where = "console" if active.node is self else title
            key = self.get_key_display(active.binding) or active.binding.key
            found.setdefault(key, (where, active.binding))
        titles = {e.name: e.title for e in SCREENS}
        self.push_screen(HelpScreen(titles.get(self.current_mode, "console"), binding_rows(found)))

    def action_toggle_theme(self) -> None:
        self.theme = "scada-light" if self.theme == "scada-dark" else "scada-dark"

    def action_login(self) -> None:
        if self._login_open:
            return
        self._login_open = True
        # Offer the name of a logged-in user; not an identity such as "local:root".
        username = (self.whoami.get("username") or "") if self.whoami.get("kind") == "session" else ""
        self.push_screen(LoginScreen(self.site, username), self._logged_in)

    async def _logged_in(self, result: dict[str, Any] | None) -> None:
        self._login_open = False
        if not result:
            return
        if self.own_token:
            # End the session this one replaces: sent with the old token, so before the switch.
            await self._logout_own()
        self.link.token = self.own_token = result["token"]
        await self._identity_changed()
        self.session_epoch += 1
        self.notify(f"Logged in as {result['username']}.", timeout=3)

    async def action_logout(self) -> None:
        if self.own_token:
            await self._logout_own()
        self.link.token = self.own_token = None
        await self._identity_changed()
        self.session_epoch += 1
        self.action_login()

    async def _logout_own(self) -> None:
        """End this console's own session; bounded, as the daemon may hang or be gone."""
        try:
            await asyncio.wait_for(self.link.call("Auth.Logout"), LOGOUT_TIMEOUT_S)
        except (ScadaError, TimeoutError):
            pass  # gone or hung: the session expires on the daemon by itself

    async def _identity_changed(self) -> None:
        """After a login or logout: who we are now, and every stream under the new token."""
        try:
            await self._refresh_identity()
        except ScadaError as exc:  # the link is down: _on_connect asks again after reconnecting
            self.report_error(exc)
        self.link.resubscribe_all()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for e in SCREENS:
            yield SystemCommand(
                f"Go to {e.title}", f"[{e.key}/{e.mnemonic}] {e.help}", lambda n=e.name: self.run_action(f"show('{n}')")
            )
        yield SystemCommand("Help", "[?] keys of this screen and of the console", self.action_help)
        yield SystemCommand("Log in", "[Ctrl+L] log in as another user", self.action_login)
        yield SystemCommand("Log out", "end this console's session and log in again", self.action_logout)
        yield SystemCommand("Toggle light/dark theme", "[Ctrl+T] for bright control rooms", self.action_toggle_theme)
        yield SystemCommand("Quit", "[q] leave the console (the plant keeps running)", self.action_quit)


def _is_ours(node: object, binding: Binding) -> bool:
    """A binding the console declares (on its app, screens or widgets), not one a Textual
    base class brings along (scrolling, focus, copy)."""
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("tui."):
            continue
        for b in cls.__dict__.get("BINDINGS", []):
            keys, action = (b.key, b.action) if isinstance(b, Binding) else (b[0], b[1])
            if action == binding.action and binding.key in keys.split(","):
                return True
    return False
