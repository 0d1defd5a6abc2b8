"""Params and results of Auth.*, Users.*, Roles.*, Sessions.*, Tokens.* and Audit.*."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from scadad.api.messages import Params, Result, ShortText

Username = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]*$", min_length=1, max_length=64)]
RoleName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]*$", min_length=1, max_length=64)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]

# Param fields never written to a log line or an audit record.
SECRET_FIELDS = frozenset({"password", "old_password", "new_password", "totp", "token", "secret"})


# ---------------------------------------------------------------- Auth


class LoginParams(Params):
    username: Username
    password: Password
    totp: Code | None = None  # a 6-digit code, or a recovery code (xxxx-xxxx-xxxx)


class LoginResult(Result):
    token: str
    username: str
    roles: list[str]
    expires_at: datetime
    idle_timeout_s: float


class WhoAmI(Result):
    username: str | None
    kind: str  # session | unix | local_admin | bootstrap | anonymous | token
    roles: list[str]
    permissions: list[str]
    unix_uid: int
    unix_user: str


class Done(Result):
    ok: bool = True


# ---------------------------------------------------------------- Users


class User(Result):
    username: str
    display_name: str
    email: str | None
    roles: list[str]
    disabled: bool
    mfa_enabled: bool
    locked_until: datetime | None
    failed_logins: int
    last_login: datetime | None
    created_at: datetime


class UserList(Result):
    users: list[User]


class UserRef(Params):
    username: Username


class UserCreate(Params):
    username: Username
    password: Password
    display_name: ShortText = ""
    email: ShortText | None = None
    roles: list[RoleName] = []


class MfaEnrollment(Result):
    """Shown once: the TOTP secret, its otpauth:// URI (for a QR code) and recovery codes."""

    username: str
    secret: str
    uri: str
    recovery_codes: list[str]


class UserCreated(Result):
    user: User
    mfa: MfaEnrollment | None = None


class UserUpdate(Params):
    username: Username
    display_name: ShortText | UnsetType = UNSET
    email: ShortText | None | UnsetType = UNSET


class SetPassword(Params):
    new_password: Password
    username: Username | None = None  # default: yourself
    old_password: Password | None = None  # required when changing your own


class MfaEnrollParams(Params):
    password: Password  # re-authenticate before changing a second factor


# ---------------------------------------------------------------- Roles


class Role(Result):
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    members: int


class RoleList(Result):
    roles: list[Role]


class RoleRef(Params):
    name: RoleName


class RoleCreate(Params):
    name: RoleName
    permissions: list[str]
    description: ShortText = ""


class Grant(Params):
    username: Username
    role: RoleName


class Matrix(Result):
    """Permission x role: `allowed[permission]` lists the roles that hold it."""

    roles: list[str]
    permissions: list[str]
    descriptions: dict[str, str]
    allowed: dict[str, list[str]]
    methods: dict[str, str]  # method -> permission it needs


# ---------------------------------------------------------------- Sessions


class Session(Result):
    id: int
    username: str
    unix_user: str | None
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


class SessionList(Result):
    sessions: list[Session]


class SessionRevoke(Params):
    id: int | None = None
    username: Username | None = None  # every session of this user


class Revoked(Result):
    revoked: int


# ---------------------------------------------------------------- Tokens


class TokenCreate(Params):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
    days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90


class ApiToken(Result):
    name: str
    scope: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used: datetime | None
    revoked: bool


class TokenCreated(Result):
    token: str  # shown once
    info: ApiToken


class TokenList(Result):
    tokens: list[ApiToken]


class TokenRef(Params):
    name: str


# ---------------------------------------------------------------- Audit


class AuditQuery(Params):
    user: str | None = None
    method: str | None = None  # exact, or a prefix ending in '.' (e.g. "Users.")
    outcome: Annotated[str, msgspec.Meta(pattern="^(ok|error)$")] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


class AuditWatch(Params):
    user: str | None = None
    method: str | None = None  # exact, or a prefix ending in '.'


class AuditRecord(Result):
    id: int
    time: datetime
    scada_user: str | None
    unix_user: str | None
    unix_uid: int | None
    unix_pid: int | None
    method: str
    target: str | None
    params: str
    outcome: str
    error_code: str | None


class AuditList(Result):
    records: list[AuditRecord]


class AuditVerify(Result):
    ok: bool
    records: int
    first_broken_id: int | None = None
    reason: str = ""
