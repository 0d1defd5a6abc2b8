"""TrendPlot: plotext drawn inside a Textual widget, sized to the widget.

    plot = TrendPlot(); plot.set_pens(pens, start, end)
    render_bars(labels, series, width, height)  # stacked bars (tui.widgets.bar_plot)

plotext (6.x, its object API) is imported here and nowhere else in the console. It keeps
one global figure, so each draw clears it first and finishes before returning (renders
run on the app's thread, one at a time). The result is cached per size, data and theme:
a resize or `set_pens` redraws, a plain repaint does not.

Drawing is deterministic: it depends on the pens, [start, end], the widget's size, the
site's zone and the theme, never on the wall clock, so snapshot tests stay still.

Look (ISA-101): the frame, ticks and labels are the widget's muted text colour; only the
pens carry a colour, a muted one, distinct per pen. A BAD stretch (None) is a hole in
the line, never a drop to zero.
"""

from __future__ import annotations

import re
from datetime import UTC, tzinfo
from typing import Any

import plotext
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.trend_data import Pen, tick_label, time_ticks, value_ticks

# Muted pen colours, distinct from one another and from alarm red/amber.
PEN_COLORS_DARK = ["#8fb3d9", "#9fcfc4", "#b9a3d6", "#c4c9a0", "#d6a3c4", "#a0b8a0", "#d0d0d0", "#a7b0c8"]
PEN_COLORS_LIGHT = ["#2f5f8f", "#2f7f72", "#6a4f9a", "#6b7030", "#8f3f70", "#4f6f4f", "#404040", "#3f4f7f"]

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def pen_color(index: int, dark: bool = True) -> str:
    """The colour of pen ``index`` (the legend uses it too)."""
    colors = PEN_COLORS_DARK if dark else PEN_COLORS_LIGHT
    return colors[index % len(colors)]


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def ansi_to_text(ansi: str) -> Text:
    """plotext's output as Rich text: only its 24-bit foregrounds become styles.

    Unstyled cells (frame, ticks, labels) keep the widget's own colour. Much faster than
    `Text.from_ansi` on a full-screen plot, since plotext writes only these codes.
    """
    out = Text(no_wrap=True, overflow="crop")
    styles: dict[str, Style] = {}
    for n, line in enumerate(ansi.rstrip("\n").split("\n")):
        if n:
            out.append("\n")
        style: Style | None = None
        pos = 0
        for m in _SGR.finditer(line):
            if m.start() > pos:
                out.append(line[pos : m.start()], style)
            code = m.group(1)
            if code.startswith("38;2;"):
                style = styles.get(code)
                if style is None:
                    r, g, b = code[5:].split(";")[:3]
                    style = styles[code] = Style(color=f"rgb({r},{g},{b})")
            elif code.startswith("38;5;"):
                style = Style(color=f"color({code[5:]})")
            elif code in ("0", ""):
                style = None
            pos = m.end()
        if pos < len(line):
            out.append(line[pos:], style)
    return out


def runs(
    times: list[float], values: list[float | None], start: float, end: float
) -> list[tuple[list[float], list[float]]]:
    """The stretches of a pen with values, split at gaps, clipped to [start, end].

    The last point before ``start`` is kept so a line enters the plot from its left edge.
    """
    out: list[tuple[list[float], list[float]]] = []
    xs: list[float] = []
    ys: list[float] = []
    first = 0
    while first + 1 < len(times) and times[first + 1] <= start:
        first += 1
    for t, v in zip(times[first:], values[first:], strict=True):
        if t > end:
            break
        if v is None:
            if xs:
                out.append((xs, ys))
            xs, ys = [], []
            continue
        xs.append(t)
        ys.append(v)
    if xs:
        out.append((xs, ys))
    return out


def axis_sides(pens: list[Pen]) -> list[int]:
    """Which y axis each pen is read on: 0 left, 1 right.

    Pens share the left axis, unless they carry exactly two different units: then the
    first pen's units are on the left and the other units on the right, so a current
    in A is not flattened against a power in kW.
    """
    units = list(dict.fromkeys(p.units for p in pens))
    if len(units) != 2:
        return [0] * len(pens)
    return [0 if p.units == units[0] else 1 for p in pens]


def _y_axis(fig: Any, side: int, values: list[float], height: int) -> int:
    """Set one y axis's range and round ticks; returns its label width."""
    low, high, ticks = value_ticks(min(values), max(values), max(2, min(5, (height - 2) // 2 + 1)))
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    labels = [tick_label(v, step) for v in ticks]
    fig.ruler("y", side).lim(low, high)
    fig.ruler("y", side).ticks(ticks, labels)
    return max(len(x) for x in labels) + 1


def render_plot(
    pens: list[Pen],
    start: float,
    end: float,
    width: int,
    height: int,
    tz: tzinfo = UTC,
    dark: bool = True,
    compact: bool = False,
    colors: list[str] | None = None,
) -> Text:
    """Draw ``pens`` over [start, end] into ``width`` × ``height`` cells.

    ``compact`` is a sparkline: no frame, no ticks, just the lines. ``colors`` overrides
    the theme's pen colours (one per pen).
    """
    if width < 4 or height < 1:
        return Text("")
    if not compact and (width < 20 or height < 5):
        compact = True  # too small for axes: a sparkline still says something
    stretches = [(i, runs(p.times, p.values, start, end)) for i, p in enumerate(pens)]
    values = [y for _, rs in stretches for _, ys in rs for y in ys]
    if not values or end <= start:
        message = "no data in this span" if pens else "no pens"
        return Text(message.center(width)[:width] + "\n" * max(0, height // 2), style="dim")
    sides = [0] * len(pens) if compact else axis_sides(pens)
    by_side: dict[int, list[float]] = {}
    for (_, rs), side in zip(stretches, sides, strict=True):
        by_side.setdefault(side, []).extend(y for _, ys in rs for y in ys)
    if compact:  # one scale: a sparkline has no axis to read a second one on
        by_side = {0: values}
    fig = plotext.figure
    plotext.terminal.limit(False, False)  # the widget, not the terminal, decides the size
    fig.clear()
    fig.theme("colorless")
    fig.plot_size(width, height)
    for (i, rs), side in zip(stretches, sides, strict=True):
        color = colors[i] if colors and i < len(colors) else pen_color(i, dark)
        marker = plotext.marker("braille", plotext.pixel(foreground=_rgb(color)))
        for xs, ys in rs:
            sig = fig.signal(xs, ys, marker=marker, yside="right" if side else "left")
            if len(xs) > 1:
                sig.lines()
            fig.draw(sig)
    fig.ruler("x").lim(start, end)
    if compact:
        low, high, _ = value_ticks(min(values), max(values), 2)
        fig.ruler("y").lim(low, high)
        fig.axes(False)
        fig.ruler("x").ticks([])
        fig.ruler("y").ticks([])
    else:
        label_w = sum(_y_axis(fig, side, ys, height) for side, ys in by_side.items() if ys)
        xpos, xlabels = time_ticks(start, end, tz, max(2, (width - label_w) // 10))
        fig.ruler("x").ticks(xpos, xlabels)
    return ansi_to_text(fig.build().string())


class TrendPlot(Widget):
    """One or more pens over [start, end] (epoch seconds); redrawn on resize or new data.

    ``compact=True`` draws a sparkline (no axes) for summaries. The x axis is labelled in
    the site's zone (the app's ``tz``); ``colors`` fixes the pens' colours if given.
    """

    DEFAULT_CSS = """
    TrendPlot { height: 1fr; min-height: 6; color: $text-muted; }
    TrendPlot.-compact { min-height: 2; }
    """

    def __init__(self, *, compact: bool = False, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.compact = compact
        self.set_class(compact, "-compact")
        self.pens: list[Pen] = []
        self.start = 0.0
        self.end = 0.0
        self.pen_colors: list[str] | None = None
        self._version = 0
        self._cache_key: tuple[Any, ...] | None = None
        self._cache = Text("")

    def set_pens(self, pens: list[Pen], start: float, end: float, colors: list[str] | None = None) -> None:
        """Show ``pens`` over [start, end]; call again whenever they change."""
        self.pens, self.start, self.end = pens, start, end
        self.pen_colors = colors
        self._version += 1
        self.refresh()

    def render(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        tz: tzinfo = getattr(self.app, "tz", UTC)
        dark = theme_is_dark(self)
        key = (w, h, self._version, dark, str(tz))
        if key != self._cache_key:
            try:
                self._cache = render_plot(
                    self.pens, self.start, self.end, w, h, tz, dark, self.compact, self.pen_colors
                )
            except Exception as exc:  # noqa: BLE001 - a plotting bug must not take the console down
                self._cache = Text(f"cannot draw this trend: {type(exc).__name__}: {exc}", style="dim")
            self._cache_key = key
        return self._cache


def render_bars(
    labels: list[str],
    series: list[tuple[str, list[float | None]]],
    width: int,
    height: int,
    dark: bool = True,
    colors: list[str] | None = None,
    tick_every: int = 1,
) -> Text:
    """Stacked bars: one bar per label, one stacked part per series (None counts as 0).

    The x axis names every ``tick_every``-th label; the y axis has round ticks from 0.
    A slot whose parts are all None or 0 draws no bar (a future hour, a day without data).
    """
    if width < 12 or height < 4 or not labels or not series:
        return Text("no data".center(max(0, width))[:width], style="dim")
    stacks = [[float(v or 0.0) for v in values] for _, values in series]
    tops = [sum(parts) for parts in zip(*stacks, strict=True)]
    if max(tops, default=0.0) <= 0:
        return Text("no consumption in this span".center(width)[:width] + "\n" * max(0, height // 2), style="dim")
    fig = plotext.figure
    plotext.terminal.limit(False, False)
    fig.clear()
    fig.theme("colorless")
    fig.plot_size(width, height)
    xs = list(range(len(labels)))
    markers = [
        plotext.marker("full", plotext.pixel(foreground=_rgb(colors[i] if colors else pen_color(i, dark))))
        for i in range(len(stacks))
    ]
    # (plotext 6.1 draws bars edge to edge unless the outline is off and the width under 0.6.)
    sig = fig.bar(xs, stacks if len(stacks) > 1 else stacks[0], stacked=len(stacks) > 1, width=0.55,
                  lines=False, marker=markers if len(stacks) > 1 else markers[0])  # fmt: skip
    fig.draw(sig)
    fig.ruler("x").lim(-0.6, len(labels) - 0.4)
    fig.ruler("x").ticks(xs[::tick_every], labels[::tick_every])
    _y_axis(fig, 0, [0.0, max(tops)], height)
    return ansi_to_text(fig.build().string())


def theme_is_dark(widget: Widget) -> bool:
    """Whether the widget's app shows a dark theme (dark when there is no app yet, in unit use)."""
    try:
        return bool(widget.app.current_theme.dark)
    except Exception:  # noqa: BLE001 - no app yet (unit use): dark is the default
        return True
