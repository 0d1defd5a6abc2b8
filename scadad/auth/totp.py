"""TOTP (RFC 6238) verification with a replay guard, and recovery codes.

pyotp computes the codes; the policy is here as plain functions: a code is accepted
for the current 30 s step or one step either side (clock drift between a phone and the
server), and never for a step at or before the last one accepted for that user, so an
observed code cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyotp

STEP_S = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of now
ISSUER = "scada"
RECOVERY_CODES = 10


def new_secret() -> str:
    """A fresh base32 secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def code_at(secret: str, step: int, digits: int = DIGITS) -> str:
    return pyotp.TOTP(secret, digits=digits, interval=STEP_S).generate_otp(step)


def step_of(unix_time: float) -> int:
    return int(unix_time // STEP_S)


def verify(secret: str, code: str, unix_time: float, last_step: int | None, digits: int = DIGITS) -> int | None:
    """The step `code` matches (to be stored as the new last step), or None if refused."""
    code = code.strip().replace(" ", "")
    if len(code) != digits or not code.isdigit():
        return None
    now = step_of(unix_time)
    for step in range(now - WINDOW, now + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(code_at(secret, step, digits), code):
            return step
    return None


def provisioning_uri(secret: str, username: str, site: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=f"{username}@{site}", issuer_name=ISSUER
    )


def new_recovery_codes(n: int = RECOVERY_CODES) -> list[str]:
    """Human-friendly one-time codes, e.g. 'k7q2-9fmx-p3ta'."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return ["-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3)) for _ in range(n)]


def hash_recovery_code(code: str) -> str:
    """Recovery codes carry ~60 bits of randomness, so a plain SHA-256 suffices."""
    return hashlib.sha256(code.strip().lower().encode()).hexdigest()
