"""Trend arithmetic and the plot renderer, without a daemon or an app."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tui.trend_data import (
    Pen,
    bucket_s,
    history_params,
    live_point,
    local_midnight,
    merge_tail,
    pen_from_history,
    span_label,
    tick_label,
    time_ticks,
    value_ticks,
)
from tui.widgets.plot import axis_sides, render_plot, runs

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def bucket(t: float, avg: float | None, last: float | None = None) -> dict:
    return {"time": iso(t), "min": avg, "max": avg, "avg": avg, "last": avg if last is None else last,
            "count": 1, "bad_count": 0 if avg is not None else 1}  # fmt: skip


@pytest.mark.parametrize(
    ("span", "every"),
    [(3600, 15), (8 * 3600, 120), (86400, 360), (7 * 86400, 2520), (60, 1), (10, 1), (90 * 60, 22)],
)
def test_bucket_sizes_fill_a_wide_screen(span: float, every: int) -> None:
    assert bucket_s(span) == every


def test_history_params_are_utc_iso_with_the_bucket() -> None:
    p = history_params("sim/m/power_total", T0 - 3600, T0)
    assert p == {"path": "sim/m/power_total", "start": "2026-03-02T07:00:00+00:00",
                 "end": "2026-03-02T08:00:00.001000+00:00", "every_s": 15}  # fmt: skip


def test_append_keeps_order_and_trims_the_window() -> None:
    pen = Pen("p", "kW")
    for i in range(10):
        pen.append(T0 + i, float(i), keep_after=T0 + 5)
    assert pen.times == [T0 + 5, T0 + 6, T0 + 7, T0 + 8, T0 + 9]
    pen.append(T0 + 3, 99.0)  # late: dropped
    assert pen.values[-1] == 9.0
    pen.trim(T0 + 8)
    assert pen.values == [8.0, 9.0]


def test_live_samples_merge_into_their_bucket() -> None:
    pen = pen_from_history({"path": "p", "every_s": 15, "buckets": [bucket(T0, 10.0), bucket(T0 + 15, 20.0)]})
    pen.add_live(T0 + 16, 22.0, 15)  # the partial bucket from history counts as one sample
    assert pen.times[-1] == T0 + 15 and pen.values[-1] == 21.0
    pen.add_live(T0 + 20, 24.0, 15)
    assert pen.values[-1] == pytest.approx(22.0)
    pen.add_live(T0 + 31, 5.0, 15)  # a new bucket
    assert pen.times[-2:] == [T0 + 15, T0 + 30] and pen.values[-1] == 5.0
    pen.add_live(T0 + 2, 1.0, 15)  # before the last bucket: ignored
    assert len(pen.times) == 3
    pen.add_live(T0 + 46, None, 15)  # BAD opens a gap in an empty bucket ...
    assert pen.values[-1] is None
    pen.add_live(T0 + 50, 7.0, 15)  # ... which the next good sample fills
    assert pen.values[-1] == 7.0
    pen.add_live(T0 + 55, None, 15)  # a BAD sample does not erase a bucket's value
    assert pen.values[-1] == 7.0
    pen.add_live(T0 + 61, 1.0, 15, keep_after=T0 + 30)
    assert pen.times[0] == T0 + 30
    assert pen.last() == (T0 + 60, 1.0)


def test_history_to_pen_bad_buckets_are_gaps_not_zero() -> None:
    result = {"path": "sim/m/p", "units": "kW", "every_s": 15,
              "buckets": [bucket(T0, 1.0), bucket(T0 + 15, None), bucket(T0 + 30, 3.0)]}  # fmt: skip
    pen = pen_from_history(result)
    assert pen.label == "sim/m/p" and pen.units == "kW"
    assert pen.times == [T0, T0 + 15, T0 + 30]
    assert pen.values == [1.0, None, 3.0]


def test_history_to_pen_holds_the_value_across_empty_buckets() -> None:
    # No sample between T0+15 and T0+60: the value held (the bucket's last) stays flat.
    result = {"path": "p", "every_s": 15, "buckets": [bucket(T0, 1.0, last=2.0), bucket(T0 + 60, 5.0)]}
    pen = pen_from_history(result)
    assert list(zip(pen.times, pen.values, strict=True)) == [
        (T0, 1.0), (T0 + 15, 2.0), (T0 + 45, 2.0), (T0 + 60, 5.0),
    ]  # fmt: skip


def test_history_to_pen_after_a_bucket_that_ended_bad_is_a_gap() -> None:
    result = {"path": "p", "every_s": 15, "buckets": [bucket(T0, 1.0, last=None), bucket(T0 + 60, 5.0)]}
    result["buckets"][0]["last"] = None
    pen = pen_from_history(result)
    assert list(zip(pen.times, pen.values, strict=True)) == [(T0, 1.0), (T0 + 15, None), (T0 + 60, 5.0)]


def test_history_samples_without_buckets() -> None:
    result = {"path": "p", "every_s": None, "buckets": [],
              "samples": [{"time": iso(T0), "value": 1.0, "quality": "GOOD"},
                          {"time": iso(T0 + 1), "value": None, "quality": "BAD"}]}  # fmt: skip
    pen = pen_from_history(result)
    assert pen.values == [1.0, None]


def test_merge_tail_keeps_live_points_newer_than_the_query() -> None:
    fresh = Pen("p", times=[T0, T0 + 15], values=[1.0, 2.0])
    old = Pen("p", times=[T0 + 15, T0 + 30, T0 + 45], values=[9.0, 3.0, 4.0])
    assert merge_tail(fresh, old).values == [1.0, 2.0, 3.0, 4.0]


def test_live_point_from_a_watch_value() -> None:
    assert live_point({"value": 2, "quality": "GOOD", "server_time": iso(T0)}) == (T0, 2.0)
    assert live_point({"value": True, "quality": "GOOD", "server_time": iso(T0)}) == (T0, 1.0)
    assert live_point({"value": 5.0, "quality": "BAD", "server_time": iso(T0)}) == (T0, None)
    assert live_point({"value": "text", "quality": "GOOD", "server_time": iso(T0)}) is None
    assert live_point({"value": 1.0, "quality": "GOOD"}) is None


def test_span_labels_and_local_midnight() -> None:
    assert [span_label(s) for s in (15, 120, 3600, 5400, 86400, 7 * 86400)] == [
        "15 s", "2 min", "1 h", "1 h 30 min", "1 d", "7 d",
    ]  # fmt: skip
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-02 08:00 UTC is 09:00 in Berlin: midnight there was 23:00 UTC the day before.
    assert local_midnight(T0, berlin) == datetime(2026, 3, 1, 23, 0, tzinfo=UTC).timestamp()


def test_time_ticks_are_round_local_times() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    pos, labels = time_ticks(T0 - 3600, T0, berlin, 7)
    assert labels == ["08:00", "08:10", "08:20", "08:30", "08:40", "08:50", "09:00"]
    assert pos[0] == T0 - 3600
    _, week = time_ticks(T0 - 7 * 86400, T0, berlin, 8)
    assert week[:2] == ["Tue 24", "Wed 25"] and len(week) == 7
    assert time_ticks(T0, T0, berlin, 5) == ([], [])


def test_value_ticks_are_round_and_cover_the_data() -> None:
    low, high, ticks = value_ticks(18.32, 18.47, 5)
    assert low <= 18.32 and high >= 18.47 and len(ticks) <= 6
    assert [tick_label(t, ticks[1] - ticks[0]) for t in ticks] == ["18.30", "18.35", "18.40", "18.45", "18.50"]
    low, high, ticks = value_ticks(0.0, 0.0, 5)  # flat: still a range
    assert low < 0 < high
    assert tick_label(1260310.0, 10.0) == "1260310"


def test_runs_split_at_gaps_and_clip_to_the_window() -> None:
    times = [T0 + i for i in range(8)]
    values = [0.0, 1.0, None, 3.0, 4.0, None, None, 7.0]
    assert runs(times, values, T0 + 1, T0 + 6) == [([T0 + 1], [1.0]), ([T0 + 3, T0 + 4], [3.0, 4.0])]


def test_plot_is_deterministic_sized_and_leaves_gaps() -> None:
    pen = Pen("p", "kW", [T0 + i * 15 for i in range(240)], [None if 100 <= i < 140 else 10.0 for i in range(240)])
    a = render_plot([pen], T0, T0 + 3600, 80, 16, UTC)
    b = render_plot([pen], T0, T0 + 3600, 80, 16, UTC)
    assert a.plain == b.plain
    lines = a.plain.split("\n")
    assert len(lines) == 16 and all(len(line) == 80 for line in lines)
    assert "08:00" in lines[-1] and "09:00" in lines[-1]
    flat = next(line for line in lines if "⠤" in line or "⠒" in line or "⠉" in line)
    inner = flat[flat.index("┤") + 1 : flat.rindex("│")]
    assert "  " in inner.strip()  # the BAD hour-part is a hole, not a line at zero
    assert not any(line.startswith(" 0┤") or line.startswith("0┤") for line in lines)
    assert any(span.style and "rgb" in str(span.style) for span in a.spans)  # the pen has a colour


def test_plot_sparkline_and_empty() -> None:
    pen = Pen("p", "kW", [T0, T0 + 1800, T0 + 3600], [1.0, 3.0, 2.0])
    spark = render_plot([pen], T0, T0 + 3600, 30, 3, compact=True)
    assert "┤" not in spark.plain and "└" not in spark.plain
    assert render_plot([Pen("p")], T0, T0 + 3600, 40, 6).plain.strip() == "no data in this span"


def test_two_units_get_two_axes() -> None:
    kw = Pen("a", "kW", [T0, T0 + 3600], [70.0, 75.0])
    amps = Pen("b", "A", [T0, T0 + 3600], [120.0, 130.0])
    volts = Pen("c", "V", [T0, T0 + 3600], [230.0, 231.0])
    assert axis_sides([kw, amps, Pen("d", "kW")]) == [0, 1, 0]
    assert axis_sides([kw, amps, volts]) == [0, 0, 0]  # three units: one shared axis
    lines = render_plot([kw, amps], T0, T0 + 3600, 60, 10, UTC).plain.split("\n")
    left, right = lines[1].split("┤")[0], lines[1].rstrip().split("├")[-1]
    assert 75 <= float(left) < 80 and 130 <= float(right) < 140  # left kW, right A
