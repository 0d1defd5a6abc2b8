"""The Energy screen's flow: a sankey-like text picture of where the power goes.

Pure: from an `Energy.Summary` (its wire form, a dict) to a layout, and from a layout to
lines of Rich text of a given size. No Textual, no I/O, no clock.

Columns run left to right: the sources (grid, DG, solar), then the top of the consumption
tree (the main, or the feeders when there is no main), then each level below (feeders,
loads). Every node is a box with its name and kW; the band leading into it is a run of
shade characters whose *height* in rows is proportional to its power. Each node's rows
are shared out among its children and its loss (the parent's power the children do not
account for) by largest-remainder rounding, so the children's rows plus the loss rows
always add up to the parent's rows: the picture never gains or loses power. A flow
that is not nothing gets at least one row while there is room, so a small load or loss
stays visible; one left without a row is named on the note line instead.

Look (ISA-101): boxes and bands in the widget's own grey; colour only where something is
abnormal: a loss in warning (amber), alarm or with a suspect CT (red), a meter offline
or a BAD value (red), degraded or UNCERTAIN (amber).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

SOURCE_TYPES = ("grid", "generator", "solar")
LOSS_STYLE = {"ok": "", "warning": "bold yellow", "alarm": "bold red", "suspect_ct": "bold red", "incomplete": "dim"}
STATUS_STYLE = {"online": "", "degraded": "bold yellow", "offline": "bold red"}
QUALITY_STYLE = {"GOOD": "", "UNCERTAIN": "bold yellow", "BAD": "bold red"}
TITLES = {"grid": "Sources", "main": "Main", "feeder": "Feeders", "load": "Loads", "virtual": "Virtual"}
# Shades of the bands: siblings alternate so two neighbours do not merge into one band.
SHADES = ("▓", "▒")
LOSS_SHADE = "░"
BAND_W = 3  # cells of band between two columns (2 when the columns are narrow)
MIN_BOX_W = 10

Summary = Mapping[str, Any]


# ---------------------------------------------------------------------- rounding


def allocate(total: int, weights: Sequence[float | None], min_one: bool = True) -> list[int]:
    """Share ``total`` rows among ``weights`` in proportion (largest remainder).

    None, zero and negative weights get no row. The rows add up to ``total`` whenever
    some weight is positive (and to 0 when none is). With ``min_one`` every positive
    weight gets at least one row while there are rows enough, taken from the ones that
    got most beyond their exact share.
    """
    w = [max(0.0, x) if x is not None else 0.0 for x in weights]
    whole = sum(w)
    if total <= 0 or whole <= 0:
        return [0] * len(w)
    quotas = [x * total / whole for x in w]
    rows = [int(q) for q in quotas]
    left = total - sum(rows)
    # Largest remainders first; ties to the larger weight, then the first.
    order = sorted(range(len(w)), key=lambda i: (-(quotas[i] - rows[i]), -w[i], i))
    for i in order[:left]:
        rows[i] += 1
    if min_one:
        positive = [i for i, x in enumerate(w) if x > 0]
        if len(positive) <= total:
            for i in positive:
                if rows[i]:
                    continue
                donors = [j for j in positive if rows[j] > 1]
                if not donors:
                    break
                j = max(donors, key=lambda k: (rows[k] - quotas[k], rows[k], -k))
                rows[j] -= 1
                rows[i] = 1
    return rows


# ---------------------------------------------------------------------- layout


@dataclass
class Band:
    """One box (or loss, or gap) in a column: ``rows`` rows from ``top``."""

    name: str
    kind: str  # a meter type, "loss", "unknown" (not metered: a child without a reading) or "gap"
    kw: float | None
    top: int = 0
    rows: int = 0
    parent: str | None = None
    index: int = 0  # among its siblings (the band's shade)
    label: str = ""
    style: str = ""  # abnormal only
    has_children: bool = False


@dataclass
class FlowLayout:
    columns: list[list[Band]]
    titles: list[str]
    rows: int  # rows of bands (the title line and the note line not counted)
    notes: list[Text] = field(default_factory=list)

    def band(self, name: str) -> Band:
        """The band of meter ``name`` (KeyError if it is not drawn in any column)."""
        for column in self.columns:
            for b in column:
                if b.name == name and b.kind not in ("loss", "unknown", "gap"):
                    return b
        raise KeyError(name)

    def children_of(self, name: str) -> list[Band]:
        """The bands one column right of ``name`` that share out its rows (its loss too)."""
        return [b for column in self.columns for b in column if b.parent == name]


def fmt_kw(kw: float | None) -> str:
    if kw is None:
        return "—"
    return f"{kw:,.0f}" if abs(kw) >= 1000 else f"{kw:.1f}"


def loss_label(kw: float | None, pct: float | None, status: str = "ok") -> str:
    text = f"loss {fmt_kw(kw)} kW"
    if pct is not None:
        text += f" {pct:.1f} %"
    if status == "suspect_ct":
        text += " suspect CT"
    return text


def meter_style(m: Mapping[str, Any]) -> str:
    """Colour of a meter only when it is abnormal: not online, or its value not GOOD."""
    return STATUS_STYLE.get(m.get("status", "online"), "bold red") or QUALITY_STYLE.get(
        m.get("quality", "GOOD"), "bold red"
    )


def _kw(m: Mapping[str, Any]) -> float | None:
    kw = m.get("kw")
    return None if kw is None or m.get("status") == "offline" else float(kw)


def flow_layout(summary: Summary, rows: int) -> FlowLayout:
    """Lay the summary out in ``rows`` rows of bands; see the module docstring."""
    meters = list(summary.get("meters") or [])
    by_name = {m["name"]: m for m in meters}
    sources = [m for m in (summary.get("sources") or []) if m.get("type") in SOURCE_TYPES] or [
        m for m in meters if m.get("type") in SOURCE_TYPES
    ]
    source_names = {m["name"] for m in sources}
    losses = {x["parent"]: x for x in summary.get("losses") or []}
    consumers = [m for m in meters if m["name"] not in source_names]
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for m in consumers:
        parent = m.get("parent")
        # The top of the consumption tree hangs off a source (grid -> main) or nothing.
        key = parent if parent in by_name and parent not in source_names else None
        children.setdefault(key, []).append(m)
    roots = children.get(None, [])
    notes: list[Text] = []
    # A bus without a reading of its own (a main that only joins the sources hung under
    # it) carries what its sources bring in.
    inflow: dict[str, float] = {}
    for m in sources:
        if m.get("parent") in by_name and (k := _kw(m)) is not None:
            inflow[m["parent"]] = inflow.get(m["parent"], 0.0) + k

    def kw_of(m: Mapping[str, Any]) -> float | None:
        kw = _kw(m)
        return inflow.get(m["name"]) if kw is None and m.get("status") != "offline" else kw

    src_kw = sum(k for m in sources if (k := _kw(m)) is not None and k > 0)
    root_kw = sum(k for m in roots if (k := kw_of(m)) is not None and k > 0)
    total = max(src_kw, root_kw)
    # Below this a difference is the meters' rounding, not a flow worth a row.
    tiny = max(0.05, 0.001 * total)
    columns: list[list[Band]] = []

    def note(m: Mapping[str, Any], why: str) -> None:
        t = Text(f"{m['name']} {why}")
        style = meter_style(m)
        if style:
            t.stylize(style)
        notes.append(t)

    def meter_band(m: Mapping[str, Any], parent: str | None, index: int) -> Band:
        kw = kw_of(m) if m["name"] not in source_names else _kw(m)
        return Band(
            m["name"],
            m.get("type", ""),
            kw,
            parent=parent,
            index=index,
            label=m["name"],
            style=meter_style(m),
            has_children=bool(children.get(m["name"])),
        )

    def place(bands: list[Band], weights: list[float | None], top: int, span: int) -> list[Band]:
        for b, n in zip(bands, allocate(span, weights), strict=True):
            b.top, b.rows = top, n
            top += n
        return bands

    # Column 0: the sources, and a gap for what the consumption side draws beyond them.
    if sources:
        col = [meter_band(m, None, i) for i, m in enumerate(sources)]
        weights: list[float | None] = [b.kw for b in col]
        if total - src_kw > tiny:
            col.append(Band("unmetered", "gap", total - src_kw, label="unmetered", style="dim"))
            weights.append(total - src_kw)
        columns.append(place(col, weights, 0, rows if total > 0 else 0))

    # Column 1: the top of the consumption tree, and the loss between it and the sources.
    col = [meter_band(m, None, i) for i, m in enumerate(roots)]
    weights = [b.kw for b in col]
    if sources and total - root_kw > tiny and root_kw > 0:
        loss = total - root_kw
        col.append(Band("loss", "loss", loss, label=loss_label(loss, 100 * loss / total)))
        weights.append(loss)
    if col:
        columns.append(place(col, weights, 0, rows if total > 0 else 0))

    # Each level below: a node's children and its loss share the node's rows.
    while columns and any(b.has_children for b in columns[-1]):
        col = []
        for parent in columns[-1]:
            if not parent.has_children:
                continue
            kids = [meter_band(m, parent.name, i) for i, m in enumerate(children[parent.name])]
            weights = [b.kw for b in kids]
            extra = _loss_band(parent, kids, losses.get(parent.name), tiny)
            if extra is not None:
                kids.append(extra)
                weights.append(extra.kw)
            col.extend(place(kids, weights, parent.top, parent.rows))
        columns.append(col)

    for column in columns:
        for b in column:
            if b.kind in ("loss", "unknown", "gap") or b.rows:
                continue
            m = by_name[b.name]
            if m.get("status") == "offline":
                note(m, "offline")
            elif b.kw is None:
                note(m, "no reading")
            elif b.kw > 0:
                note(m, f"{fmt_kw(b.kw)} kW")
    for parent, x in losses.items():
        # A loss the picture cannot draw (children above the parent) still says so.
        if x.get("status") in ("alarm", "suspect_ct", "warning") and not any(
            b.kind == "loss" and b.parent == parent and b.rows for column in columns for b in column
        ):
            t = Text(f"{parent}: {loss_label(x.get('loss_kw'), x.get('loss_pct'), x['status'])}")
            t.stylize(LOSS_STYLE.get(x["status"], ""))
            notes.append(t)
    return FlowLayout(columns, _titles(columns), rows, notes)


def _loss_band(parent: Band, kids: list[Band], loss: Mapping[str, Any] | None, tiny: float = 0.0) -> Band | None:
    """What the parent's power the children do not account for: its loss (or, with a child
    unread, an unknown share); None when there is none to draw."""
    if parent.kw is None:
        return None
    known = sum(b.kw for b in kids if b.kw is not None)
    rest = parent.kw - known
    status = (loss or {}).get("status", "ok")
    if any(b.kw is None for b in kids) or status == "incomplete":
        if rest <= tiny:
            return None
        return Band("unknown", "unknown", rest, parent=parent.name, label=f"unmetered {fmt_kw(rest)} kW", style="dim")
    kw = (loss or {}).get("loss_kw")
    kw = rest if kw is None else float(kw)
    pct = (loss or {}).get("loss_pct")
    if pct is None and parent.kw > 0:
        pct = 100 * kw / parent.kw
    if kw <= tiny:
        return None
    return Band(
        "loss",
        "loss",
        kw,
        parent=parent.name,
        label=loss_label(kw, pct, status),
        style=LOSS_STYLE.get(status, "bold red"),
    )


def _titles(columns: list[list[Band]]) -> list[str]:
    titles = []
    for n, column in enumerate(columns):
        kinds = [b.kind for b in column if b.kind not in ("loss", "unknown", "gap")]
        if kinds and all(k in SOURCE_TYPES for k in kinds):
            titles.append("Sources")
            continue
        common = max(set(kinds), key=lambda k: (kinds.count(k), k)) if kinds else ""
        titles.append(TITLES.get(common, f"Level {n}"))
    return titles


# ---------------------------------------------------------------------- drawing


def render_flow(summary: Summary | None, width: int, height: int) -> list[Text]:
    """The flow as ``height`` lines of ``width`` cells: a title line, the bands, and a
    note line when something could not be drawn."""
    if width < 8 or height < 1:
        return []
    if not summary or not (summary.get("meters") or summary.get("sources")):
        return _blank_lines(["no meters"], width, height)
    layout = flow_layout(summary, max(1, height - 1))
    if layout.notes and height >= 4:
        layout = flow_layout(summary, height - 2)
    return draw_layout(layout, width, height)


def _blank_lines(message: list[str], width: int, height: int) -> list[Text]:
    lines = [Text(m.center(width)[:width], style="dim") for m in message[:height]]
    return lines + [Text(" " * width) for _ in range(height - len(lines))]


def column_widths(n: int, width: int) -> tuple[list[int], int]:
    """Widths of ``n`` box columns and of the bands between them, in ``width`` cells."""
    band = BAND_W if width - (n - 1) * BAND_W >= n * 14 else 2
    room = width - (n - 1) * band
    box = max(1, room // n)
    widths = [box] * n
    widths[-1] += room - box * n
    return widths, band


def draw_layout(layout: FlowLayout, width: int, height: int) -> list[Text]:
    columns = layout.columns
    # Too narrow for every level: keep the ones to the left (the tree lists the rest).
    while len(columns) > 1 and (width - (len(columns) - 1) * 2) // len(columns) < MIN_BOX_W:
        columns = columns[:-1]
    n = len(columns)
    if n == 0:
        return _blank_lines(["no meters"], width, height)
    widths, band_w = column_widths(n, width)
    lines: list[Text] = []
    title = Text(no_wrap=True)
    for c, w in enumerate(widths):
        title.append(_fit(layout.titles[c], w), "bold")
        if c < n - 1:
            title.append(" " * band_w)
    lines.append(title)
    # Which band covers each row, per column.
    at: list[list[Band | None]] = []
    for column in columns:
        rows: list[Band | None] = [None] * layout.rows
        for b in column:
            for y in range(b.top, min(layout.rows, b.top + b.rows)):
                rows[y] = b
        at.append(rows)
    for y in range(layout.rows):
        line = Text(no_wrap=True)
        for c, w in enumerate(widths):
            b = at[c][y]
            line.append_text(_box_cell(b, y, w))
            if c < n - 1:
                line.append_text(
                    _band_cell(at[c][y] if c == 0 and layout.titles[0] == "Sources" else at[c + 1][y], band_w)
                )
        lines.append(line)
    if layout.notes and len(lines) < height:
        note = Text("not drawn: ", style="dim", no_wrap=True, overflow="ellipsis")
        for i, t in enumerate(layout.notes):
            if i:
                note.append(", ")
            note.append_text(t)
        note.truncate(width, overflow="ellipsis", pad=True)
        lines.append(note)
    while len(lines) < height:
        lines.append(Text(" " * width))
    return lines[:height]


def _fit(text: str, width: int) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.ljust(width)


def _box_cell(b: Band | None, y: int, width: int) -> Text:
    if b is None:
        return Text(" " * width)
    first = y == b.top
    if b.kind in ("loss", "unknown"):
        shade = LOSS_SHADE if b.kind == "loss" else " "
        # "loss 5.0 kW 5.0 %" on one row when it fits, else over two rows, else shortened.
        label, second = b.label, ""
        if b.kind == "loss" and len(label) > width and " kW " in label:
            head, tail = label.split(" kW ", 1)
            label, second = (f"{head} kW", tail) if b.rows >= 2 else (f"{head} kW", "")
        if y == b.top + 1 and second:
            label = second
            first = True
        if first:
            label = _fit(label, width).rstrip()
            body = label + (" " if len(label) < width else "") + shade * max(0, width - len(label) - 1)
            return Text(body[:width], style=b.style)
        return Text(shade * width, style=b.style)
    if b.kind == "gap":
        return Text(_fit(b.label, width) if first else " " * width, style="dim")
    # A box: reverse video, the name on its first row and the kW on its second (or both on one).
    style = f"reverse {b.style}".strip()
    kw = f"{fmt_kw(b.kw)} kW" if b.kw is not None else "—"
    if first and b.rows == 1:
        name_w = max(1, width - len(kw) - 3)
        body = " " + _fit(b.label, name_w).rstrip().ljust(name_w) + kw.rjust(width - name_w - 2) + " "
        text = Text(_fit(body, width), style=style)
        text.stylize("bold", 0, 1 + min(len(b.label), name_w))
        return text
    if first:
        text = Text(_fit(" " + b.label, width), style=style)
        text.stylize("bold")
        return text
    if y == b.top + 1:
        return Text(_fit(kw.rjust(width - 1) + " ", width), style=style)
    return Text(" " * width, style=style)


def _band_cell(b: Band | None, width: int) -> Text:
    if b is None or b.kind == "gap":
        return Text(" " * width)
    if b.kind == "unknown":
        return Text("┄" * width, style="dim")
    if b.kind == "loss":
        return Text(LOSS_SHADE * width, style=b.style)
    return Text(SHADES[b.index % 2] * width)
