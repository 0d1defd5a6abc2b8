"""scadactl energy: the site's energy now and over time, from its meter tree.

What the sources deliver and the loads take, losses between a meter and the meters
below it, consumption per interval/hour/day, diesel generators and their fuel, solar
and the CO2 it avoids, consumption targets, and a live summary. Figures are kW, kWh,
L and kg; times for people are in the site's time zone, CSV and JSON keep UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any, get_args, get_type_hints

import typer
from rich.markup import escape

from scadactl.alarms import call_with_zone, choices, site_zone, time_option, time_text, zone_name
from scadactl.history import parse_duration
from scadactl.meters import CsvOpt, no_csv_and_json, num, nums, status_style, tree_name, write_csv
from scadactl.output import Column, api, call, done, emit_json, globals_of, present, render_rows
from scadactl.tags import quality_style
from scadad.api.energy_messages import SOURCE_TYPES, LossParams, Period, RenewableSpec

app = typer.Typer(
    no_args_is_help=True,
    help="Energy: site summary, meter tree, consumption, losses, generators, solar, targets, live watch.",
)
dg_app = typer.Typer()
solar_app = typer.Typer()
target_app = typer.Typer(no_args_is_help=True, help="Consumption targets: set or remove one.")
app.add_typer(dg_app, name="dg")
app.add_typer(solar_app, name="solar")
app.add_typer(target_app, name="target")

PERIODS: tuple[str, ...] = get_args(Period)
# status: list[Literal[...]] | None
LOSS_STATUSES: tuple[str, ...] = get_args(get_args(get_args(get_type_hints(LossParams)["status"])[0])[0])
RENEWABLE_KINDS: tuple[str, ...] = get_args(get_type_hints(RenewableSpec)["kind"])

MeterArg = Annotated[str, typer.Argument(help="meter name", metavar="METER")]
SiteOpt = Annotated[str | None, typer.Option("--site", "-s", help="site (default: the daemon's site name)")]
TIME_HELP = "ISO-8601 (local time without offset), -2h, -7d, now"

LOSS_STYLE = {"ok": "", "warning": "yellow", "alarm": "bold red", "suspect_ct": "yellow", "incomplete": "dim"}


def loss_style(status: Any) -> str:
    return LOSS_STYLE.get(str(status), "")


# ---------------------------------------------------------------- pure helpers


def pct(part: float | None, whole: float | None) -> float | None:
    """part / whole in %, None when either is missing or whole is 0."""
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def yes_no(v: bool | None) -> str:
    return "" if v is None else ("yes" if v else "no")


def loads_of(meters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The loads of a summary: meters at the ends of the tree (no meter below them)
    that are not sources, in tree order."""
    parents = {m["parent"] for m in meters if m.get("parent")}
    return [m for m in meters if m["name"] not in parents and m["type"] not in SOURCE_TYPES]


def totals_line(s: dict[str, Any]) -> str:
    """The site's balance in one line: sources, loads, losses (% of sources), today."""
    loss_pct = pct(s["loss_kw"], s["source_kw"])
    lp = f" ({num(loss_pct)} %)" if loss_pct is not None else ""
    return (
        f"sources {num(s['source_kw'])} kW  loads {num(s['load_kw'])} kW  losses {num(s['loss_kw'])} kW{lp}  "
        f"today {num(s['today_kwh'])} kWh"
    )


def date_option(text: str, option: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise typer.BadParameter(f"expected a date like 2026-11-01, got {text!r}", param_hint=option) from None


def last_day(end: str) -> str:
    """A period's end as the API gives it (the day after) as its last day."""
    return (date.fromisoformat(end) - timedelta(days=1)).isoformat()


def _times(start: str | None, end: str | None) -> dict[str, str]:
    now = datetime.now(UTC)
    return present(start=time_option(start, "--from", now), end=time_option(end, "--to", now))


ToOpt = Annotated[str | None, typer.Option("--to", help="end, as --from; default now")]


# ---------------------------------------------------------------- summary, tree, watch

NOW_COLUMNS = [
    Column("name", "METER", no_wrap=True),
    Column("type", "TYPE"),
    Column("kw", "KW", fmt=nums(1), justify="right"),
    Column("pf", "PF", fmt=nums(2), justify="right"),
    Column("today_kwh", "TODAY KWH", fmt=nums(1), justify="right"),
    Column("quality", "QUALITY", style=quality_style),
    Column("status", "STATUS", style=status_style),
]
LOSS_NOW_COLUMNS = [
    Column("parent", "PARENT", no_wrap=True),
    Column("parent_kw", "PARENT KW", fmt=nums(1), justify="right"),
    Column("children_kw", "CHILDREN KW", fmt=nums(1), justify="right"),
    Column("loss_kw", "LOSS KW", fmt=nums(1), justify="right"),
    Column("loss_pct", "LOSS %", fmt=nums(1), justify="right"),
    Column("status", "STATUS", style=loss_style),
]


@app.command("summary")
def summary(ctx: typer.Context, site: SiteOpt = None) -> None:
    """The site now: sources with kW, loads, losses with %, totals and today's kWh.

    Loads are the meters at the ends of the tree that are not sources (grid, generator, solar); in the total line they are what the sources deliver less the losses, and a loss that cannot be computed (a meter without a reading) is named there. --json prints the API result (EnergySummary).
    """
    g = globals_of(ctx)
    s, zone = call_with_zone(g, "Energy.Summary", present(site=site))
    if g.json:
        emit_json(s)
        return
    if not g.quiet:
        g.out.print(f"site {escape(s['site'])}  {time_text(s['time'], zone)} ({zone_name(zone)})", highlight=False)
    render_rows(g, s["sources"], [c for c in NOW_COLUMNS if c.key != "pf"], title="sources")
    render_rows(g, loads_of(s["meters"]),
                [c for c in NOW_COLUMNS if c.key not in ("pf", "quality")], title="loads")  # fmt: skip
    render_rows(g, s["losses"], LOSS_NOW_COLUMNS, title="losses")
    unknown = [x["parent"] for x in s["losses"] if x["loss_kw"] is None]
    note = f"  (loss unknown below {', '.join(unknown)})" if unknown else ""
    g.out.print("total  " + totals_line(s) + note, highlight=False, markup=False)


@app.command("tree")
def tree(ctx: typer.Context, site: SiteOpt = None, csv_out: CsvOpt = False) -> None:
    """The meter tree with each meter's live kW, power factor, today's kWh, quality and status.

    --json prints the meters of the API's summary (MeterNow records) in tree order.
    """
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    s = call(g, "Energy.Summary", present(site=site))
    if g.json:
        emit_json(s["meters"])
        return
    if csv_out:
        write_csv(s["meters"], ("name", "type", "parent", "depth", "kw", "pf", "today_kwh", "quality", "status"))
        return
    render_rows(g, [{**m, "name": tree_name(m["name"], m["depth"])} for m in s["meters"]], NOW_COLUMNS,
                title=f"meters of {s['site']}")  # fmt: skip


@app.command("watch")
def watch(
    ctx: typer.Context,
    site: SiteOpt = None,
    interval: Annotated[
        str, typer.Option("--interval", "-i", help="time between updates: 250ms to 1h, e.g. 1s, 10s, 1m")
    ] = "1s",
) -> None:
    """Follow the site's balance: one summary line per update (NDJSON, one summary per line, with --json); Ctrl-C stops."""
    g = globals_of(ctx)
    try:
        interval_ms = round(parse_duration(interval) * 1000)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--interval") from None
    if not 250 <= interval_ms <= 3_600_000:
        raise typer.BadParameter(f"between 250ms and 1h, got {interval!r}", param_hint="--interval")
    with api(g) as client:
        zone = UTC if g.json else site_zone(client)
        client.set_timeout(None)
        try:
            for s in client.stream("Energy.Watch", present(site=site, interval_ms=interval_ms)):
                if g.json:
                    emit_json(s)
                    continue
                when = time_text(s["time"], zone, "%H:%M:%S")
                g.out.print(f"{when}  {totals_line(s)}", highlight=False, markup=False, soft_wrap=True)
        except KeyboardInterrupt:
            pass


# ---------------------------------------------------------------- consumption, loss

CONSUMPTION_FIELDS = ("meter", "start", "import_kwh", "export_kwh", "net_kwh", "avg_kw", "max_kw", "estimated",
                      "quality", "intervals")  # fmt: skip


@app.command("consumption")
def consumption(
    ctx: typer.Context,
    meters: Annotated[list[str] | None, typer.Argument(help="meter names (default: every meter)")] = None,
    start: Annotated[str | None, typer.Option("--from", help=f"start: {TIME_HELP}; default local midnight")] = None,
    end: ToOpt = None,
    by: Annotated[str, typer.Option("--by", help="one row per reading interval, hour or day")] = "interval",
    csv_out: CsvOpt = False,
) -> None:
    """Energy per meter in [--from, --to): imported, exported, net, average and peak kW.

    A row marked estimated filled a gap in the readings. --csv writes one row per meter and period, times UTC.
    """
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    if by not in ("interval", "hour", "day"):
        raise typer.BadParameter(f"{by!r} is not one of interval, hour, day", param_hint="--by")
    params = present(meters=meters or None, by=by, **_times(start, end))
    res, zone = call_with_zone(g, "Energy.Consumption", params)
    if g.json:
        emit_json(res)
        return
    flat = [{**p, "meter": s["meter"]} for s in res["series"] for p in s["points"]]
    if csv_out:
        write_csv(flat, CONSUMPTION_FIELDS, times=("start",))
        return
    form = "%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:%M"
    rows = [{**p, "start": time_text(p["start"], zone, form), "flags": "estimated" if p["estimated"] else ""}
            for p in flat]  # fmt: skip
    if not g.quiet:
        g.out.print(f"consumption by {by} ({zone_name(zone)})", highlight=False)
    render_rows(
        g,
        rows,
        [Column("meter", "METER", no_wrap=True), Column("start", "START", no_wrap=True),
         Column("import_kwh", "IMPORT KWH", fmt=nums(2), justify="right"),
         Column("export_kwh", "EXPORT KWH", fmt=nums(2), justify="right"),
         Column("net_kwh", "NET KWH", fmt=nums(2), justify="right"),
         Column("avg_kw", "AVG KW", fmt=nums(1), justify="right"),
         Column("max_kw", "MAX KW", fmt=nums(1), justify="right"),
         Column("quality", "QUALITY", style=quality_style), Column("flags", "")],
        title="readings",
    )  # fmt: skip
    if res["series"] and not g.quiet:
        render_rows(g, [{"meter": s["meter"], "total_kwh": s["total_kwh"]} for s in res["series"]],
                    [Column("meter", "METER", no_wrap=True),
                     Column("total_kwh", "TOTAL KWH", fmt=nums(2), justify="right")], title="totals")  # fmt: skip


LOSS_FIELDS = ("parent", "start", "interval_s", "parent_kwh", "children_kwh", "loss_kwh", "loss_pct", "status", "note")


@app.command("loss")
def loss(
    ctx: typer.Context,
    parent: Annotated[str | None, typer.Option("--parent", "-p", help="only the losses below this meter")] = None,
    start: Annotated[str | None, typer.Option("--from", help=f"start: {TIME_HELP}; default 24 h before --to")] = None,
    end: ToOpt = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help=f"only rows with this status (repeatable): {', '.join(LOSS_STATUSES)}"),
    ] = None,
    csv_out: CsvOpt = False,
) -> None:
    """Losses per reading interval: a meter's kWh minus the kWh of the meters below it, and its %.

    suspect_ct marks children adding up to more than their parent (a CT ratio or polarity to check); incomplete, an interval missing readings.
    """
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    params = present(parent=parent, status=choices(status, LOSS_STATUSES, "--status"), **_times(start, end))
    res, zone = call_with_zone(g, "Energy.Loss", params)
    if g.json:
        emit_json(res)
        return
    if csv_out:
        write_csv(res["rows"], LOSS_FIELDS, times=("start",))
        return
    rows = [{**r, "start": time_text(r["start"], zone, "%Y-%m-%d %H:%M")} for r in res["rows"]]
    if not g.quiet and rows:
        g.out.print(f"losses ({zone_name(zone)})", highlight=False)
    render_rows(
        g,
        rows,
        [Column("parent", "PARENT", no_wrap=True), Column("start", "START", no_wrap=True),
         Column("parent_kwh", "PARENT KWH", fmt=nums(2), justify="right"),
         Column("children_kwh", "CHILDREN KWH", fmt=nums(2), justify="right"),
         Column("loss_kwh", "LOSS KWH", fmt=nums(2), justify="right"),
         Column("loss_pct", "LOSS %", fmt=nums(1), justify="right"),
         Column("status", "STATUS", style=loss_style), Column("note", "NOTE")],
        title="loss intervals",
    )  # fmt: skip


# ---------------------------------------------------------------- generators

DG_FIELDS = ("meter", "running", "kw", "load_pct", "fuel_level_pct", "fuel_l", "run_hours", "starts", "kwh_today",
             "fuel_used_today_l", "fuel_curve_today_l", "l_per_kwh", "co2_today_kg", "events", "rated_kw",
             "tank_l")  # fmt: skip
DG_COLUMNS = [
    Column("meter", "GENERATOR", no_wrap=True),
    Column("running", "RUN", fmt=yes_no),
    Column("kw", "KW", fmt=nums(1), justify="right"),
    Column("load_pct", "LOAD %", fmt=nums(0), justify="right"),
    Column("fuel_level_pct", "FUEL %", fmt=nums(0), justify="right"),
    Column("fuel_l", "FUEL L", fmt=nums(0), justify="right"),
    Column("run_hours", "RUN H", fmt=nums(1), justify="right"),
    Column("starts", "STARTS", justify="right"),
    Column("kwh_today", "KWH TODAY", fmt=nums(1), justify="right"),
    Column("fuel_used_today_l", "USED L", fmt=nums(1), justify="right"),
    Column("l_per_kwh", "L/KWH", fmt=nums(3), justify="right"),
    Column("co2_today_kg", "CO2 KG", fmt=nums(1), justify="right"),
    Column("events", "EVENTS", justify="right"),
]


def event_line(meter: str, e: dict[str, Any], zone: tzinfo) -> str:
    sign = "+" if e["kind"] == "refuel" else "-"
    return (f"{e['kind']:<7} {meter}  {time_text(e['start'], zone, '%Y-%m-%d %H:%M')} to "
            f"{time_text(e['end'], zone, '%H:%M')}  {sign}{num(e['litres'])} L")  # fmt: skip


@dg_app.callback(invoke_without_command=True)
def dg(ctx: typer.Context, csv_out: CsvOpt = False) -> None:
    """Diesel generators today: running, kW, load %, fuel % and L, run hours, starts, kWh, fuel used, L/kWh, CO2, and refuel or theft events.

    USED L is from the tank level (refuels excluded); --json also has the fuel the curve predicts (fuel_curve_today_l). `energy dg set` configures a generator.
    """
    if ctx.invoked_subcommand is not None:
        return
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    res, zone = call_with_zone(g, "Energy.Generators", {})
    if g.json:
        emit_json(res)
        return
    gens = res["generators"]
    if csv_out:
        write_csv([{**x, "events": len(x["events"])} for x in gens], DG_FIELDS)
        return
    render_rows(g, [{**x, "events": len(x["events"]) or ""} for x in gens], DG_COLUMNS, title="generators")
    events = [event_line(x["meter"], e, zone) for x in gens for e in x["events"]]
    if events and not g.quiet:
        g.out.print(f"\nfuel events ({zone_name(zone)})", highlight=False)
        for line in events:
            style = "bold red" if line.startswith("theft") else ""
            g.out.print(f"[{style}]{escape(line)}[/]" if style else escape(line), highlight=False)


@dg_app.command("set")
def dg_set(
    ctx: typer.Context,
    meter: Annotated[str, typer.Argument(help="the generator's meter (type generator)", metavar="METER")],
    rated_kw: Annotated[float, typer.Option("--rated-kw", help="rated power, kW", min=0, show_default=False)],
    rated_kva: Annotated[float | None, typer.Option("--rated-kva", help="rated apparent power, kVA", min=0)] = None,
    tank_l: Annotated[float | None, typer.Option("--tank-l", help="fuel tank capacity, L", min=0)] = None,
    f0: Annotated[
        float | None, typer.Option("--f0", help="fuel curve: no-load L/h per rated kW (default 0.08415)", min=0)
    ] = None,
    f1: Annotated[
        float | None, typer.Option("--f1", help="fuel curve: L/h per kW of load (default 0.246)", min=0)
    ] = None,
    co2: Annotated[
        float | None, typer.Option("--co2", help="kg of CO2 per litre of diesel (default 2.68)", min=0)
    ] = None,
) -> None:
    """Configure a diesel generator: rating, tank and fuel curve (L/h = f0 * rated kW + f1 * kW)."""
    g = globals_of(ctx)
    params = present(meter=meter, rated_kw=rated_kw, rated_kva=rated_kva, tank_l=tank_l, f0=f0, f1=f1,
                     co2_kg_per_l=co2)  # fmt: skip
    st = call(g, "Energy.SetGenerator", params)
    tank = f", tank {num(st['tank_l'], 0)} L" if st.get("tank_l") else ""
    done(g, f"generator {st['meter']} set: {num(st['rated_kw'])} kW rated{tank}", st)


# ---------------------------------------------------------------- renewables

SOLAR_FIELDS = ("meter", "kind", "capacity_kwp", "kw", "kwh", "co2_avoided_kg", "diesel_avoided_l",
                "emission_factor_kg_per_kwh", "factor_source")  # fmt: skip


@solar_app.callback(invoke_without_command=True)
def solar(ctx: typer.Context, start: Annotated[
        str | None, typer.Option("--from", help=f"start: {TIME_HELP}; default local midnight")] = None,
          end: ToOpt = None, csv_out: CsvOpt = False) -> None:  # fmt: skip
    """Renewable sources in [--from, --to): kWh, CO2 avoided, diesel avoided, and the emission factor with its source.

    `energy solar set` configures a source.
    """
    if ctx.invoked_subcommand is not None:
        return
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    res, zone = call_with_zone(g, "Energy.Renewables", _times(start, end))
    if g.json:
        emit_json(res)
        return
    if csv_out:
        write_csv(res["sources"], SOLAR_FIELDS)
        return
    if not g.quiet:
        g.out.print(f"renewables from {time_text(res['start'], zone, '%Y-%m-%d %H:%M')} to "
                    f"{time_text(res['end'], zone, '%Y-%m-%d %H:%M')} ({zone_name(zone)})", highlight=False)  # fmt: skip
    render_rows(
        g,
        res["sources"],
        [Column("meter", "SOURCE", no_wrap=True), Column("kind", "KIND"),
         Column("capacity_kwp", "KWP", fmt=nums(1), justify="right"),
         Column("kw", "KW", fmt=nums(1), justify="right"), Column("kwh", "KWH", fmt=nums(1), justify="right"),
         Column("co2_avoided_kg", "CO2 AVOIDED KG", fmt=nums(1), justify="right"),
         Column("diesel_avoided_l", "DIESEL AVOIDED L", fmt=nums(1), justify="right"),
         Column("emission_factor_kg_per_kwh", "KG/KWH", fmt=nums(3), justify="right"),
         Column("factor_source", "FACTOR SOURCE")],
        title="renewable sources",
    )  # fmt: skip


@solar_app.command("set")
def solar_set(
    ctx: typer.Context,
    meter: Annotated[str, typer.Argument(help="the source's meter", metavar="METER")],
    kind: Annotated[str | None, typer.Option("--kind", help=f"{', '.join(RENEWABLE_KINDS)} (default solar)")] = None,
    capacity_kwp: Annotated[float | None, typer.Option("--capacity-kwp", help="installed capacity, kWp", min=0)] = None,
    factor: Annotated[
        float | None,
        typer.Option("--factor", help="grid emission factor, kg CO2/kWh (default India CEA FY2023-24, 0.727)", min=0),
    ] = None,
    factor_source: Annotated[
        str | None, typer.Option("--factor-source", help="where the factor comes from, e.g. 'CEA v20'")
    ] = None,
) -> None:
    """Configure a renewable source: kind, capacity and the grid emission factor its kWh avoid."""
    g = globals_of(ctx)
    if kind is not None and kind not in RENEWABLE_KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(RENEWABLE_KINDS)}", param_hint="--kind")
    params = present(meter=meter, kind=kind, capacity_kwp=capacity_kwp, emission_factor_kg_per_kwh=factor,
                     factor_source=factor_source)  # fmt: skip
    st = call(g, "Energy.SetRenewable", params)
    done(g, f"{st['kind']} source {st['meter']} set: factor {st['emission_factor_kg_per_kwh']:g} kg/kWh "
            f"({escape(st['factor_source'])})", st)  # fmt: skip


# ---------------------------------------------------------------- targets

TARGET_FIELDS = ("meter", "period", "start", "end", "target_kwh", "consumed_kwh", "variance_kwh", "variance_pct",
                 "projected_kwh", "projected_variance_pct", "on_track")  # fmt: skip


@app.command("targets")
def targets(
    ctx: typer.Context,
    meter: Annotated[str | None, typer.Argument(help="only this meter's targets", metavar="[METER]")] = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="also targets of past and future periods")] = False,
    csv_out: CsvOpt = False,
) -> None:
    """Consumption targets of the current periods: target, consumed, variance, projection, on track.

    Variance is consumed minus the target's pro-rata share of the time gone; the projection extends the consumption so far to the period's end, and on track means it stays within the target. END is the period's last day (--csv and --json: the day after it, as the API gives it).
    """
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    res = call(g, "Energy.Targets", present(meter=meter, current=False if all_ else None))
    if g.json:
        emit_json(res)
        return
    if csv_out:
        write_csv(res["targets"], TARGET_FIELDS)
        return
    render_rows(
        g,
        [{**t, "end": last_day(t["end"]), "on_track": ("yes", "") if t["on_track"] else ("no", "bold red")}
         for t in res["targets"]],
        [Column("meter", "METER", no_wrap=True), Column("period", "PERIOD"), Column("start", "START", no_wrap=True),
         Column("end", "END", no_wrap=True), Column("target_kwh", "TARGET KWH", fmt=nums(1), justify="right"),
         Column("consumed_kwh", "CONSUMED KWH", fmt=nums(1), justify="right"),
         Column("variance_kwh", "VARIANCE KWH", fmt=nums(1), justify="right"),
         Column("variance_pct", "VAR %", fmt=nums(1), justify="right"),
         Column("projected_kwh", "PROJECTED KWH", fmt=nums(1), justify="right"),
         Column("on_track", "ON TRACK", fmt=lambda v: v[0], style=lambda v: v[1])],
        title="targets",
    )  # fmt: skip


PeriodOpt = Annotated[str, typer.Option("--period", help=f"{', '.join(PERIODS)}", show_default=False)]
StartOpt = Annotated[
    str, typer.Option("--start", help="first day of the period, local date, e.g. 2026-11-01", show_default=False)
]


def _period(text: str) -> str:
    if text not in PERIODS:
        raise typer.BadParameter(f"{text!r} is not one of {', '.join(PERIODS)}", param_hint="--period")
    return text


@target_app.command("set")
def target_set(
    ctx: typer.Context,
    meter: MeterArg,
    period: PeriodOpt,
    start: StartOpt,
    kwh: Annotated[float, typer.Option("--kwh", help="the period's budget, kWh", min=0, show_default=False)],
) -> None:
    """Set a meter's consumption target for the period starting on --start (replaces one there)."""
    g = globals_of(ctx)
    params = {"meter": meter, "period": _period(period), "start": date_option(start, "--start"), "target_kwh": kwh}
    t = call(g, "Energy.SetTarget", params)
    track = "on track" if t["on_track"] else "off track"
    done(g, f"target {t['meter']} {t['period']} {t['start']} to {last_day(t['end'])}: {num(t['target_kwh'])} kWh "
            f"(consumed {num(t['consumed_kwh'])} kWh, {track})", t)  # fmt: skip


@target_app.command("rm")
def target_rm(ctx: typer.Context, meter: MeterArg, period: PeriodOpt, start: StartOpt) -> None:
    """Remove a meter's target for the period starting on --start."""
    g = globals_of(ctx)
    params = {"meter": meter, "period": _period(period), "start": date_option(start, "--start")}
    res = call(g, "Energy.DeleteTarget", params)
    done(g, f"target {meter} {params['period']} {params['start']} removed", res)
