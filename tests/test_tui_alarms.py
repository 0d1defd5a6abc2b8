"""The console's Alarms screen and the header's alarm figures against a real scadad:
alarms on memory tags, acknowledged, shelved, commented and looked up by operators with
and without the permissions; the bell on a new critical alarm; and the pure rules
behind them (order, look, durations, when to ring, the header's wording)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from scadad.api.client import Client
from tests.conftest import RunningDaemon, start_daemon
from tests.tui_support import run, screen_text, wait_for, wait_text
from tui import alarm_data as ad
from tui.app import ConsoleApp
from tui.screens.alarm_history import AlarmHistoryScreen
from tui.screens.alarms import AlarmsScreen, AlarmTable, column_plan, cursor_after_removal
from tui.widgets.comment_dialog import CommentDialog
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.header import AlarmSummary, HeaderState, alarm_text, header_text
from tui.widgets.shelve_dialog import ShelveDialog

PASSWORD = "brisk-otter-lantern-47"
SIZE = (120, 36)


@dataclass
class Plant:
    """One daemon with real users: an operator who acts, a viewer who may only look."""

    daemon: RunningDaemon
    admin: str  # tokens
    operator: str
    viewer: str

    def client(self, token: str | None = None) -> Client:
        c = Client(self.daemon.socket)
        c.token = token or self.admin
        return c

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        with self.client() as c:
            return c.call(method, params or {})

    def alarm(self, name: str) -> dict[str, Any]:
        alarms = self.call("Alarms.List", {"all": True, "include_normal": True})["alarms"]
        return next(a for a in alarms if a["name"] == name)

    def make(self, tag: str, priority: str, units: str = "bar") -> str:
        """A memory tag with a "hi" alarm at 50 of ``priority``; returns the alarm's name."""
        self.call("Tags.Create", {"path": tag, "source": "memory", "data_type": "float64", "writable": True,
                                  "units": units})  # fmt: skip
        self.call("AlarmRules.Create", {"tag": tag, "kind": "hi", "limit": 50, "priority": priority})
        return f"{tag}:hi"

    def write(self, tag: str, value: float) -> None:
        self.call("Tags.Write", {"path": tag, "value": value})


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    d = start_daemon(tmp_path_factory.mktemp("alarms") / "home", auth="mfa_required_roles = []\n")
    try:
        with Client(d.socket) as c:  # the bootstrap rule: the daemon's own Unix user makes the first admin
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
            c.token = admin = c.call("Auth.Login", {"username": "chief", "password": PASSWORD})["token"]
            c.call("Users.Create", {"username": "olga", "password": PASSWORD, "roles": ["operator"]})
            c.call("Users.Create", {"username": "watcher", "password": PASSWORD, "roles": ["viewer"]})
            tokens = [c.call("Auth.Login", {"username": u, "password": PASSWORD})["token"] for u in ("olga", "watcher")]
        yield Plant(d, admin, *tokens)
    finally:
        code = d.stop()
    assert code == 0, d.log_text()


def table_of(app: ConsoleApp) -> AlarmTable:
    return app.screen.query_one(AlarmTable)


def cell(app: ConsoleApp, name: str, column: str) -> str:
    try:
        value = table_of(app).get_cell(name, column)
    except KeyError:  # not listed (yet)
        return ""
    return getattr(value, "plain", str(value))


def listed(app: ConsoleApp) -> tuple[str, ...]:
    screen = app.screen
    return table_of(app).keys if isinstance(screen, AlarmsScreen) else ()


def notified(app: ConsoleApp, text: str) -> bool:
    return any(text in n.message or text in (n.title or "") for n in app._notifications)


async def open_alarms(app: ConsoleApp, pilot: Pilot, *names: str) -> AlarmTable:
    await wait_for(pilot, lambda: isinstance(app.screen, AlarmsScreen) and app.screen.loaded, what="the alarm list")
    await wait_for(pilot, lambda: all(n in listed(app) for n in names), what=f"rows {names}")
    return table_of(app)


async def put_cursor(pilot: Pilot, app: ConsoleApp, name: str) -> None:
    table = table_of(app)
    table.focus()
    assert table.move_cursor(name), f"{name} is not listed"
    await pilot.pause()


def keys(text: str) -> list[str]:
    return ["space" if ch == " " else ch for ch in text]


# ---------------------------------------------------------------------- against the daemon


def test_list_ack_one_then_ack_all_listed(plant: Plant) -> None:
    crit = plant.make("ackt/boiler/pressure", "critical")
    high1 = plant.make("ackt/pump/pressure", "high")
    high2 = plant.make("ackt/tank/pressure", "high")
    for tag in ("ackt/boiler/pressure", "ackt/pump/pressure", "ackt/tank/pressure"):
        plant.write(tag, 75.0)

    async def go() -> None:
        app = ConsoleApp(plant.daemon.socket, plant.operator, start="alarms")
        async with app.run_test(size=SIZE) as pilot:
            table = await open_alarms(app, pilot, crit, high1, high2)
            ours = [k for k in table.keys if k.startswith("ackt/")]
            assert ours[0] == crit, "critical first"
            assert {cell(app, n, "state") for n in ours} == {"UNACK"}
            assert cell(app, crit, "value") == "75 bar" and "high: 75 bar > 50 bar" in cell(app, crit, "message")
            # The look: a critical unacknowledged row in reverse video, a high one bold red.
            crit_style, high_style = table.row_style(crit), table.row_style(high1)
            assert crit_style is not None and crit_style.reverse and crit_style.bold
            assert high_style is not None and high_style.bold and not high_style.reverse
            # The header counts the unacknowledged ones by priority.
            await wait_for(pilot, lambda: (app.header_state.alarms or AlarmSummary()).unacked >= 3, what="counts")
            before = app.header_state.alarms
            assert before is not None and dict(before.unacked_by_priority)["high"] >= 2
            assert "unack /" in screen_text(app).splitlines()[0]

            # a: acknowledge the selected alarm; no question asked.
            await put_cursor(pilot, app, crit)
            await pilot.press("a")
            await wait_for(pilot, lambda: cell(app, crit, "state") == "ACK", what="the row acknowledged")
            assert not isinstance(app.screen, ConfirmDialog)
            row = plant.alarm(crit)
            assert row["state"] == "ack_active" and row["acked_by"] == "olga"
            style = table.row_style(crit)
            assert style is None or not (style.reverse or style.bold), "an acknowledged row is plain"
            await wait_for(
                pilot, lambda: app.header_state.alarms is not None and app.header_state.alarms.unacked == before.unacked - 1,
                what="the header's count to drop",
            )  # fmt: skip
            # a again: already acknowledged, nothing sent.
            await pilot.press("a")
            await wait_for(pilot, lambda: notified(app, "already acknowledged"), what="the notice")

            # A: every listed unacknowledged alarm, after a yes; the filter limits "listed".
            await pilot.press("slash", *"ackt/")
            await wait_for(pilot, lambda: all(k.startswith("ackt/") for k in listed(app)), what="the filter")
            await pilot.press("enter", "A")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
            await wait_text(pilot, "Acknowledge 2 alarms?")
            await pilot.press("y")
            await wait_for(pilot, lambda: notified(app, "Acknowledged 2 alarms"), what="the result")
            await wait_for(
                pilot, lambda: {cell(app, n, "state") for n in (high1, high2)} == {"ACK"}, what="both acknowledged"
            )
            assert all(plant.alarm(n)["state"] == "ack_active" for n in (crit, high1, high2))
            # Back to normal once acknowledged: off the list.
            plant.write("ackt/tank/pressure", 10.0)
            await wait_for(pilot, lambda: high2 not in listed(app), what="the cleared alarm to leave")
            assert "Traceback" not in screen_text(app)

    run(go())


def test_shelve_comment_and_history(plant: Plant) -> None:
    name = plant.make("shelft/pump/vibration", "high", units="mm/s")
    other = plant.make("shelft/fan/vibration", "medium", units="mm/s")
    plant.write("shelft/pump/vibration", 80.0)
    plant.write("shelft/fan/vibration", 60.0)

    async def go() -> None:
        app = ConsoleApp(plant.daemon.socket, plant.operator, start="alarms")
        async with app.run_test(size=SIZE) as pilot:
            await open_alarms(app, pilot, name, other)

            # c: a comment lands in the alarm's journal.
            await put_cursor(pilot, app, name)
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, CommentDialog), what="the comment dialog")
            await pilot.press("enter")  # empty: refused in the dialog
            await wait_text(pilot, "Type a comment")
            await pilot.press(*keys("bearing noise, fitter called"), "enter")
            await wait_for(pilot, lambda: notified(app, f"Comment added to {name}"), what="the comment's result")
            journal = plant.call("Alarms.History", {"alarm": name, "newest": True, "limit": 10})["events"]
            assert any(
                e["event"] == "comment" and e["comment"] == "bearing noise, fitter called" and e["user"] == "olga"
                for e in journal
            )

            # h: the history, newest first, with the comment on top.
            await pilot.press("h")
            await wait_for(
                pilot, lambda: isinstance(app.screen, AlarmHistoryScreen) and app.screen.loaded, what="the history"
            )
            history = app.screen.query_one(DataTable)
            assert history.row_count >= 2
            top = [str(c) for c in history.get_row_at(0)]
            assert top[1] == "comment" and top[3] == "olga" and "bearing noise" in top[4]
            events = {str(history.get_row_at(i)[1]) for i in range(history.row_count)}
            assert "activated" in events
            await wait_text(pilot, f"History — {name}")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, AlarmsScreen), what="back to the list")

            # s: shelve for a typed duration with a reason; it leaves the list.
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ShelveDialog), what="the shelve dialog")
            await pilot.press(*"3x", "enter")
            await wait_text(pilot, "'3x' is not a duration")
            await pilot.press("backspace", "backspace", *"90m", "enter")  # moves on to the reason
            await pilot.press("enter")
            await wait_text(pilot, "a shelve needs a reason")
            await pilot.press(*keys("sensor swap"), "enter")
            await wait_for(pilot, lambda: name not in listed(app), what="the shelved alarm to leave the list")
            row = plant.alarm(name)
            assert row["shelve_reason"] == "sensor swap" and row["shelved_by"] == "olga"
            until = datetime.fromisoformat(row["shelved_until"])
            assert 88 * 60 < (until - datetime.now(UTC)).total_seconds() <= 90 * 60
            assert other in listed(app)
            # v lists the hidden ones too, flagged and dimmed; u unshelves.
            await pilot.press("v")
            await wait_for(pilot, lambda: name in listed(app), what="the shelved alarm listed with v")
            assert cell(app, name, "flags") == "SHELVED"
            style = table_of(app).row_style(name)
            assert style is not None and style.dim
            await put_cursor(pilot, app, name)
            await pilot.press("u")
            await wait_for(pilot, lambda: cell(app, name, "flags") == "", what="unshelved")
            assert plant.alarm(name)["shelved_until"] is None

    run(go())


def test_a_viewer_is_refused_and_nothing_changes(plant: Plant) -> None:
    name = plant.make("viewt/mixer/torque", "high", units="Nm")
    plant.write("viewt/mixer/torque", 70.0)

    async def go() -> None:
        app = ConsoleApp(plant.daemon.socket, plant.viewer, start="alarms")
        async with app.run_test(size=SIZE) as pilot:
            await open_alarms(app, pilot, name)
            await wait_text(pilot, "watcher (viewer)")
            await put_cursor(pilot, app, name)
            await pilot.press("a")
            await wait_for(pilot, lambda: notified(app, "Permission denied"), what="the refusal")
            assert any("alarms.ack" in n.message for n in app._notifications)
            await pilot.press("s")  # refused before asking for a duration and a reason
            await pilot.pause(0.2)
            assert isinstance(app.screen, AlarmsScreen)
            assert any("alarms.shelve" in n.message for n in app._notifications)
            await pilot.pause(0.3)
            assert cell(app, name, "state") == "UNACK"
            assert "Traceback" not in screen_text(app)
        assert plant.alarm(name)["state"] == "unack_active"

    run(go())


class CountingBell(ConsoleApp):
    rings = 0

    def bell(self) -> None:
        self.rings += 1


def test_bell_rings_for_a_new_critical_alarm_only(plant: Plant) -> None:
    crit = plant.make("bellt/reactor/temp", "critical", units="°C")
    high = plant.make("bellt/cooler/temp", "high", units="°C")
    standing = plant.make("bellt/stack/temp", "critical", units="°C")
    plant.write("bellt/stack/temp", 90.0)  # standing before the console starts: no bell

    async def go(bell: bool) -> tuple[int, bool]:
        app = CountingBell(plant.daemon.socket, plant.operator, start="tags", bell=bell)
        async with app.run_test(size=SIZE) as pilot:
            # The stack alarm stands (unacknowledged on the first run, acknowledged on the second).
            await wait_for(
                pilot, lambda: app.header_state.alarms is not None and app.header_state.alarms.active >= 1,
                what="the header's counts",
            )  # fmt: skip
            await pilot.pause(0.3)
            assert app.rings == 0, "an alarm already standing rang"
            unacked = app.header_state.alarms.unacked  # type: ignore[union-attr]
            plant.write("bellt/cooler/temp", 70.0)  # high: no bell, one more in the header
            await wait_for(
                pilot, lambda: app.header_state.alarms is not None and app.header_state.alarms.unacked == unacked + 1,
                what="the header to count the new alarm",
            )  # fmt: skip
            await pilot.pause(0.4)
            assert app.rings == 0
            plant.write("bellt/reactor/temp", 70.0)  # a new critical one, on any screen
            await wait_for(pilot, lambda: app.header_state.alarm_flash, what="the header to flash")
            await pilot.pause(0.3)
            rings, flashed = app.rings, app.header_state.alarm_flash
            # Reset for the next run: the same alarms come back as new.
            for tag in ("bellt/reactor/temp", "bellt/cooler/temp"):
                plant.write(tag, 10.0)
            plant.call("Alarms.Acknowledge", {"alarms": [crit, high, standing]})
            return rings, flashed

    rings, flashed = run_value(go(True))
    assert rings == 1 and flashed
    rings, flashed = run_value(go(False))
    assert rings == 0 and flashed, "--no-bell silences the bell; the header still flashes"


def test_no_bell_option_reaches_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from scadactl.console import console_argv
    from scadactl.main import app as cli

    seen: list[bool] = []
    monkeypatch.setattr(ConsoleApp, "run", lambda self, *a, **k: seen.append(self.bell_on_critical))
    for args, bell in ((["console"], True), (["console", "--no-bell"], False)):
        result = CliRunner().invoke(cli, ["--socket", "/nonexistent/scadad.sock", *args])
        assert result.exit_code == 0, result.output
        assert seen.pop() is bell
    assert console_argv(["--no-bell", "-S", "/x.sock"]) == ["-S", "/x.sock", "console", "--no-bell"]


def run_value(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# ---------------------------------------------------------------------- pure rules


def _alarm(name: str, priority: str, state: str = "unack_active", since: str = "2026-06-01T11:00:00Z", **kw: Any):  # type: ignore[no-untyped-def]
    return {"id": hash(name) % 10_000, "name": name, "priority": priority, "state": state, "active_since": since,
            "value": 75.0, "units": "bar", **kw}  # fmt: skip


def test_order_look_and_what_is_listed() -> None:
    alarms = {
        1: _alarm("a:hi", "high", since="2026-06-01T10:00:00Z"),
        2: _alarm("b:hi", "high", since="2026-06-01T11:00:00Z"),
        3: _alarm("c:hi", "critical", "ack_active", since="2026-06-01T09:00:00Z"),
        4: _alarm("d:hi", "low", "rtn_unack"),
        5: _alarm("e:hi", "critical", shelved_until="2026-06-01T13:00:00Z"),
        6: _alarm("f:hi", "medium", "normal", suppressed=True),
    }
    assert [a["name"] for a in ad.listed(alarms)] == ["c:hi", "b:hi", "a:hi", "d:hi"]
    assert [a["name"] for a in ad.listed(alarms, show_hidden=True)] == ["e:hi", "c:hi", "b:hi", "a:hi", "f:hi", "d:hi"]
    assert [a["name"] for a in ad.listed(alarms, query="RTN")] == ["d:hi"]
    assert ad.row_style(alarms[5]) == "dim" and ad.row_style(alarms[6]) == "dim"
    assert ad.row_style(_alarm("x:hi", "critical")) == "bold reverse red"
    assert ad.row_style(alarms[3]) == ""  # acknowledged: plain grey
    assert ad.row_style(alarms[4]) == "bold"  # low, unacknowledged
    assert ad.flags_text({"shelved_until": "x", "suppressed": True, "out_of_service": True}) == "SHELVED SUPP OOS"
    cells = ad.alarm_cells(alarms[2], datetime.fromisoformat("2026-06-01T12:00:00+00:00").timestamp(), UTC, True)
    assert cells["priority"].plain == "high" and cells["state"].plain == "UNACK"
    assert cells["time"].plain == "11:00:00" and cells["value"].plain == "75 bar"
    old = ad.alarm_cells(alarms[2], datetime.fromisoformat("2026-06-03T12:00:00+00:00").timestamp(), UTC)
    assert old["time"].plain == "06-01 11:00"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("2h", 7200), ("8h", 28800), ("1d", 86400), ("1h30m", 5400), ("45", 2700), (" 30 m ", 1800),
     ("0.5h", 1800), ("10s", 10)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: int) -> None:
    assert ad.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"), [("", "type a duration"), ("3x", "not a duration"), ("h2", "not a duration"),
                          ("0m", "at least"), ("400d", "at most")]
)  # fmt: skip
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ad.parse_duration(text)


def test_when_the_bell_rings() -> None:
    crit = {"id": 1, "name": "t:hi", "priority": "critical"}
    activated = {"event": "activated", "priority": "critical", "alarm_id": 1}
    assert ad.rings_bell({"alarms": [crit], "events": [activated]})
    assert not ad.rings_bell({"alarms": [crit], "events": [activated], "initial": True})
    assert not ad.rings_bell({"alarms": [crit], "events": [{**activated, "priority": "high"}]})
    assert not ad.rings_bell({"alarms": [crit], "events": [{**activated, "event": "acknowledged"}]})
    shelved = {**crit, "shelved_until": "2026-06-01T13:00:00Z"}
    assert not ad.rings_bell({"alarms": [shelved], "events": [activated]})


def test_header_alarm_figures() -> None:
    counts = {"active": 7, "unacked": 3, "unacked_by_priority": {"critical": 1, "high": 2, "medium": 0, "low": 0}}
    s = AlarmSummary.from_counts(counts)
    assert s.unacked_by_priority == (("critical", 1), ("high", 2))
    assert alarm_text(s).plain == "alarms 1 crit 2 high · 3 unack / 7 active"
    assert alarm_text(s, "short").plain == "alarms 1 crit 2 high 3/7 unack"
    assert alarm_text(s, "tiny").plain == "alarms 1C 2H 3/7"
    assert alarm_text(AlarmSummary(active=4)).plain == "alarms 0 unack / 4 active"
    assert alarm_text(AlarmSummary()).plain == "alarms none"
    assert alarm_text(None).plain == "alarms —"
    assert str(alarm_text(s).spans[0].style) == "bold reverse red"  # "1 crit"
    assert alarm_text(AlarmSummary(active=4)).spans == []  # nothing unacknowledged: no colour
    # Narrow: the figures take a shorter form and the user, then the site, give way; the
    # link state and the figures are never cut.
    state = HeaderState(site="a-long-site-name", screen_title="Alarms", clock_text="12:00:00", link="lost",
                        user="somebody (operator,engineer)", alarms=s)  # fmt: skip
    wide = header_text(state, 200).plain
    assert wide.endswith("somebody (operator,engineer)  alarms 1 crit 2 high · 3 unack / 7 active")
    narrow = header_text(state, 80).plain
    assert narrow.endswith("connection lost   alarms 1C 2H 3/7") and len(narrow) <= 80
    assert "somebody" not in narrow
    quiet = header_text(HeaderState(site="test", screen_title="Tags", clock_text="12:00:00", link="online",
                                    user="chief (admin)", alarms=AlarmSummary()), 80).plain  # fmt: skip
    assert quiet == " SCADA  test · Tags  12:00:00  ● online  chief (admin)  alarms none"


def test_cursor_stays_in_place_when_its_alarm_leaves() -> None:
    old = ("a", "b", "c", "d")
    assert cursor_after_removal(old, "b", ["a", "c", "d"]) == "c"
    assert cursor_after_removal(old, "d", ["a", "b", "c"]) == "c"
    assert cursor_after_removal(old, "b", ["x", "a"]) == "a"
    assert cursor_after_removal(old, "b", ["a", "b"]) is None
    assert cursor_after_removal(old, "b", []) is None


def test_columns_fit_80_and_160() -> None:
    narrow = column_plan(80 - 1)
    assert [c.key for c in narrow] == ["priority", "state", "time", "name", "value", "flags"]
    assert sum(c.width + 2 for c in narrow) == 79
    wide = column_plan(160 - 1)
    assert [c.key for c in wide] == ["priority", "state", "time", "name", "value", "message", "flags"]
    assert sum(c.width + 2 for c in wide) == 159
