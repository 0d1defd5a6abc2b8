"""Where `scadactl login` keeps its session token between commands.

The OS keyring when one is available (keyring picks the backend); otherwise a file
readable only by you under $XDG_STATE_HOME/scada/. One token per daemon socket, so
logins to two daemons on one host do not overwrite each other. $SCADA_TOKEN, when
set, wins over both (for scripts).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SERVICE = "scada"
TOKEN_ENV = "SCADA_TOKEN"


def _key(socket: Path) -> str:
    return f"token:{socket.resolve() if socket.exists() else socket}"


def _file(socket: Path) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    digest = hashlib.sha256(_key(socket).encode()).hexdigest()[:16]
    return Path(base) / "scada" / f"session-{digest}.token"


def _keyring():  # type: ignore[no-untyped-def]
    """The keyring module if a real backend is available, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or "fail" in type(backend).__module__:
        return None
    return keyring


def load(socket: Path) -> str | None:
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env
    kr = _keyring()
    if kr is not None:
        try:
            token = kr.get_password(SERVICE, _key(socket))
        except Exception:  # noqa: BLE001 - a locked or broken keyring must not stop the CLI
            token = None
        if token:
            return token
    path = _file(socket)
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def save(socket: Path, token: str) -> str:
    """Store the token; returns a description of where, for the user."""
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(SERVICE, _key(socket), token)
            return "the system keyring"
        except Exception:  # noqa: BLE001
            pass
    path = _file(socket)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return f"{path} (mode 0600; no keyring backend is available)"


def forget(socket: Path) -> None:
    kr = _keyring()
    if kr is not None:
        try:
            kr.delete_password(SERVICE, _key(socket))
        except Exception:  # noqa: BLE001 - nothing stored there
            pass
    _file(socket).unlink(missing_ok=True)
