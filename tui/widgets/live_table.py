"""LiveTable: a table of live values, repainted one changed row at a time.

    table = LiveTable()
    table.set_columns([Column("tag", "Tag", 30), Column("value", "Value", 10, right=True)])
    table.set_rows([("plant/pump/speed", ["pump/speed", "1450"]), ...])
    table.update_cell("plant/pump/speed", "value", Text("1462", justify="right"))

Why not Textual's DataTable: every `DataTable.update_cell` bumps one table-wide counter
that keys all its render caches, so a single changed value re-renders every row and cell
in view, and each call refreshes the widget even for rows scrolled out of sight. With a
thousand tags changing every second that was most of the console's CPU.

Here each row's line (a `Strip`) is cached by row key and dropped only when that row
changes or the look changes (theme, focus). `update_cell` repaints the one line
of that row when it is in view and, for a row out of view, only stores the value: the
row is drawn when it scrolls in. Rows are one line high, the header line stays put while
the rows scroll, and the cursor is a whole-row cursor.

Cells are Rich `Text` (their style, justify and overflow are kept) or plain `str`, shown
as is (no markup). A cell is cut to its column's width, with an ellipsis unless its
`overflow` says otherwise, and right-aligned when its column is or its `justify` is
"right". Keys the table does not hold are ignored by `update_cell` and `move_cursor`: a
live stream may name a row just filtered away.

A row may carry a style of its own (`set_rows(..., styles=)`, `set_row_style`), drawn
across the whole line, padding included: an unacknowledged alarm in its priority's
colour, a critical one in reverse video. Under the cursor the cursor's look wins (a row
style's bold stays), so the cursor is never lost on a loud row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = Text | str

CELL_PADDING = 1  # blank cells on each side of every column


@dataclass(frozen=True)
class Column:
    """A fixed-width column: ``width`` cells of content, plus `CELL_PADDING` each side."""

    key: str
    label: str
    width: int
    right: bool = False


class LiveTable(ScrollView, can_focus=True):
    """A row-cursor table whose cells change often; see the module docstring."""

    ALLOW_SELECT = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first_row", "First row", show=False),
        Binding("end", "last_row", "Last row", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"livetable--header", "livetable--cursor"}
    # The same look (and theme variables) as Textual's DataTable, which the other screens use.
    DEFAULT_CSS = """
    LiveTable {
        background: $surface;
        color: $foreground;
        & > .livetable--header {
            background: $panel;
            color: $foreground;
            text-style: bold;
        }
        & > .livetable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .livetable--header {
                background-tint: $foreground 5%;
            }
            & > .livetable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    class _RowMessage(Message):
        def __init__(self, table: LiveTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor moved onto the row ``key``."""

    class RowSelected(_RowMessage):
        """Enter (or a click on the cursor row) chose the row ``key``."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._columns: tuple[Column, ...] = ()
        self._column_index: dict[str, int] = {}
        self._keys: tuple[str, ...] = ()
        self._row_index: dict[str, int] = {}
        self._cells: dict[str, list[Cell]] = {}
        self._row_styles: dict[str, Style] = {}
        self._cursor = 0
        self._strips: dict[str, Strip] = {}  # rendered row lines, full table width, by row key
        self._header: Strip | None = None
        # The styles every cached line was drawn with (the widget's, the header's, the
        # cursor's); when they change (theme, focus) every line is drawn again.
        self._look: tuple[Style, Style, Style] | None = None

    # ------------------------------------------------------------------ data

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    @property
    def keys(self) -> tuple[str, ...]:
        """Row keys in display order (the same object until `set_rows` replaces them)."""
        return self._keys

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def set_columns(self, columns: Iterable[Column]) -> None:
        """Replace the columns. Rows stay; their cells follow the columns by key (a new
        column starts blank)."""
        columns = tuple(columns)
        old = self._column_index
        remap = [old.get(c.key) for c in columns]
        for key, cells in self._cells.items():
            self._cells[key] = [cells[i] if i is not None else "" for i in remap]
        self._columns = columns
        self._column_index = {c.key: i for i, c in enumerate(columns)}
        self._invalidate()

    def set_rows(
        self, rows: Iterable[tuple[str, Sequence[Cell]]], styles: Mapping[str, Style | str] | None = None
    ) -> None:
        """Replace every row: ``(key, cells)`` pairs, cells in column order, and the row
        styles (by key; rows not named have none).

        The cursor stays on its row if that row is still there, else goes to the top.
        """
        keep = self.cursor_key
        n = len(self._columns)
        cells: dict[str, list[Cell]] = {}
        for key, row in rows:
            if key in cells:
                raise ValueError(f"duplicate row key {key!r}")
            values = list(row[:n])
            cells[key] = values + [""] * (n - len(values))
        self._cells = cells
        self._row_styles = {k: _style(v) for k, v in (styles or {}).items() if k in cells and v}
        self._keys = tuple(cells)
        self._row_index = {k: i for i, k in enumerate(self._keys)}
        self._invalidate()
        if keep is not None and keep in self._row_index:
            self._cursor = self._row_index[keep]
            self._scroll_to_cursor()
        else:
            self._cursor = 0
            self.scroll_to(y=0, animate=False, force=True)
            if self._keys:
                self.post_message(self.RowHighlighted(self, self._keys[0]))

    def get_cell(self, key: str, column: str) -> Cell:
        """The cell of row ``key`` in ``column``; KeyError when either is unknown."""
        return self._cells[key][self._column_index[column]]

    def update_cell(self, key: str, column: str, value: Cell) -> bool:
        """Set one cell; repaint its row's line if that row is in view.

        Returns False (and changes nothing) for a row or column the table does not have.
        """
        cells = self._cells.get(key)
        i = self._column_index.get(column)
        if cells is None or i is None:
            return False
        cells[i] = value
        self._strips.pop(key, None)
        self._refresh_row(self._row_index[key])  # a no-op out of view: drawn when scrolled in
        return True

    def set_row_style(self, key: str, style: Style | str | None) -> bool:
        """Give row ``key`` a style across its whole line (None: none); repaint it if in
        view. False for a row the table does not have."""
        if key not in self._cells:
            return False
        new = _style(style) if style else None
        if self._row_styles.get(key) == new:
            return True
        if new is None:
            del self._row_styles[key]
        else:
            self._row_styles[key] = new
        self._strips.pop(key, None)
        self._refresh_row(self._row_index[key])
        return True

    def row_style(self, key: str) -> Style | None:
        return self._row_styles.get(key)

    def visible_keys(self) -> Sequence[str]:
        """Keys of the rows in view, top to bottom."""
        top = self.scroll_offset.y
        return self._keys[top : top + self._rows_in_view()]

    # ------------------------------------------------------------------ cursor

    @property
    def cursor_key(self) -> str | None:
        """Key of the row under the cursor (None when the table is empty)."""
        return self._keys[self._cursor] if self._keys else None

    def move_cursor(self, key: str) -> bool:
        """Put the cursor on row ``key`` and scroll it into view; False if no such row."""
        index = self._row_index.get(key)
        if index is None:
            return False
        self._set_cursor(index)
        return True

    def _set_cursor(self, index: int) -> None:
        if not self._keys:
            return
        index = max(0, min(index, len(self._keys) - 1))
        old = self._cursor
        if index != old:
            self._cursor = index
            for i in (old, index):
                if i < len(self._keys):
                    self._strips.pop(self._keys[i], None)
                    self._refresh_row(i)
            self.post_message(self.RowHighlighted(self, self._keys[index]))
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        rows = self._rows_in_view()
        if rows <= 0:
            return
        top = self.scroll_offset.y
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + rows:
            self.scroll_to(y=self._cursor - rows + 1, animate=False, force=True)

    def action_cursor_up(self) -> None:
        self._set_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._set_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        self._page(-1)

    def action_page_down(self) -> None:
        self._page(1)

    def _page(self, direction: int) -> None:
        # Scroll a page and keep the cursor on the same line of the screen.
        step = max(1, self._rows_in_view()) * direction
        self.scroll_to(y=self.scroll_offset.y + step, animate=False, force=True)
        self._set_cursor(self._cursor + step)

    def action_first_row(self) -> None:
        self._set_cursor(0)

    def action_last_row(self) -> None:
        self._set_cursor(len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return  # the header
        index = self.scroll_offset.y + offset.y - 1
        if index >= len(self._keys):
            return
        event.stop()
        if index == self._cursor:
            self.action_select_cursor()  # a second click on the cursor row chooses it
        else:
            self._set_cursor(index)

    # ------------------------------------------------------------------ drawing

    def _rows_in_view(self) -> int:
        return max(0, self.scrollable_content_region.height - 1)  # less the header line

    def _refresh_row(self, index: int) -> None:
        top = self.scroll_offset.y
        if top <= index < top + self._rows_in_view():
            self.refresh(Region(0, 1 + index - top, max(self.virtual_size.width, self.size.width), 1))

    def _invalidate(self) -> None:
        """Drop every cached line, size the scroll area to the data and repaint all."""
        self._strips.clear()
        self._header = None
        width = sum(c.width + 2 * CELL_PADDING for c in self._columns)
        self.virtual_size = Size(width, len(self._keys) + 1)
        self.refresh()

    def _on_resize(self, event: events.Resize) -> None:
        self._scroll_to_cursor()

    def render_lines(self, crop: Region) -> list[Strip]:
        # Once per paint, not per line: the styles every line is drawn with.
        look = (
            self.rich_style,
            self.get_component_rich_style("livetable--header"),
            self.get_component_rich_style("livetable--cursor"),
        )
        if look != self._look:
            if self._look is not None:
                self.refresh()  # every line in the new look, not only the ones due
            self._look = look
            self._strips.clear()
            self._header = None
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        assert self._look is not None  # set by render_lines
        base, header, cursor = self._look
        scroll_x, top = self.scroll_offset
        width = self.size.width
        if y == 0:
            if self._header is None:
                self._header = self._draw([Text(c.label) for c in self._columns], base + header)
            return self._header.crop_extend(scroll_x, scroll_x + width, base)
        index = top + y - 1
        if index >= len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[index]
        strip = self._strips.get(key)
        if strip is None:
            on_cursor = index == self._cursor
            row = self._row_styles.get(key)
            if on_cursor:
                style = base + cursor + Style(bold=True) if row is not None and row.bold else base + cursor
            else:
                style = base + row if row is not None else base
            strip = self._draw(self._cells[key], style, on_cursor)
            self._strips[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _draw(self, cells: Sequence[Cell], style: Style, on_cursor: bool = False) -> Strip:
        """One row (or the header) as a Strip the full width of the columns."""
        line = Text(style=style, end="", no_wrap=True)
        pad = " " * CELL_PADDING
        for column, cell in zip(self._columns, cells, strict=False):
            line.append(pad)
            line.append_text(_fit(cell, column))
            line.append(pad)
        if on_cursor and style.color is not None:
            # The cursor's colour wins over the cells' own (as in DataTable).
            line.stylize(Style(color=style.color))
        # (Text.render drops the text's own style when it has no spans.)
        segments = list(line.render(self.app.console)) if line.spans else [Segment(line.plain, style)]
        return Strip(segments, line.cell_len)


def _style(style: Style | str) -> Style:
    return Style.parse(style) if isinstance(style, str) else style


def _fit(cell: Cell, column: Column) -> Text:
    """``cell`` exactly ``column.width`` cells wide: cut (with its overflow) and aligned."""
    text = cell.copy() if isinstance(cell, Text) else Text(str(cell))
    if "\n" in text.plain:
        text.plain = text.plain.replace("\n", " ")
    width = column.width
    if text.cell_len > width:
        text.truncate(width, overflow=text.overflow or "ellipsis")
    gap = width - text.cell_len
    if gap > 0:
        if column.right or text.justify == "right":
            text.pad_left(gap)
        else:
            text.pad_right(gap)
    return text
