"""LiveTable on its own, in a bare app: the cursor and its messages, what a cell update
repaints (one line in view, nothing out of view), unknown keys, and how it looks."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.strip import Strip

from tests.tui_support import screen_text
from tui.app import THEMES
from tui.widgets.live_table import Column, LiveTable

ROWS = 100
SIZE = (60, 12)  # 12 lines: the header and 11 rows
IN_VIEW = SIZE[1] - 1
COLUMNS = [Column("tag", "Tag", 20), Column("value", "Value", 8, right=True), Column("quality", "Quality", 8)]


def key(i: int) -> str:
    return f"plant/pump-{i:03d}"


def value(x: float) -> Text:
    return Text(f"{x:g}", justify="right")


class TableApp(App[None]):
    CSS_PATH = Path(__file__).resolve().parent.parent / "tui" / "console.tcss"

    def __init__(self) -> None:
        super().__init__()
        self.highlighted: list[str] = []
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield LiveTable(id="table")

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = "scada-dark"
        table = self.query_one(LiveTable)
        table.set_columns(COLUMNS)
        table.set_rows((key(i), [key(i), value(i), Text("GOOD")]) for i in range(ROWS))
        table.focus()

    def on_live_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        self.highlighted.append(event.key)

    def on_live_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        self.selected.append(event.key)


def run(test) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        app = TableApp()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await test(app, pilot, app.query_one(LiveTable))

    asyncio.run(go())


async def settle(pilot: Pilot) -> None:
    """Let queued messages run and the screen repaint."""
    await pilot.pause()
    await pilot.pause(0.05)


def count_lines(table: LiveTable) -> Counter[int]:
    """From now on, count `render_line` calls per line of the widget."""
    calls: Counter[int] = Counter()
    render_line = table.render_line

    def counted(y: int) -> Strip:
        calls[y] += 1
        return render_line(y)

    table.render_line = counted  # type: ignore[method-assign]
    return calls


def lines(app: App) -> list[str]:
    return screen_text(app).splitlines()


# ---------------------------------------------------------------------- cursor


def test_cursor_keys_move_scroll_and_highlight() -> None:
    async def test(app: TableApp, pilot: Pilot, table: LiveTable) -> None:
        assert table.cursor_key == key(0)
        await pilot.press("down", "down")
        assert table.cursor_key == key(2) and app.highlighted[-2:] == [key(1), key(2)]
        await pilot.press("up")
        assert table.cursor_key == key(1)
        await pilot.press("up", "up")  # stops at the top
        assert table.cursor_key == key(0)
        await pilot.press("pagedown")
        assert table.cursor_key == key(IN_VIEW)
        assert table.visible_keys()[0] == key(IN_VIEW)  # scrolled a page, cursor on the same line
        await pilot.press("pageup")
        assert table.cursor_key == key(0) and table.visible_keys()[0] == key(0)
        await pilot.press("end")
        assert table.cursor_key == key(ROWS - 1)
        assert table.visible_keys()[-1] == key(ROWS - 1) and len(table.visible_keys()) == IN_VIEW
        await settle(pilot)
        assert lines(app)[-1].startswith(" " + key(ROWS - 1))
        await pilot.press("down")  # stops at the bottom
        assert table.cursor_key == key(ROWS - 1)
        await pilot.press("home")
        assert table.cursor_key == key(0) and table.visible_keys()[0] == key(0)
        assert app.highlighted[-1] == key(0)
        assert app.selected == []

    run(test)


def test_enter_and_click_select() -> None:
    async def test(app: TableApp, pilot: Pilot, table: LiveTable) -> None:
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.selected == [key(1)]
        # A click moves the cursor; a click on the cursor row chooses it.
        await pilot.click(LiveTable, offset=(3, 5))  # line 5 = row 4
        await settle(pilot)
        assert table.cursor_key == key(4) and app.selected == [key(1)]
        await pilot.click(LiveTable, offset=(3, 5))
        await settle(pilot)
        assert app.selected == [key(1), key(4)]
        await pilot.click(LiveTable, offset=(3, 0))  # the header: nothing
        await settle(pilot)
        assert table.cursor_key == key(4) and app.selected == [key(1), key(4)]

    run(test)


def test_move_cursor_scrolls_into_view_and_survives_set_rows() -> None:
    async def test(app: TableApp, pilot: Pilot, table: LiveTable) -> None:
        assert table.move_cursor(key(50))
        assert key(50) in table.visible_keys()
        # Rows replaced (a new filter or sort): the cursor stays on its row if listed.
        table.set_rows((key(i), [key(i), value(i), "GOOD"]) for i in range(40, 60))
        assert table.cursor_key == key(50) and key(50) in table.visible_keys()
        table.set_rows((key(i), [key(i), value(i), "GOOD"]) for i in range(10))
        assert table.cursor_key == key(0) and table.visible_keys()[0] == key(0)
        table.set_rows([])
        assert table.cursor_key is None and table.row_count == 0 and table.visible_keys() == ()
        await pilot.press("down", "end", "enter")  # nothing to move to or choose
        await settle(pilot)
        assert app.selected == []

    run(test)


# ---------------------------------------------------------------------- repaints


def test_update_out_of_view_repaints_nothing() -> None:
    async def test(app: TableApp, pilot: Pilot, table: LiveTable) -> None:
        before = lines(app)
        calls = count_lines(table)
        far = key(80)
        assert far not in table.visible_keys()
        assert table.update_cell(far, "value", value(-1.5))
        assert table.update_cell(far, "quality", Text("BAD", style="bold red"))
        await settle(pilot)
        assert calls == Counter(), "an update out of view repainted lines"
        assert lines(app) == before
        assert table.get_cell(far, "value").plain == "-1.5"  # type: ignore[union-attr]
        # Scrolled into view, the row shows what it was sent meanwhile.
        table.move_cursor(far)
        await settle(pilot)
        row = next(line for line in lines(app) if far in line)
        assert row.split() == [far, "-1.5", "BAD"]

    run(test)


def test_update_in_view_repaints_only_that_line() -> None:
    async def test(app: TableApp, pilot: Pilot, table: LiveTable) -> None:
        before = lines(app)
        calls = count_lines(table)
        draws = Counter[str]()
        draw = table._draw
        table._draw = lambda cells, *a: (draws.update([str(cells[0])]), draw(cells, *a))[1]  # type: ignore[method-assign]
        assert table.update_cell(key(3), "value", value(42.25))  # line 4: header + rows 0..3
        assert table.update_cell(key(3), "quality", Text("UNCERTAIN", style="bold yellow"))
        await settle(pilot)
        assert set(calls) == {4}, f"lines repainted: {sorted(calls)}"
        assert draws == Counter({key(3): 1}), "the row was not drawn exactly once"
        after = lines(app)
        assert after[4].split() == [key(3), "42.25", "UNCERTA…"]
        assert [a for i, a in enumerate(after) if i != 4] == [b for i, b in enumerate(before) if i != 4]
        # A plain repaint of the screen reuses every row's cached line.
        draws.clear()
        table.refresh()
        await settle(pilot)
        assert draws == Counter()

    run(test)


def test_unknown_keys_are_ignored() -> None:
    async def test(app: TableApp, pilot: Pilot, table: LiveTable) -> None:
        before = lines(app)
        calls = count_lines(table)
        assert table.update_cell("no/such/tag", "value", "1") is False
        assert table.update_cell(key(1), "no-such-column", "1") is False
        assert table.move_cursor("no/such/tag") is False
        await settle(pilot)
        assert calls == Counter() and lines(app) == before and table.cursor_key == key(0)

    run(test)


# ---------------------------------------------------------------------- look


def test_header_alignment_cursor_and_stale_look() -> None:
    async def test(app: TableApp, pilot: Pilot, table: LiveTable) -> None:
        table.update_cell(key(2), "tag", "a/very/long/tag/path/that/does/not/fit")
        await settle(pilot)
        screen = lines(app)
        # Columns: 1 blank, 20 tag, 2 blanks, 8 value (right-aligned), 2 blanks, 8 quality.
        assert screen[0].rstrip() == " Tag                      Value  Quality"
        assert screen[3][:23] == " a/very/long/tag/pat…  "  # cut with an ellipsis
        assert screen[2][23:31] == "       1"
        header, cursor, plain = (table.render_line(y) for y in (0, 1, 2))
        style = table.get_component_rich_style
        assert first_style(header).bgcolor == style("livetable--header").bgcolor
        assert first_style(header).bold
        assert first_style(cursor).bgcolor == style("livetable--cursor").bgcolor != first_style(plain).bgcolor
        # The link lost: the screen's -stale class greys the table (console.tcss).
        assert table.styles.text_opacity == 1.0
        app.screen.add_class("-stale")
        await settle(pilot)
        assert table.styles.text_opacity == 0.45
        # Both themes: the cursor row still stands out.
        app.theme = "scada-light"
        await settle(pilot)
        assert first_style(table.render_line(1)).bgcolor != first_style(table.render_line(2)).bgcolor

    run(test)


def first_style(strip: Strip):  # type: ignore[no-untyped-def]
    """The style of the first cell of a line."""
    return next(iter(strip)).style
