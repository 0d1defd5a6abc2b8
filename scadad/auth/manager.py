"""Who is calling, and may they: principal resolution, permission checks, login.

For each call the caller is, in this order:
1. the holder of a session token (`scadactl login`) or an API token, if one was sent
   (a bad token is refused outright, never downgraded to another identity);
2. the SCADA user their Unix account maps to (auth.unix_identity), seen via SO_PEERCRED;
3. the built-in local administrator, when auth.local_admin is on and the peer is the
   daemon's own Unix user or root (the single-user demo install);
4. the bootstrap caller: while no administrator exists, the daemon's own Unix user or
   root may create the first one and nothing else;
5. anonymous: read-only methods if auth.anonymous_viewer, otherwise nothing.

While the store's schema is behind (store.auto_migrate = false) no user can be read:
then the daemon's own Unix user or root is the "maintenance" caller, who may look at
the daemon and run `scadactl db migrate`, and everyone else is refused.

`self` methods (logout, one's own password or MFA) need a user account: a session or a
Unix mapping. An API token never has one, whatever its name.
"""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from scadad.api.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from scadad.api.registry import CallContext, MethodSpec
from scadad.audit import AuditLog, unix_name
from scadad.auth import lockout, passwords, totp
from scadad.auth.permissions import BUILTIN_ROLES, CATALOGUE, PUBLIC, SELF
from scadad.auth.state import AuthStore, RoleRecord, SessionRecord, TokenRecord, UserRecord, token_hash
from scadad.clock import now_us
from scadad.config import AuthSettings
from scadad.store.database import Database

log = logging.getLogger("scadad.auth")

SESSION_PREFIX = "scs_"
API_TOKEN_PREFIX = "sct_"
# What the bootstrap caller may do before any administrator exists.
BOOTSTRAP_METHODS = frozenset({"Users.Create", "System.Ping", "System.Describe", "System.Status", "Roles.Matrix"})
VIEWER_PERMISSIONS = frozenset(BUILTIN_ROLES["viewer"][1])
ALL_PERMISSIONS = frozenset(CATALOGUE)
MAINTENANCE_PERMISSIONS = frozenset({"system.read", "system.admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # session | token | unix | local_admin | bootstrap | maintenance | anonymous
    username: str | None
    permissions: frozenset[str]
    roles: tuple[str, ...] = ()
    session_id: int | None = None
    unix_user: str = ""
    token_name: str = ""  # for kind "token": the API token's name (never a username)

    @property
    def has_account(self) -> bool:
        """True when the caller acts as a SCADA user account (what `self` methods act on)."""
        return self.kind in ("session", "unix") and self.username is not None

    @property
    def label(self) -> str | None:
        """The name the audit trail records."""
        if self.kind == "local_admin":
            return f"local:{self.unix_user}"
        if self.kind == "token":
            return f"token:{self.token_name}"
        if self.kind == "maintenance":
            return f"maintenance:{self.unix_user}"
        if self.kind == "bootstrap":
            return f"bootstrap:{self.unix_user}"
        return self.username


@dataclass
class _Bucket:
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


class AuthManager:
    def __init__(self, db: Database, settings: AuthSettings, site: str, audit: AuditLog) -> None:
        self.db = db
        self.store = AuthStore(db)
        self.settings = settings
        self.site = site
        self.audit = audit
        self.daemon_uid = os.geteuid()
        self.users: dict[str, UserRecord] = {}
        self.roles: dict[str, RoleRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}  # by token hash
        self.tokens: dict[str, TokenRecord] = {}  # by token hash
        self._unix_cache: dict[int, tuple[float, str | None]] = {}
        self._buckets: dict[int, _Bucket] = {}
        self._hasher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")
        self.loaded = False

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Seed the built-in roles and read users, roles, live sessions (store thread)."""
        self.store.seed_builtin_roles()
        users, roles, sessions, tokens = self.store.load()
        self.users = {u.username: u for u in users}
        self.roles = {r.name: r for r in roles}
        self.sessions = {s.token_hash: s for s in sessions}
        self.tokens = {t.token_hash: t for t in tokens}
        self.loaded = True

    def close(self) -> None:
        self._hasher.shutdown(wait=True)

    @property
    def lockout_policy(self) -> lockout.LockoutPolicy:
        s = self.settings
        return lockout.LockoutPolicy(s.lockout_threshold, s.lockout_base_s, s.lockout_max_s, s.max_failures_per_hour)

    def permissions_of(self, user: UserRecord) -> frozenset[str]:
        perms: set[str] = set()
        for name in user.roles:
            role = self.roles.get(name)
            if role is not None:
                perms |= role.permissions
        return frozenset(perms)

    def admin_exists(self) -> bool:
        return any(not u.disabled and "users.admin" in self.permissions_of(u) for u in self.users.values())

    def _user_principal(self, kind: str, user: UserRecord, unix_user: str, session_id: int | None = None) -> Principal:
        return Principal(
            kind, user.username, self.permissions_of(user), tuple(sorted(user.roles)), session_id, unix_user
        )

    # ------------------------------------------------------------------ resolve

    def resolve(self, ctx: CallContext) -> Principal:
        unix_user = unix_name(ctx.peer.uid)
        owner = ctx.peer.uid in (self.daemon_uid, 0)
        s = self.settings
        if not self.loaded:
            # The schema is behind (store.auto_migrate = false): no users can be read yet,
            # so only the daemon's own Unix user (or root) may look and migrate.
            if owner and s.local_admin:
                return Principal("local_admin", None, ALL_PERMISSIONS, ("admin",), None, unix_user)
            if owner:
                return Principal("maintenance", None, MAINTENANCE_PERMISSIONS, (), None, unix_user)
            return Principal("anonymous", None, frozenset(), (), None, unix_user)
        if ctx.token:
            return self._from_token(ctx.token, unix_user)
        if s.unix_identity != "off":
            mapped = self._unix_mapping(ctx.peer.uid, ctx.peer.gid, unix_user)
            user = self.users.get(mapped) if mapped else None
            if user is not None and not user.disabled:
                return self._user_principal("unix", user, unix_user)
        if s.local_admin and owner:
            return Principal("local_admin", None, ALL_PERMISSIONS, ("admin",), None, unix_user)
        if owner and not self.admin_exists():
            return Principal("bootstrap", None, frozenset(), (), None, unix_user)
        perms = VIEWER_PERMISSIONS if s.anonymous_viewer else frozenset()
        return Principal("anonymous", None, perms, (), None, unix_user)

    def _from_token(self, token: str, unix_user: str) -> Principal:
        h = token_hash(token)
        now = now_us()
        if token.startswith(API_TOKEN_PREFIX):
            t = self.tokens.get(h)
            if t is None or t.revoked_us is not None or now >= t.expires_us:
                raise Unauthenticated("API token is unknown, revoked or expired")
            t.last_used_us = now
            return Principal("token", None, VIEWER_PERMISSIONS, ("viewer",), None, unix_user, token_name=t.name)
        sess = self.sessions.get(h)
        if sess is None:
            raise Unauthenticated("session token is not valid (logged out, revoked or expired); log in again")
        idle_us = int(self.settings.session_idle_timeout_s * 1e6)
        if now >= sess.expires_us or now - sess.last_seen_us > idle_us:
            self.sessions.pop(h, None)
            why = "reached its lifetime" if now >= sess.expires_us else "was idle too long"
            raise Unauthenticated(f"session {why}; log in again")
        user = self.users.get(sess.username)
        if user is None or user.disabled:
            raise Unauthenticated("the account of this session is disabled")
        sess.last_seen_us = now
        if now - sess.stored_seen_us > 60_000_000:  # write-behind: at most once a minute
            sess.stored_seen_us = now
            asyncio.get_running_loop().create_task(self.db.run(self.store.touch_session, sess.id, now))
        return self._user_principal("session", user, unix_user, sess.id)

    def _unix_mapping(self, uid: int, gid: int, name: str) -> str | None:
        cached = self._unix_cache.get(uid)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        s = self.settings
        mapped: str | None = None
        if s.unix_identity == "same_name":
            mapped = name
        elif s.unix_identity == "map":
            mapped = s.unix_users.get(name)
            if mapped is None:
                for group, scada_user in s.unix_groups.items():
                    try:
                        g = grp.getgrnam(group)
                    except KeyError:
                        continue
                    if g.gr_gid == gid or name in g.gr_mem:
                        mapped = scada_user
                        break
        self._unix_cache[uid] = (time.monotonic() + 10.0, mapped)
        return mapped

    # ------------------------------------------------------------------ authorize

    async def authorize(self, ctx: CallContext, spec: MethodSpec) -> None:
        """The dispatcher's hook: resolve the caller, then allow or refuse `spec`."""
        p = self.resolve(ctx)
        ctx.principal = p
        ctx.user = p.label
        need = spec.permission
        if need == PUBLIC:
            return
        if p.kind == "bootstrap":
            if spec.name in BOOTSTRAP_METHODS:
                return
            raise Unauthenticated(
                "no administrator exists yet; create the first one on this host with `scadactl user add NAME --admin`"
            )
        if p.kind == "maintenance" and need not in p.permissions:
            raise FailedPrecondition("the store's schema is behind; run `scadactl db migrate` first")
        if p.kind == "anonymous" and need not in p.permissions:
            if not self.loaded:
                raise Unauthenticated("the store's schema is behind; the daemon's owner must run `scadactl db migrate`")
            raise Unauthenticated(f"{spec.name} needs a logged-in user: run `scadactl login`")
        if need == SELF:
            if p.has_account or p.kind == "local_admin":
                return
            raise PermissionDenied(f"{spec.name} acts on your own user account; {p.label or 'this caller'} has none")
        if need in p.permissions:
            return
        who = p.label or "this caller"
        raise PermissionDenied(
            f"{spec.name} needs permission '{need}', which {who} (roles: {', '.join(p.roles) or 'none'}) lacks",
            {"permission": need},
        )

    # ------------------------------------------------------------------ login

    def _rate_limit(self, uid: int) -> None:
        rate = self.settings.login_attempts_per_minute
        b = self._buckets.get(uid)
        now = time.monotonic()
        if b is None:
            b = self._buckets[uid] = _Bucket(float(rate), now)
        b.tokens = min(float(rate), b.tokens + (now - b.stamp) * rate / 60.0)
        b.stamp = now
        if b.tokens < 1.0:
            raise ResourceExhausted(f"too many login attempts from uid {uid}; at most {rate} a minute")
        b.tokens -= 1.0

    async def check_password(self, user: UserRecord | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        hashed = user.password_hash if user else passwords.dummy_hash(self.settings.bcrypt_cost)
        ok = await loop.run_in_executor(self._hasher, passwords.verify_password, password, hashed)
        return ok and user is not None

    async def login(
        self, ctx: CallContext, username: str, password: str, code: str | None
    ) -> tuple[str, SessionRecord, UserRecord]:
        self._rate_limit(ctx.peer.uid)
        user = self.users.get(username)
        now = now_us()
        if user is not None and lockout.is_locked(user.login, now):
            secs = (user.login.locked_until_us - now) / 1e6  # type: ignore[operator]
            raise PermissionDenied(
                f"account {username!r} is locked for another {secs:.0f} s after failed logins;"
                " an administrator can unlock it (`scadactl user unlock`)",
                {"locked_until_us": user.login.locked_until_us},
            )
        if not await self.check_password(user, password):
            if user is not None:
                await self._failed(ctx, user, "password")
            raise Unauthenticated("wrong username or password")
        assert user is not None
        if user.disabled:
            raise PermissionDenied(f"account {username!r} is disabled")
        required = set(self.settings.mfa_required_roles) & user.roles
        if required and not user.mfa_enabled:
            raise FailedPrecondition(
                f"role {sorted(required)[0]!r} requires MFA and {username!r} has none enrolled;"
                f" an administrator can enrol it: `scadactl user mfa reset {username}`"
            )
        if user.mfa_enabled:
            if not code:
                raise Unauthenticated("a TOTP code is required", {"mfa_required": True, "field": "params.totp"})
            if not await self._check_second_factor(user, code):
                await self._failed(ctx, user, "totp")
                raise Unauthenticated("wrong or already used TOTP code", {"mfa_required": True, "field": "params.totp"})
        user.login = lockout.on_success(user.login)
        user.last_login_us = now
        await self.db.run(self.store.save_login_state, user)
        self.purge_sessions(now)
        active = [s for s in self.sessions.values() if s.username == username]
        if len(active) >= self.settings.max_sessions_per_user:
            raise ResourceExhausted(
                f"{username!r} already has {len(active)} sessions (the limit); log out elsewhere"
                " or have an administrator revoke one (`scadactl session list`)"
            )
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        sess = SessionRecord(
            id=0, token_hash=token_hash(token), user_id=user.id, username=username, unix_uid=ctx.peer.uid,
            unix_user=unix_name(ctx.peer.uid), created_us=now, last_seen_us=now,
            expires_us=now + int(self.settings.session_lifetime_s * 1e6), stored_seen_us=now,
        )  # fmt: skip
        sess.id = await self.db.run(self.store.insert_session, sess, ctx.peer.pid)
        self.sessions[sess.token_hash] = sess
        return token, sess, user

    async def _check_second_factor(self, user: UserRecord, code: str) -> bool:
        assert user.mfa_secret is not None
        if "-" in code:  # a recovery code
            return await self.db.run(self.store.use_recovery_code, user.id, totp.hash_recovery_code(code))
        step = totp.verify(user.mfa_secret, code, time.time(), user.mfa_last_step)
        if step is None:
            return False
        user.mfa_last_step = step
        return True

    async def _failed(self, ctx: CallContext, user: UserRecord, factor: str) -> None:
        user.login, locked = lockout.on_failure(user.login, now_us(), self.lockout_policy)
        await self.db.run(self.store.save_login_state, user)
        if locked:
            until = user.login.locked_until_us or 0
            log.warning(
                "account locked after failed logins",
                extra={"fields": {"user": user.username, "factor": factor, "seconds": round((until - now_us()) / 1e6)}},
            )
            # As a task: it then reaches the store thread after the dispatcher's record of
            # the failed login that caused it, so the trail reads in cause-then-effect order.
            asyncio.get_running_loop().create_task(
                self.audit.event(ctx, "Auth.Lockout", user.username, "error", "PERMISSION_DENIED",
                                 {"username": user.username, "locked_until_us": until, "factor": factor})
            )  # fmt: skip

    def purge_sessions(self, now: int) -> None:
        """Forget sessions past their lifetime or idle timeout (they no longer count or show)."""
        idle_us = int(self.settings.session_idle_timeout_s * 1e6)
        dead = [h for h, s in self.sessions.items() if now >= s.expires_us or now - s.last_seen_us > idle_us]
        for h in dead:
            del self.sessions[h]

    def revoke_user_sessions(self, username: str, keep: int | None = None) -> list[int]:
        gone = [h for h, s in self.sessions.items() if s.username == username and s.id != keep]
        return [self.sessions.pop(h).id for h in gone]

    # ------------------------------------------------------------------ helpers for the services

    def user(self, username: str) -> UserRecord:
        try:
            return self.users[username]
        except KeyError:
            raise NotFound(f"no user named {username!r}", {"field": "params.username"}) from None

    def role(self, name: str, field: str = "params.name") -> RoleRecord:
        try:
            return self.roles[name]
        except KeyError:
            raise NotFound(f"no role named {name!r}; `scadactl role list` shows them", {"field": field}) from None

    def check_new_user(self, username: str, roles: list[str]) -> None:
        if username in self.users:
            raise AlreadyExists(f"user {username!r} already exists", {"field": "params.username"})
        for r in roles:
            self.role(r, "params.roles")

    async def hash_password(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._hasher, passwords.hash_password, password, self.settings.bcrypt_cost)

    def enrolment(self, username: str) -> tuple[str, str, list[str]]:
        """A new TOTP secret, its otpauth URI and fresh recovery codes."""
        secret = totp.new_secret()
        return secret, totp.provisioning_uri(secret, username, self.site), totp.new_recovery_codes()

    def would_leave_no_admin(self, username: str, without_role: str | None = None, disabling: bool = False) -> bool:
        for u in self.users.values():
            if u.disabled or (disabling and u.username == username):
                continue
            roles = set(u.roles)
            if u.username == username and without_role:
                roles.discard(without_role)
            if any("users.admin" in self.roles[r].permissions for r in roles if r in self.roles):
                return False
        return True

    def validate_permissions(self, perms: list[str]) -> None:
        bad = [p for p in perms if p not in CATALOGUE]
        if bad:
            raise InvalidArgument(
                f"unknown permission(s): {', '.join(bad)}; `scadactl role matrix` lists them", "params.permissions"
            )
