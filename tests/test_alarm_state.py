"""scadad.alarms.state: the ISA-18.2 state machine driven as plain functions (no loop, no clock)."""

from __future__ import annotations

import copy

import pytest

from scadad.alarms.state import (
    ACK_ACTIVE,
    LATCHED,
    NORMAL,
    RTN_UNACK,
    UNACK_ACTIVE,
    AlarmState,
    Timing,
    Transition,
    acknowledge,
    comment,
    due,
    evaluate,
    set_out_of_service,
    set_suppressed,
    shelve,
    tick,
    unshelve,
)

RULE = 7
HIGH, LOW = 120.0, 80.0  # the process value journalled with an activation / a clear


def tr(
    ts: int,
    event: str,
    state: str,
    value: float | None = None,
    user: str | None = None,
    text: str | None = None,
) -> Transition:
    return Transition(RULE, ts, event, state, value, user, text)


def step(a: AlarmState, t: Timing, op: str, ts: int) -> list[Transition]:
    """One operator or process action: "on"/"off" evaluate the condition, "ack" acknowledges."""
    if op == "on":
        return evaluate(a, t, True, HIGH, ts)
    if op == "off":
        return evaluate(a, t, False, LOW, ts)
    assert op == "ack"
    return acknowledge(a, "olga", "seen it", ts)


def drive(ops: list[str], latching: bool = False) -> tuple[AlarmState, Timing, list[Transition]]:
    """An alarm after `ops`, applied at 100, 200, 300…; returns the whole journal too."""
    a, t = AlarmState(RULE), Timing(latching=latching)
    journal: list[Transition] = []
    for i, op in enumerate(ops):
        journal += step(a, t, op, 100 * (i + 1))
    return a, t, journal


# ------------------------------------------------------------- the diagram


ACKED = tr(200, "acknowledged", ACK_ACTIVE, HIGH, "olga", "seen it")
ON = tr(100, "activated", UNACK_ACTIVE, HIGH)


@pytest.mark.parametrize(
    "latching, ops, journal, active_since, acked",
    [
        pytest.param(False, ["on"], [ON], 100, (None, None), id="A->B"),
        pytest.param(False, ["on", "ack"], [ON, ACKED], 100, ("olga", 200), id="B->C"),
        pytest.param(False, ["on", "off"], [ON, tr(200, "cleared", RTN_UNACK, LOW)], 100, (None, None), id="B->D"),
        pytest.param(True, ["on", "off"], [ON, tr(200, "cleared", LATCHED, LOW)], 100, (None, None), id="B->E"),
        pytest.param(
            False, ["on", "ack", "off"], [ON, ACKED, tr(300, "cleared", NORMAL, LOW)], None, ("olga", 200), id="C->A"
        ),
        pytest.param(
            True, ["on", "ack", "off"], [ON, ACKED, tr(300, "cleared", LATCHED, LOW)], 100, ("olga", 200), id="C->E"
        ),
        pytest.param(
            False,
            ["on", "off", "ack"],
            [ON, tr(200, "cleared", RTN_UNACK, LOW), tr(300, "acknowledged", NORMAL, LOW, "olga", "seen it")],
            None,
            ("olga", 300),
            id="D->A",
        ),
        pytest.param(
            False,
            ["on", "off", "on"],
            [ON, tr(200, "cleared", RTN_UNACK, LOW), tr(300, "activated", UNACK_ACTIVE, HIGH)],
            300,
            (None, None),
            id="D->B",
        ),
        pytest.param(
            True,
            ["on", "off", "ack"],
            [ON, tr(200, "cleared", LATCHED, LOW), tr(300, "acknowledged", NORMAL, LOW, "olga", "seen it")],
            None,
            ("olga", 300),
            id="E->A",
        ),
        pytest.param(
            True,
            ["on", "off", "on"],
            [ON, tr(200, "cleared", LATCHED, LOW), tr(300, "activated", UNACK_ACTIVE, HIGH)],
            300,
            (None, None),
            id="E->B",
        ),
        pytest.param(
            True,
            ["on", "ack", "off", "ack"],
            [ON, ACKED, tr(300, "cleared", LATCHED, LOW), tr(400, "acknowledged", NORMAL, LOW, "olga", "seen it")],
            None,
            ("olga", 400),
            id="C->E->A reset",
        ),
        pytest.param(
            True,
            ["on", "ack", "off", "on"],
            [ON, ACKED, tr(300, "cleared", LATCHED, LOW), tr(400, "activated", UNACK_ACTIVE, HIGH)],
            400,
            (None, None),  # a re-alarm forgets the earlier acknowledgement
            id="C->E->B re-alarm",
        ),
    ],
)
def test_transition(
    latching: bool,
    ops: list[str],
    journal: list[Transition],
    active_since: int | None,
    acked: tuple[str | None, int | None],
) -> None:
    a, _, got = drive(ops, latching)
    assert got == journal
    last = journal[-1]
    assert a.state == last.state
    assert a.last_change_us == last.ts_us
    assert a.active_since_us == active_since
    assert (a.acked_by, a.acked_us) == acked
    assert a.unacked == (last.state in (UNACK_ACTIVE, RTN_UNACK, LATCHED))
    assert a.annunciated == (last.state != NORMAL)


@pytest.mark.parametrize(
    "ops, latching",
    [
        pytest.param([], False, id="A"),
        pytest.param(["on", "ack"], False, id="C"),
        pytest.param(["on", "ack", "off"], False, id="A after C"),
        pytest.param(["on", "off", "ack"], True, id="A after reset"),
    ],
)
def test_acknowledge_when_not_unacknowledged_changes_nothing(ops: list[str], latching: bool) -> None:
    a, _, _ = drive(ops, latching)
    before = copy.copy(a)
    assert acknowledge(a, "ivan", "again", 9_999) == []
    assert a == before


def test_acknowledge_with_empty_comment_journals_none() -> None:
    a, _, _ = drive(["on"])
    assert acknowledge(a, "olga", "", 200) == [tr(200, "acknowledged", ACK_ACTIVE, HIGH, "olga", None)]


@pytest.mark.parametrize(
    "ops, again",
    [([], "off"), (["on"], "on"), (["on", "ack"], "on"), (["on", "off"], "off")],
    ids=["A", "B", "C", "D"],
)
def test_repeating_the_same_condition_does_nothing(ops: list[str], again: str) -> None:
    a, t, _ = drive(ops)
    state = a.state
    assert step(a, t, again, 5_000) == []
    assert (a.state, a.pending_us) == (state, None)


def test_value_follows_evaluation_without_a_journal_entry() -> None:
    a, t, _ = drive(["on"])
    assert evaluate(a, t, True, 130.0, 200) == []
    assert a.value == 130.0
    assert acknowledge(a, "olga", None, 300) == [tr(300, "acknowledged", ACK_ACTIVE, 130.0, "olga")]


# ------------------------------------------------------------- on/off delays

ON_DELAY = Timing(on_delay_us=10_000)
OFF_DELAY = Timing(off_delay_us=10_000)


def test_on_delay_blip_shorter_than_the_delay_produces_nothing() -> None:
    a = AlarmState(RULE)
    assert evaluate(a, ON_DELAY, True, HIGH, 1_000) == []
    assert (a.pending_us, due(a, ON_DELAY)) == (1_000, 11_000)
    assert evaluate(a, ON_DELAY, False, LOW, 10_999) == []
    assert (a.state, a.pending_us, due(a, ON_DELAY)) == (NORMAL, None, None)
    assert tick(a, ON_DELAY, 50_000) == []
    assert a.state == NORMAL


def test_on_delay_needs_the_condition_to_hold_continuously() -> None:
    a = AlarmState(RULE)
    evaluate(a, ON_DELAY, True, HIGH, 1_000)
    evaluate(a, ON_DELAY, False, LOW, 5_000)
    assert evaluate(a, ON_DELAY, True, HIGH, 8_000) == []
    # The timer restarted at 8_000: the first start's deadline passes without effect.
    assert due(a, ON_DELAY) == 18_000
    assert tick(a, ON_DELAY, 11_000) == []
    assert tick(a, ON_DELAY, 18_000) == [tr(18_000, "activated", UNACK_ACTIVE, HIGH)]


def test_on_delay_repeated_true_does_not_restart_the_timer() -> None:
    a = AlarmState(RULE)
    evaluate(a, ON_DELAY, True, HIGH, 1_000)
    assert evaluate(a, ON_DELAY, True, 125.0, 6_000) == []
    assert (a.pending_us, due(a, ON_DELAY)) == (1_000, 11_000)
    assert tick(a, ON_DELAY, 10_999) == []
    assert a.state == NORMAL
    assert tick(a, ON_DELAY, 11_000) == [tr(11_000, "activated", UNACK_ACTIVE, 125.0)]
    assert (a.state, a.pending_us, a.active_since_us, a.last_change_us) == (UNACK_ACTIVE, None, 11_000, 11_000)
    assert due(a, ON_DELAY) is None


def test_on_delay_late_tick_journals_when_the_delay_ran_out() -> None:
    a = AlarmState(RULE)
    evaluate(a, ON_DELAY, True, HIGH, 1_000)
    assert tick(a, ON_DELAY, 500_000) == [tr(11_000, "activated", UNACK_ACTIVE, HIGH)]
    assert (a.active_since_us, a.last_change_us) == (11_000, 11_000)
    assert tick(a, ON_DELAY, 600_000) == []


def test_on_delay_later_evaluation_applies_it_without_a_tick() -> None:
    a = AlarmState(RULE)
    evaluate(a, ON_DELAY, True, HIGH, 1_000)
    assert evaluate(a, ON_DELAY, True, 130.0, 20_000) == [tr(11_000, "activated", UNACK_ACTIVE, 130.0)]


def test_on_delay_does_not_delay_the_clear() -> None:
    a = AlarmState(RULE)
    evaluate(a, ON_DELAY, True, HIGH, 0)
    tick(a, ON_DELAY, 10_000)
    assert evaluate(a, ON_DELAY, False, LOW, 10_001) == [tr(10_001, "cleared", RTN_UNACK, LOW)]


def test_off_delay_blip_shorter_than_the_delay_produces_nothing() -> None:
    a = AlarmState(RULE)
    assert evaluate(a, OFF_DELAY, True, HIGH, 1_000) == [tr(1_000, "activated", UNACK_ACTIVE, HIGH)]
    assert evaluate(a, OFF_DELAY, False, LOW, 2_000) == []
    assert (a.state, due(a, OFF_DELAY)) == (UNACK_ACTIVE, 12_000)
    assert evaluate(a, OFF_DELAY, True, HIGH, 11_999) == []
    assert (a.state, a.pending_us, due(a, OFF_DELAY)) == (UNACK_ACTIVE, None, None)
    assert tick(a, OFF_DELAY, 50_000) == []
    assert a.state == UNACK_ACTIVE


def test_off_delay_clears_after_the_delay_journalled_when_it_ran_out() -> None:
    a = AlarmState(RULE)
    evaluate(a, OFF_DELAY, True, HIGH, 1_000)
    evaluate(a, OFF_DELAY, False, LOW, 2_000)
    assert tick(a, OFF_DELAY, 11_999) == []
    assert a.state == UNACK_ACTIVE
    assert tick(a, OFF_DELAY, 90_000) == [tr(12_000, "cleared", RTN_UNACK, LOW)]
    assert (a.state, a.condition, a.pending_us, a.last_change_us) == (RTN_UNACK, False, None, 12_000)


def test_off_delay_runs_through_an_acknowledgement() -> None:
    a = AlarmState(RULE)
    evaluate(a, OFF_DELAY, True, HIGH, 1_000)
    evaluate(a, OFF_DELAY, False, LOW, 2_000)
    assert acknowledge(a, "olga", None, 3_000) == [tr(3_000, "acknowledged", ACK_ACTIVE, LOW, "olga")]
    assert tick(a, OFF_DELAY, 12_000) == [tr(12_000, "cleared", NORMAL, LOW)]


def test_both_delays() -> None:
    t = Timing(on_delay_us=1_000, off_delay_us=5_000)
    a = AlarmState(RULE)
    evaluate(a, t, True, HIGH, 0)
    assert due(a, t) == 1_000
    assert tick(a, t, 1_000) == [tr(1_000, "activated", UNACK_ACTIVE, HIGH)]
    evaluate(a, t, False, LOW, 2_000)
    assert due(a, t) == 7_000
    assert tick(a, t, 7_000) == [tr(7_000, "cleared", RTN_UNACK, LOW)]


# ------------------------------------------------------------- shelving


def test_shelve_and_unshelve_by_hand() -> None:
    a, t, _ = drive(["on"])
    assert shelve(a, "olga", 1_000_000, "sensor work", 200) == [
        tr(200, "shelved", UNACK_ACTIVE, HIGH, "olga", "sensor work")
    ]
    assert (a.shelved, a.shelved_until_us, a.shelved_by, a.shelve_reason) == (True, 1_000_000, "olga", "sensor work")
    assert (a.state, a.annunciated, a.unacked) == (UNACK_ACTIVE, False, True)
    assert unshelve(a, "ivan", 300) == [tr(300, "unshelved", UNACK_ACTIVE, HIGH, "ivan", None)]
    assert (a.shelved, a.shelved_until_us, a.shelved_by, a.shelve_reason) == (False, None, None, None)
    assert a.annunciated is True
    assert due(a, t) is None
    assert tick(a, t, 2_000_000) == []


def test_unshelve_when_not_shelved_does_nothing() -> None:
    a, _, _ = drive(["on"])
    assert unshelve(a, "ivan", 300) == []
    assert unshelve(a, None, 300, expired=True) == []


def test_shelve_expires_through_tick() -> None:
    a, t, _ = drive(["on"])
    shelve(a, "olga", 5_000, "nuisance", 200)
    assert due(a, t) == 5_000
    assert tick(a, t, 4_999) == []
    assert a.shelved is True
    assert tick(a, t, 5_000) == [tr(5_000, "unshelved", UNACK_ACTIVE, HIGH, None, "expired")]
    assert (a.shelved, a.shelved_by, a.shelve_reason, a.annunciated) == (False, None, None, True)
    assert due(a, t) is None


def test_reshelving_moves_the_expiry() -> None:
    a, t, _ = drive(["on"])
    shelve(a, "olga", 5_000, "nuisance", 200)
    assert shelve(a, "ivan", 9_000, "longer", 300) == [tr(300, "shelved", UNACK_ACTIVE, HIGH, "ivan", "longer")]
    assert (a.shelved_until_us, a.shelved_by, a.shelve_reason) == (9_000, "ivan", "longer")
    assert tick(a, t, 5_000) == []
    assert due(a, t) == 9_000
    assert tick(a, t, 9_000) == [tr(9_000, "unshelved", UNACK_ACTIVE, HIGH, None, "expired")]


def test_shelved_alarm_keeps_evaluating_and_journalling() -> None:
    a, t = AlarmState(RULE), Timing()
    shelve(a, "olga", 10_000, "nuisance", 100)
    assert a.annunciated is False
    assert evaluate(a, t, True, HIGH, 200) == [tr(200, "activated", UNACK_ACTIVE, HIGH)]
    assert (a.state, a.annunciated) == (UNACK_ACTIVE, False)
    assert acknowledge(a, "olga", None, 300) == [tr(300, "acknowledged", ACK_ACTIVE, HIGH, "olga")]
    assert a.annunciated is False
    assert tick(a, t, 10_000) == [tr(10_000, "unshelved", ACK_ACTIVE, HIGH, None, "expired")]
    assert a.annunciated is True
    assert evaluate(a, t, False, LOW, 10_100) == [tr(10_100, "cleared", NORMAL, LOW)]


def test_tick_applies_a_delay_and_a_shelve_expiry_together() -> None:
    a = AlarmState(RULE)
    shelve(a, "olga", 30_000, "nuisance", 0)
    evaluate(a, ON_DELAY, True, HIGH, 1_000)
    assert due(a, ON_DELAY) == 11_000  # the earlier of the two
    assert tick(a, ON_DELAY, 40_000) == [
        tr(11_000, "activated", UNACK_ACTIVE, HIGH),
        tr(40_000, "unshelved", UNACK_ACTIVE, HIGH, None, "expired"),
    ]
    assert a.annunciated is True


def test_due_reports_the_shelve_expiry_when_it_is_first() -> None:
    a = AlarmState(RULE)
    shelve(a, "olga", 5_000, "nuisance", 0)
    evaluate(a, ON_DELAY, True, HIGH, 1_000)
    assert due(a, ON_DELAY) == 5_000


# ------------------------------------------------------------- suppression by design


def test_suppression_by_design() -> None:
    a, t, _ = drive(["on"])
    assert set_suppressed(a, True, 200) == [tr(200, "suppressed", UNACK_ACTIVE, HIGH)]
    assert (a.suppressed, a.annunciated, a.state) == (True, False, UNACK_ACTIVE)
    assert set_suppressed(a, True, 250) == []
    # Evaluation and journalling go on underneath.
    assert evaluate(a, t, False, LOW, 300) == [tr(300, "cleared", RTN_UNACK, LOW)]
    assert evaluate(a, t, True, HIGH, 400) == [tr(400, "activated", UNACK_ACTIVE, HIGH)]
    assert a.annunciated is False
    assert set_suppressed(a, False, 500) == [tr(500, "unsuppressed", UNACK_ACTIVE, HIGH)]
    assert (a.suppressed, a.annunciated) == (False, True)
    assert set_suppressed(a, False, 600) == []


def test_unsuppressing_a_normal_alarm_does_not_annunciate() -> None:
    a = AlarmState(RULE)
    set_suppressed(a, True, 100)
    assert set_suppressed(a, False, 200) == [tr(200, "unsuppressed", NORMAL)]
    assert a.annunciated is False


# ------------------------------------------------------------- out of service


def test_out_of_service_forces_normal_and_ignores_evaluation() -> None:
    a, t, _ = drive(["on", "ack"])
    assert set_out_of_service(a, True, "olga", "transmitter replaced", 300) == [
        tr(300, "out_of_service", NORMAL, HIGH, "olga", "transmitter replaced")
    ]
    assert (a.state, a.condition, a.raw, a.pending_us) == (NORMAL, False, False, None)
    assert (a.active_since_us, a.acked_by, a.acked_us, a.last_change_us) == (None, None, None, 300)
    assert (a.out_of_service, a.oos_reason, a.annunciated) == (True, "transmitter replaced", False)
    assert set_out_of_service(a, True, "olga", "again", 350) == []
    before = copy.copy(a)
    assert evaluate(a, t, True, 150.0, 400) == []
    assert evaluate(a, t, False, 10.0, 500) == []
    assert acknowledge(a, "olga", None, 550) == []
    assert a == before


def test_out_of_service_drops_a_pending_delay() -> None:
    a = AlarmState(RULE)
    evaluate(a, ON_DELAY, True, HIGH, 1_000)
    set_out_of_service(a, True, "olga", "", 2_000)
    assert (a.pending_us, due(a, ON_DELAY)) == (None, None)
    assert tick(a, ON_DELAY, 50_000) == []
    assert a.state == NORMAL


def test_back_in_service_decides_afresh_from_the_next_evaluation() -> None:
    a, t, _ = drive(["on"])
    set_out_of_service(a, True, "olga", "maintenance", 200)
    assert set_out_of_service(a, False, "ivan", "", 300) == [tr(300, "in_service", NORMAL, HIGH, "ivan", None)]
    assert (a.out_of_service, a.oos_reason, a.last_change_us) == (False, None, 300)
    assert set_out_of_service(a, False, "ivan", "", 350) == []
    assert evaluate(a, t, True, 140.0, 400) == [tr(400, "activated", UNACK_ACTIVE, 140.0)]
    assert a.active_since_us == 400


def test_back_in_service_with_the_condition_false_stays_normal() -> None:
    a, t, _ = drive(["on"])
    set_out_of_service(a, True, "olga", "maintenance", 200)
    set_out_of_service(a, False, "ivan", "done", 300)
    assert evaluate(a, t, False, LOW, 400) == []
    assert (a.state, a.value) == (NORMAL, LOW)


def test_shelve_expiry_still_runs_out_of_service() -> None:
    a, t, _ = drive(["on"])
    shelve(a, "olga", 5_000, "nuisance", 150)
    set_out_of_service(a, True, "olga", "maintenance", 200)
    assert due(a, t) == 5_000
    assert tick(a, t, 5_000) == [tr(5_000, "unshelved", NORMAL, HIGH, None, "expired")]


# ------------------------------------------------------------- comments and flags


def test_comment_journals_and_changes_nothing() -> None:
    a, _, _ = drive(["on", "ack"])
    before = copy.copy(a)
    assert comment(a, "olga", "called the field tech", 300) == [
        tr(300, "comment", ACK_ACTIVE, HIGH, "olga", "called the field tech")
    ]
    assert a == before


@pytest.mark.parametrize(
    "state, shelved, suppressed, oos, annunciated",
    [
        (NORMAL, False, False, False, False),
        (UNACK_ACTIVE, False, False, False, True),
        (ACK_ACTIVE, False, False, False, True),
        (RTN_UNACK, False, False, False, True),
        (LATCHED, False, False, False, True),
        (UNACK_ACTIVE, True, False, False, False),
        (UNACK_ACTIVE, False, True, False, False),
        (UNACK_ACTIVE, False, False, True, False),
    ],
)
def test_annunciated(state: str, shelved: bool, suppressed: bool, oos: bool, annunciated: bool) -> None:
    a = AlarmState(RULE, state=state, suppressed=suppressed, out_of_service=oos)
    a.shelved_until_us = 1 if shelved else None
    assert a.annunciated is annunciated


@pytest.mark.parametrize(
    "state, unacked",
    [(NORMAL, False), (UNACK_ACTIVE, True), (ACK_ACTIVE, False), (RTN_UNACK, True), (LATCHED, True)],
)
def test_unacked(state: str, unacked: bool) -> None:
    assert AlarmState(RULE, state=state).unacked is unacked
