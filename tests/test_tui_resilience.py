"""The console's link and shell against daemons that go away, hang, or are not there yet:
nothing may leave a traceback, a dead reconnect loop, or a session of the wrong user."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scadad.api.client import Client, DaemonUnreachable
from scadad.api.errors import PermissionDenied, Unauthenticated, Unavailable
from tests.conftest import RunningDaemon, start_daemon
from tests.tui_support import start_sim_daemon, wait_for, wait_text
from tui.app import ConsoleApp
from tui.link import Link, LinkState
from tui.screens.devices import DevicesScreen
from tui.screens.login import LoginScreen
from tui.screens.tag_detail import write_tag
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.write_dialog import WriteValueDialog

PASSWORD = "brisk-otter-lantern-47"
AUTH = "mfa_required_roles = []\nlogin_attempts_per_minute = 1000\n"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    d = start_sim_daemon(tmp_path_factory.mktemp("sim") / "h")
    yield d
    assert d.stop() == 0


def errors(app: ConsoleApp, text: str) -> bool:
    return any(n.severity == "error" and text in n.message for n in app._notifications)


async def _until(cond, timeout: float = 10.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


def test_link_keeps_running_when_on_connect_raises(sim: RunningDaemon) -> None:
    async def drive() -> None:
        link = Link(sim.socket)

        def broken() -> None:
            raise RuntimeError("a bug in the console's on_connect")

        link.on_connect = broken
        link.start()
        try:
            await _until(lambda: link.state is LinkState.ONLINE, what="online")
            await asyncio.sleep(0.1)
            runner = link._runner
            assert runner is not None and not runner.done(), "the reconnect loop died with on_connect"
            assert (await link.call("System.Ping")) is not None
        finally:
            await link.stop()

    asyncio.run(drive())


def test_a_stream_handler_that_raises_does_not_end_the_stream(sim: RunningDaemon) -> None:
    async def drive() -> None:
        link = Link(sim.socket)
        link.start()
        batches: list[dict] = []

        def handler(event: dict) -> None:
            batches.append(event)
            if len(batches) == 1:
                raise RuntimeError("a bug in a screen's handler")

        try:
            await _until(lambda: link.state is LinkState.ONLINE, what="online")
            sub = link.subscribe(
                "Tags.Watch", {"patterns": ["sim/**"], "initial": True, "min_interval_ms": 100}, handler
            )
            await _until(lambda: len(batches) >= 3, what="batches after the failing one")
            assert sub.task is not None and not sub.task.done()
        finally:
            await link.stop()

    asyncio.run(drive())


def test_daemon_absent_at_start_then_logout_then_daemon_appears(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    d: RunningDaemon | None = None

    async def drive() -> None:
        nonlocal d
        app = ConsoleApp(home / "scadad.sock", start="devices")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_text(pilot, "connecting")
            await pilot.pause(0.5)
            assert app.link.state is LinkState.CONNECTING
            # What the operator asks for while the link is down is answered, not dropped.
            devices = app.screen
            assert isinstance(devices, DevicesScreen)
            devices._update_device("em24-2", False)
            await wait_for(pilot, lambda: errors(app, "em24-2: disabled is not confirmed"), what="the update's fate")
            spec = {"path": "sim/pump-plc-5/speed_setpoint", "writable": True, "data_type": "float32", "units": "%"}
            app.run_worker(write_tag(devices, spec, None))
            await wait_for(pilot, lambda: isinstance(app.screen, WriteValueDialog), what="the value prompt")
            await pilot.press("5", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
            await pilot.press("y")
            await wait_for(pilot, lambda: errors(app, "the write is not confirmed"), what="the write's fate")
            # Log out (palette) while there is no daemon: no traceback, the console stays.
            await app.run_action("logout")
            await pilot.pause(0.2)
            assert app.is_running and app._exception is None
            if isinstance(app.screen, LoginScreen):
                await pilot.press("escape")
            d = await asyncio.to_thread(start_daemon, home)
            await wait_text(pilot, "● online", timeout=15)
            await wait_for(pilot, lambda: app.screen.loaded, what="the devices screen to load")

    try:
        asyncio.run(drive())
    finally:
        if d is not None:
            assert d.stop() == 0


def test_relogin_keeps_the_new_session_and_quit_with_a_hung_daemon_ends(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth=AUTH)
    try:
        with Client(d.socket) as c:
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})

        def login() -> str:
            with Client(d.socket) as c:
                return c.call("Auth.Login", {"username": "chief", "password": PASSWORD})["token"]

        async def drive() -> float:
            app = ConsoleApp(d.socket)
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), what="the login screen")
                await pilot.press("escape")
                first = login()
                await app._logged_in({"token": first, "username": "chief"})
                assert app.whoami.get("username") == "chief"
                second = login()  # Ctrl+L, logged in again (as the same or another user)
                await app._logged_in({"token": second, "username": "chief"})
                assert app.link.token == second
                assert app.whoami.get("username") == "chief", app.whoami
                with Client(d.socket, token=second) as c:
                    assert c.call("Auth.WhoAmI")["username"] == "chief"  # the new session works
                with Client(d.socket, token=first) as c, pytest.raises(Unauthenticated):
                    c.call("Auth.WhoAmI")  # the one it replaced is ended
                os.kill(d.proc.pid, signal.SIGSTOP)  # the daemon hangs: Auth.Logout gets no answer
                t0 = time.monotonic()
            return time.monotonic() - t0

        try:
            took = asyncio.run(asyncio.wait_for(drive(), 20))
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        assert took < 8, f"quitting took {took:.1f} s"
    finally:
        assert d.stop() == 0


def test_stop_ends_every_stream_task(sim: RunningDaemon) -> None:
    async def drive() -> None:
        link = Link(sim.socket)
        link.start()
        await _until(lambda: link.state is LinkState.ONLINE, what="online")
        subs = [
            link.subscribe("Tags.Watch", {"patterns": ["sim/**"], "initial": True}, lambda e: None) for _ in range(6)
        ]
        await asyncio.sleep(0.3)
        tasks = [s.task for s in subs]
        await link.stop()
        await asyncio.sleep(0.2)
        assert all(t is not None and t.done() for t in tasks), "stream tasks left waiting after stop()"
        assert not link.subscriptions

    asyncio.run(drive())


def test_identity_is_not_anonymous_when_the_link_drops_or_status_is_not_allowed() -> None:
    """`_refresh_identity` (on every connect, login, logout) with a fake link: a link that
    drops between its two calls must not turn the user anonymous (and so ask for a login);
    a user without system.read still learns who they are."""
    app = ConsoleApp("/nonexistent.sock")
    me = {"kind": "session", "username": "chief", "roles": ["admin"], "permissions": ["*"]}
    app.whoami = dict(me)
    answers: dict[str, object] = {}

    async def call(method: str, params: object = None, result_type: object = None) -> object:
        answer = answers[method]
        if isinstance(answer, Exception):
            raise answer
        return answer

    app.link.call = call  # type: ignore[method-assign]
    answers["System.Status"] = {"site": "plant", "timezone": "UTC"}
    answers["Auth.WhoAmI"] = DaemonUnreachable("scadad closed the connection")
    with pytest.raises(Unavailable):
        asyncio.run(app._refresh_identity())
    assert app.whoami == me

    answers["System.Status"] = PermissionDenied("System.Status needs permission 'system.read'")
    answers["Auth.WhoAmI"] = {**me, "username": "operator"}
    asyncio.run(app._refresh_identity())
    assert app.whoami["username"] == "operator"
