"""Pure display rules of the Energy screen: the meter tree's cells, the DG and solar
panels, and the consumption charts' slots. No Textual, no I/O, no clock (``now`` and
the site's zone are passed in).

ISA-101: plain grey text for normal; colour only for abnormal (a meter offline red,
degraded amber, a BAD value red, UNCERTAIN amber, fuel low amber, a suspected fuel theft red).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from rich.text import Text

from tui import format as fmt
from tui.energy_flow import QUALITY_STYLE, SOURCE_TYPES, STATUS_STYLE, fmt_kw
from tui.widgets.live_table import CELL_PADDING, Column

PAD = 2 * CELL_PADDING
NAME_MAX_W = 30
FUEL_LOW_PCT = 20.0
CHART_DAYS = 14
CO2 = "CO₂"

Row = Mapping[str, Any]


# ---------------------------------------------------------------------- the meter tree


def tree_columns(avail: int) -> tuple[Column, ...]:
    """Name (indented by depth), type, kW, PF, today kWh, status in ``avail`` cells; the
    name gets what the fixed columns leave (the type goes first when there is too little)."""
    kind = Column("type", "Type", 9)
    kw = Column("kw", "kW", 8, right=True)
    pf = Column("pf", "PF", 5, right=True)
    kwh = Column("kwh", "Today kWh", 9, right=True)
    status = Column("status", "Status", 8)
    fixed = [kind, kw, pf, kwh, status]
    rest = avail - sum(c.width + PAD for c in fixed) - PAD
    if rest < 12:
        fixed.remove(kind)
        rest += kind.width + PAD
    return (Column("name", "Meter", max(8, min(NAME_MAX_W, rest))), *fixed)


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def meter_cells(m: Row) -> dict[str, Text]:
    """One meter's row by column key: values in their quality's colour, the status in its own."""
    offline = m.get("status") == "offline"
    value_style = "dim" if offline else QUALITY_STYLE.get(m.get("quality", "GOOD"), "bold red")
    name = Text("  " * int(m.get("depth") or 0) + m["name"], no_wrap=True, overflow="ellipsis")
    status = m.get("status", "")
    quality = m.get("quality", "GOOD")
    label = status if quality == "GOOD" or offline else f"{status} {quality}"
    return {
        "name": name,
        "type": Text(m.get("type", "")),
        "kw": Text(fmt_kw(m.get("kw")) if m.get("kw") is not None else "—", style=value_style, justify="right"),
        "pf": Text(_num(m.get("pf"), 2), style=value_style, justify="right"),
        "kwh": Text(_num(m.get("today_kwh")), style=value_style, justify="right"),
        "status": Text(label, style=STATUS_STYLE.get(status, "bold red") or QUALITY_STYLE.get(quality, "bold red")),
    }


def status_line(summary: Row | None, refused: str = "") -> Text:
    """The line under the tree: the site's sources, loads, losses and today's energy."""
    if refused:
        return Text(f"Energy not shown: {refused}", style="bold red", no_wrap=True, overflow="ellipsis")
    if not summary:
        return Text("Waiting for the energy summary …", style="dim")
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"Sources {fmt_kw(summary.get('source_kw'))} kW")
    t.append(f" · loads {fmt_kw(summary.get('load_kw'))} kW")
    loss, source = summary.get("loss_kw"), summary.get("source_kw")
    t.append(f" · loss {fmt_kw(loss)} kW")
    if loss is not None and source:
        t.append(f" ({100 * loss / source:.1f} %)")
    t.append(f" · today {_num(summary.get('today_kwh'))} kWh")
    return t


# ---------------------------------------------------------------------- panels


def dg_panel(generators: Sequence[Row] | None, now: float, tz: tzinfo) -> Text:
    """Each diesel set: running, load %, fuel level, L/kWh; today's energy, fuel and events."""
    if generators is None:
        return Text("—", style="dim")
    if not generators:
        return Text("No generator configured.", style="dim")
    t = Text()
    for n, g in enumerate(generators):
        if n:
            t.append("\n")
        t.append(g["meter"], style="bold")
        running = g.get("running")
        t.append("  ")
        t.append("—" if running is None else "running" if running else "stopped")
        load = g.get("load_pct")
        t.append(f"  load {_num(load, 0)} %" + (f" ({fmt_kw(g.get('kw'))} of {fmt_kw(g.get('rated_kw'))} kW)"))
        t.append("\nfuel ")
        level = g.get("fuel_level_pct")
        fuel = f"{_num(level, 0)} %" + (f" ({_num(g.get('fuel_l'), 0)} L)" if g.get("fuel_l") is not None else "")
        t.append(fuel, style="bold yellow" if level is not None and level < FUEL_LOW_PCT else "")
        t.append(f"  {_num(g.get('l_per_kwh'), 3)} L/kWh")
        t.append(f"\ntoday {_num(g.get('kwh_today'))} kWh, {_num(g.get('fuel_used_today_l'))} L")
        if g.get("co2_today_kg") is not None:
            t.append(f", {CO2} {_num(g.get('co2_today_kg'))} kg")
        if g.get("run_hours") is not None:
            t.append(f"  run {_num(g.get('run_hours'), 0)} h")
        for e in (g.get("events") or [])[-2:]:
            at = fmt.parse_time(e.get("start"))
            when = fmt.local_time(at, tz) if at else "—"
            theft = e.get("kind") == "theft"
            t.append("\n")
            t.append(
                f"{'fuel theft?' if theft else 'refuel'} {_num(e.get('litres'), 0)} L at {when}",
                style="bold red" if theft else "",
            )
    return t


def solar_panel(renewables: Row | None) -> Text:
    """Each renewable source: kW now, kWh today, CO₂ (and diesel) avoided."""
    if renewables is None:
        return Text("—", style="dim")
    sources = renewables.get("sources") or []
    if not sources:
        return Text("No solar or other renewable source configured.", style="dim")
    t = Text()
    for n, s in enumerate(sources):
        if n:
            t.append("\n")
        t.append(s["meter"], style="bold")
        cap = s.get("capacity_kwp")
        kind = s.get("kind", "")
        t.append(f"  {kind + '  ' if kind and kind != s['meter'] else ''}now {fmt_kw(s.get('kw'))} kW")
        if cap:
            t.append(f" of {fmt_kw(cap)} kWp")
        t.append(f"\ntoday {_num(s.get('kwh'))} kWh  {CO2} avoided {_num(s.get('co2_avoided_kg'))} kg")
        if s.get("diesel_avoided_l") is not None:
            t.append(f"  diesel avoided {_num(s.get('diesel_avoided_l'))} L")
    return t


# ---------------------------------------------------------------------- charts


def chart_meters(summary: Row | None) -> list[str]:
    """The meters the consumption charts stack: the sources (what the site took), else
    the top of the meter tree."""
    if not summary:
        return []
    sources = [m["name"] for m in summary.get("sources") or [] if m.get("type") in SOURCE_TYPES]
    if sources:
        return sources
    meters = summary.get("meters") or []
    names = {m["name"] for m in meters}
    return [m["name"] for m in meters if m.get("parent") not in names]


def local_midnight(now: float, tz: tzinfo, days_back: int = 0) -> datetime:
    """The start of the local day ``days_back`` days before the one holding ``now``."""
    day = datetime.fromtimestamp(now, tz).date() - timedelta(days=days_back)
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def point_kwh(p: Row) -> float:
    """The energy a chart shows for one interval: what flowed in (import), or for a meter
    that only counts export (a solar inverter), what it delivered."""
    imp, exp = p.get("import_kwh") or 0.0, p.get("export_kwh") or 0.0
    return float(imp if imp or not exp else exp)


def hour_slots(
    result: Row, meters: list[str], now: float, tz: tzinfo
) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """Today's 24 hours (local) and each meter's kWh per hour (None: not reported)."""
    start = local_midnight(now, tz)
    labels = [f"{h:02d}" for h in range(24)]
    return labels, _slots(result, meters, 24, lambda t: int((t - start).total_seconds() // 3600))


def day_slots(
    result: Row, meters: list[str], now: float, tz: tzinfo, days: int = CHART_DAYS
) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """The last ``days`` local days (today last) and each meter's kWh per day."""
    first = local_midnight(now, tz, days - 1).date()
    labels = [(first + timedelta(days=n)).strftime("%d") for n in range(days)]
    return labels, _slots(result, meters, days, lambda t: (t.astimezone(tz).date() - first).days)


def _slots(result: Row, meters: list[str], n: int, index: Any) -> list[tuple[str, list[float | None]]]:
    by_meter = {s["meter"]: s for s in result.get("series") or []}
    out: list[tuple[str, list[float | None]]] = []
    for name in meters:
        values: list[float | None] = [None] * n
        for p in (by_meter.get(name) or {}).get("points") or []:
            t = fmt.parse_time(p["start"])
            i = index(t) if t is not None else -1
            if 0 <= i < n:
                values[i] = (values[i] or 0.0) + point_kwh(p)
        out.append((name, values))
    return out


def dg_line(generators: Sequence[Row] | None) -> Text:
    """The DG panel in one line (narrow terminals)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("DG ", style="bold")
    if generators is None:
        t.append("—", style="dim")
        return t
    if not generators:
        t.append("none configured", style="dim")
    for n, g in enumerate(generators):
        if n:
            t.append("; ")
        running = g.get("running")
        t.append(f"{g['meter']} {'—' if running is None else 'running' if running else 'stopped'}")
        t.append(f" · load {_num(g.get('load_pct'), 0)} % · fuel ")
        level = g.get("fuel_level_pct")
        t.append(f"{_num(level, 0)} %", style="bold yellow" if level is not None and level < FUEL_LOW_PCT else "")
        t.append(f" · {_num(g.get('l_per_kwh'), 3)} L/kWh")
        if any(e.get("kind") == "theft" for e in g.get("events") or []):
            t.append(" · fuel theft?", style="bold red")
    return t


def solar_line(renewables: Row | None) -> Text:
    """The solar panel in one line (narrow terminals)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("Solar ", style="bold")
    if renewables is None:
        t.append("—", style="dim")
        return t
    sources = renewables.get("sources") or []
    if not sources:
        t.append("none configured", style="dim")
    for n, s in enumerate(sources):
        if n:
            t.append("; ")
        t.append(f"{s['meter']} {fmt_kw(s.get('kw'))} kW · today {_num(s.get('kwh'))} kWh")
        t.append(f" · {CO2} avoided {_num(s.get('co2_avoided_kg'))} kg")
    return t
