"""The console's tag browser against a real scadad with the simulated plant: search,
values updated in place, the tag detail and its trend, writes with and without the
permission; and the pure rules behind them (value parsing, sorting, column sizes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from scadad.api.client import Client
from tests.conftest import RunningDaemon, start_daemon
from tests.tui_support import SIM, run, screen_text, start_sim_daemon, wait_for, wait_text
from tui.app import ConsoleApp
from tui.screens.tag_detail import TagDetailScreen
from tui.screens.tags import TagsScreen, TagTable, column_plan, folders, left_ellipsis, sort_paths
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.plot import TrendPlot
from tui.widgets.write_dialog import WriteValueDialog, parse_value

SETPOINT = "sim/pump-plc-5/level_high_sp"  # uint16, x0.1 scaling: an engineering value with decimals
PASSWORD = "brisk-otter-lantern-47"


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """One simulated plant for the local-admin tests of this module (they change one setpoint)."""
    d = start_sim_daemon(tmp_path_factory.mktemp("tags") / "home")
    yield d
    code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


def table_of(app: ConsoleApp) -> TagTable:
    return app.screen.query_one(TagTable)


async def open_tags(app: ConsoleApp, pilot: Pilot, rows: int | None = None) -> TagTable:
    """Wait for the browser to list the tags (all ``rows`` of them when given)."""
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, TagsScreen) and table_of(app).row_count >= (rows or 1),
        what="the tag table",
    )
    return table_of(app)


async def put_cursor(pilot: Pilot, table: TagTable, path: str) -> None:
    table.focus()
    assert table.move_cursor(path), f"{path} is not in the table"
    await pilot.pause()


def cell(table: TagTable, path: str, column: str) -> str:
    value = table.get_cell(path, column)
    return getattr(value, "plain", str(value))


def keys(text: str) -> list[str]:
    return ["space" if ch == " " else ch for ch in text]


def notified(app: ConsoleApp, text: str) -> bool:
    """Whether a notification (toast) said ``text`` (toasts are not in `screen_text`)."""
    return any(text in n.message for n in app._notifications)


def total_tags(d: RunningDaemon) -> int:
    with d.client() as c:
        return c.call("Tags.List", {"pattern": "sim/**"})["total"]


# ---------------------------------------------------------------------- against the plant


def test_search_filters_by_path_and_description(plant: RunningDaemon) -> None:
    total = total_tags(plant)

    async def go() -> None:
        app = ConsoleApp(plant.socket, start="tags")
        async with app.run_test(size=(120, 40)) as pilot:
            table = await open_tags(app, pilot, total)
            await pilot.press("slash", *"FREQ")
            await wait_for(pilot, lambda: table.row_count == 4, what="four frequency rows")
            shown = set(table.keys)
            assert "sim/sdm630-0/frequency" in shown and "sim/sdm630-0/voltage_l1" not in shown
            assert all("freq" in k for k in shown)
            await wait_text(pilot, f"4 of {total} tags")
            # Description matches too: "pump running" is only in descriptions (paths use _).
            await pilot.press("escape", "slash", *keys("pump running"))
            await wait_for(pilot, lambda: table.row_count == 1, what="one row by description")
            assert table.keys == ("sim/pump-plc-5/pump_running",)
            # Esc clears the search and brings every tag back.
            await pilot.press("escape")
            await wait_for(pilot, lambda: table.row_count == total, what="all rows back")

    run(go())


def test_values_update_in_place(plant: RunningDaemon) -> None:
    path = "sim/sdm630-0/power_total"

    async def go() -> None:
        app = ConsoleApp(plant.socket, start="tags")
        async with app.run_test(size=(120, 40)) as pilot:
            table = await open_tags(app, pilot, total_tags(plant))
            screen = app.screen
            assert isinstance(screen, TagsScreen)
            rebuilt: list[str] = []
            set_rows, set_columns = table.set_rows, table.set_columns
            table.set_rows = lambda rows: (rebuilt.append("rows"), set_rows(rows))[1]  # type: ignore[method-assign]
            table.set_columns = lambda cols: (rebuilt.append("columns"), set_columns(cols))[1]  # type: ignore[method-assign]
            keys = table.keys
            first = cell(table, path, "value")
            await wait_for(pilot, lambda: cell(table, path, "value") != first, what=f"{path} to change")
            assert table.keys is keys, "the rows were replaced on a data change"
            assert rebuilt == [], "the table was rebuilt on a data change"
            assert cell(table, path, "quality") == "GOOD" and cell(table, path, "units") == "kW"
            # The row shows the value the daemon has now (within the stream's pace).
            with Client(plant.socket) as c:
                live = c.call("Tags.Read", {"paths": [path]})["values"][0]["value"]
            await wait_for(
                pilot,
                lambda: abs(float(cell(table, path, "value")) - live) < 0.2 * abs(live) + 1,
                what="a plausible live value",
            )
            # On screen too: its row, scrolled into view, is repainted as the value moves.
            await put_cursor(pilot, table, path)
            name = path.removeprefix(screen.subtree + "/")

            def on_screen() -> str:
                row = next(line for line in screen_text(app).splitlines() if name in line)
                return row.split(name, 1)[1].split()[0]

            await wait_for(pilot, lambda: on_screen() == cell(table, path, "value"), what="the row drawn")
            shown = on_screen()
            await wait_for(pilot, lambda: on_screen() != shown, what="the row redrawn with a new value")
            assert table.keys is keys and rebuilt == []

    run(go())


def test_enter_opens_detail_with_trend(plant: RunningDaemon) -> None:
    path = "sim/sdm630-0/voltage_l1"

    async def go() -> None:
        app = ConsoleApp(plant.socket, start="tags")
        async with app.run_test(size=(120, 40)) as pilot:
            table = await open_tags(app, pilot)
            await put_cursor(pilot, table, path)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, TagDetailScreen), what="the tag detail")
            await wait_text(pilot, path)
            await wait_text(pilot, "voltage l1")  # the description
            await wait_text(pilot, "float32")
            plot = app.screen.query_one(TrendPlot)
            await wait_for(pilot, lambda: len(plot.pens) >= 1 and len(plot.pens[0].times) >= 1, what="a pen")
            assert plot.end - plot.start == pytest.approx(3600)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, TagsScreen), what="back to the browser")

    run(go())


def test_write_setpoint_through_confirm(plant: RunningDaemon) -> None:
    with Client(plant.socket) as c:
        tags = c.call("Tags.List", {"pattern": "sim/pump-plc-5/*"})["tags"]
        old = c.call("Tags.Read", {"paths": [SETPOINT]})["values"][0]["value"]
    assert any(t["spec"]["path"] == SETPOINT and t["spec"]["writable"] for t in tags)
    new = 61.5 if old != 61.5 else 62.5

    async def go() -> None:
        app = ConsoleApp(plant.socket, start="tags")
        async with app.run_test(size=(120, 40)) as pilot:
            table = await open_tags(app, pilot)
            # A read-only tag is refused before any dialog.
            await put_cursor(pilot, table, "sim/pump-plc-5/tank_level")
            await pilot.press("w")
            await wait_for(pilot, lambda: notified(app, "tank_level is read-only"), what="read-only notice")
            assert isinstance(app.screen, TagsScreen)

            await put_cursor(pilot, table, SETPOINT)
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, WriteValueDialog), what="the value prompt")
            await pilot.press(*"abc", "enter")  # not a number: stays, says why
            await wait_text(pilot, "'abc' is not a number")
            await pilot.press(*["backspace"] * 3, *str(new), "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
            await wait_text(pilot, f"{SETPOINT}:  {old:g} → {new:g} %")
            await pilot.press("y")
            await wait_for(pilot, lambda: notified(app, f"read back {new:g} %"), what="the write's result")
            with Client(plant.socket) as c:
                back = c.call("Tags.Read", {"paths": [SETPOINT]})["values"][0]["value"]
            assert back == pytest.approx(new, abs=0.05)
            await wait_for(pilot, lambda: cell(table, SETPOINT, "value") == f"{new:g}", what="the new value shown")

    run(go())


def test_write_without_permission_is_refused_cleanly(tmp_path: Path) -> None:
    # Real authentication. (start_sim_daemon waits for the devices with an anonymous
    # Devices.Status, which such a daemon refuses: wait as the admin instead.)
    d = start_daemon(tmp_path / "home", SIM, auth="mfa_required_roles = []\n")
    try:
        with Client(d.socket) as c:  # the bootstrap rule: the daemon's own Unix user makes the admin
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
        with Client(d.socket) as c:
            c.token = c.call("Auth.Login", {"username": "chief", "password": PASSWORD})["token"]
            c.call("Users.Create", {"username": "watcher", "password": PASSWORD, "roles": ["viewer"]})
            deadline = time.monotonic() + 15
            while c.call("Tags.Read", {"paths": [SETPOINT]})["values"][0]["quality"] != "GOOD":
                assert time.monotonic() < deadline, "the simulated pump PLC did not come online"
                time.sleep(0.1)
        with Client(d.socket) as c:
            token = c.token = c.call("Auth.Login", {"username": "watcher", "password": PASSWORD})["token"]
            before = c.call("Tags.Read", {"paths": [SETPOINT]})["values"][0]["value"]

        async def go() -> None:
            app = ConsoleApp(d.socket, token, start="tags")
            async with app.run_test(size=(120, 40)) as pilot:
                table = await open_tags(app, pilot)
                await wait_text(pilot, "watcher (viewer)")
                await put_cursor(pilot, table, SETPOINT)
                await pilot.press("w")
                await wait_for(pilot, lambda: isinstance(app.screen, WriteValueDialog), what="the value prompt")
                await wait_text(pilot, "tags.write permission")  # the console's hint
                await pilot.press(*"44", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
                await pilot.press("y")
                await wait_for(pilot, lambda: notified(app, "needs permission 'tags.write'"), what="the refusal")
                assert isinstance(app.screen, TagsScreen)
                assert "Traceback" not in screen_text(app)
                assert cell(table, SETPOINT, "value") == f"{before:g}"

        run(go())
        with Client(d.socket, token=token) as c:
            assert c.call("Tags.Read", {"paths": [SETPOINT]})["values"][0]["value"] == before
    finally:
        code = d.stop()
    assert code == 0, d.log_text()


# ---------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("text", "data_type", "scaled", "expected"),
    [
        ("on", "bool", False, True),
        ("OFF", "bool", False, False),
        (" 1 ", "bool", False, True),
        ("false", "bool", False, False),
        ("42", "uint16", False, 42),
        ("-7", "int16", False, -7),
        ("1e3", "int32", False, 1000),
        ("72.5", "uint16", True, 72.5),  # scaled: engineering value keeps its decimals
        ("2.5", "float32", False, 2.5),
        ("  spaced text ", "string", False, "  spaced text "),
    ],
)
def test_parse_value(text: str, data_type: str, scaled: bool, expected: object) -> None:
    got = parse_value(text, data_type, scaled)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("text", "data_type", "message"),
    [
        ("maybe", "bool", "not on/off"),
        ("2", "bool", "not on/off"),
        ("", "float32", "type a value"),
        ("7.5", "uint16", "whole numbers"),
        ("-1", "uint16", "outside uint16"),
        ("65536", "uint16", "outside uint16"),
        ("32768", "int16", "outside int16"),
        ("nan", "float64", "finite"),
        ("12kW", "float32", "not a number"),
    ],
)
def test_parse_value_refuses(text: str, data_type: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_value(text, data_type)


def test_sorting_folders_and_columns() -> None:
    values = {
        "s/a/x": {"value": 5.0, "quality": "GOOD", "server_time": "2026-01-01T00:00:50Z"},
        "s/a/y": {"value": -1, "quality": "BAD", "server_time": "2026-01-01T00:00:10Z"},
        "s/b/z": {"value": "txt", "quality": "UNCERTAIN", "server_time": None},
        "s/b/w": {"value": 5.0, "quality": "GOOD", "server_time": "2026-01-01T00:00:55Z"},
    }
    now = 1767225660.0  # 2026-01-01T00:01:00Z
    paths = list(values)
    assert sort_paths(paths, "path", values, now) == ["s/a/x", "s/a/y", "s/b/w", "s/b/z"]
    assert sort_paths(paths, "value", values, now) == ["s/a/y", "s/a/x", "s/b/w", "s/b/z"]
    assert sort_paths(paths, "quality", values, now) == ["s/a/y", "s/b/z", "s/a/x", "s/b/w"]
    assert sort_paths(paths, "age", values, now) == ["s/b/z", "s/a/y", "s/a/x", "s/b/w"]
    assert folders(paths) == ["s", "s/a", "s/b"]
    assert left_ellipsis("sim/sdm630-0/voltage_l1", 12) == "…/voltage_l1"
    # 80 columns minus a 22-column tree: the path gets what the fixed columns leave.
    narrow = column_plan(80 - 22 - 1, wide=False)
    assert [c.key for c in narrow] == ["tag", "value", "units", "quality", "age"]
    assert sum(c.width + 2 for c in narrow) == 57
    wide = column_plan(160 - 32 - 1, wide=True)
    assert [c.key for c in wide][-1] == "desc" and sum(c.width + 2 for c in wide) == 127
