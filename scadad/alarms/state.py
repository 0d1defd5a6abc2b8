"""The ISA-18.2 alarm state machine, as plain functions over one alarm's state.

States (ISA-18.2 figure 5 / IEC 62682):

    A normal          process normal, acknowledged
    B unack_active    process abnormal, not yet acknowledged
    C ack_active      process abnormal, acknowledged
    D rtn_unack       process back to normal, not yet acknowledged
    E latched         a latching alarm whose process is back to normal; needs a reset
                      (an acknowledgement) before it returns to A

    A -> B  activated        (condition true for its on-delay)
    B -> C  acknowledged
    B -> D  cleared          (condition false for its off-delay; non-latching)
    B -> E  cleared          (latching)
    C -> A  cleared          (non-latching)
    C -> E  cleared          (latching)
    D -> A  acknowledged
    D -> B  activated        (re-alarm before acknowledgement)
    E -> A  acknowledged     (the reset)
    E -> B  activated        (re-alarm while latched)

Shelved, suppressed by design and out of service are flags beside that state.
Shelved and suppressed alarms keep evaluating and journalling but are not
annunciated; shelving always ends (expiry or unshelve). Out of service stops
evaluation altogether: the alarm is forced to A and re-evaluated from the current
value when it returns to service.

Nothing here reads a clock or does I/O: every function takes `now` (µs since the
epoch) and returns the journal transitions it caused, so the engine, the restart
path and the unit tests drive the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

NORMAL = "normal"
UNACK_ACTIVE = "unack_active"
ACK_ACTIVE = "ack_active"
RTN_UNACK = "rtn_unack"
LATCHED = "latched"
STATES = (NORMAL, UNACK_ACTIVE, ACK_ACTIVE, RTN_UNACK, LATCHED)
UNACKED = frozenset({UNACK_ACTIVE, RTN_UNACK, LATCHED})


@dataclass(slots=True)
class Transition:
    """One journal row in the making: what happened to which alarm, and the state after."""

    rule_id: int
    ts_us: int
    event: str
    state: str
    value: float | str | None = None
    user: str | None = None
    comment: str | None = None


@dataclass(slots=True)
class Timing:
    """The parts of a rule the state machine needs."""

    on_delay_us: int = 0
    off_delay_us: int = 0
    latching: bool = False


@dataclass(slots=True)
class AlarmState:
    """One alarm at run time. `condition` is the debounced condition the state machine
    has seen; `raw` is the latest evaluation, which becomes `condition` once it has held
    for the on- or off-delay (`pending_us` is when it started to differ)."""

    rule_id: int
    state: str = NORMAL
    condition: bool = False
    raw: bool = False
    pending_us: int | None = None
    value: float | str | None = None
    active_since_us: int | None = None
    last_change_us: int | None = None
    acked_by: str | None = None
    acked_us: int | None = None
    shelved_until_us: int | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    suppressed: bool = False
    out_of_service: bool = False
    oos_reason: str | None = None

    @property
    def shelved(self) -> bool:
        return self.shelved_until_us is not None

    @property
    def annunciated(self) -> bool:
        """Shown to the operator and notified: not normal, not shelved, suppressed or OOS."""
        return self.state != NORMAL and not (self.shelved or self.suppressed or self.out_of_service)

    @property
    def unacked(self) -> bool:
        return self.state in UNACKED


def _move(a: AlarmState, state: str, event: str, now: int, **extra: object) -> Transition:
    a.state = state
    a.last_change_us = now
    return Transition(a.rule_id, now, event, state, a.value, **extra)  # type: ignore[arg-type]


def evaluate(a: AlarmState, t: Timing, raw: bool, value: float | str | None, now: int) -> list[Transition]:
    """Feed one evaluation of the alarm's condition (true = abnormal) at `now`.

    The condition takes effect once it has held for the on-delay (becoming true) or the
    off-delay (becoming false); until then `pending_us` remembers since when it differs,
    and `due` says when `tick` should look again. Out of service ignores everything."""
    if a.out_of_service:
        return []
    a.value = value
    if raw == a.raw:
        if a.pending_us is not None and raw != a.condition:
            return tick(a, t, now)
        return []
    a.raw = raw
    if raw == a.condition:
        a.pending_us = None  # it went back before the delay ran out: nothing happened
        return []
    delay = t.on_delay_us if raw else t.off_delay_us
    if delay <= 0:
        a.pending_us = None
        return _apply(a, t, raw, now)
    a.pending_us = now
    return []


def tick(a: AlarmState, t: Timing, now: int) -> list[Transition]:
    """Let time pass: a pending condition whose delay ran out takes effect, and an
    expired shelve ends. Cheap to call early or often."""
    out: list[Transition] = []
    if a.pending_us is not None and not a.out_of_service:
        delay = t.on_delay_us if a.raw else t.off_delay_us
        if now - a.pending_us >= delay:
            # Journalled at the moment the delay ran out, however late the tick came.
            at = a.pending_us + delay
            a.pending_us = None
            out += _apply(a, t, a.raw, at)
    if a.shelved_until_us is not None and now >= a.shelved_until_us:
        out += unshelve(a, None, now, expired=True)
    return out


def due(a: AlarmState, t: Timing) -> int | None:
    """When `tick` next has something to do (µs), or None."""
    times = []
    if a.pending_us is not None and not a.out_of_service:
        times.append(a.pending_us + (t.on_delay_us if a.raw else t.off_delay_us))
    if a.shelved_until_us is not None:
        times.append(a.shelved_until_us)
    return min(times) if times else None


def _apply(a: AlarmState, t: Timing, active: bool, now: int) -> list[Transition]:
    """The ISA-18.2 transition for a debounced condition change."""
    a.condition = active
    s = a.state
    if active:
        if s in (NORMAL, RTN_UNACK, LATCHED):
            a.active_since_us = now
            a.acked_by = a.acked_us = None
            return [_move(a, UNACK_ACTIVE, "activated", now)]
        return []
    if s == UNACK_ACTIVE:
        return [_move(a, LATCHED if t.latching else RTN_UNACK, "cleared", now)]
    if s == ACK_ACTIVE:
        if t.latching:
            return [_move(a, LATCHED, "cleared", now)]
        a.active_since_us = None
        return [_move(a, NORMAL, "cleared", now)]
    return []


def acknowledge(a: AlarmState, user: str | None, comment: str | None, now: int) -> list[Transition]:
    """Acknowledge (B -> C, D -> A) or reset a latched alarm (E -> A); nothing if it is
    not unacknowledged."""
    s = a.state
    if s == UNACK_ACTIVE:
        nxt = ACK_ACTIVE
    elif s == RTN_UNACK:
        nxt = NORMAL
    elif s == LATCHED:
        nxt = NORMAL  # the reset (a latched alarm's condition is false, or it would be in B)
    else:
        return []
    a.acked_by, a.acked_us = user, now
    if nxt == NORMAL:
        a.active_since_us = None
    return [_move(a, nxt, "acknowledged", now, user=user, comment=comment or None)]


def shelve(a: AlarmState, user: str, until_us: int, reason: str, now: int) -> list[Transition]:
    """Shelve until `until_us` (re-shelving moves the expiry)."""
    a.shelved_until_us, a.shelved_by, a.shelve_reason = until_us, user, reason
    return [Transition(a.rule_id, now, "shelved", a.state, a.value, user, reason)]


def unshelve(a: AlarmState, user: str | None, now: int, expired: bool = False) -> list[Transition]:
    """End a shelve, by hand or because it expired; nothing if it was not shelved."""
    if a.shelved_until_us is None:
        return []
    a.shelved_until_us = a.shelved_by = a.shelve_reason = None
    return [Transition(a.rule_id, now, "unshelved", a.state, a.value, user, "expired" if expired else None)]


def set_suppressed(a: AlarmState, suppressed: bool, now: int) -> list[Transition]:
    """Suppression by design (the rule's condition expression) starting or ending."""
    if suppressed == a.suppressed:
        return []
    a.suppressed = suppressed
    return [Transition(a.rule_id, now, "suppressed" if suppressed else "unsuppressed", a.state, a.value)]


def set_out_of_service(a: AlarmState, oos: bool, user: str | None, reason: str, now: int) -> list[Transition]:
    """Out of service forces the alarm to normal and stops evaluation; back in service it
    starts from normal with no condition, so the next evaluation decides afresh."""
    if oos == a.out_of_service:
        return []
    if oos:
        a.out_of_service, a.oos_reason = True, reason or None
        a.state, a.condition, a.raw, a.pending_us = NORMAL, False, False, None
        a.active_since_us = a.acked_by = a.acked_us = None
        a.last_change_us = now
        return [Transition(a.rule_id, now, "out_of_service", NORMAL, a.value, user, reason or None)]
    a.out_of_service, a.oos_reason = False, None
    a.last_change_us = now
    return [Transition(a.rule_id, now, "in_service", a.state, a.value, user, reason or None)]


def comment(a: AlarmState, user: str | None, text: str, now: int) -> list[Transition]:
    return [Transition(a.rule_id, now, "comment", a.state, a.value, user, text)]
