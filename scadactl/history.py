"""scadactl history: a tag's recorded values as a table, CSV or a terminal chart."""

from __future__ import annotations

import csv
import io
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from scadactl.devices import parse_iso
from scadactl.output import Column, call, emit_json, globals_of, present, render_rows
from scadactl.tags import format_value, quality_style

_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'30s', '5m', '1h', '1d', '2w', '1h30m' (or a bare number of seconds) as seconds."""
    t = text.strip().lower()
    if not t:
        raise ValueError("expected a duration like 30s, 5m, 1h or 1d, got ''")
    try:
        return float(t)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _PART.finditer(t):
        if m.start() != pos and t[pos : m.start()].strip():
            break
        total += float(m[1]) * _UNITS[m[2]]
        pos = m.end()
    if pos == 0 or t[pos:].strip():
        raise ValueError(f"expected a duration like 30s, 5m, 1h or 1d, got {text!r}")
    return total


def parse_every(text: str) -> int:
    """An --every bucket width as whole seconds (at least 1)."""
    s = parse_duration(text)
    if s < 1 or s != int(s):
        raise ValueError(f"a bucket is a whole number of seconds, at least 1s, got {text!r}")
    return int(s)


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A --from/--to time as an aware datetime: 'now', relative '-2h' / '-30m' / '-7d',
    or ISO-8601 with or without an offset (a time without one is local time)."""
    t = text.strip()
    now = now or datetime.now(UTC)
    if t.lower() == "now":
        return now
    if t.startswith("-"):
        try:
            return now - timedelta(seconds=parse_duration(t[1:]))
        except ValueError:
            raise ValueError(f"expected a time like -2h, -30m, -7d, now or 2026-01-31T08:00, got {text!r}") from None
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"expected a time like -2h, -30m, -7d, now or 2026-01-31T08:00, got {text!r}") from None
    return dt if dt.tzinfo else dt.astimezone()  # naive: local time


def utc_text(dt: datetime) -> str:
    """ISO-8601 in UTC with Z, as written to CSV."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_text(text: str) -> str:
    t = parse_iso(text)
    return "" if t is None else t.astimezone().replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


SAMPLE_FIELDS = ("time", "value", "quality")
BUCKET_FIELDS = ("time", "min", "max", "avg", "last", "count", "bad_count")


def csv_text(res: dict[str, Any]) -> str:
    """A History.Query result as CSV: samples or buckets, times ISO-8601 UTC."""
    buckets = res["every_s"] is not None
    fields = BUCKET_FIELDS if buckets else SAMPLE_FIELDS
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(fields)
    for row in res["buckets"] if buckets else res["samples"]:
        cells = []
        for f in fields:
            v = row.get(f)
            if f == "time":
                cells.append(utc_text(parse_iso(v)))  # type: ignore[arg-type]
            else:
                cells.append("" if v is None else (repr(v) if isinstance(v, float) else str(v)))
        w.writerow(cells)
    return out.getvalue()


def _plot(res: dict[str, Any]) -> None:
    import plotext as plt  # only --plot pays for it

    rows = res["buckets"] or res["samples"]
    key = "avg" if res["buckets"] else "value"
    points = [(parse_iso(r["time"]), r[key]) for r in rows if r.get(key) is not None]
    units = f" [{res['units']}]" if res["units"] else ""
    if not points:
        print("no values to plot (all samples BAD)", file=sys.stderr)
        return
    fig = plt.figure
    fig.theme("simple")
    offset = datetime.now().astimezone().utcoffset() or timedelta()
    span = (points[-1][0] - points[0][0]).total_seconds() if len(points) > 1 else 0  # type: ignore[operator]
    form = "%H:%M:%S" if span <= 600 else ("%H:%M" if span <= 2 * 86400 else "%Y-%m-%d")
    fig.date().activate(form=form, zone=offset.total_seconds() / 3600)
    fig.draw(fig.signal([p[0] for p in points], [p[1] for p in points]).lines())
    every = f", avg per {res['every_s']} s" if res["buckets"] else ""
    fig.title(f"{res['path']}{units}{every}")
    fig.show(colorless=not sys.stdout.isatty())


def history(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="tag path")],
    start: Annotated[
        str | None,
        typer.Option("--from", help="start: ISO-8601 (local time without offset), -2h, -7d, now; default -1h"),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="end, as --from; default now")] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="aggregate per bucket: 30s, 5m, 1h, 1d (min/avg/max/last/count)")
    ] = None,
    latest: Annotated[bool, typer.Option("--latest", help="only the latest recorded sample")] = False,
    plot: Annotated[
        bool, typer.Option("--plot", help="draw a terminal chart of the value (or average) over time")
    ] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on standard output, times ISO-8601 UTC")] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="at most N samples or buckets", min=1)] = None,
) -> None:
    """A tag's history: raw samples in [--from, --to), or aggregates per --every bucket.

    Times in the table are local; --csv writes UTC. Relative times count back from now.
    """
    g = globals_of(ctx)
    if sum((plot, csv_out, g.json)) > 1:
        raise typer.BadParameter("choose one of --plot, --csv and --json", param_hint="--plot")
    if latest and every:
        raise typer.BadParameter("--latest returns one sample; it takes no --every", param_hint="--latest")
    now = datetime.now(UTC)
    try:
        t0 = parse_time(start, now) if start else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from") from None
    try:
        t1 = parse_time(end, now) if end else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from None
    try:
        every_s = parse_every(every) if every else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from None
    params = present(path=path, start=t0.isoformat() if t0 else None, end=t1.isoformat() if t1 else None,
                     every_s=every_s, latest=latest or None, limit=limit)  # fmt: skip
    res = call(g, "History.Query", params)
    if g.json:
        emit_json(res)
        return
    if res.get("truncated") and not g.quiet:
        g.err.print(
            f"[yellow]truncated[/] at {len(res['buckets'] or res['samples'])} rows: narrow the range, "
            "use --every, or raise --limit",
            highlight=False,
        )
    if csv_out:
        sys.stdout.write(csv_text(res))
        return
    units = f" [{res['units']}]" if res["units"] else ""
    zone = datetime.now().astimezone().tzname()
    span = "latest sample" if latest else f"{local_text(res['start'])} to {local_text(res['end'])}"
    every_text = f", every {res['every_s']} s" if res["every_s"] else ""
    title = f"{res['path']}{units}  {span} ({zone}){every_text}"
    if not res["buckets"] and not res["samples"]:
        if not g.quiet:
            g.err.print(f"no history of {title}", highlight=False, markup=False)
        return
    if plot:
        _plot(res)
        return
    if not g.quiet:
        g.out.print(title, highlight=False, markup=False, soft_wrap=True)
    if res["buckets"]:
        fmt = format_value
        render_rows(
            g,
            [{**b, "time": local_text(b["time"])} for b in res["buckets"]],
            [
                Column("time", "TIME"),
                Column("min", "MIN", fmt=fmt, justify="right"),
                Column("avg", "AVG", fmt=fmt, justify="right"),
                Column("max", "MAX", fmt=fmt, justify="right"),
                Column("last", "LAST", fmt=fmt, justify="right"),
                Column("count", "COUNT", justify="right"),
                Column("bad_count", "BAD", justify="right"),
            ],
        )
        return
    render_rows(
        g,
        [{**s, "time": local_text(s["time"])} for s in res["samples"]],
        [
            Column("time", "TIME"),
            Column("value", "VALUE", fmt=format_value, justify="right"),
            Column("quality", "QUALITY", style=quality_style),
        ],
    )
