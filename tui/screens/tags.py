"""The tag browser: the tag hierarchy as a tree beside a table of live values.

Live values come from one `Tags.Watch` stream. Its handler only keeps the newest value
per tag; a 0.2 s tick writes what changed into the cells of rows on show (never
rebuilding the table) and, once a second, re-ages the rows in view. The table is rebuilt
only when what the operator asked to see changes: tree node, search text, sort, width.

The table is a `LiveTable`: a changed cell repaints its own row's line when that row is
in view and only stores the value otherwise, so the cost of a tick follows the rows in
view that changed, not the number of tags.

Pace: the daemon batches the stream every 100 ms and the tick draws every 200 ms, so a
value is on screen within about 0.3 s of scadad taking it, and the table is repainted at
most five times a second however fast the values come. (bench/console.py, 1,000 tags
changing every second: the same CPU at 0.1, 0.2 and 0.3 s ticks, about 5 % of a core;
delay p99 about 190, 290 and 400 ms.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from tui import format as fmt
from tui.link import Subscription
from tui.screens.base import ConsoleScreen
from tui.screens.tag_detail import TagDetailScreen, write_tag
from tui.widgets.live_table import CELL_PADDING, Column, LiveTable

SORTS = ("path", "value", "quality", "age")
SORT_COLUMN = {"path": "tag", "value": "value", "quality": "quality", "age": "age"}
SORT_MARK = {"path": " ▲", "value": " ▲", "quality": " ▲", "age": " ▼"}  # age: oldest first
QUALITY_RANK = {"BAD": 0, "UNCERTAIN": 1, "GOOD": 2}

# Keep in step with DEFAULT_CSS below: the table's columns are sized from these.
TREE_W = 22
TREE_W_WIDE = 32
WIDE_AT = 120  # screen columns from which the tree (and quality column) get wider
SCROLLBAR_W = 1
PAD = 2 * CELL_PADDING

WATCH_INTERVAL_MS = 100
FLUSH_S = 0.2
AGE_EVERY_S = 1.0
# The daemon's own health tags (per device) stream with the rest but are not in
# Tags.List; the Devices screen shows them.
SYSTEM_PREFIX = "_system/"


# ---------------------------------------------------------------------- pure helpers


def column_plan(avail: int, wide: bool) -> tuple[Column, ...]:
    """Columns for a table ``avail`` cells wide: fixed value/units/quality/age, the tag
    path gets the rest, and a description column appears once there is room for it."""
    value = Column("value", "Value", 11, right=True)
    units = Column("units", "Units", 5)
    quality = Column("quality", "Quality", 18 if wide else 10)
    age = Column("age", "Age", 5, right=True)  # room for "Age ▼"
    fixed = value.width + units.width + quality.width + age.width + 5 * PAD
    rest = avail - fixed
    if rest >= 64:
        tag = Column("tag", "Tag", 36)
        return (tag, value, units, quality, age, Column("desc", "Description", rest - tag.width - PAD))
    return (Column("tag", "Tag", max(12, rest)), value, units, quality, age)


def left_ellipsis(text: str, width: int) -> str:
    """Shorten from the left: the end of a tag path (the point) is what tells tags apart."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def relative(path: str, prefix: str) -> str:
    return path[len(prefix) + 1 :] if prefix and path.startswith(prefix + "/") else path


def in_subtree(path: str, prefix: str) -> bool:
    return not prefix or path.startswith(prefix + "/")


def matches(spec: dict[str, Any], query: str) -> bool:
    """Case-insensitive substring on the path and the description."""
    q = query.strip().lower()
    return not q or q in spec["path"].lower() or q in (spec.get("description") or "").lower()


def folders(paths: Iterable[str]) -> list[str]:
    """Every folder prefix of the paths (site, site/device ...), parents before children."""
    out: set[str] = set()
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            out.add("/".join(parts[:i]))
    return sorted(out, key=lambda f: (f.count("/"), f))


def sort_paths(paths: Iterable[str], by: str, values: dict[str, dict[str, Any]], now: float) -> list[str]:
    """Rows in the order asked for; ties (and the path sort) by path, so it is stable.

    value: numbers ascending, then text, then no value; quality: BAD, UNCERTAIN, GOOD;
    age: oldest first (never updated first), so what has stopped updating comes first.
    """
    if by == "value":

        def key(p: str) -> tuple[Any, ...]:
            x = values.get(p, {}).get("value")
            if isinstance(x, (bool, int, float)) and not (isinstance(x, float) and math.isnan(x)):
                return (0, float(x), "", p)
            return (1, 0.0, str(x), p) if x is not None else (2, 0.0, "", p)

    elif by == "quality":

        def key(p: str) -> tuple[Any, ...]:
            v = values.get(p, {})
            return (QUALITY_RANK.get(v.get("quality", "BAD"), 0), p)

    elif by == "age":

        def key(p: str) -> tuple[Any, ...]:
            age = fmt.age_s(now, values.get(p, {}).get("server_time"))
            return (0, 0.0, p) if age is None else (1, -age, p)

    else:

        def key(p: str) -> tuple[Any, ...]:
            return (p,)

    return sorted(paths, key=key)


def node_label(name: str, total: int, bad: int, uncertain: int) -> Text:
    """A tree folder: its name and tag count; BAD and UNCERTAIN counts in colour."""
    t = Text(name, no_wrap=True, overflow="ellipsis")
    t.append(f" {total}", style="dim")
    if bad:
        t.append(f" ✖{bad}", style=fmt.QUALITY_STYLE["BAD"])
    if uncertain:
        t.append(f" ?{uncertain}", style=fmt.QUALITY_STYLE["UNCERTAIN"])
    return t


def _ellipsis(t: Text) -> Text:
    t.no_wrap = True
    t.overflow = "ellipsis"
    return t


# ---------------------------------------------------------------------- widgets


class TagTable(LiveTable):
    """The live values; Enter opens the tag under the cursor."""

    BINDINGS = [Binding("enter", "select_cursor", "Details")]


class TagsScreen(ConsoleScreen):
    """Tag browser: hierarchy tree, searchable sortable live table, details, writes."""

    TITLE = "Tags"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("escape", "clear_search", "Clear search", show=False),
        Binding("s", "cycle_sort", "Sort"),
        Binding("b", "toggle_tree", "Tree"),
        Binding("w", "write", "Write"),
    ]
    DEFAULT_CSS = f"""
    TagsScreen #tags-body {{ height: 1fr; }}
    TagsScreen #tag-tree {{ width: {TREE_W}; height: 1fr; background: $surface; scrollbar-size-vertical: 1; }}
    TagsScreen.-wide #tag-tree {{ width: {TREE_W_WIDE}; }}
    TagsScreen.-no-tree #tag-tree {{ display: none; }}
    TagsScreen #tags-main {{ width: 1fr; height: 1fr; }}
    TagsScreen #tag-search {{ display: none; height: 1; border: none; padding: 0 1; background: $panel; }}
    TagsScreen.-searching #tag-search {{ display: block; }}
    TagsScreen #tag-table {{ height: 1fr; scrollbar-size-vertical: {SCROLLBAR_W}; }}
    TagsScreen #tags-status {{ height: 1; padding: 0 1; color: $text-muted; }}
    """

    def __init__(self) -> None:
        super().__init__()
        self.specs: dict[str, dict[str, Any]] = {}
        self.values: dict[str, dict[str, Any]] = {}  # newest value of every tag, shown or not
        self._pending: dict[str, dict[str, Any]] = {}  # arrived since the last _flush
        self.shown: set[str] = set()  # paths with a row in the table now
        self.ages: dict[str, str] = {}  # age text last drawn per shown row
        self.subtree = ""  # selected tree folder ("" = every tag)
        self.query_text = ""
        self.sort_by = "path"
        self.plan: tuple[Column, ...] = ()
        self.nodes: dict[str, TreeNode[str]] = {}
        self.unknown: set[str] = set()  # watched paths not in the list (each reloads it once)
        self.sub: Subscription | None = None
        self._live_timer: Timer | None = None
        self._aged_at = 0.0  # time.monotonic() of the last age refresh
        self._filter_timer: Timer | None = None
        self._reload_pending = False
        self._tree_counts: dict[str, tuple[int, int, int]] = {}
        self._counts_stale = True  # a quality changed since the tree's counts were drawn

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="tags-body"):
            tree: Tree[str] = Tree("all tags", data="", id="tag-tree")
            tree.guide_depth = 2
            yield tree
            with Vertical(id="tags-main"):
                yield Input(placeholder="search path or description (Enter: to table, Esc: clear)", id="tag-search")
                yield TagTable(id="tag-table", classes="live")
                yield Static(id="tags-status")

    @property
    def table(self) -> TagTable:
        return self.query_one(TagTable)

    def table_rows(self) -> int:
        """Rows on show (benchmarks and tests wait on it)."""
        return self.table.row_count

    def on_mount(self) -> None:
        self._live_timer = self.set_interval(FLUSH_S, self._tick)
        self.table.focus()

    def on_unmount(self) -> None:
        if self.sub is not None:
            self.sub.cancel()

    def on_screen_suspend(self) -> None:
        # Under a tag detail or another mode: keep collecting, stop drawing.
        if self._live_timer is not None:
            self._live_timer.pause()

    def on_screen_resume(self) -> None:
        if self._live_timer is not None:  # None until mounted
            self._live_timer.resume()
            self._aged_at = 0.0
            self._tick()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= WIDE_AT, "-wide")
        self._layout_columns()

    # ------------------------------------------------------------------ loading

    async def on_link_up(self) -> None:
        result = await self.call("Tags.List", {"pattern": "**"})
        specs = {t["spec"]["path"]: t["spec"] for t in result.get("tags", [])}
        new_paths, new_specs = specs.keys() != self.specs.keys(), specs != self.specs
        self.specs = specs
        self._counts_stale = True
        # After a reconnect or login the list is usually the same: then the rows stay
        # and the listed values go through `_flush` like streamed ones (a value that
        # streamed in meanwhile is newer and wins); a changed definition rebuilds them.
        for t in result.get("tags", []):
            path = t["spec"]["path"]
            if new_specs:
                self.values[path] = self._pending.pop(path, None) or t["value"]
            else:
                self._pending.setdefault(path, t["value"])
        if new_paths:
            self._build_tree()
        if new_specs:
            self._fill_rows()
        if self.sub is None:
            self.sub = self.link.subscribe(
                "Tags.Watch",
                {"patterns": ["**"], "initial": True, "min_interval_ms": WATCH_INTERVAL_MS},
                self.on_tag_values,
                on_error=self.console.report_error,
            )

    def on_tag_values(self, event: dict[str, Any]) -> None:
        """Stream handler: remember the newest value per tag; `_flush` draws them."""
        for v in event.get("values", []):
            self._pending[v["path"]] = v

    def _tick(self) -> None:
        """Draw what arrived and, once a second, re-age the rows in view: in the same
        frame, so a row whose value and age both change is drawn once."""
        self._flush()
        mono = time.monotonic()
        if mono - self._aged_at >= AGE_EVERY_S:
            self._aged_at = mono
            self.refresh_ages()
        self._update_tree_labels()

    def _flush(self) -> None:
        """Write the values that changed into the rows on show, in place."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        new_tags = False
        table = self.table
        now = self.now()
        for path, v in batch.items():
            old = self.values.get(path)
            if old is None or old.get("quality") != v.get("quality"):
                self._counts_stale = True
            self.values[path] = v
            if path not in self.specs:
                if path not in self.unknown and not path.startswith(SYSTEM_PREFIX):
                    self.unknown.add(path)
                    new_tags = True
                continue
            if path not in self.shown:
                continue
            quality = v.get("quality", "BAD")
            old = old or {}
            if old.get("value") != v.get("value") or old.get("quality") != quality:
                table.update_cell(path, "value", fmt.value_text(v.get("value"), quality))
            if old.get("quality") != quality or old.get("reason") != v.get("reason"):
                table.update_cell(path, "quality", self._quality(v))
            age = fmt.format_age(fmt.age_s(now, v.get("server_time")))
            if self.ages.get(path) != age:
                self.ages[path] = age
                table.update_cell(path, "age", self._age(age))
        if new_tags and not self._reload_pending:
            # A tag was added while we watched: reload the list (once for a burst).
            self._reload_pending = True
            self.set_timer(2.0, self._reload_for_new_tags)

    def _reload_for_new_tags(self) -> None:
        self._reload_pending = False
        self.run_worker(self._load, exclusive=True, group="load")

    def refresh_ages(self) -> None:
        """Re-age the rows in view (only those whose text changes)."""
        table = self.table
        now = self.now()
        for path in table.visible_keys():
            age = fmt.format_age(fmt.age_s(now, self.values.get(path, {}).get("server_time")))
            if self.ages.get(path) != age:
                self.ages[path] = age
                table.update_cell(path, "age", self._age(age))

    # ------------------------------------------------------------------ tree

    def _build_tree(self) -> None:
        tree: Tree[str] = self.query_one(Tree)
        first = not self.nodes
        tree.clear()
        tree.root.data = ""
        self.nodes = {"": tree.root}
        for folder in folders(self.specs):
            parent, _, name = folder.rpartition("/")
            node = self.nodes[parent].add(name, data=folder, expand=folder.count("/") < 1)
            self.nodes[folder] = node
        tree.root.expand()
        if self.subtree not in self.nodes or first:
            # One site (the usual case): start inside it, so rows don't all repeat its name.
            sites = [f for f in self.nodes if f and "/" not in f]
            self.subtree = sites[0] if len(sites) == 1 else ""
        self._tree_counts = {}
        self._counts_stale = True
        self._update_tree_labels()
        # The tree lays out its lines on the next refresh; the cursor can only move then.
        self.call_after_refresh(tree.move_cursor, self.nodes[self.subtree])

    def _update_tree_labels(self) -> None:
        """Tag counts per folder, with BAD/UNCERTAIN counts: where to look, at a glance."""
        if not self.nodes or not self._counts_stale:
            return
        self._counts_stale = False
        counts: dict[str, list[int]] = {f: [0, 0, 0] for f in self.nodes}
        for path in self.specs:
            q = self.values.get(path, {}).get("quality", "BAD")
            parts = path.split("/")
            for i in range(len(parts)):
                c = counts.get("/".join(parts[:i]))
                if c is not None:
                    c[0] += 1
                    c[1] += q == "BAD"
                    c[2] += q == "UNCERTAIN"
        for folder, (total, bad, unc) in counts.items():
            if self._tree_counts.get(folder) != (total, bad, unc):
                self._tree_counts[folder] = (total, bad, unc)
                name = "all tags" if not folder else folder.rpartition("/")[2]
                self.nodes[folder].set_label(node_label(name, total, bad, unc))

    @on(Tree.NodeHighlighted, "#tag-tree")
    def _tree_moved(self, event: Tree.NodeHighlighted[str]) -> None:
        folder = event.node.data or ""
        if folder != self.subtree:
            self.subtree = folder
            self._fill_rows()

    @on(Tree.NodeSelected, "#tag-tree")
    def _tree_chosen(self, event: Tree.NodeSelected[str]) -> None:
        if not event.node.children:
            self.table.focus()

    # ------------------------------------------------------------------ table

    def _layout_columns(self) -> None:
        width = self.size.width
        if not width:
            return
        wide = width >= WIDE_AT
        tree_w = 0 if self.has_class("-no-tree") else TREE_W_WIDE if wide else TREE_W
        plan = column_plan(width - tree_w - SCROLLBAR_W, wide)
        if plan != self.plan:
            self.plan = plan
            self._fill_rows(columns=True)

    def _fill_rows(self, columns: bool = False) -> None:
        """Rebuild the rows (and the columns) for the current node, search and sort; the
        cursor stays on its tag if that is still listed."""
        if not self.plan:
            return  # not laid out yet: the first resize fills the table
        table = self.table
        if columns or not table.columns:
            sort_key = SORT_COLUMN[self.sort_by]
            mark = SORT_MARK[self.sort_by]
            table.set_columns(replace(c, label=c.label + mark) if c.key == sort_key else c for c in self.plan)
        paths = [p for p, s in self.specs.items() if in_subtree(p, self.subtree) and matches(s, self.query_text)]
        now = self.now()
        self.shown = set(paths)
        self.ages = {}
        keys = {c.key for c in self.plan}
        tag_w = next((c.width for c in self.plan if c.key == "tag"), 20)
        rows: list[tuple[str, list[Text]]] = []
        for path in sort_paths(paths, self.sort_by, self.values, now):
            spec = self.specs[path]
            v = self.values.get(path, {})
            age = fmt.format_age(fmt.age_s(now, v.get("server_time")))
            self.ages[path] = age
            name = left_ellipsis(relative(path, self.subtree), tag_w - (2 if spec.get("writable") else 0))
            tag = Text(name, no_wrap=True, overflow="ellipsis")
            if spec.get("writable"):
                tag.append(" ✎", style="dim")
            cells = [
                tag,
                fmt.value_text(v.get("value"), v.get("quality", "BAD")),
                _ellipsis(Text(spec.get("units") or "")),
                self._quality(v),
                self._age(age),
            ]
            if "desc" in keys:
                cells.append(_ellipsis(Text(spec.get("description") or "", style="dim")))
            rows.append((path, cells))
        table.set_rows(rows)
        self._show_status()

    def _quality(self, v: dict[str, Any]) -> Text:
        return _ellipsis(fmt.quality_text(v.get("quality", "BAD"), v.get("reason")))

    @staticmethod
    def _age(age: str) -> Text:
        return Text(age, justify="right")

    def _show_status(self) -> None:
        parts = [f"{len(self.shown)} of {len(self.specs)} tags"]
        if self.subtree:
            parts.append(f"in {self.subtree}/")
        if self.query_text:
            parts.append(f"matching “{self.query_text}”")
        parts.append(f"sort: {self.sort_by}")
        if self.has_class("-no-tree"):
            parts.append("tree hidden (b)")
        self.query_one("#tags-status", Static).update(Text(" · ".join(parts), no_wrap=True, overflow="ellipsis"))

    def cursor_path(self) -> str | None:
        return self.table.cursor_key

    @on(LiveTable.RowSelected, "#tag-table")
    def _row_chosen(self, event: LiveTable.RowSelected) -> None:
        path = event.key
        if path in self.specs:
            self.app.push_screen(
                TagDetailScreen(path, self.specs[path], self._pending.get(path) or self.values.get(path))
            )

    # ------------------------------------------------------------------ search

    @on(Input.Changed, "#tag-search")
    def _search_typed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        if self._filter_timer is not None:
            self._filter_timer.stop()
        # Typing fast: filter once the keys pause, not on every key of a big plant.
        self._filter_timer = self.set_timer(0.1, self._fill_rows)

    @on(Input.Submitted, "#tag-search")
    def _search_done(self, event: Input.Submitted) -> None:
        self.table.focus()
        if not self.query_text:
            self.remove_class("-searching")

    def action_search(self) -> None:
        self.add_class("-searching")
        self.query_one("#tag-search", Input).focus()
        self.refresh_bindings()

    def action_clear_search(self) -> None:
        box = self.query_one("#tag-search", Input)
        self.remove_class("-searching")
        self.table.focus()
        if box.value:
            box.value = ""  # its Input.Changed refills the table
            self.query_text = ""
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_search":
            return self.has_class("-searching") or bool(self.query_text)
        return True

    # ------------------------------------------------------------------ actions

    def action_cycle_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self._fill_rows(columns=True)
        self.notify(f"Sorted by {self.sort_by}.", timeout=2)

    def action_toggle_tree(self) -> None:
        self.toggle_class("-no-tree")
        if self.has_class("-no-tree") and self.query_one(Tree).has_focus:
            self.table.focus()
        self._layout_columns()
        self._show_status()

    def action_write(self) -> None:
        path = self.cursor_path()
        if path is None or path not in self.specs:
            self.notify("No tag under the cursor.", severity="warning", timeout=3)
            return
        self.run_worker(self._write(path), exclusive=True, group="write")

    async def _write(self, path: str) -> None:
        try:
            await write_tag(self, self.specs[path], self._pending.get(path) or self.values.get(path))
        except Exception as exc:  # noqa: BLE001 - a failed write must not take the console down
            self.console.report_error(exc)
