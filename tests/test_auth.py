"""Authentication and authorisation against a real daemon: the permission matrix, lockout,
MFA, sessions, tokens, Unix identity, bootstrap, and the audit trail."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from scadactl.main import app
from scadad.api.client import Client
from scadad.api.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    ScadaError,
    Unauthenticated,
)
from scadad.auth.passwords import cost_of
from scadad.auth.permissions import BUILTIN_ROLES
from tests.conftest import RunningDaemon, start_daemon

PASSWORD = "brisk-otter-lantern-47"
NO_MFA = "mfa_required_roles = []\nlogin_attempts_per_minute = 1000\n"
runner = CliRunner()


def bootstrap_admin(d: RunningDaemon, username: str = "chief") -> dict:
    """Create the first admin as the daemon's own Unix user (the bootstrap rule)."""
    with Client(d.socket) as c:
        return c.call("Users.Create", {"username": username, "password": PASSWORD, "roles": ["admin"]})


def login(d: RunningDaemon, username: str, password: str = PASSWORD, totp: str | None = None) -> Client:
    c = Client(d.socket)
    params = {"username": username, "password": password, **({"totp": totp} if totp else {})}
    c.token = c.call("Auth.Login", params)["token"]
    return c


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[RunningDaemon]:
    """A daemon with authentication on (no local admin), MFA not required, one admin 'chief'."""
    d = start_daemon(tmp_path / "h", auth=NO_MFA)
    bootstrap_admin(d)
    yield d
    assert d.stop() == 0


def _outcome(client: Client, method: str, stream: bool) -> str:
    """'denied' when the permission check refused the call, else 'allowed' (whatever came next)."""
    if stream:
        # A permitted stream may stay silent (Audit.Watch waits for records), while a
        # refusal is answered at once: wait a second on a connection of its own.
        with Client(client.path, token=client.token, timeout=1.0) as c:
            try:
                return _outcome(c, method, False)
            except DeadlineExceeded:
                return "allowed"
    for frame in client.frames(method, {}):
        if "error" in frame and frame["error"]["code"] in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            return "denied"
        return "allowed"  # first frame: a result, a non-auth error, or a stream's first event
    return "allowed"


def test_permission_matrix_is_enforced_for_every_method_and_role(secured: RunningDaemon) -> None:
    d = secured
    with login(d, "chief") as admin:
        for role in BUILTIN_ROLES:
            admin.call("Users.Create", {"username": f"u-{role}", "password": PASSWORD, "roles": [role]})
        matrix = admin.call("Roles.Matrix")
        methods = admin.call("System.Describe")["methods"]
    clients = {role: login(d, f"u-{role}") for role in BUILTIN_ROLES}
    clients["anonymous"] = Client(d.socket)
    checked = 0
    try:
        for m in methods:
            need = m["permission"]
            assert matrix["methods"][m["name"]] == need
            for role, client in clients.items():
                if m["name"] == "Auth.Logout" and role != "anonymous":
                    continue  # would end the session the loop needs; checked below
                if need == "public":
                    expected = "allowed"
                elif role == "anonymous":
                    expected = "denied"
                elif need == "self":
                    expected = "allowed"
                else:
                    expected = "allowed" if role in matrix["allowed"][need] else "denied"
                got = _outcome(client, m["name"], m["kind"] == "stream")
                assert got == expected, f"{m['name']} ({need}) as {role}: {got}, matrix says {expected}"
                checked += 1
        for role in BUILTIN_ROLES:
            with login(d, f"u-{role}") as c:
                assert c.call("Auth.Logout") == {"ok": True}
    finally:
        for c in clients.values():
            c.close()
    assert checked >= len(methods) * 5
    # The same matrix, printed for people.
    r = runner.invoke(app, ["--socket", str(d.socket), "role", "matrix"], env={"SCADA_TOKEN": _token(d, "chief")})
    assert r.exit_code == 0 and "users.admin" in r.stdout and "VIEWER" in r.stdout


def _token(d: RunningDaemon, user: str) -> str:
    c = login(d, user)
    c.close()
    assert c.token
    return c.token


def test_five_wrong_passwords_lock_until_unlock_and_audit_shows_each_step(secured: RunningDaemon) -> None:
    d = secured
    with login(d, "chief") as admin:
        admin.call("Users.Create", {"username": "bob", "password": PASSWORD, "roles": ["operator"]})
        with Client(d.socket) as anon:
            for _ in range(5):
                with pytest.raises(Unauthenticated, match="wrong username or password"):
                    anon.call("Auth.Login", {"username": "bob", "password": "not-the-password-1"})
            with pytest.raises(PermissionDenied, match="locked"):
                anon.call("Auth.Login", {"username": "bob", "password": PASSWORD})  # the sixth, correct
        user = admin.call("Users.Get", {"username": "bob"})
        assert user["locked_until"] is not None
        admin.call("Users.Unlock", {"username": "bob"})
        assert admin.call("Users.Get", {"username": "bob"})["locked_until"] is None
        login(d, "bob").close()
        token = admin.token
    r = runner.invoke(
        app, ["--socket", str(d.socket), "--json", "audit", "list", "--user", "bob", "--limit", "100"],
        env={"SCADA_TOKEN": token},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    steps = [(rec["method"], rec["outcome"], rec["error_code"]) for rec in json.loads(r.stdout)]
    assert steps == [("Auth.Login", "error", "UNAUTHENTICATED")] * 5 + [
        ("Auth.Lockout", "error", "PERMISSION_DENIED"),  # caused by the fifth failure
        ("Auth.Login", "error", "PERMISSION_DENIED"),
        ("Auth.Login", "ok", None),
    ]
    unlock = json.loads(
        runner.invoke(
            app,
            ["--socket", str(d.socket), "--json", "audit", "list", "--method", "Users.Unlock"],
            env={"SCADA_TOKEN": token},
        ).stdout  # fmt: skip
    )
    assert [(u["scada_user"], u["target"], u["outcome"]) for u in unlock] == [("chief", "bob", "ok")]


def test_lock_expires_by_itself(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth=NO_MFA + "lockout_threshold = 2\nlockout_base_s = 1\n")
    try:
        bootstrap_admin(d)
        with Client(d.socket) as c:
            for _ in range(2):
                with pytest.raises(Unauthenticated):
                    c.call("Auth.Login", {"username": "chief", "password": "wrong-password-123"})
            with pytest.raises(PermissionDenied, match="locked"):
                c.call("Auth.Login", {"username": "chief", "password": PASSWORD})
            time.sleep(1.2)
            assert c.call("Auth.Login", {"username": "chief", "password": PASSWORD})["token"]
    finally:
        assert d.stop() == 0


def test_editing_an_audit_row_is_detected_and_named(secured: RunningDaemon) -> None:
    d = secured
    with login(d, "chief") as admin:
        for name in ("a1", "a2", "a3"):
            admin.call("Sites.Create", {"name": name})
        token = admin.token
    ok = runner.invoke(app, ["--socket", str(d.socket), "audit", "verify"], env={"SCADA_TOKEN": token})
    assert ok.exit_code == 0 and "intact" in ok.stdout
    db = sqlite3.connect(d.home / "data" / "scada.db")
    target_id = db.execute("SELECT id FROM audit_log WHERE target = 'a2'").fetchone()[0]
    db.execute("UPDATE audit_log SET target = 'innocent' WHERE id = ?", (target_id,))
    db.commit()
    db.close()
    bad = runner.invoke(app, ["--socket", str(d.socket), "audit", "verify"], env={"SCADA_TOKEN": token})
    assert bad.exit_code == 1
    assert f"record {target_id}" in bad.stderr and "edited" in bad.stderr
    doc = json.loads(runner.invoke(app, ["--socket", str(d.socket), "--json", "audit", "verify"],
                                   env={"SCADA_TOKEN": token}).stdout)  # fmt: skip
    assert doc["ok"] is False and doc["first_broken_id"] == target_id


def test_deleting_an_audit_row_is_detected(secured: RunningDaemon) -> None:
    d = secured
    with login(d, "chief") as admin:
        admin.call("Sites.Create", {"name": "x1"})
        admin.call("Sites.Create", {"name": "x2"})
        db = sqlite3.connect(d.home / "data" / "scada.db")
        victim = db.execute("SELECT id FROM audit_log WHERE target = 'x1'").fetchone()[0]
        db.execute("DELETE FROM audit_log WHERE id = ?", (victim,))
        db.commit()
        db.close()
        res = admin.call("Audit.Verify")
    assert res["ok"] is False and res["first_broken_id"] == victim + 1 and "removed" in res["reason"]


def test_scadactl_login_status_logout(secured: RunningDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = secured
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("SCADA_TOKEN", raising=False)
    sock = ["--socket", str(d.socket)]
    assert runner.invoke(app, [*sock, "status"]).exit_code == 1  # not logged in: UNAUTHENTICATED
    r = runner.invoke(app, [*sock, "login", "chief", "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "logged in as chief" in r.stdout and "mode 0600" in r.stdout
    [token_file] = (tmp_path / "state" / "scada").iterdir()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    token = token_file.read_text().strip()
    status = runner.invoke(app, [*sock, "--json", "status"])
    assert status.exit_code == 0 and json.loads(status.stdout)["site"] == "test"
    who = json.loads(runner.invoke(app, [*sock, "--json", "whoami"]).stdout)
    assert who["username"] == "chief" and who["kind"] == "session"
    assert runner.invoke(app, [*sock, "logout"]).exit_code == 0
    assert not token_file.exists()
    with Client(d.socket, token=token) as c, pytest.raises(Unauthenticated):
        c.call("System.Status")


def test_secrets_never_reach_logs_or_audit_and_bcrypt_cost_is_12(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth="login_attempts_per_minute = 1000\n", extra='[log]\nlevel = "debug"\n')
    try:
        created = bootstrap_admin(d)
        mfa = created["mfa"]
        assert mfa and len(mfa["recovery_codes"]) == 10
        secret = mfa["secret"]
        totp = pyotp.TOTP(secret)
        with Client(d.socket) as c:
            with pytest.raises(Unauthenticated, match="TOTP code is required"):
                c.call("Auth.Login", {"username": "chief", "password": PASSWORD})
            with pytest.raises(Unauthenticated, match="TOTP"):
                c.call("Auth.Login", {"username": "chief", "password": PASSWORD, "totp": "000000"})
        code = totp.now()
        admin = login(d, "chief", totp=code)
        with Client(d.socket) as c, pytest.raises(Unauthenticated, match="already used"):
            c.call("Auth.Login", {"username": "chief", "password": PASSWORD, "totp": code})  # replay
        recovery = mfa["recovery_codes"][0]
        login(d, "chief", totp=recovery).close()
        with Client(d.socket) as c, pytest.raises(Unauthenticated):
            c.call("Auth.Login", {"username": "chief", "password": PASSWORD, "totp": recovery})  # spent
        other_pw = "quiet-heron-marble-92"
        admin.call("Users.Create", {"username": "op", "password": other_pw, "roles": ["operator"]})
        admin.call("Users.SetPassword", {"username": "op", "new_password": "new-heron-marble-93"})
        api = admin.call("Tokens.Create", {"name": "wall", "days": 1})["token"]
        secrets = [PASSWORD, other_pw, "new-heron-marble-93", secret, code, recovery, admin.token, api,
                   *mfa["recovery_codes"]]  # fmt: skip
        admin.close()
    finally:
        assert d.stop() == 0
    log = d.log_text()
    assert "account locked" not in log and log.count("\n") > 5  # debug logging was on and said things
    db = sqlite3.connect(d.home / "data" / "scada.db")
    audit_rows = "\n".join(" ".join(map(str, r)) for r in db.execute("SELECT * FROM audit_log"))
    everything = "\n".join(db.iterdump())
    hashes = [r[0] for r in db.execute("SELECT password_hash FROM users")]
    db.close()
    assert "***" in audit_rows  # the login params were recorded, redacted
    for s in secrets:
        assert s not in log, "secret in the daemon log"
        assert s not in audit_rows, "secret in the audit log"
    for s in [PASSWORD, other_pw, "new-heron-marble-93", admin.token, api, *mfa["recovery_codes"]]:
        assert s not in everything, "password, token or recovery code stored in clear"
    assert hashes and all(cost_of(h) >= 12 for h in hashes)


def test_bootstrap_only_creates_an_admin_then_closes(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth=NO_MFA)
    try:
        with Client(d.socket) as c:
            with pytest.raises(Unauthenticated, match="no administrator exists yet"):
                c.call("Sites.List")
            st = c.call("System.Status")
            assert {s["name"]: s["state"] for s in st["subsystems"]}["auth"] == "degraded"
            with pytest.raises(PermissionDenied, match="only an administrator"):
                c.call("Users.Create", {"username": "op", "password": PASSWORD, "roles": ["operator"]})
            with pytest.raises(InvalidArgument, match="common passwords"):
                c.call("Users.Create", {"username": "chief", "password": "passwordpassword", "roles": ["admin"]})
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
            with pytest.raises(Unauthenticated, match="needs a logged-in user"):
                c.call("Users.Create", {"username": "eve", "password": PASSWORD, "roles": ["admin"]})
            audit = sqlite3.connect(d.home / "data" / "scada.db").execute(
                "SELECT scada_user, method, outcome FROM audit_log ORDER BY id").fetchall()  # fmt: skip
            assert ("bootstrap:" + _me(), "Users.Create", "ok") in audit
    finally:
        assert d.stop() == 0


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another Unix user")
def test_other_unix_users_cannot_bootstrap(tmp_path: Path) -> None:
    import shutil
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="scada-nobody-"))  # pytest's tmp dirs are closed to others
    os.chmod(home, 0o755)
    d = start_daemon(home / "h", auth=NO_MFA, api_extra='socket_mode = "0666"\n')
    os.chmod(home / "h", 0o755)
    try:
        frame = json.dumps({"id": 1, "method": "Users.Create",
                            "params": {"username": "eve", "password": PASSWORD, "roles": ["admin"]}})  # fmt: skip
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: become nobody, then speak to the socket by hand
            try:
                import socket as s

                os.setgid(65534)
                os.setuid(65534)
                conn = s.socket(s.AF_UNIX, s.SOCK_STREAM)
                conn.connect(str(d.socket))
                conn.sendall(frame.encode() + b"\n")
                os.write(write_end, conn.recv(65536))
            finally:
                os._exit(0)
        os.close(write_end)
        reply = json.loads(os.read(read_end, 65536).decode().splitlines()[0])
        os.waitpid(pid, 0)
        assert reply["error"]["code"] == "UNAUTHENTICATED"
        with Client(d.socket) as c:  # the owner still can
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
    finally:
        assert d.stop() == 0
        shutil.rmtree(home, ignore_errors=True)


def test_unix_identity_same_name_and_token_precedence(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth=NO_MFA + 'unix_identity = "same_name"\n')
    try:
        bootstrap_admin(d)
        with login(d, "chief") as admin:
            admin.call("Users.Create", {"username": _me(), "password": PASSWORD, "roles": ["viewer"]})
        with Client(d.socket) as c:  # no login: acts as the SCADA user named like our Unix login
            me = c.call("Auth.WhoAmI")
            assert (me["username"], me["kind"], me["roles"]) == (_me(), "unix", ["viewer"])
            assert c.call("Sites.List") == {"sites": []}
            with pytest.raises(PermissionDenied, match="sites.configure"):
                c.call("Sites.Create", {"name": "nope"})
        with login(d, "chief") as admin:  # a session wins over the Unix mapping
            assert admin.call("Auth.WhoAmI")["username"] == "chief"
            admin.call("Sites.Create", {"name": "yes"})
    finally:
        assert d.stop() == 0


def test_sessions_idle_out_and_are_capped(tmp_path: Path) -> None:
    # 3 s idle: three bcrypt logins (about 0.3 s each, more on a loaded CI machine) must
    # fit inside it before the first session is used again.
    d = start_daemon(tmp_path / "h", auth=NO_MFA + "session_idle_timeout_s = 3\nmax_sessions_per_user = 2\n")
    try:
        bootstrap_admin(d)
        a, b = login(d, "chief"), login(d, "chief")
        with pytest.raises(ResourceExhausted, match="2 sessions"):
            login(d, "chief")
        assert len(a.call("Sessions.List")["sessions"]) == 2
        assert a.call("Sessions.Revoke", {"id": a.call("Sessions.List")["sessions"][1]["id"]}) == {"revoked": 1}
        with pytest.raises(Unauthenticated):
            b.call("System.Status")
        time.sleep(3.3)
        with pytest.raises(Unauthenticated, match="idle"):
            a.call("System.Status")
        a.close()
        b.close()
        # Sessions that idled out no longer count against the cap.
        c1, c2 = login(d, "chief"), login(d, "chief")
        time.sleep(3.3)
        c3 = login(d, "chief")
        assert len(c3.call("Sessions.List")["sessions"]) == 1
        for c in (c1, c2, c3):
            c.close()
    finally:
        assert d.stop() == 0


def test_api_tokens_are_read_only_and_revocable(secured: RunningDaemon) -> None:
    with login(secured, "chief") as admin:
        created = admin.call("Tokens.Create", {"name": "wallboard", "days": 30})
        assert created["info"]["scope"] == "read"
        with Client(secured.socket, token=created["token"]) as viewer:
            assert viewer.call("Sites.List") == {"sites": []}
            with pytest.raises(PermissionDenied):
                viewer.call("Sites.Create", {"name": "x"})
            admin.call("Tokens.Revoke", {"name": "wallboard"})
            with pytest.raises(Unauthenticated, match="revoked"):
                viewer.call("Sites.List")
        with pytest.raises(AlreadyExists):
            admin.call("Tokens.Create", {"name": "wallboard"})


def test_roles_grants_and_last_admin_protection(secured: RunningDaemon) -> None:
    with login(secured, "chief") as admin:
        with pytest.raises(InvalidArgument, match="unknown permission"):
            admin.call("Roles.Create", {"name": "meter-reader", "permissions": ["energy.read", "energy.teleport"]})
        admin.call("Roles.Create", {"name": "meter-reader", "permissions": ["energy.read", "sites.read"]})
        admin.call("Users.Create", {"username": "mo", "password": PASSWORD, "roles": ["meter-reader"]})
        with login(secured, "mo") as mo:
            assert mo.call("Sites.List") == {"sites": []}
            with pytest.raises(PermissionDenied):
                mo.call("System.Status")
            admin.call("Roles.Grant", {"username": "mo", "role": "viewer"})
            assert mo.call("System.Status")["site"] == "test"  # takes effect on the next call
        with pytest.raises(FailedPrecondition, match="held by mo"):
            admin.call("Roles.Delete", {"name": "meter-reader"})
        with pytest.raises(FailedPrecondition, match="built-in"):
            admin.call("Roles.Delete", {"name": "viewer"})
        with pytest.raises(FailedPrecondition, match="last administrator"):
            admin.call("Roles.Revoke", {"username": "chief", "role": "admin"})
        with pytest.raises(FailedPrecondition, match="last enabled administrator"):
            admin.call("Users.Disable", {"username": "chief"})
        admin.call("Users.Disable", {"username": "mo"})
        with pytest.raises(PermissionDenied, match="disabled"):
            login(secured, "mo")


def test_password_change_ends_other_sessions(secured: RunningDaemon) -> None:
    with login(secured, "chief") as admin:
        admin.call("Users.Create", {"username": "ann", "password": PASSWORD, "roles": ["viewer"]})
    first, second = login(secured, "ann"), login(secured, "ann")
    with pytest.raises(Unauthenticated, match="old password"):
        first.call("Users.SetPassword", {"old_password": "wrong-one-here", "new_password": "fresh-meadow-lark-55"})
    first.call("Users.SetPassword", {"old_password": PASSWORD, "new_password": "fresh-meadow-lark-55"})
    assert first.call("Auth.WhoAmI")["username"] == "ann"  # the session that changed it lives on
    with pytest.raises(Unauthenticated):
        second.call("System.Status")
    with pytest.raises(PermissionDenied, match="users.admin"):
        first.call("Users.SetPassword", {"username": "chief", "new_password": "fresh-meadow-lark-56"})
    login(secured, "ann", "fresh-meadow-lark-55").close()
    first.close()
    second.close()


def test_login_attempts_are_rate_limited_per_peer(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth="mfa_required_roles = []\nlogin_attempts_per_minute = 3\n")
    try:
        with Client(d.socket) as c:
            for _ in range(3):
                with pytest.raises(Unauthenticated):
                    c.call("Auth.Login", {"username": "ghost", "password": "whatever-it-is"})
            with pytest.raises(ResourceExhausted, match="at most 3 a minute"):
                c.call("Auth.Login", {"username": "ghost", "password": "whatever-it-is"})
    finally:
        assert d.stop() == 0


def test_anonymous_viewer_reads_but_cannot_change(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth=NO_MFA + "anonymous_viewer = true\n")
    try:
        bootstrap_admin(d)
        with Client(d.socket) as c:
            assert c.call("Sites.List") == {"sites": []}
            with pytest.raises(Unauthenticated):
                c.call("Sites.Create", {"name": "x"})
            with pytest.raises(ScadaError):
                c.call("Users.List")
    finally:
        assert d.stop() == 0


def test_cli_first_admin_shows_mfa_enrolment_then_manages_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = start_daemon(tmp_path / "h", auth="login_attempts_per_minute = 1000\n")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("SCADA_TOKEN", raising=False)
    sock = ["--socket", str(d.socket)]
    try:
        r = runner.invoke(app, [*sock, "user", "add", "chief", "--admin", "--password-stdin"], input=PASSWORD + "\n")
        assert r.exit_code == 0, r.output
        assert "scan this with an authenticator app" in r.stdout and "recovery codes" in r.stdout
        secret = next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("secret:"))
        assert "█" in r.stdout or "▀" in r.stdout or "▄" in r.stdout  # the QR code, in text blocks
        r = runner.invoke(app, [*sock, "login", "chief", "--password-stdin", "--totp", pyotp.TOTP(secret).now()],
                          input=PASSWORD + "\n")  # fmt: skip
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, [*sock, "user", "add", "olga", "-r", "operator", "--password-stdin"],
                          input="steady-copper-kettle-8\n")  # fmt: skip
        assert r.exit_code == 0 and "recovery codes" not in r.stdout  # operators need no MFA by default
        assert runner.invoke(app, [*sock, "user", "role", "grant", "olga", "engineer"]).exit_code == 0
        users = json.loads(runner.invoke(app, [*sock, "--json", "user", "list"]).stdout)
        assert {u["username"]: u["roles"] for u in users} == {"chief": ["admin"], "olga": ["engineer", "operator"]}
        assert runner.invoke(app, [*sock, "role", "revoke", "olga", "operator"]).exit_code == 0
        r = runner.invoke(app, [*sock, "user", "disable", "chief"])
        assert r.exit_code == 1 and "last enabled administrator" in r.stderr
        assert runner.invoke(app, [*sock, "audit", "verify"]).exit_code == 0
    finally:
        assert d.stop() == 0


def test_api_token_named_like_a_user_cannot_act_as_that_user(secured: RunningDaemon) -> None:
    with login(secured, "chief") as admin:
        admin.call("Users.Create", {"username": "alice", "password": PASSWORD, "roles": ["viewer"]})
        token = admin.call("Tokens.Create", {"name": "alice"})["token"]
    with Client(secured.socket, token=token) as c:
        me = c.call("Auth.WhoAmI")
        assert me["username"] == "token:alice" and me["kind"] == "token"
        with pytest.raises(PermissionDenied, match="own user account"):
            c.call("Users.SetPassword", {"new_password": "taken-over-account-1"})
        with pytest.raises(PermissionDenied, match="own user account"):
            c.call("Users.SetPassword", {"username": "alice", "new_password": "taken-over-account-1"})
    login(secured, "alice").close()  # the password is unchanged


def test_schema_behind_only_the_owner_may_migrate_and_the_chain_stays_whole(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h", auth=NO_MFA, extra="[store]\nauto_migrate = false\n")
    try:
        with Client(d.socket) as c:
            assert c.call("Auth.WhoAmI")["kind"] == "maintenance"
            with pytest.raises(FailedPrecondition, match="scadactl db migrate"):
                c.call("Sites.Create", {"name": "early"})  # refused, and not chained from nowhere
            assert c.call("Db.Migrate")["current_version"] >= 2
            assert c.call("Auth.WhoAmI")["kind"] == "bootstrap"  # users are readable now: no admin yet
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
        with login(d, "chief") as admin:
            assert admin.call("Audit.Verify")["ok"] is True
            methods = [r["method"] for r in admin.call("Audit.List")["records"]]
            assert methods[:2] == ["Db.Migrate", "Users.Create"]
    finally:
        assert d.stop() == 0


def test_unix_identity_map_by_user_and_by_group(tmp_path: Path) -> None:
    import grp

    me = _me()
    group = grp.getgrgid(os.getgid()).gr_name
    # By explicit user table.
    d = start_daemon(tmp_path / "a", auth=NO_MFA + f'unix_identity = "map"\n[auth.unix_users]\n{me} = "tech-ann"\n')
    try:
        bootstrap_admin(d)
        with login(d, "chief") as admin:
            admin.call("Users.Create", {"username": "tech-ann", "password": PASSWORD, "roles": ["technician"]})
        with Client(d.socket) as c:
            who = c.call("Auth.WhoAmI")
            assert (who["username"], who["kind"], who["unix_user"]) == ("tech-ann", "unix", me)
            c.call("Sites.List")
            with pytest.raises(PermissionDenied):
                c.call("Users.List")
    finally:
        assert d.stop() == 0
    # By group membership (our primary group), when no user entry matches.
    d = start_daemon(tmp_path / "b", auth=NO_MFA + f'unix_identity = "map"\n[auth.unix_groups]\n{group} = "ops"\n')
    try:
        bootstrap_admin(d)
        with login(d, "chief") as admin:
            admin.call("Users.Create", {"username": "ops", "password": PASSWORD, "roles": ["operator"]})
            admin.call("Sites.Create", {"name": "mapped"})
            token = admin.token
        with Client(d.socket) as c:
            assert c.call("Auth.WhoAmI")["username"] == "ops"
        records = Client(d.socket, token=token).call("Audit.List", {"user": "chief"})["records"]
        assert all(r["unix_user"] == me for r in records)  # both identities in the trail
    finally:
        assert d.stop() == 0
