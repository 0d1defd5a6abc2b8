"""Unsuccessful login attempts (IEC 62443-4-2 CR 1.11) as a pure state machine.

After `threshold` consecutive failures the account locks for `base_s`, doubling with
each further lock up to `max_s`. Independently, an account that collects
`max_per_hour` failures within an hour stays locked until that hour is over, which
bounds guessing even against an attacker who waits out every lock. A success clears
the consecutive count and the doubling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

HOUR_US = 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int = 5
    base_s: float = 60.0
    max_s: float = 3600.0
    max_per_hour: int = 100


@dataclass(frozen=True, slots=True)
class LoginState:
    failed: int = 0  # consecutive failures since the last success or lock
    lock_count: int = 0  # locks since the last success (drives the doubling)
    locked_until_us: int | None = None
    window_start_us: int | None = None
    window_failures: int = 0


def is_locked(state: LoginState, now_us: int) -> bool:
    return state.locked_until_us is not None and now_us < state.locked_until_us


def on_failure(state: LoginState, now_us: int, policy: LockoutPolicy) -> tuple[LoginState, bool]:
    """Record a failed attempt; returns the new state and whether it just locked."""
    if state.window_start_us is None or now_us - state.window_start_us >= HOUR_US:
        state = replace(state, window_start_us=now_us, window_failures=0)
    state = replace(state, failed=state.failed + 1, window_failures=state.window_failures + 1)
    if state.window_failures >= policy.max_per_hour:
        assert state.window_start_us is not None
        until = state.window_start_us + HOUR_US
        return replace(state, failed=0, locked_until_us=max(until, state.locked_until_us or 0)), True
    if state.failed >= policy.threshold:
        duration_s = min(policy.base_s * (2**state.lock_count), policy.max_s)
        return (
            replace(state, failed=0, lock_count=state.lock_count + 1, locked_until_us=now_us + int(duration_s * 1e6)),
            True,
        )
    return state, False


def on_success(state: LoginState) -> LoginState:
    return replace(state, failed=0, lock_count=0, locked_until_us=None)


def unlock(state: LoginState) -> LoginState:
    """An administrator's unlock: clears the lock and the counters."""
    return LoginState(window_start_us=state.window_start_us, window_failures=0)
