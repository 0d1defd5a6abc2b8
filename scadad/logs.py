"""Structured log lines: `key=value` for a terminal, one JSON object per line for journald
or a log shipper. Call sites pass fields as `extra={"fields": {...}}`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), f"{record.levelname:<7}", f"{record.name}:", record.getMessage()]
        for key, value in _fields(record).items():
            text = str(value)
            parts.append(f"{key}={json.dumps(text) if (' ' in text or not text) else text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(level: str, fmt: str) -> None:
    """Configure the root logger; safe to call again (SIGHUP) to change level or format."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_scada", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._scada = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root.setLevel(level.upper())
    # The protocol libraries narrate every connect, publish and request at INFO; the
    # daemon logs what matters (device state changes) itself. Their warnings still show.
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("asyncua", "pymodbus"):
        logging.getLogger(name).setLevel(quiet)
