"""Password policy and hashing (bcrypt).

bcrypt only reads the first 72 bytes of a password; rather than let two different long
passwords hash alike, or pre-hash and depart from plain bcrypt, we refuse passwords
over 72 bytes (UTF-8) and say so.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import bcrypt

from scadad.api.errors import InvalidArgument

MAX_BYTES = 72
MIN_COST = 12


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("scadad.auth").joinpath("common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_policy(password: str, username: str, min_length: int, field: str = "params.password") -> None:
    """Raise InvalidArgument naming the rule a password breaks."""
    if len(password) < min_length:
        raise InvalidArgument(f"password is shorter than {min_length} characters", field)
    if len(password.encode("utf-8")) > MAX_BYTES:
        raise InvalidArgument(
            f"password is longer than {MAX_BYTES} bytes (bcrypt's limit); choose a shorter one", field
        )
    lowered = password.lower()
    if lowered in common_passwords():
        raise InvalidArgument("password is on the list of common passwords; choose another", field)
    if username and username.lower() in lowered:
        raise InvalidArgument("password contains the username; choose another", field)


def hash_password(password: str, cost: int) -> str:
    if cost < MIN_COST:
        raise ValueError(f"bcrypt cost {cost} is below the minimum of {MIN_COST}")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=cost)).decode("ascii")


def verify_password(password: str, hashed: str) -> bool:
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, hashed.encode("ascii"))
    except ValueError:
        return False


def cost_of(hashed: str) -> int:
    """The work factor recorded in a bcrypt hash ($2b$12$...)."""
    return int(hashed.split("$")[2])


# A hash to verify against when the user does not exist, so that "no such user" and
# "wrong password" take the same time.
@lru_cache(maxsize=4)
def dummy_hash(cost: int) -> str:
    return hash_password("not-a-real-password-for-timing", cost)
