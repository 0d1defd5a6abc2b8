"""scadad.alarms.kpi: ISA-18.2 / EEMUA 191 figures from a seeded journal, to the number."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scadad.alarms.kpi import ActiveAlarm, JournalRow, compute_kpis
from scadad.clock import from_us, to_us

S = to_us(datetime(2024, 3, 1, 6, 0, tzinfo=UTC))  # start of the seeded period
SEC = 1_000_000
MIN = 60 * SEC
HOUR = 60 * MIN
E = S + 3 * HOUR  # 18 ten-minute windows


def activated(ts: int, tag: str, kind: str | None, priority: str | None, rule_id: int | None = 1) -> JournalRow:
    return JournalRow(ts_us=ts, rule_id=rule_id, tag=tag, kind=kind, event="activated", priority=priority)


def other(ts: int, tag: str, kind: str | None, event: str, priority: str | None = "low") -> JournalRow:
    return JournalRow(ts_us=ts, rule_id=1, tag=tag, kind=kind, event=event, priority=priority)


FLOOD_TAGS = [f"area/flood/f{k:02d}" for k in range(23)]


def seeded_journal() -> list[JournalRow]:
    """Three hours of journal, in shuffled order. Activations per 10-min window:
    w0 3, w1 2, w2 3, w3 25 (flood), w4 3, w5 2, w6 7, w7 2, w8 3, w9 15 (a flood for one
    operator, not for two), w10 3, w11 2, w12 4, w13 5, w14 3, w15 0, w16 1, w17 0: 83."""
    rows: list[JournalRow] = []
    # Bad actor, never chattering: 30 activations 5 min apart (two in each of windows 0..14),
    # each followed by an acknowledgement and a clear that must not count.
    for i in range(30):
        ts = S + 150 * SEC + i * 5 * MIN
        rows += [
            activated(ts, "area/tank/level", "hi", "low"),
            other(ts + 20 * SEC, "area/tank/level", "hi", "acknowledged"),
            other(ts + 40 * SEC, "area/tank/level", "hi", "cleared"),
        ]
    # The flood: 23 alarms once each in window 3 (with the tank's two: 25), all acknowledged.
    for k, tag in enumerate(FLOOD_TAGS):
        ts = S + 30 * MIN + k * 20 * SEC
        rows += [activated(ts, tag, "hi", "high"), other(ts + 5 * SEC, tag, "hi", "acknowledged", "high")]
    # 13 activations 45 s apart in window 9 (with the tank's two: 15): two fall within
    # 60 s, never three, so not chattering.
    for k in range(13):
        rows.append(activated(S + 90 * MIN + 10 * SEC + k * 45 * SEC, "area/compressor/temp", "hihi", "high"))
    rows.append(other(S + 100 * MIN, "area/compressor/temp", "hihi", "shelved", "high"))
    # Every 20 min in the even windows 0..14; its priority was raised for the last one.
    for j in range(8):
        rows.append(
            activated(S + 100 * SEC + j * 20 * MIN, "area/valve/pos", "discrete", "medium" if j == 7 else "low")
        )
    # Chattering: 4 activations within 50 s (window 6), and 3 within 59 s (window 13).
    for offset in (0, 15, 30, 50):
        rows.append(activated(S + 60 * MIN + offset * SEC, "area/pump1/flow", "lo", "critical"))
    for offset in (0, 29, 59):
        rows.append(activated(S + 130 * MIN + offset * SEC, "area/fan/vib", "hi", "medium"))
    # No priority on the row (windows 12 and 16).
    rows.append(activated(S + 125 * MIN, "area/comm/plc1", "bad_quality", None, rule_id=None))
    rows.append(activated(S + 165 * MIN, "area/comm/plc1", "bad_quality", None, rule_id=None))
    # Outside [start, end): a flood and a chatter before, the end instant itself, after.
    for k in range(30):
        rows.append(activated(S - 20 * MIN + k * SEC, "area/flood/f00", "hi", "high"))
    rows.append(activated(S - 1, "area/tank/level", "hi", "low"))
    rows.append(activated(E, "area/tank/level", "hi", "low"))
    for k in range(5):
        rows.append(activated(E + HOUR + k * SEC, "area/pump1/flow", "lo", "critical"))
    rows.append(other(S + 170 * MIN, "area/pump1/flow", "lo", "comment", None))
    random.Random(182).shuffle(rows)
    return rows


ACTIVE = [
    ActiveAlarm("area/valve/pos", "discrete", "medium", E - 2 * HOUR),
    ActiveAlarm("area/boiler/pressure", "hihi", "critical", E - 24 * HOUR),  # exactly 24 h: standing
    ActiveAlarm("area/boiler/level", "lo", "high", E - 24 * HOUR + 1),  # a µs short of it
    ActiveAlarm("area/tank/level", "hi", "low", E - 30 * HOUR - 7 * MIN),
]


def counts(alarms) -> list[tuple[str, int, str | None]]:
    return [(a.name, a.count, a.priority) for a in alarms]


def test_seeded_journal_one_operator():
    k = compute_kpis(seeded_journal(), S, E, active=ACTIVE)

    assert (k.start, k.end, k.operators) == (from_us(S), from_us(E), 1)
    assert k.activations == 83
    assert k.windows == 18
    assert k.flood_windows == 2
    assert k.flood_pct == 11.11
    assert k.per_operator_per_10min_avg == 4.61
    assert k.per_operator_per_10min_max == 25.0
    assert k.per_operator_per_day == 664.0
    assert counts(k.bad_actors) == [
        ("area/tank/level:hi", 30, "low"),
        ("area/compressor/temp:hihi", 13, "high"),
        ("area/valve/pos:discrete", 8, "medium"),
        ("area/pump1/flow:lo", 4, "critical"),
        ("area/fan/vib:hi", 3, "medium"),
        ("area/comm/plc1:bad_quality", 2, None),
        ("area/flood/f00:hi", 1, "high"),
        ("area/flood/f01:hi", 1, "high"),
        ("area/flood/f02:hi", 1, "high"),
        ("area/flood/f03:hi", 1, "high"),
    ]
    assert (k.bad_actors[0].tag, k.bad_actors[0].kind) == ("area/tank/level", "hi")
    assert counts(k.chattering) == [("area/pump1/flow:lo", 4, "critical"), ("area/fan/vib:hi", 3, "medium")]
    assert [(s.name, s.hours, s.priority, s.active_since) for s in k.standing] == [
        ("area/tank/level:hi", 30.1, "low", from_us(E - 30 * HOUR - 7 * MIN)),
        ("area/boiler/pressure:hihi", 24.0, "critical", from_us(E - 24 * HOUR)),
    ]
    assert k.priority_counts == {"critical": 4, "high": 36, "medium": 4, "low": 37, "unknown": 2}
    assert list(k.priority_counts) == ["critical", "high", "medium", "low", "unknown"]
    assert k.priority_distribution == {"critical": 4.8, "high": 43.4, "medium": 4.8, "low": 44.6, "unknown": 2.4}


def test_two_operators_halve_the_rates_and_the_busy_window_is_no_longer_a_flood():
    one = compute_kpis(seeded_journal(), S, E, active=ACTIVE)
    two = compute_kpis(seeded_journal(), S, E, operators=2, active=ACTIVE)

    assert two.operators == 2
    assert two.activations == 83
    assert two.per_operator_per_10min_avg == 2.31
    assert two.per_operator_per_10min_max == 12.5
    assert two.per_operator_per_day == 332.0
    # 25 / 2 = 12.5 is still a flood; 15 / 2 = 7.5 no longer is.
    assert (two.flood_windows, two.flood_pct) == (1, 5.56)
    # What does not depend on the number of operators does not change.
    assert two.bad_actors == one.bad_actors
    assert two.chattering == one.chattering
    assert two.standing == one.standing
    assert two.priority_counts == one.priority_counts


def test_row_order_does_not_matter():
    rows = seeded_journal()
    in_order = sorted(rows, key=lambda r: r.ts_us)
    assert compute_kpis(iter(rows), S, E, active=ACTIVE) == compute_kpis(in_order, S, E, active=ACTIVE)


def test_top_limits_the_bad_actors():
    k = compute_kpis(seeded_journal(), S, E, top=3)
    assert [a.name for a in k.bad_actors] == [
        "area/tank/level:hi",
        "area/compressor/temp:hihi",
        "area/valve/pos:discrete",
    ]
    assert compute_kpis(seeded_journal(), S, E, top=0).bad_actors == []


def test_bad_actor_priority_is_the_latest_activations():
    rows = [
        activated(S + 2 * MIN, "t/a", "hi", "low"),
        activated(S + 9 * MIN, "t/a", "hi", "critical"),
        other(S + 9 * MIN + SEC, "t/a", "hi", "acknowledged", "medium"),  # not an activation
        activated(S + 5 * MIN, "t/a", "hi", "high"),  # older, though read later
    ]
    assert counts(compute_kpis(rows, S, S + HOUR).bad_actors) == [("t/a:hi", 3, "critical")]


def test_bad_actor_ties_go_by_name():
    rows = [activated(S + i * MIN, tag, "hi", "low") for i, tag in enumerate(["t/c", "t/a", "t/b", "t/a", "t/c"])]
    assert counts(compute_kpis(rows, S, S + HOUR).bad_actors) == [
        ("t/a:hi", 2, "low"),
        ("t/c:hi", 2, "low"),
        ("t/b:hi", 1, "low"),
    ]


def test_same_tag_different_kinds_are_different_alarms():
    rows = [
        activated(S, "t/a", "hi", "low"),
        activated(S + SEC, "t/a", "hihi", "high"),
        activated(S, "t/b", None, None),
    ]
    k = compute_kpis(rows, S, S + HOUR)
    assert counts(k.bad_actors) == [("t/a:hi", 1, "low"), ("t/a:hihi", 1, "high"), ("t/b", 1, None)]


@pytest.mark.parametrize(
    ("n", "operators", "flood_windows"),
    [(10, 1, 0), (11, 1, 1), (20, 2, 0), (21, 2, 1), (30, 3, 0), (31, 3, 1)],
)
def test_flood_is_more_than_ten_per_operator(n, operators, flood_windows):
    rows = [activated(S + k * 10 * SEC, f"t/{k:02d}", "hi", "low") for k in range(n)]
    k = compute_kpis(rows, S, S + 20 * MIN, operators=operators)
    assert k.windows == 2
    assert (k.flood_windows, k.flood_pct) == (flood_windows, 50.0 * flood_windows)


def test_window_edges_start_counts_end_does_not():
    rows = [
        activated(S, "t/a", "hi", "low"),  # window 0
        activated(S + 10 * MIN - 1, "t/a", "hi", "low"),  # still window 0
        activated(S + 10 * MIN, "t/a", "hi", "low"),  # window 1
        activated(S + 25 * MIN - 1, "t/a", "hi", "low"),  # the partial last window
        activated(S + 25 * MIN, "t/a", "hi", "low"),  # end: outside
    ]
    k = compute_kpis(rows, S, S + 25 * MIN)
    assert (k.activations, k.windows) == (4, 3)
    assert k.per_operator_per_10min_max == 2.0
    assert k.per_operator_per_10min_avg == 1.33
    assert k.per_operator_per_day == 230.4  # 4 per 25 min


@pytest.mark.parametrize(
    ("offsets_us", "expected"),
    [
        ([0, 30 * SEC, 60 * SEC], []),  # spanning exactly 60 s: not chattering
        ([0, 30 * SEC, 60 * SEC - 1], [("t/a:hi", 3, "low")]),
        ([0, 59 * SEC], []),  # two are not enough
        ([0, 40 * SEC, 80 * SEC, 120 * SEC, 160 * SEC], []),  # pairs within 60 s, never three
        ([0, 40 * SEC, 70 * SEC, 90 * SEC, 95 * SEC], [("t/a:hi", 4, "low")]),  # 40, 70, 90, 95
        ([0, SEC, 2 * SEC, 10 * MIN, 10 * MIN + SEC], [("t/a:hi", 3, "low")]),  # the most in any span
    ],
)
def test_chattering_is_three_within_less_than_a_minute(offsets_us, expected):
    rows = [activated(S + HOUR + t, "t/a", "hi", "low") for t in offsets_us]
    assert counts(compute_kpis(rows, S, S + 2 * HOUR).chattering) == expected


def test_chattering_sorted_by_count_then_name():
    rows = [activated(S + t * SEC, "t/b", "hi", "low") for t in (0, 1, 2)]
    rows += [activated(S + t * SEC, "t/a", "hi", "high") for t in (0, 1, 2)]
    rows += [activated(S + t * SEC, "t/c", "lo", "low") for t in (0, 1, 2, 3)]
    assert counts(compute_kpis(rows, S, S + HOUR).chattering) == [
        ("t/c:lo", 4, "low"),
        ("t/a:hi", 3, "high"),
        ("t/b:hi", 3, "low"),
    ]


def test_standing_ignores_the_journal_window_but_not_end():
    active = [
        ActiveAlarm("t/old", "hi", "low", E - 100 * HOUR - 12 * MIN),  # 100.2 h
        ActiveAlarm("t/b", None, None, E - 48 * HOUR),
        ActiveAlarm("t/a", "lo", "high", E - 48 * HOUR),
        ActiveAlarm("t/new", "hi", "low", E + HOUR),  # not yet active at end
    ]
    k = compute_kpis([], S, E, active=active)
    assert [(s.name, s.kind, s.hours) for s in k.standing] == [
        ("t/old:hi", "hi", 100.2),
        ("t/a:lo", "lo", 48.0),
        ("t/b", None, 48.0),
    ]


def test_empty_journal():
    k = compute_kpis([], S, E)
    assert k.activations == 0
    assert k.windows == 18
    assert (k.flood_windows, k.flood_pct) == (0, 0.0)
    assert (k.per_operator_per_10min_avg, k.per_operator_per_10min_max, k.per_operator_per_day) == (0.0, 0.0, 0.0)
    assert (k.bad_actors, k.chattering, k.standing) == ([], [], [])
    assert k.priority_counts == {"critical": 0, "high": 0, "medium": 0, "low": 0}
    assert k.priority_distribution == {"critical": 0.0, "high": 0.0, "medium": 0.0, "low": 0.0}


def test_only_other_events_is_empty_too():
    rows = [other(S + MIN, "t/a", "hi", event) for event in ("acknowledged", "cleared", "shelved", "returned")]
    assert compute_kpis(rows, S, E) == compute_kpis([], S, E)


def test_a_priority_outside_the_four_keeps_its_name():
    rows = [activated(S, "t/a", "hi", "journal"), activated(S, "t/b", "hi", "low")]
    k = compute_kpis(rows, S, E)
    assert k.priority_counts == {"critical": 0, "high": 0, "medium": 0, "low": 1, "journal": 1}
    assert k.priority_distribution["journal"] == 50.0


@pytest.mark.parametrize("end", [S, S - 1, S - HOUR])
def test_end_not_after_start_is_refused(end):
    with pytest.raises(ValueError, match=r"end \(.*\) must be after start \(2024-03-01T06:00:00\+00:00\)"):
        compute_kpis([], S, end)


def test_no_operators_is_refused():
    with pytest.raises(ValueError, match="operators"):
        compute_kpis([], S, E, operators=0)


def brute_force(times: list[int], start: int, end: int) -> tuple[int, list[int], int]:
    """Activations, per-window counts and the most within any span shorter than 60 s, the slow way."""
    inside = [t for t in times if start <= t < end]
    windows = -(-(end - start) // (10 * MIN))
    per_window = [
        sum(1 for t in inside if start + w * 10 * MIN <= t < start + (w + 1) * 10 * MIN) for w in range(windows)
    ]
    most = max((sum(1 for u in inside if t <= u < t + 60 * SEC) for t in inside), default=0)
    return len(inside), per_window, most


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(min_value=-5 * MIN, max_value=45 * MIN), max_size=60),
    length=st.integers(min_value=1, max_value=40 * MIN),
    operators=st.integers(min_value=1, max_value=3),
)
def test_agrees_with_brute_force(times, length, operators):
    rows = [activated(S + t, "t/a", "hi", "low") for t in times]
    k = compute_kpis(rows, S, S + length, operators=operators)
    n, per_window, most = brute_force([S + t for t in times], S, S + length)
    assert k.activations == n
    assert k.windows == len(per_window)
    assert k.flood_windows == sum(1 for c in per_window if c > 10 * operators)
    assert k.per_operator_per_10min_max == round(max(per_window) / operators, 2)
    assert counts(k.chattering) == ([("t/a:hi", most, "low")] if most >= 3 else [])


def test_times_are_utc():
    k = compute_kpis([], S, E)
    assert k.start == datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
    assert k.end - k.start == timedelta(hours=3)
