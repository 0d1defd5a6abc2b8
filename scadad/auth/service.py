"""Auth.*, Users.*, Roles.*, Sessions.* and Tokens.*: the API faces of AuthManager."""

from __future__ import annotations

import secrets
from datetime import datetime

import msgspec

from scadad.api.auth_messages import (
    ApiToken,
    Done,
    Grant,
    LoginParams,
    LoginResult,
    Matrix,
    MfaEnrollment,
    MfaEnrollParams,
    Revoked,
    Role,
    RoleCreate,
    RoleList,
    RoleRef,
    Session,
    SessionList,
    SessionRevoke,
    SetPassword,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenRef,
    User,
    UserCreate,
    UserCreated,
    UserList,
    UserRef,
    UserUpdate,
    WhoAmI,
)
from scadad.api.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from scadad.api.messages import Empty
from scadad.api.registry import CallContext, Registry, Service, rpc
from scadad.audit import unix_name
from scadad.auth import lockout, passwords, totp
from scadad.auth.manager import API_TOKEN_PREFIX, AuthManager, Principal
from scadad.auth.permissions import CATALOGUE, PUBLIC, SELF
from scadad.auth.state import RoleRecord, TokenRecord, UserRecord, token_hash
from scadad.clock import from_us, now_us


def _dt(us: int | None) -> datetime | None:
    return from_us(us) if us else None


def _principal(ctx: CallContext) -> Principal:
    p = ctx.principal
    assert isinstance(p, Principal), "authorize() runs before every handler"
    return p


class AuthService(Service):
    """Auth.*: log in and out, and ask who you are."""

    name = "Auth"

    def __init__(self, auth: AuthManager) -> None:
        self.auth = auth

    @rpc(permission=PUBLIC, mutates=True)
    async def login(self, ctx: CallContext, params: LoginParams) -> LoginResult:
        """Exchange username, password (and a TOTP or recovery code) for a session token."""
        ctx.user = params.username
        token, sess, user = await self.auth.login(ctx, params.username, params.password, params.totp)
        return LoginResult(
            token=token,
            username=user.username,
            roles=sorted(user.roles),
            expires_at=from_us(sess.expires_us),
            idle_timeout_s=self.auth.settings.session_idle_timeout_s,
        )

    @rpc(permission=SELF, mutates=True)
    async def logout(self, ctx: CallContext, params: Empty) -> Done:
        """End the session whose token made this call (the token stops working at once)."""
        p = _principal(ctx)
        if p.session_id is None or ctx.token is None:
            raise FailedPrecondition("this call was not made with a session token; nothing to log out")
        sess = self.auth.sessions.pop(token_hash(ctx.token), None)
        if sess is not None:
            await self.auth.db.run(self.auth.store.revoke_sessions, [sess.id], sess.username)
        return Done()

    @rpc(permission=PUBLIC)
    async def who_am_i(self, ctx: CallContext, params: Empty) -> WhoAmI:
        """The identity this connection acts as, its roles and permissions."""
        p = _principal(ctx)
        return WhoAmI(
            username=p.label, kind=p.kind, roles=list(p.roles), permissions=sorted(p.permissions),
            unix_uid=ctx.peer.uid, unix_user=unix_name(ctx.peer.uid),
        )  # fmt: skip


def user_view(auth: AuthManager, u: UserRecord) -> User:
    locked = u.login.locked_until_us if lockout.is_locked(u.login, now_us()) else None
    return User(
        username=u.username, display_name=u.display_name, email=u.email, roles=sorted(u.roles),
        disabled=u.disabled, mfa_enabled=u.mfa_enabled, locked_until=_dt(locked),
        failed_logins=u.login.failed, last_login=_dt(u.last_login_us), created_at=from_us(u.created_us),
    )  # fmt: skip


class UsersService(Service):
    """Users.*: accounts, passwords, MFA, lockout."""

    name = "Users"

    def __init__(self, auth: AuthManager) -> None:
        self.auth = auth

    @rpc(permission="users.admin")
    async def list(self, ctx: CallContext, params: Empty) -> UserList:
        """Every user with roles, MFA and lock state."""
        return UserList(users=[user_view(self.auth, self.auth.users[n]) for n in sorted(self.auth.users)])

    @rpc(permission="users.admin")
    async def get(self, ctx: CallContext, params: UserRef) -> User:
        """One user."""
        return user_view(self.auth, self.auth.user(params.username))

    @rpc(permission="users.admin", mutates=True)
    async def create(self, ctx: CallContext, params: UserCreate) -> UserCreated:
        """Add a user; a role that requires MFA enrols it now and returns the secret once."""
        a = self.auth
        if _principal(ctx).kind == "bootstrap" and "admin" not in params.roles:
            raise PermissionDenied("before any administrator exists, only an administrator can be created (--admin)")
        a.check_new_user(params.username, params.roles)
        passwords.check_policy(params.password, params.username, a.settings.min_password_length)
        mfa: MfaEnrollment | None = None
        secret: str | None = None
        hashes: list[str] = []
        if set(params.roles) & set(a.settings.mfa_required_roles):
            secret, uri, codes = a.enrolment(params.username)
            hashes = [totp.hash_recovery_code(c) for c in codes]
            mfa = MfaEnrollment(username=params.username, secret=secret, uri=uri, recovery_codes=codes)
        ts = now_us()
        rec = UserRecord(
            id=0, username=params.username, display_name=params.display_name, email=params.email,
            password_hash=await a.hash_password(params.password), mfa_secret=secret, mfa_enabled=secret is not None,
            mfa_last_step=None, disabled=False, login=lockout.LoginState(), last_login_us=None, created_us=ts,
            roles=set(params.roles),
        )  # fmt: skip
        role_ids = [a.roles[r].id for r in params.roles]
        rec.id = await a.db.run(a.store.insert_user, rec, role_ids, hashes)
        a.users[rec.username] = rec
        return UserCreated(user=user_view(a, rec), mfa=mfa)

    @rpc(permission="users.admin", mutates=True)
    async def update(self, ctx: CallContext, params: UserUpdate) -> User:
        """Change display name or e-mail."""
        u = self.auth.user(params.username)
        changes = {k: getattr(params, k) for k in ("display_name", "email") if getattr(params, k) is not msgspec.UNSET}
        if changes:
            await self.auth.db.run(lambda: self.auth.store.update_user(u.id, **changes))
            for k, v in changes.items():
                setattr(u, k, v)
        return user_view(self.auth, u)

    @rpc(permission="users.admin", mutates=True)
    async def disable(self, ctx: CallContext, params: UserRef) -> User:
        """Disable an account and end its sessions."""
        a = self.auth
        u = a.user(params.username)
        if a.would_leave_no_admin(u.username, disabling=True):
            raise FailedPrecondition(f"{u.username!r} is the last enabled administrator; enable another first")
        u.disabled = True
        await a.db.run(lambda: a.store.update_user(u.id, disabled=True))
        await a.db.run(a.store.revoke_sessions, a.revoke_user_sessions(u.username), _principal(ctx).label or "")
        return user_view(a, u)

    @rpc(permission="users.admin", mutates=True)
    async def enable(self, ctx: CallContext, params: UserRef) -> User:
        """Enable a disabled account."""
        u = self.auth.user(params.username)
        u.disabled = False
        await self.auth.db.run(lambda: self.auth.store.update_user(u.id, disabled=False))
        return user_view(self.auth, u)

    @rpc(permission="users.admin", mutates=True)
    async def unlock(self, ctx: CallContext, params: UserRef) -> User:
        """Lift a lockout after failed logins."""
        u = self.auth.user(params.username)
        u.login = lockout.unlock(u.login)
        await self.auth.db.run(self.auth.store.save_login_state, u)
        return user_view(self.auth, u)

    @rpc(permission=SELF, mutates=True)
    async def set_password(self, ctx: CallContext, params: SetPassword) -> Done:
        """Change your own password (old one required) or, as an admin, anyone's."""
        a = self.auth
        p = _principal(ctx)
        target = params.username or p.username
        if target is None:
            raise InvalidArgument("name the user whose password to set", "params.username")
        own = p.has_account and target == p.username
        if not own and "users.admin" not in p.permissions:
            raise PermissionDenied("changing another user's password needs permission 'users.admin'")
        u = a.user(target)
        if own:
            if params.old_password is None or not await a.check_password(u, params.old_password):
                raise Unauthenticated("the old password is wrong", {"field": "params.old_password"})
        passwords.check_policy(params.new_password, u.username, a.settings.min_password_length, "params.new_password")
        u.password_hash = await a.hash_password(params.new_password)
        await a.db.run(lambda: a.store.update_user(u.id, password_hash=u.password_hash, password_changed_us=now_us()))
        # Every other session of that user ends: a password change is how people evict an intruder.
        await a.db.run(a.store.revoke_sessions, a.revoke_user_sessions(u.username, keep=p.session_id), p.label or "")
        return Done()

    @rpc(permission=SELF, mutates=True)
    async def mfa_enroll(self, ctx: CallContext, params: MfaEnrollParams) -> MfaEnrollment:
        """Enrol (or re-enrol) your own TOTP second factor; needs your password."""
        a = self.auth
        p = _principal(ctx)
        if not p.has_account or p.username is None:
            raise FailedPrecondition("MFA enrolment is for a logged-in user account")
        u = a.user(p.username)
        if not await a.check_password(u, params.password):
            raise Unauthenticated("wrong password", {"field": "params.password"})
        return await self._enrol(u)

    @rpc(permission="users.admin", mutates=True)
    async def mfa_reset(self, ctx: CallContext, params: UserRef) -> MfaEnrollment:
        """Give a user a new TOTP secret and recovery codes (lost phone); ends their sessions."""
        a = self.auth
        u = a.user(params.username)
        enrolment = await self._enrol(u)
        await a.db.run(a.store.revoke_sessions, a.revoke_user_sessions(u.username), _principal(ctx).label or "")
        return enrolment

    async def _enrol(self, u: UserRecord) -> MfaEnrollment:
        a = self.auth
        secret, uri, codes = a.enrolment(u.username)
        await a.db.run(a.store.set_mfa, u.id, secret, True, [totp.hash_recovery_code(c) for c in codes])
        u.mfa_secret, u.mfa_enabled, u.mfa_last_step = secret, True, None
        return MfaEnrollment(username=u.username, secret=secret, uri=uri, recovery_codes=codes)


class RolesService(Service):
    """Roles.*: built-in and custom permission sets, and who holds them."""

    name = "Roles"

    def __init__(self, auth: AuthManager, registry: Registry) -> None:
        self.auth = auth
        self.registry = registry

    def _view(self, name: str) -> Role:
        r = self.auth.roles[name]
        members = sum(1 for u in self.auth.users.values() if name in u.roles)
        return Role(name=r.name, description=r.description, permissions=sorted(r.permissions), builtin=r.builtin,
                    members=members)  # fmt: skip

    @rpc(permission="users.admin")
    async def list(self, ctx: CallContext, params: Empty) -> RoleList:
        """Every role with its permissions and number of members."""
        return RoleList(roles=[self._view(n) for n in sorted(self.auth.roles)])

    @rpc(permission="system.read")
    async def matrix(self, ctx: CallContext, params: Empty) -> Matrix:
        """The permission matrix: which role holds which permission, which method needs which."""
        roles = sorted(self.auth.roles, key=lambda n: (not self.auth.roles[n].builtin, n))
        return Matrix(
            roles=roles,
            permissions=sorted(CATALOGUE),
            descriptions=dict(CATALOGUE),
            allowed={p: [r for r in roles if p in self.auth.roles[r].permissions] for p in sorted(CATALOGUE)},
            methods={m.name: m.permission for m in self.registry},
        )

    @rpc(permission="users.admin", mutates=True)
    async def create(self, ctx: CallContext, params: RoleCreate) -> Role:
        """Add a custom role from permissions in the catalogue."""
        a = self.auth
        if params.name in a.roles:
            raise AlreadyExists(f"role {params.name!r} already exists", {"field": "params.name"})
        a.validate_permissions(params.permissions)
        rid = await a.db.run(a.store.insert_role, params.name, params.description, params.permissions)
        a.roles[params.name] = RoleRecord(rid, params.name, params.description, frozenset(params.permissions), False)
        return self._view(params.name)

    @rpc(permission="users.admin", mutates=True)
    async def delete(self, ctx: CallContext, params: RoleRef) -> Done:
        """Remove a custom role that nobody holds."""
        a = self.auth
        r = a.role(params.name)
        if r.builtin:
            raise FailedPrecondition(f"{r.name!r} is a built-in role and cannot be deleted")
        holders = sorted(u.username for u in a.users.values() if r.name in u.roles)
        if holders:
            raise FailedPrecondition(f"role {r.name!r} is held by {', '.join(holders)}; revoke it first")
        await a.db.run(a.store.delete_role, r.id)
        del a.roles[r.name]
        return Done()

    @rpc(permission="users.admin", mutates=True)
    async def grant(self, ctx: CallContext, params: Grant) -> Done:
        """Give a user a role (takes effect on their next call)."""
        a = self.auth
        u, r = a.user(params.username), a.role(params.role, "params.role")
        if r.name in u.roles:
            raise AlreadyExists(f"{u.username!r} already has role {r.name!r}")
        await a.db.run(a.store.grant, u.id, r.id)
        u.roles.add(r.name)
        return Done()

    @rpc(permission="users.admin", mutates=True)
    async def revoke(self, ctx: CallContext, params: Grant) -> Done:
        """Take a role from a user (takes effect on their next call)."""
        a = self.auth
        u, r = a.user(params.username), a.role(params.role, "params.role")
        if r.name not in u.roles:
            raise NotFound(f"{u.username!r} does not have role {r.name!r}")
        if a.would_leave_no_admin(u.username, without_role=r.name):
            raise FailedPrecondition(f"{u.username!r} is the last administrator; make another one first")
        await a.db.run(a.store.revoke, u.id, r.id)
        u.roles.discard(r.name)
        return Done()


class SessionsService(Service):
    """Sessions.*: who is logged in, and ending sessions."""

    name = "Sessions"

    def __init__(self, auth: AuthManager) -> None:
        self.auth = auth

    @rpc(permission="users.admin")
    async def list(self, ctx: CallContext, params: Empty) -> SessionList:
        """Live sessions, oldest first."""
        now = now_us()
        self.auth.purge_sessions(now)
        live = sorted(self.auth.sessions.values(), key=lambda s: s.created_us)
        return SessionList(
            sessions=[
                Session(
                    id=s.id,
                    username=s.username,
                    unix_user=s.unix_user,
                    created_at=from_us(s.created_us),
                    last_seen=from_us(s.last_seen_us),
                    expires_at=from_us(s.expires_us),
                )  # fmt: skip
                for s in live
            ]
        )

    @rpc(permission="users.admin", mutates=True)
    async def revoke(self, ctx: CallContext, params: SessionRevoke) -> Revoked:
        """End one session (by id) or every session of a user."""
        a = self.auth
        if (params.id is None) == (params.username is None):
            raise InvalidArgument("give either id or username", "params.id")
        if params.username is not None:
            a.user(params.username)
            ids = a.revoke_user_sessions(params.username)
        else:
            match = [h for h, s in a.sessions.items() if s.id == params.id]
            if not match:
                raise NotFound(f"no live session with id {params.id}", {"field": "params.id"})
            ids = [a.sessions.pop(match[0]).id]
        await a.db.run(a.store.revoke_sessions, ids, _principal(ctx).label or "")
        return Revoked(revoked=len(ids))


class TokensService(Service):
    """Tokens.*: read-only API tokens for remote viewers (the HTTP endpoint)."""

    name = "Tokens"

    def __init__(self, auth: AuthManager) -> None:
        self.auth = auth

    def _view(self, t: TokenRecord) -> ApiToken:
        return ApiToken(name=t.name, scope=t.scope, created_by=t.created_by, created_at=from_us(t.created_us),
                        expires_at=from_us(t.expires_us), last_used=_dt(t.last_used_us),
                        revoked=t.revoked_us is not None)  # fmt: skip

    @rpc(permission="users.admin", mutates=True)
    async def create(self, ctx: CallContext, params: TokenCreate) -> TokenCreated:
        """Issue a read-only token (shown once; only its hash is kept)."""
        a = self.auth
        if any(t.name == params.name for t in a.tokens.values()):
            raise AlreadyExists(f"a token named {params.name!r} exists", {"field": "params.name"})
        if params.days > a.settings.token_max_days:
            raise InvalidArgument(f"tokens live at most {a.settings.token_max_days} days", "params.days")
        token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = now_us()
        rec = TokenRecord(0, params.name, token_hash(token), "read", _principal(ctx).label or "", now,
                          now + params.days * 86_400_000_000, None, None)  # fmt: skip
        rec.id = await a.db.run(a.store.insert_token, rec)
        a.tokens[rec.token_hash] = rec
        return TokenCreated(token=token, info=self._view(rec))

    @rpc(permission="users.admin")
    async def list(self, ctx: CallContext, params: Empty) -> TokenList:
        """Every API token (never the token itself)."""
        return TokenList(tokens=[self._view(t) for t in sorted(self.auth.tokens.values(), key=lambda t: t.name)])

    @rpc(permission="users.admin", mutates=True)
    async def revoke(self, ctx: CallContext, params: TokenRef) -> Done:
        """Revoke a token by name; it stops working at once."""
        a = self.auth
        rec = next((t for t in a.tokens.values() if t.name == params.name), None)
        if rec is None:
            raise NotFound(f"no token named {params.name!r}", {"field": "params.name"})
        rec.revoked_us = now_us()
        await a.db.run(a.store.revoke_token, rec.id, rec.revoked_us)
        return Done()
