"""scadactl meter: the site's energy meters (a tree: grid -> main -> feeders -> loads,
generators and solar as sources), their status history, and the meter templates that
create a meter's tags for a device.

Also the helpers `scadactl energy` shares: the indented tree, numbers for people, CSV.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.markup import escape

from scadactl import files
from scadactl.alarms import call_with_zone, site_zone, time_text, zone_name
from scadactl.devices import parse_iso
from scadactl.history import parse_duration, utc_text
from scadactl.output import (
    Column,
    Globals,
    api,
    call,
    confirm_remove,
    done,
    emit_json,
    fail,
    globals_of,
    present,
    render_record,
    render_rows,
    require_change,
)
from scadactl.tags import format_value, quality_style, quality_text
from scadad.api.energy_messages import IntervalS, MeterType
from scadad.api.errors import ScadaError

app = typer.Typer(
    no_args_is_help=True,
    help="Energy meters: the meter tree, add, show, edit, remove, status history; meter templates.",
)
template_app = typer.Typer(
    no_args_is_help=True,
    help="Meter templates (a meter model's registers): list, show, import a TOML file, remove.",
)
app.add_typer(template_app, name="template")

INTERVALS: tuple[int, ...] = get_args(IntervalS)
METER_TYPES: tuple[str, ...] = get_args(MeterType)

NameArg = Annotated[str, typer.Argument(help="meter name: lowercase letters, digits, '_' and '-'", metavar="NAME")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="CSV on standard output (with a header row), times ISO-8601 UTC")]

# Abnormal meter states get colour, normal ones stay plain (ISA-101 habit).
STATUS_STYLE = {"online": "", "degraded": "yellow", "offline": "bold red", "disabled": "dim"}


# ---------------------------------------------------------------- shared helpers


def status_style(status: Any) -> str:
    return STATUS_STYLE.get(str(status), "")


def num(value: float | None, places: int = 1) -> str:
    """A figure for people with fixed decimals ('' when there is none)."""
    return "" if value is None else f"{value:.{places}f}"


def nums(places: int) -> Any:
    """A Column fmt with `places` decimals."""
    return lambda v: num(v, places)


def tree_name(name: str, depth: int) -> str:
    """A meter name indented two spaces per level below the top."""
    return "  " * max(0, depth) + name


def no_csv_and_json(g: Globals, csv_out: bool) -> None:
    if csv_out and g.json:
        raise typer.BadParameter("choose one of --csv and --json", param_hint="--csv")


def csv_text(rows: Sequence[dict[str, Any]], fields: Sequence[str], times: Sequence[str] = ()) -> str:
    """Records as CSV with a header row; fields in `times` as ISO-8601 UTC (as `history --csv`)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(fields)
    for row in rows:
        cells = []
        for f in fields:
            v = row.get(f)
            t = parse_iso(v) if f in times and isinstance(v, str) else None
            cells.append(utc_text(t) if t is not None else files.format_cell(v))
        w.writerow(cells)
    return out.getvalue()


def write_csv(rows: Sequence[dict[str, Any]], fields: Sequence[str], times: Sequence[str] = ()) -> None:
    sys.stdout.write(csv_text(rows, fields, times))
    sys.stdout.flush()


def parse_ratio(text: str) -> tuple[float, float]:
    """A CT or PT ratio 'PRIMARY/SECONDARY' (200/5, 11000/110); a bare number N is N/1."""
    head, sep, tail = text.strip().partition("/")
    try:
        primary, secondary = float(head), (float(tail) if sep else 1.0)
    except ValueError:
        raise ValueError(f"expected PRIMARY/SECONDARY such as 200/5, got {text!r}") from None
    if not (primary > 0 and secondary > 0):
        raise ValueError(f"both sides of a ratio are above 0, got {text!r}")
    return primary, secondary


def ratio_text(primary: float, secondary: float) -> str:
    return "" if primary == secondary == 1 else f"{primary:g}/{secondary:g}"


def parse_interval(text: str) -> int:
    """A reading interval such as 15m, 1h or 900 as seconds, one of the allowed ones."""
    s = parse_duration(text)
    if s not in INTERVALS:
        allowed = ", ".join(f"{i // 60}m" if i < 3600 else "1h" for i in INTERVALS)
        raise ValueError(f"a reading interval is one of {allowed}, got {text!r}")
    return int(s)


def interval_text(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def parse_points(values: Sequence[str] | None) -> dict[str, str] | None:
    """--point QUANTITY=TAG values as {quantity: tag path}; None when none were given."""
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        quantity, sep, path = v.partition("=")
        if not sep or not quantity.strip() or not path.strip():
            raise typer.BadParameter(f"expected QUANTITY=TAG such as import_kwh=north/m1/kwh, got {v!r}",
                                     param_hint="--point")  # fmt: skip
        if quantity.strip() in out:
            raise typer.BadParameter(f"quantity {quantity.strip()!r} given twice", param_hint="--point")
        out[quantity.strip()] = path.strip()
    return out


def _option(parse: Any, text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


# What the daemon calls the text it was sent, in front of the line number.
_PLACEHOLDER = re.compile(r"^(?:<[^>]*>|params\.toml):(\d+): ")


def in_template_file(message: str, file: str) -> str:
    """A daemon's template error (`params.toml:12: points[3].type: ...`) naming FILE instead."""
    if _PLACEHOLDER.match(message):
        return _PLACEHOLDER.sub(lambda m: f"{file}:{m[1]}: ", message, count=1)
    return message if message.startswith(f"{file}:") else f"{file}: {message}"


# ---------------------------------------------------------------- list, show

METER_FIELDS = ("name", "type", "parent", "depth", "site", "template", "device", "tag_prefix", "ct_primary",
                "ct_secondary", "pt_primary", "pt_secondary", "ratio_applied_in_meter", "nominal_voltage",
                "tariff_zone", "interval_s", "enabled", "status", "description")  # fmt: skip


def meter_row(m: dict[str, Any]) -> dict[str, Any]:
    source = f"{m['template']} @ {m['device']}" if m.get("template") else ""
    return {
        "name": tree_name(m["name"], m["depth"]),
        "type": m["type"],
        "source": source,
        "points": str(len(m["points"])),
        "ct": ratio_text(m["ct_primary"], m["ct_secondary"]),
        "pt": ratio_text(m["pt_primary"], m["pt_secondary"]),
        "interval": interval_text(m["interval_s"]),
        "status": m["status"] if m["enabled"] else "disabled",
    }


METER_COLUMNS = [
    Column("name", "METER", no_wrap=True),
    Column("type", "TYPE"),
    Column("source", "TEMPLATE @ DEVICE"),
    Column("points", "POINTS", justify="right"),
    Column("ct", "CT"),
    Column("pt", "PT"),
    Column("interval", "INTERVAL", justify="right"),
    Column("status", "STATUS", style=status_style),
]


@app.command("list")
def list_(ctx: typer.Context, csv_out: CsvOpt = False) -> None:
    """The meter tree: parents before their children, each level indented.

    --json prints the API result: {meters: [{name, type, parent, depth, points, ...}]}.
    """
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    res = call(g, "Meters.List")
    if g.json:
        emit_json(res)
        return
    if csv_out:
        write_csv(res["meters"], METER_FIELDS)
        return
    render_rows(g, [meter_row(m) for m in res["meters"]], METER_COLUMNS, title="meters")


@app.command("show")
def show(ctx: typer.Context, name: NameArg) -> None:
    """One meter: every field, then its points (quantity, tag, live value and quality)."""
    g = globals_of(ctx)
    with api(g) as client:
        m = client.call("Meters.Get", {"name": name})
        values: dict[str, dict[str, Any]] = {}
        zone = UTC if g.json else site_zone(client)
        if m["points"] and not g.json:
            try:  # the values are a courtesy: a user without tags.read still sees the meter
                res = client.call("Tags.Read", {"paths": sorted(set(m["points"].values()))})
                values = {v["path"]: v for v in res["values"]}
            except ScadaError:
                values = {}
    if g.json:
        emit_json(m)
        return
    record = {
        "name": m["name"],
        "type": m["type"],
        "parent": m["parent"] or "(top)",
        "children": m["children"] or "",
        "site": m["site"],
        "description": m["description"],
        "template": m["template"],
        "device": m["device"],
        "tag prefix": m["tag_prefix"],
        "CT": ratio_text(m["ct_primary"], m["ct_secondary"]) or "none",
        "PT": ratio_text(m["pt_primary"], m["pt_secondary"]) or "none",
        "ratios": "applied in the meter" if m["ratio_applied_in_meter"] else "applied by scadad",
        "nominal voltage": f"{m['nominal_voltage']:g} V" if m.get("nominal_voltage") else None,
        "tariff zone": m["tariff_zone"],
        "interval": interval_text(m["interval_s"]),
        "enabled": "yes" if m["enabled"] else "no",
        "status": m["status"],
        "created": time_text(m["created_at"], zone),
        "updated": time_text(m["updated_at"], zone),
    }
    render_record(g, {k: v for k, v in record.items() if v not in (None, "")}, title=f"meter {m['name']}")
    rows = []
    for quantity, path in sorted(m["points"].items()):
        v = values.get(path, {})
        units = v.get("units") or ""
        rows.append({
            "quantity": quantity,
            "path": path,
            "value": (format_value(v.get("value")) + (f" {units}" if units else "")) if v else "",
            "quality": quality_text(v) if v else "",
        })  # fmt: skip
    if not g.quiet:
        g.out.print()
    render_rows(
        g,
        rows,
        [Column("quantity", "QUANTITY", no_wrap=True), Column("path", "TAG", no_wrap=True),
         Column("value", "VALUE", justify="right"), Column("quality", "QUALITY", style=quality_style)],
        title="points",
    )  # fmt: skip


# ---------------------------------------------------------------- add, edit, rm

TypeOpt = Annotated[str | None, typer.Option("--type", "-t", help=f"meter type: {', '.join(METER_TYPES)}")]
ParentOpt = Annotated[str | None, typer.Option("--parent", "-p", help="the meter upstream of this one")]
DescriptionOpt = Annotated[str | None, typer.Option("--description", "-d", help="free text")]
PointOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--point",
        help="link an existing tag: QUANTITY=TAG, e.g. import_kwh=north/m1/kwh, power_total=north/m1/kw (repeatable)",
    ),
]
CtOpt = Annotated[str | None, typer.Option("--ct", help="CT ratio PRIMARY/SECONDARY, e.g. 200/5")]
PtOpt = Annotated[str | None, typer.Option("--pt", help="PT ratio PRIMARY/SECONDARY, e.g. 11000/110")]
VoltageOpt = Annotated[float | None, typer.Option("--nominal-voltage", help="nominal voltage, V", min=0)]
TariffOpt = Annotated[str | None, typer.Option("--tariff-zone", help="tariff zone (text)")]
IntervalOpt = Annotated[
    str | None, typer.Option("--interval", help="reading interval: 1m, 5m, 10m, 15m (default), 30m or 1h")
]


def _type(text: str | None) -> str | None:
    if text is not None and text not in METER_TYPES:
        raise typer.BadParameter(f"{text!r} is not one of {', '.join(METER_TYPES)}", param_hint="--type")
    return text


def _ratios(ct: str | None, pt: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if ct is not None:
        out["ct_primary"], out["ct_secondary"] = _option(parse_ratio, ct, "--ct")
    if pt is not None:
        out["pt_primary"], out["pt_secondary"] = _option(parse_ratio, pt, "--pt")
    return out


def _changed(m: dict[str, Any], verb: str) -> str:
    where = f" under {m['parent']}" if m.get("parent") else ""
    return f"meter {m['name']} {verb} ({m['type']}{where}, {len(m['points'])} points)"


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    meter_type: Annotated[
        str, typer.Option("--type", "-t", help=f"meter type: {', '.join(METER_TYPES)}", show_default=False)
    ],
    parent: ParentOpt = None,
    template: Annotated[
        str | None, typer.Option("--template", "-T", help="create the meter's tags from this template (with --device)")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", "-D", help="the device the template's tags read")] = None,
    point: PointOpt = None,
    ct: CtOpt = None,
    pt: PtOpt = None,
    ratio_in_meter: Annotated[
        bool, typer.Option("--ratio-in-meter", help="the meter applies CT/PT itself: do not scale its readings")
    ] = False,
    nominal_voltage: VoltageOpt = None,
    tariff_zone: TariffOpt = None,
    interval: IntervalOpt = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="tag path prefix of template tags (default <site>/energy/<name>)")
    ] = None,
    site: Annotated[str | None, typer.Option("--site", "-s", help="site (default: the daemon's site name)")] = None,
    description: DescriptionOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="add it disabled (no readings)")] = False,
) -> None:
    """Add a meter: its tags created from --template for --device, or existing tags linked with --point, or both.

    Linked points override template ones of the same quantity. CT and PT ratios scale template tags unless --ratio-in-meter.
    """
    g = globals_of(ctx)
    if (template is None) != (device is None):
        raise typer.BadParameter("--template and --device go together", param_hint="--template")
    params = present(name=name, type=_type(meter_type), parent=parent, site=site, description=description,
                     template=template, device=device, tag_prefix=prefix, points=parse_points(point),
                     ratio_applied_in_meter=ratio_in_meter or None, nominal_voltage=nominal_voltage,
                     tariff_zone=tariff_zone, interval_s=_option(parse_interval, interval, "--interval"),
                     enabled=False if disabled else None)  # fmt: skip
    params.update(_ratios(ct, pt))
    m = call(g, "Meters.Create", params)
    done(g, _changed(m, "added"), m)


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: NameArg,
    meter_type: TypeOpt = None,
    parent: ParentOpt = None,
    top_level: Annotated[bool, typer.Option("--top-level", help="remove the parent")] = False,
    point: Annotated[
        list[str] | None,
        typer.Option("--point", help="QUANTITY=TAG (repeatable): the linked points become exactly those given"),
    ] = None,
    no_points: Annotated[bool, typer.Option("--no-points", help="unlink every linked point")] = False,
    ct: CtOpt = None,
    pt: PtOpt = None,
    ratio_in_meter: Annotated[
        bool | None,
        typer.Option("--ratio-in-meter/--ratio-in-scadad", help="whether the meter applies CT/PT itself"),
    ] = None,
    nominal_voltage: VoltageOpt = None,
    tariff_zone: TariffOpt = None,
    interval: IntervalOpt = None,
    description: DescriptionOpt = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="take readings, or stop (the meter stays)")
    ] = None,
) -> None:
    """Change a meter's fields; options left out keep their value."""
    g = globals_of(ctx)
    if top_level and parent is not None:
        raise typer.BadParameter("--parent or --top-level, not both", param_hint="--top-level")
    if no_points and point:
        raise typer.BadParameter("--point or --no-points, not both", param_hint="--no-points")
    params = present(name=name, type=_type(meter_type), parent=parent, description=description,
                     points=parse_points(point), ratio_applied_in_meter=ratio_in_meter,
                     nominal_voltage=nominal_voltage, tariff_zone=tariff_zone,
                     interval_s=_option(parse_interval, interval, "--interval"), enabled=enabled)  # fmt: skip
    if top_level:
        params["parent"] = None
    if no_points:
        params["points"] = {}
    params.update(_ratios(ct, pt))
    require_change(params)
    m = call(g, "Meters.Update", params)
    done(g, _changed(m, "updated"), m)


@app.command("rm")
def remove(
    ctx: typer.Context,
    name: NameArg,
    tags: Annotated[bool, typer.Option("--tags", help="also delete the tags its template created")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove a meter (not one with children); its readings history stays."""
    confirm_remove(globals_of(ctx), f"meter {name}" + (" and its template tags" if tags else ""), "Meters.Delete",
                   present(name=name, tags=tags or None), yes,
                   removed=f"meter {name} removed" + (" with its template tags" if tags else ""))  # fmt: skip


@app.command("status")
def status(ctx: typer.Context, name: NameArg, csv_out: CsvOpt = False) -> None:
    """A meter's status history (online, degraded, offline), oldest first, with the reason."""
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    res, zone = call_with_zone(g, "Meters.StatusHistory", {"name": name})
    if g.json:
        emit_json(res)
        return
    if csv_out:
        write_csv(res["changes"], ("time", "status", "reason"), times=("time",))
        return
    if not g.quiet:
        g.out.print(f"meter {escape(res['meter'])} status ({zone_name(zone)})", highlight=False)
    rows = [{**c, "time": time_text(c["time"], zone)} for c in res["changes"]]
    render_rows(g, rows, [Column("time", "TIME", no_wrap=True), Column("status", "STATUS", style=status_style),
                          Column("reason", "REASON")], title="status changes")  # fmt: skip


# ---------------------------------------------------------------- templates

TemplateArg = Annotated[str, typer.Argument(help="template name, e.g. schneider-pm5xxx", metavar="NAME")]


@template_app.command("list")
def template_list(ctx: typer.Context, csv_out: CsvOpt = False) -> None:
    """Meter templates: shipped ones (etc/meter-templates) and imported ones, with the meters using each.

    `meter template show` has a template's description and points; --csv includes the description.
    """
    g = globals_of(ctx)
    no_csv_and_json(g, csv_out)
    res = call(g, "MeterTemplates.List")
    if g.json:
        emit_json(res)
        return
    rows = [{**t, "points": len(t["points"]), "origin": "shipped" if t["shipped"] else "imported"}
            for t in res["templates"]]  # fmt: skip
    if csv_out:
        write_csv(rows, ("name", "manufacturer", "model", "points", "origin", "meters", "description"))
        return
    render_rows(
        g,
        rows,
        [Column("name", "TEMPLATE", no_wrap=True), Column("manufacturer", "MANUFACTURER"), Column("model", "MODEL"),
         Column("points", "POINTS", justify="right"), Column("origin", "ORIGIN"),
         Column("meters", "METERS", justify="right")],
        title="meter templates",
    )  # fmt: skip


@template_app.command("show")
def template_show(
    ctx: typer.Context,
    name: TemplateArg,
    toml: Annotated[bool, typer.Option("--toml", help="print the template's TOML source instead")] = False,
) -> None:
    """One template: its model and every point (register, type, scaling, ratio class, word order)."""
    g = globals_of(ctx)
    t = call(g, "MeterTemplates.Get", {"name": name})
    if g.json:
        emit_json(t)
        return
    if toml:
        sys.stdout.write(t["source_toml"] if t["source_toml"].endswith("\n") else t["source_toml"] + "\n")
        return
    render_record(
        g,
        {"name": t["name"], "manufacturer": t["manufacturer"], "model": t["model"], "description": t["description"],
         "origin": "shipped" if t["shipped"] else "imported", "meters": t["meters"]},
        title=f"template {t['name']}",
    )  # fmt: skip
    if not g.quiet:
        g.out.print()
    rows = [{**p, "scale": format_value(p["scale"]),
             "sentinels": ", ".join(format_value(s) for s in p.get("sentinels") or []),
             "transform": p.get("transform") or ""} for p in t["points"]]  # fmt: skip
    render_rows(
        g,
        rows,
        [Column("quantity", "QUANTITY", no_wrap=True), Column("address", "ADDRESS", justify="right"),
         Column("function", "FC", justify="right"), Column("type", "TYPE"), Column("unit", "UNIT"),
         Column("scale", "SCALE", justify="right"), Column("ratio", "RATIO"), Column("word_order", "WORDS"),
         Column("sentinels", "N/A VALUES"), Column("transform", "TRANSFORM")],
        title="points",
    )  # fmt: skip


@template_app.command("import")
def template_import(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="a .toml template file (as in etc/meter-templates/)")],
    update: Annotated[bool, typer.Option("--update", help="replace the template of the same name")] = False,
) -> None:
    """Add a meter template from a TOML file; the daemon checks it all.

    A file that does not parse, or a point the daemon refuses, exits 1 with the file, line and field.
    """
    g = globals_of(ctx)
    try:
        text = Path(file).read_text(encoding="utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    client = g.client()
    try:
        t = client.call("MeterTemplates.Import", {"toml": text, "update": update})
    except ScadaError as exc:
        wire = exc.to_wire()
        wire["message"] = in_template_file(exc.message, file)
        wire["details"] = {**exc.details, "file": file}
        fail(g, ScadaError.from_wire(wire))
    finally:
        client.close()
    what = escape(f"{t['manufacturer']} {t['model']}, {len(t['points'])} points")
    done(g, f"template {t['name']} imported: {what}", t)


@template_app.command("rm")
def template_rm(
    ctx: typer.Context,
    name: TemplateArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove an imported template no meter uses."""
    confirm_remove(globals_of(ctx), f"meter template {name}", "MeterTemplates.Delete", {"name": name}, yes,
                   removed=f"template {name} removed")  # fmt: skip
