"""The console shell against a real daemon: login (password, TOTP, lockout), palette,
help, and surviving a daemon restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyotp
import pytest
from textual.widgets import DataTable, Input

from scadad.api.client import Client
from scadad.api.errors import Unauthenticated
from tests.conftest import start_daemon
from tests.tui_support import screen_text, start_sim_daemon, wait_for, wait_text
from tui.app import ConsoleApp
from tui.link import LinkState, backoff_s
from tui.screens.help import HelpScreen
from tui.screens.login import LoginScreen
from tui.widgets.live_table import LiveTable

PASSWORD = "brisk-otter-lantern-47"
AUTH = "login_attempts_per_minute = 1000\nlockout_threshold = 3\n"


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    import random

    rng = random.Random(4)
    delays = [backoff_s(a, rng) for a in range(10)]
    assert 0.125 <= delays[0] <= 0.25
    assert 0.25 <= delays[1] <= 0.5
    assert all(2.5 <= d <= 5.0 for d in delays[6:])  # capped at 5 s, never below half
    assert len(set(delays)) == len(delays)  # jittered


async def _type(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    for ch in text:
        await pilot.press(ch)


def test_login_asks_for_totp_refuses_a_wrong_code_then_logs_in(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth=AUTH)
    try:
        with Client(d.socket) as c:  # the bootstrap: the daemon's own Unix user makes the first admin
            created = c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
        totp = pyotp.TOTP(created["mfa"]["secret"])

        async def drive() -> None:
            app = ConsoleApp(d.socket)
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), what="the login screen")
                assert app.whoami["kind"] == "anonymous"
                await _type(pilot, "chief")
                await pilot.press("enter")  # moves to the password
                await _type(pilot, PASSWORD)
                await pilot.press("enter")
                await wait_text(pilot, "This account needs a TOTP code.")
                wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
                await _type(pilot, wrong)
                await pilot.press("enter")
                await wait_text(pilot, "Wrong or already used code")
                assert isinstance(app.screen, LoginScreen)
                await _type(pilot, totp.now())
                await pilot.press("enter")
                await wait_for(pilot, lambda: not isinstance(app.screen, LoginScreen), what="the login to finish")
                await wait_text(pilot, "chief (admin)")
                assert app.whoami["username"] == "chief" and app.may("users.admin")
                token = app.link.token
                assert token and token == app.own_token
            # Quitting the console ends the session it opened.
            with Client(d.socket, token=token) as c, pytest.raises(Unauthenticated):
                c.call("Auth.WhoAmI")

        asyncio.run(drive())
    finally:
        assert d.stop() == 0


def test_login_names_a_wrong_password_and_the_lockout(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth="mfa_required_roles = []\n" + AUTH)
    try:
        with Client(d.socket) as c:
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})

        async def drive() -> None:
            app = ConsoleApp(d.socket)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), what="the login screen")
                await _type(pilot, "chief")
                await pilot.press("enter")
                for _ in range(3):
                    await _type(pilot, "not-the-password")
                    await pilot.press("enter")
                    await wait_text(pilot, "wrong username or password")
                    app.screen.query_one("#login-error").update("")
                await _type(pilot, PASSWORD)  # the right one, but the account is now locked
                await pilot.press("enter")
                await wait_text(pilot, "locked")
                assert isinstance(app.screen, LoginScreen)
                assert app.screen.query_one("#password", Input).value == ""  # cleared for the next try

        asyncio.run(drive())
    finally:
        assert d.stop() == 0


def test_palette_switches_screens_and_help_lists_the_keys(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h")
    try:

        async def drive() -> None:
            app = ConsoleApp(d.socket)
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_text(pilot, "● online")
                assert app.current_mode == "overview"
                await pilot.press("ctrl+p")
                await _type(pilot, "go to devices")
                await pilot.pause(0.3)
                await pilot.press("enter")
                await wait_for(pilot, lambda: app.current_mode == "devices", what="the devices screen")
                await wait_text(pilot, "· Devices")
                await pilot.press("2")
                await wait_for(pilot, lambda: app.current_mode == "tags", what="number key 2")
                await pilot.press("O")
                await wait_for(pilot, lambda: app.current_mode == "overview", what="mnemonic O")
                await pilot.press("question_mark")
                await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
                text = screen_text(app)
                assert "Help — Overview" in text and "Quit" in text and "Trends" in text
                rows = {
                    app.screen.query_one(DataTable).get_row_at(i)[1]
                    for i in range(app.screen.query_one(DataTable).row_count)
                }
                assert "Help" in rows and "Quit" in rows
                await pilot.press("escape")
                await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="help to close")
                theme = app.theme
                await pilot.press("ctrl+t")
                assert app.theme != theme and app.theme in ("scada-light", "scada-dark")

        asyncio.run(drive())
    finally:
        assert d.stop() == 0


def test_daemon_restart_under_the_console_greys_then_reconnects_and_values_move(tmp_path: Path) -> None:
    from tests.conftest import spawn, wait_ready

    d = start_sim_daemon(tmp_path / "h")
    try:

        async def drive() -> None:
            nonlocal d
            app = ConsoleApp(d.socket, start="tags")
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_text(pilot, "● online")
                table = app.screen.query_one("#tag-table", LiveTable)
                await wait_for(pilot, lambda: table.row_count > 10, what="tag rows")
                path = "sim/sdm630-0/power_total"
                before = _cell(table, path)
                await wait_for(pilot, lambda: _cell(table, path) != before, what=f"{path} to change")

                code = await asyncio.to_thread(d.stop)
                assert code == 0
                await wait_text(pilot, "connection lost")
                assert app.link_state is LinkState.LOST
                assert app.screen.has_class("-stale")
                stale = _cell(table, path)
                assert stale not in ("", "—")  # the last value is kept, greyed
                await pilot.pause(1.0)
                assert _cell(table, path) == stale

                proc = spawn(d.config, d.home)
                d.proc = proc
                await asyncio.to_thread(wait_ready, d.socket, proc)
                await wait_text(pilot, "● online", timeout=15)
                assert not app.screen.has_class("-stale")
                await wait_for(pilot, lambda: _cell(table, path) != stale, timeout=15, what="values to move again")
                later = _cell(table, path)
                await wait_for(pilot, lambda: _cell(table, path) != later, timeout=10, what="values to keep moving")
                assert "Traceback" not in screen_text(app)

        asyncio.run(drive())
    finally:
        assert d.stop() == 0


def _cell(table: LiveTable, path: str) -> str:
    try:
        value = table.get_cell(path, "value")
    except KeyError:  # not shown (yet)
        return ""
    return str(value)
