"""Snapshots of every console screen at 80x24 and 160x48 (pytest-textual-snapshot).

The daemon runs the simulated plant with a fixed seed and a fixed clock, so every value,
timestamp, age and response time it hands out is the same on every run; the console's
own clock is fixed to the same instant, and it acts as a logged-in user "chief" (not
the Unix user running the tests, which differs between machines). Five alarm rules on
simulated values that stand still under the fixed clock (`SNAP_ALARMS`) keep five
alarms active and unacknowledged for every screen's header; the one case that
acknowledges one puts them back afterwards. A changed screen fails here and the report
(`snapshot_report.html`) shows the difference; `pytest --snapshot-update` accepts it
after a person has looked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from scadad.api.client import Client
from tests.conftest import RunningDaemon, start_daemon
from tests.tui_support import SIM
from tui.app import ConsoleApp
from tui.screens.alarms import AlarmTable
from tui.screens.base import ConsoleScreen

PASSWORD = "brisk-otter-lantern-47"
FIXED = "2026-06-01T12:00:00+00:00"
FIXED_S = datetime.fromisoformat(FIXED).timestamp()
SIZES = [(80, 24), (160, 48)]
# Alarms that stand while the plant's values do (the fixed clock): one of each priority,
# two high. Imported with update, so a demo rule of the simulated plant on the same
# tag and kind cannot make them differ.
SNAP_ALARMS = [
    {"tag": "sim/em24-2/current_l3", "kind": "hi", "limit": 140.0, "priority": "critical",
     "message": "Feeder 2 overcurrent L3: {value} {units} > {limit} {units}"},
    {"tag": "sim/pm5xxx-1/current_l1", "kind": "hi", "limit": 150.0, "priority": "high"},
    {"tag": "sim/em24-2/voltage_l3", "kind": "lo", "limit": 228.5, "priority": "high"},
    {"tag": "sim/inverter-4/dc_voltage", "kind": "hi", "limit": 560.0, "priority": "medium"},
    {"tag": "sim/dg-3/engine_hours", "kind": "hi", "limit": 500.0, "priority": "low",
     "message": "Generator service due: {value} {units} run"},
]  # fmt: skip
SNAP_ALARM_NAMES = [f"{a['tag']}:{a['kind']}" for a in SNAP_ALARMS]


@dataclass
class Frozen:
    daemon: RunningDaemon
    token: str  # a session of user "chief": the header shows the same user whoever runs the tests

    @property
    def socket(self) -> Path:
        return self.daemon.socket


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frozen]:
    home = tmp_path_factory.mktemp("snap") / "home"
    d = start_daemon(home, SIM + f'fixed_clock = "{FIXED}"\n', auth="mfa_required_roles = []\n")
    try:
        with Client(d.socket) as c:  # the bootstrap rule: the daemon's own Unix user makes the first admin
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
            c.token = token = c.call("Auth.Login", {"username": "chief", "password": PASSWORD})["token"]
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                devices = c.call("Devices.Status")["devices"]
                if devices and all(x["state"] == "online" and not x["tags_bad"] for x in devices):
                    break
                time.sleep(0.1)
            # And the historian holds every tag's first value: the overview's energy and
            # the trends read it, and must not race its commit.
            paths = [t["spec"]["path"] for t in c.call("Tags.List", {"pattern": "sim/**"})["tags"]]
            while time.monotonic() < deadline:
                latest = [c.call("History.Query", {"path": p, "latest": True})["samples"] for p in paths]
                if all(latest):
                    break
                time.sleep(0.1)
            c.call("AlarmRules.Import", {"rules": SNAP_ALARMS, "update": True})
        f = Frozen(d, token)
        rearm(f)
        yield f
    finally:
        assert d.stop() == 0


def rearm(f: Frozen) -> None:
    """Every snapshot alarm active and unacknowledged again (a rule disabled returns to
    normal; enabled, it activates anew on the standing value, at the fixed instant)."""
    with Client(f.socket) as c:
        c.token = f.token
        for name in SNAP_ALARM_NAMES:
            c.call("AlarmRules.Update", {"alarm": name, "enabled": False})
            c.call("AlarmRules.Update", {"alarm": name, "enabled": True})
        deadline = time.monotonic() + 10
        while True:
            states = {a["name"]: a["state"] for a in c.call("Alarms.List", {"all": True})["alarms"]}
            if all(states.get(n) == "unack_active" for n in SNAP_ALARM_NAMES):
                return
            assert time.monotonic() < deadline, f"snapshot alarms not re-armed: {states}"
            time.sleep(0.05)


def console(f: Frozen, start: str, theme: str = "scada-dark") -> ConsoleApp:
    return ConsoleApp(f.socket, f.token, clock=lambda: FIXED_S, start=start, theme=theme)


async def settled(pilot: Pilot, *keys: str) -> None:
    """Wait until the screen has loaded, press ``keys``, then let coalesced updates land."""
    app = pilot.app
    for _ in range(200):
        screen = app.screen
        if isinstance(screen, ConsoleScreen) and screen.loaded and "online" in app.header_state.link:
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError(f"{type(app.screen).__name__} never finished loading")
    await pilot.pause(0.8)
    for key in keys:
        await pilot.press(key)
        await pilot.pause(0.4)
    # A blinking text cursor is the one thing a fixed clock does not stop.
    for box in app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause(0.8)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", ["overview", "tags", "trends", "devices", "energy"])
def test_screen(snap_compare, frozen: Frozen, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def ready(pilot: Pilot) -> None:
        # The overview's events name the Unix user who made the first admin (the
        # bootstrap), which differs between machines: clear them (key c) first.
        await settled(pilot, *(["c"] if screen == "overview" else []))

    assert snap_compare(console(frozen, screen), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_alarms(snap_compare, frozen: Frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Unacknowledged alarms: critical first in reverse video (the cursor moved off it)."""
    rearm(frozen)
    assert snap_compare(console(frozen, "alarms"), terminal_size=size, run_before=lambda p: settled(p, "down"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_alarms_after_ack(snap_compare, frozen: Frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The critical alarm acknowledged with a: a plain row among the loud ones, one fewer in the header."""
    rearm(frozen)

    async def acknowledge(pilot: Pilot) -> None:
        await settled(pilot)
        await pilot.press("a")
        table = pilot.app.screen.query_one(AlarmTable)
        critical = SNAP_ALARM_NAMES[0]
        for _ in range(100):
            if getattr(table.get_cell(critical, "state"), "plain", "") == "ACK" and pilot.app.header_state.alarms:
                if pilot.app.header_state.alarms.unacked == len(SNAP_ALARMS) - 1:
                    break
            await pilot.pause(0.05)
        await settled(pilot, "down")

    try:
        assert snap_compare(console(frozen, "alarms"), terminal_size=size, run_before=acknowledge)
    finally:
        rearm(frozen)  # the other cases see every alarm unacknowledged, in any order


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tag_detail(snap_compare, frozen: Frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def open_detail(pilot: Pilot) -> None:
        await settled(pilot, "enter")

    assert snap_compare(console(frozen, "tags"), terminal_size=size, run_before=open_detail)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, frozen: Frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def open_help(pilot: Pilot) -> None:
        await settled(pilot, "question_mark")

    assert snap_compare(console(frozen, "overview"), terminal_size=size, run_before=open_help)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_login(snap_compare, frozen: Frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def open_login(pilot: Pilot) -> None:
        await settled(pilot, "ctrl+l")

    assert snap_compare(console(frozen, "overview"), terminal_size=size, run_before=open_login)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_light_theme(snap_compare, frozen: Frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(console(frozen, "tags", "scada-light"), terminal_size=size, run_before=settled)


def test_snapshot_files_exist_for_every_case() -> None:
    """A missing snapshot file would make its case pass on first run: keep them in git."""
    folder = Path(__file__).parent / "__snapshots__" / "test_tui_snapshots"
    names = {p.stem for p in folder.glob("*.svg")} if folder.exists() else set()
    screens = ("overview", "tags", "trends", "devices", "energy")
    expected = {f"test_screen[{s}-{w}x{h}]" for s in screens for w, h in SIZES}
    cases = ("tag_detail", "help", "login", "light_theme", "alarms", "alarms_after_ack")
    expected |= {f"test_{n}[{w}x{h}]" for n in cases for w, h in SIZES}
    assert expected <= names, f"missing snapshots: {sorted(expected - names)}"
