"""What the benchmark scripts share: a real scadad in a temporary home."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scadad.api.client import Client, DaemonUnreachable


def start_daemon(home: Path, extra: str, ready: Callable[[Client], bool], timeout: float = 30.0) -> tuple[
    subprocess.Popen[bytes], Path
]:  # fmt: skip
    """Start scadad on a fresh SQLite store under ``home`` with ``extra`` TOML appended to
    the config; return once ``ready(client)`` holds (or raise with the daemon's log)."""
    sock = home / "scadad.sock"
    cfg = home / "scadad.toml"
    cfg.write_text(
        f'[paths]\ndata_dir = "{home / "data"}"\n[api]\nsocket = "{sock}"\n'
        f'[auth]\nlocal_admin = true\n[log]\nlevel = "warning"\n{extra}'
    )
    log = open(home / "scadad.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scadad", "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"scadad exited {proc.returncode}: {(home / 'scadad.log').read_text()[-2000:]}")
        try:
            with Client(sock, timeout=2) as c:
                c.connect()
                if ready(c):
                    return proc, sock
        except (DaemonUnreachable, OSError):
            pass
        except Exception:  # noqa: BLE001 - up, but not ready yet (e.g. a tag not read yet)
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("scadad did not come up")
        time.sleep(0.1)
