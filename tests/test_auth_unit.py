"""Auth logic as plain functions: TOTP (RFC 6238), lockout, password policy, audit chain."""

from __future__ import annotations

import base64

import pytest

from scadad.api.errors import InvalidArgument
from scadad.audit import GENESIS, chain_hash, redact
from scadad.auth import lockout, passwords, totp
from scadad.auth.permissions import BUILTIN_ROLES, CATALOGUE

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 Appendix B, SHA1

RFC6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix_time", "code"), RFC6238_SHA1)
def test_rfc6238_appendix_b_sha1_vectors(unix_time: int, code: str) -> None:
    assert totp.code_at(RFC_SECRET, totp.step_of(unix_time), digits=8) == code
    assert totp.verify(RFC_SECRET, code, unix_time, None, digits=8) == totp.step_of(unix_time)


def test_wrong_code_is_refused() -> None:
    assert totp.verify(RFC_SECRET, "94287083", 59, None, digits=8) is None
    assert totp.verify(RFC_SECRET, "9428708", 59, None, digits=8) is None
    assert totp.verify(RFC_SECRET, "abcdefgh", 59, None, digits=8) is None


def test_replayed_code_is_refused() -> None:
    now = 1_700_000_000
    code = totp.code_at(RFC_SECRET, totp.step_of(now))
    step = totp.verify(RFC_SECRET, code, now, None)
    assert step == totp.step_of(now)
    assert totp.verify(RFC_SECRET, code, now, step) is None  # same code again
    assert totp.verify(RFC_SECRET, code, now + 5, step) is None
    older = totp.code_at(RFC_SECRET, step - 1)  # an earlier, still-in-window code
    assert totp.verify(RFC_SECRET, older, now, step) is None


@pytest.mark.parametrize(("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_window_is_plus_minus_one_step(offset: int, accepted: bool) -> None:
    now = 1_700_000_015
    code = totp.code_at(RFC_SECRET, totp.step_of(now) + offset)
    assert (totp.verify(RFC_SECRET, code, now, None) is not None) is accepted


def test_provisioning_uri_and_recovery_codes() -> None:
    uri = totp.provisioning_uri(RFC_SECRET, "alice", "north")
    assert uri.startswith("otpauth://totp/scada:alice%40north?") and f"secret={RFC_SECRET}" in uri
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(c) == 14 and c.count("-") == 2 for c in codes)
    assert totp.hash_recovery_code(codes[0].upper()) == totp.hash_recovery_code(codes[0])


POLICY = lockout.LockoutPolicy(threshold=5, base_s=60, max_s=3600, max_per_hour=100)
S = 1_000_000


def test_five_failures_lock_and_the_lock_doubles() -> None:
    st = lockout.LoginState()
    t = 1_000 * S
    for i in range(4):
        st, locked = lockout.on_failure(st, t + i, POLICY)
        assert not locked and not lockout.is_locked(st, t + i)
    st, locked = lockout.on_failure(st, t + 4, POLICY)
    assert locked and st.locked_until_us == t + 4 + 60 * S
    assert lockout.is_locked(st, t + 59 * S) and not lockout.is_locked(st, t + 4 + 60 * S)
    t2 = t + 61 * S
    for i in range(5):
        st, locked = lockout.on_failure(st, t2 + i, POLICY)
    assert locked and st.locked_until_us == t2 + 4 + 120 * S  # doubled
    st = lockout.on_success(st)
    assert st.lock_count == 0 and st.failed == 0 and not lockout.is_locked(st, t2)


def test_lock_duration_is_capped() -> None:
    st = lockout.LoginState(lock_count=20)
    for i in range(5):
        st, locked = lockout.on_failure(st, i, POLICY)
    assert locked and st.locked_until_us == 4 + 3600 * S


def test_hourly_cap_holds_the_lock_to_the_end_of_the_hour() -> None:
    policy = lockout.LockoutPolicy(threshold=1000, base_s=60, max_s=3600, max_per_hour=100)
    st = lockout.LoginState()
    for i in range(99):
        st, locked = lockout.on_failure(st, i * S, policy)
        assert not locked
    st, locked = lockout.on_failure(st, 99 * S, policy)
    assert locked and st.locked_until_us == 3600 * S
    st2, _ = lockout.on_failure(lockout.unlock(st), 3601 * S, policy)  # a new hour: a fresh window
    assert st2.window_failures == 1 and not lockout.is_locked(st2, 3601 * S)


def test_unlock_clears_everything() -> None:
    st = lockout.LoginState(failed=3, lock_count=2, locked_until_us=99 * S)
    assert not lockout.is_locked(lockout.unlock(st), 0)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "shorter than 12"),
        ("x" * 73, "longer than 72 bytes"),
        ("ü" * 37, "longer than 72 bytes"),  # 74 bytes in UTF-8, 37 characters
        ("PasswordPassword", "common passwords"),
        ("correcthorsebatterystaple", "common passwords"),
        ("alice-is-the-best-1", "contains the username"),
    ],
)
def test_password_policy(password: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as err:
        passwords.check_policy(password, "alice", 12)
    assert err.value.details["field"] == "params.password"


def test_good_password_hashes_with_cost_12() -> None:
    passwords.check_policy("brisk-otter-lantern-47", "alice", 12)
    hashed = passwords.hash_password("brisk-otter-lantern-47", 12)
    assert passwords.cost_of(hashed) == 12
    assert passwords.verify_password("brisk-otter-lantern-47", hashed)
    assert not passwords.verify_password("brisk-otter-lantern-48", hashed)
    with pytest.raises(ValueError):
        passwords.hash_password("x", 10)


def test_builtin_roles_use_only_catalogue_permissions() -> None:
    for name, (_desc, perms) in BUILTIN_ROLES.items():
        assert set(perms) <= set(CATALOGUE), name
    assert set(BUILTIN_ROLES["admin"][1]) == set(CATALOGUE)
    assert "users.admin" not in BUILTIN_ROLES["engineer"][1]
    assert "tags.write" in BUILTIN_ROLES["operator"][1] and "tags.configure" not in BUILTIN_ROLES["operator"][1]


def test_redaction_and_chain() -> None:
    red = redact({"username": "a", "password": "s3cret", "nested": [{"totp": "123456"}], "totp": None})
    assert red == {"username": "a", "password": "***", "nested": [{"totp": "***"}], "totp": None}
    fields = {"ts_us": 1, "scada_user": "a", "unix_uid": 0, "unix_user": "root", "unix_pid": 1, "method": "X.Y",
              "target": "", "params_json": "{}", "outcome": "ok", "error_code": None}  # fmt: skip
    h1 = chain_hash(GENESIS, fields)
    assert chain_hash(GENESIS, {**fields, "target": "b"}) != h1
    assert chain_hash(h1, fields) != h1


def test_audit_warns_near_its_cap(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import logging

    from scadad.api.registry import CallContext, Peer
    from scadad.audit import AuditLog
    from scadad.store import migrations
    from scadad.store.database import Database

    db = Database(f"sqlite:///{tmp_path}/a.db")
    migrations.migrate(db)
    audit = AuditLog(db, max_records=10)
    audit.load()
    ctx = CallContext(Peer(1, 0, 0), 1, 1, "Sites.Create", user="chief")

    async def write(n: int) -> None:
        for i in range(n):
            await audit.event(ctx, "Sites.Create", f"s{i}", "ok", None, {"name": f"s{i}"})

    with caplog.at_level(logging.WARNING, logger="scadad.audit"):
        asyncio.run(write(8))
        assert "nearing its cap" not in caplog.text
        asyncio.run(write(1))
        assert "nearing its cap" in caplog.text and audit.fill == 0.9
    assert audit.verify().ok and audit.verify().records == 9
    db.close()
