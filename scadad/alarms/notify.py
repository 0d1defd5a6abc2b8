"""Alarm e-mail: who gets mail for which alarm, digests during a flood, escalation.

How the alarm engine uses it
----------------------------
    notifier = Notifier(settings.smtp, settings.alarms.email, site=..., tz=...,
                        journal=journal_row, is_unacked=is_unacked)  # see alarms/manager.py
    task = asyncio.create_task(notifier.run())   # the background task
    ...
    notifier.offer([Notice(...), ...])           # on the loop: never blocks, never raises
    ...
    await notifier.close()                       # one last bounded attempt; run() returns

What happens to a notice
------------------------
* Routing: an alarm goes to every `[[alarms.email.routes]]` entry whose priorities hold
  its priority and whose area patterns match its area (`compile_pattern`: '*' one
  segment, '**' any depth; the empty area is matched by '**' only). Each address gets
  the alarm once, however many routes name it. Only activations are mailed.
* Batching, per recipient: the first alarm goes out at once; alarms arriving within
  `digest_window_s` after a mail to that address wait and go out together as one digest
  when the window ends. `max_mails_per_hour` per address holds mails back beyond the
  cap; what is held keeps accumulating into the next digest, nothing is dropped for it.
  Addresses whose queues are due at the same moment with the same alarms share one mail.
* Escalation: a critical alarm still unacknowledged (`is_unacked`) at `ts +
  escalate_after_s` is mailed to `escalate_to`, batched the same way. One watch per
  rule: a re-activation while the first is watched does not start a second.
* Sending: all SMTP I/O runs on a small thread pool with `smtp.timeout_s`, one
  connection per batch of due mails, so a dead or hanging relay costs the event loop
  nothing. A failed mail is retried after each of `retry_delays_s`, then given up.
  Every alarm in a mail is journalled once: "notified" ("to a@x, b@y") or, when the
  mail is given up, "notify_failed" (the SMTP error).
* Memory: at most `max_pending` (notice, recipient) pairs wait at any time, however long
  the relay hangs; beyond that offered alarms are dropped, counted in `status()` and
  logged at most every few seconds.

Time: waiting and scheduling use the monotonic clock, like asyncio's loop, never
`now_us`, so a fixed daemon clock (`[simulator] fixed_clock`) does not stall digests or
escalations. `now_us` only tells how old a notice already is when it is offered (so an
escalation falls due at its ts + escalate_after_s) and dates the mails.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import smtplib
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from scadad import clock
from scadad.config import AlarmEmailSettings, SmtpSettings
from scadad.tags.table import compile_pattern

log = logging.getLogger("scadad.alarms.notify")

KEYRING_SERVICE = "scadad-smtp"
# (notice, recipient) pairs held at most: ~a few hundred bytes each, whatever the relay does.
MAX_PENDING = 10_000
PRIORITIES = ("critical", "high", "medium", "low")  # most urgent first
ALARM = "alarm"
ESCALATION = "escalation"

_RANK = {p: i for i, p in enumerate(PRIORITIES)}
_HOUR_S = 3600.0
_DROP_LOG_INTERVAL_S = 10.0
_ROUTE_CACHE_MAX = 4096
_SUBJECT_MAX = 250
# A timer never fires sooner than this, so a clock edge cannot make run() spin.
_MIN_SLEEP_S = 0.001


@dataclass(slots=True, frozen=True)
class Notice:
    """One annunciated alarm activation, as the engine offers it for e-mail."""

    rule_id: int
    name: str  # "<tag>:<kind>"
    tag: str
    kind: str
    priority: str  # critical|high|medium|low
    area: str  # e.g. "sim/pm5xxx" or ""
    event: str  # "activated"
    state: str
    message: str  # rendered alarm text
    value: float | str | None
    ts_us: int  # UTC µs since the epoch


# ---------------------------------------------------------------------- rendering (pure)


def render_mail(
    kind: str,
    notices: Sequence[Notice],
    *,
    prefix: str,
    site: str,
    tz: ZoneInfo,
    escalate_after_s: float = 0.0,
) -> tuple[str, str]:
    """Subject and plain-text body of one mail: a single alarm, a digest, or an escalation.

    A digest lists its alarms most urgent first and by time within a priority, in the
    site's time zone.
    """
    n = len(notices)
    first = notices[0]
    pre = f"{prefix} " if prefix else ""
    if kind == ESCALATION:
        waited = _duration(escalate_after_s)
        if n == 1:
            subject = (
                f"{pre}ESCALATION {first.priority.upper()} {first.name} unacknowledged for {waited}: {first.message}"
            )
            body = f"A critical alarm at {site} is still unacknowledged {waited} after it was raised.\n\n"
            body += _details(first, site, tz)
        else:
            subject = f"{pre}ESCALATION: {n} critical alarms unacknowledged for {waited} at {site}"
            body = f"{n} critical alarms at {site} are still unacknowledged {waited} after they were raised.\n\n"
            body += _listing(notices, tz)
    elif n == 1:
        subject = f"{pre}{first.priority.upper()} {first.name}: {first.message}"
        body = f"{first.priority.upper()} alarm at {site}.\n\n" + _details(first, site, tz)
    else:
        counts = {p: 0 for p in PRIORITIES}
        for x in notices:
            counts[x.priority] = counts.get(x.priority, 0) + 1
        summary = ", ".join(f"{c} {p}" for p, c in counts.items() if c)
        times = [x.ts_us for x in notices]
        subject = f"{pre}{n} alarms ({counts['critical']} critical) at {site}"
        body = (
            f"{n} alarms at {site} ({summary}) between {_when(min(times), tz)} and {_when(max(times), tz)}.\n"
            "Most urgent first, then by time.\n\n"
        ) + _listing(notices, tz)
    return _one_line(subject), body


def _details(x: Notice, site: str, tz: ZoneInfo) -> str:
    rows = [
        ("Site", site),
        ("Time", _when(x.ts_us, tz)),
        ("Alarm", x.name),
        ("Message", x.message),
        ("Value", _value(x.value)),
        ("Priority", x.priority),
        ("Tag", x.tag),
        ("Kind", x.kind),
        ("Area", x.area or "-"),
        ("State", x.state),
        ("Rule", str(x.rule_id)),
    ]
    return "".join(f"{k + ':':<10}{v}\n" for k, v in rows)


def _listing(notices: Sequence[Notice], tz: ZoneInfo) -> str:
    lines: list[str] = []
    current = None
    for x in sorted(notices, key=lambda x: (_RANK.get(x.priority, len(_RANK)), x.ts_us, x.rule_id)):
        if x.priority != current:
            current = x.priority
            if lines:
                lines.append("")
            lines.append(x.priority.upper())
        area = f", area {x.area}" if x.area else ""
        lines.append(f"  {_when(x.ts_us, tz)}  {x.name}  {x.message}  (value {_value(x.value)}{area})")
    return "\n".join(lines) + "\n"


def _when(ts_us: int, tz: ZoneInfo) -> str:
    return clock.from_us(ts_us).astimezone(tz).isoformat(timespec="seconds")


def _value(v: float | str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.3g} s"
    if s < _HOUR_S:
        return f"{s / 60:.3g} min"
    return f"{s / _HOUR_S:.3g} h"


def _one_line(text: str) -> str:
    # Alarm messages are operator-edited text: a newline in a header is refused by the
    # email package, and a very long subject only gets cut by the reader's client anyway.
    text = " ".join(text.split())
    return text if len(text) <= _SUBJECT_MAX else text[: _SUBJECT_MAX - 1] + "…"


# ---------------------------------------------------------------------- credentials


def smtp_password(smtp: SmtpSettings) -> str:
    """The SMTP password: the config's, else the OS keyring's ("scadad-smtp", username).

    The keyring is asked only when the config has none and a username is set. Any keyring
    failure (no backend, locked, D-Bus gone) means no password, with a warning: mail then
    goes without AUTH and a relay that needs it says so in the journal. Blocking (the
    keyring may talk to D-Bus): call it off the event loop.
    """
    if smtp.password or not smtp.username:
        return smtp.password
    try:
        # Imported here, the only place that uses it: choosing a backend probes the system.
        import keyring

        password = keyring.get_password(KEYRING_SERVICE, smtp.username)
    except Exception as exc:
        log.warning(
            "SMTP password: keyring lookup failed; mail goes without AUTH",
            extra={"fields": {"service": KEYRING_SERVICE, "username": smtp.username, "error": _describe(exc)}},
        )
        return ""
    if not password:
        log.warning(
            "SMTP password: none in [smtp] or the keyring; mail goes without AUTH",
            extra={"fields": {"service": KEYRING_SERVICE, "username": smtp.username}},
        )
    return password or ""


# ---------------------------------------------------------------------- the notifier


@dataclass(slots=True, eq=False)
class _Channel:
    """One address's queue for one kind of mail (alarms or escalations)."""

    address: str
    kind: str
    pending: list[Notice] = field(default_factory=list)
    last_mail: float = -math.inf  # monotonic time of the last mail made from this queue
    # The mail made from this queue that has not been tried yet (behind a send that hangs).
    # While there is one, new alarms join the queue instead of making mail after mail that
    # only piles up and burns the hourly cap before anything could be sent.
    unsent: _Mail | None = None


@dataclass(slots=True, eq=False)
class _Mail:
    kind: str
    to: tuple[str, ...]
    notices: list[Notice]
    refs: int  # (notice, recipient) pairs it holds against max_pending
    channels: tuple[_Channel, ...]  # the queues it was made from
    dated_us: int
    message_id: str  # kept across retries, so a duplicate delivery can be recognised
    attempts: int = 0
    next_try: float = 0.0
    done: bool = False


class Notifier:
    """E-mail for annunciated alarm activations: routing, digests, rate cap, escalation.

    `journal(rule_id, event, detail)` and `is_unacked(rule_id)` are called on the event
    loop thread; exceptions from either are logged, never propagated. `ssl_context`
    (default: the system's trust store) is for STARTTLS and SSL; `max_pending` caps the
    (notice, recipient) pairs held in memory. See the module docstring for the rules.
    """

    def __init__(
        self,
        smtp: SmtpSettings,
        email: AlarmEmailSettings,
        *,
        site: str,
        tz: ZoneInfo,
        journal: Callable[[int, str, str], None],
        is_unacked: Callable[[int], bool],
        now_us: Callable[[], int] = clock.now_us,
        ssl_context: ssl.SSLContext | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.smtp = smtp
        self.email = email
        self.site = site
        self.tz = tz
        self._journal = journal
        self._is_unacked = is_unacked
        self._now_us = now_us
        self._ssl_context = ssl_context
        self._max_pending = max_pending
        self._envelope_from = parseaddr(smtp.from_address)[1] or smtp.from_address
        self._msgid_domain = self._envelope_from.rpartition("@")[2] or "localhost"
        self._routes = [
            ([compile_pattern(p) for p in r.areas], "**" in r.areas, frozenset(r.priorities), _unique(r.to))
            for r in email.routes
        ]
        self._escalate_to = _unique(email.escalate_to)
        self._escalating = email.escalate_after_s > 0 and bool(self._escalate_to)
        self._enabled = bool(smtp.host) and email.enabled and (any(r.to for r in email.routes) or self._escalating)
        self._route_cache: dict[tuple[str, str], tuple[str, ...]] = {}
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._mailed_at: dict[str, deque[float]] = {}  # per address, for max_mails_per_hour
        self._outbox: list[_Mail] = []
        self._in_flight: dict[asyncio.Future[list[tuple[bool, str]]], list[_Mail]] = {}
        self._watch: dict[int, Notice] = {}  # rule_id -> the critical activation being watched
        self._watch_due: list[tuple[float, int]] = []  # heap of (monotonic due, rule_id)
        self._pending = 0
        self._sent = self._failed = self._digests = self._escalations = 0
        self._dropped = self._unwatched = self._attempts = 0
        self._last_error: str | None = None
        self._last_error_us: int | None = None
        self._next_drop_log = 0.0
        self._closing = False
        self._wake = asyncio.Event()
        # Two workers: the regular sender, plus close()'s last attempt beside a send that hangs.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alarm-mail")
        self._password: str | None = None
        self._password_lock = threading.Lock()
        self._default_context: ssl.SSLContext | None = None

    @property
    def enabled(self) -> bool:
        """True when mail can go anywhere: [smtp] host set, e-mail enabled, a recipient configured."""
        return self._enabled

    def recipients(self, area: str, priority: str) -> tuple[str, ...]:
        """The addresses an alarm of this area and priority is mailed to (routes only)."""
        key = (area, priority)
        hit = self._route_cache.get(key)
        if hit is None:
            found: dict[str, None] = {}
            for matchers, any_depth, priorities, to in self._routes:
                if priority in priorities and (any_depth if area == "" else any(m(area) for m in matchers)):
                    found.update(dict.fromkeys(to))
            if len(self._route_cache) >= _ROUTE_CACHE_MAX:
                self._route_cache.clear()
            hit = self._route_cache[key] = tuple(found)
        return hit

    # ------------------------------------------------------------------ the loop side

    def offer(self, notices: Sequence[Notice]) -> None:
        """Queue alarm activations for mail and escalation watch; never blocks, never raises.

        For the event loop thread. Cost is O(len(notices)): the mail itself is made and
        sent later by `run`.
        """
        if not self._enabled or self._closing or not notices:
            return
        try:
            self._accept(notices)
        except Exception:
            log.exception("alarm notifier: offer failed; these alarms are not mailed")

    def _accept(self, notices: Sequence[Notice]) -> None:
        now = time.monotonic()
        now_us = self._now_us()
        queued = False
        for n in notices:
            if n.event != "activated":
                continue
            to = self.recipients(n.area, n.priority)
            if to:
                if self._pending + len(to) > self._max_pending:
                    self._drop(n)
                else:
                    for address in to:
                        self._channel(address, ALARM).pending.append(n)
                    self._pending += len(to)
                    queued = True
            if self._escalating and n.priority == "critical" and n.rule_id not in self._watch:
                if len(self._watch) >= self._max_pending:
                    self._drop(n, escalation=True)
                    continue
                age_s = max(0.0, (now_us - n.ts_us) / 1e6)
                self._watch[n.rule_id] = n
                heapq.heappush(self._watch_due, (now + max(0.0, self.email.escalate_after_s - age_s), n.rule_id))
                queued = True
        if queued:
            self._wake.set()

    def _drop(self, n: Notice, *, escalation: bool = False) -> None:
        if escalation:
            self._unwatched += 1
        else:
            self._dropped += 1
        now = time.monotonic()
        if now >= self._next_drop_log:
            # One line per interval: a line per dropped alarm would flood the log in the flood.
            self._next_drop_log = now + _DROP_LOG_INTERVAL_S
            log.warning(
                "alarm mail queue full: alarms not mailed or not watched for escalation",
                extra={
                    "fields": {
                        "dropped_total": self._dropped,
                        "escalations_dropped_total": self._unwatched,
                        "max_pending": self._max_pending,
                        "rule_id": n.rule_id,
                    }
                },
            )

    def _channel(self, address: str, kind: str) -> _Channel:
        ch = self._channels.get((address, kind))
        if ch is None:
            ch = self._channels[(address, kind)] = _Channel(address, kind)
        return ch

    async def run(self) -> None:
        """The background task: make mails when due, send them, retry; returns on `close()`."""
        while not self._closing:
            now = time.monotonic()
            self._check_escalations(now)
            self._dispatch(now)
            if not self._in_flight:
                due = [m for m in self._outbox if m.next_try <= now]
                if due:
                    self._outbox = [m for m in self._outbox if m.next_try > now]
                    self._launch(due)
            delay = self._next_due(now)
            self._wake.clear()
            if delay is None:
                await self._wake.wait()
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), max(delay, _MIN_SLEEP_S))
                except TimeoutError:
                    pass

    async def close(self) -> None:
        """Stop, then try once to send everything pending, waiting at most `smtp.timeout_s`.

        Digest windows and the hourly cap no longer hold anything back. What does not get
        through (or has no answer in time) is journalled as notify_failed; escalations not
        yet due are forgotten. `run` returns. Safe to call twice.
        """
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        if not self._enabled:
            self._executor.shutdown(wait=False)
            return
        now = time.monotonic()
        self._check_escalations(now)
        self._dispatch(now, final=True)
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self._launch(batch)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=self.smtp.timeout_s)
        for fut in list(self._in_flight):
            if fut.done():
                self._on_sent(fut)
        for batch in self._in_flight.values():
            for mail in batch:
                self._give_up(
                    mail, f"not sent before shutdown: no answer from the SMTP server within {self.smtp.timeout_s:g} s"
                )
        self._in_flight.clear()
        if self._watch:
            log.info(
                "alarm notifier closed with escalations not yet due", extra={"fields": {"watched": len(self._watch)}}
            )
        self._watch.clear()
        self._watch_due.clear()
        # A send still hanging ends at its socket timeout; nobody waits for it.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def status(self) -> dict[str, Any]:
        """Counters for System.Status.

        Mails: `sent`, `failed` (given up), `digests` and `escalations` (among those sent),
        `mails_queued` (made, not yet through), `attempts`. Alarms: `pending` ((alarm,
        recipient) pairs waiting), `dropped` (not mailed: queue full), `watching` (critical
        alarms awaiting their escalation check), `escalations_dropped`. `last_error` is the
        last failed attempt's error, `last_error_at` when (ISO-8601, UTC).
        """
        return {
            "enabled": self._enabled,
            "sent": self._sent,
            "failed": self._failed,
            "digests": self._digests,
            "escalations": self._escalations,
            "pending": self._pending,
            "mails_queued": len(self._outbox) + sum(len(b) for b in self._in_flight.values()),
            "watching": len(self._watch),
            "dropped": self._dropped,
            "escalations_dropped": self._unwatched,
            "attempts": self._attempts,
            "last_error": self._last_error,
            "last_error_at": None if self._last_error_us is None else clock.from_us(self._last_error_us).isoformat(),
        }

    def _check_escalations(self, now: float) -> None:
        while self._watch_due and self._watch_due[0][0] <= now:
            _, rule_id = heapq.heappop(self._watch_due)
            n = self._watch.pop(rule_id, None)
            if n is None:
                continue
            try:
                unacked = bool(self._is_unacked(rule_id))
            except Exception:
                # When in doubt, escalate: one mail too many beats a missed escalation.
                log.exception("alarm notifier: is_unacked failed; escalating", extra={"fields": {"rule_id": rule_id}})
                unacked = True
            if unacked:
                for address in self._escalate_to:
                    self._channel(address, ESCALATION).pending.append(n)
                self._pending += len(self._escalate_to)

    def _channel_due(self, ch: _Channel, now: float) -> float:
        due = ch.last_mail + self.email.digest_window_s
        mailed = self._mailed_at.get(ch.address)
        if mailed:
            while mailed and mailed[0] <= now - _HOUR_S:
                mailed.popleft()
            if len(mailed) >= self.email.max_mails_per_hour:
                due = max(due, mailed[0] + _HOUR_S)
        return due

    def _dispatch(self, now: float, *, final: bool = False) -> None:
        """Turn due queues into mails; queues due together with the same alarms share one."""
        groups: dict[tuple[str, tuple[int, ...]], list[_Channel]] = {}
        for ch in self._channels.values():
            if ch.pending and (final or (ch.unsent is None and self._channel_due(ch, now) <= now)):
                groups.setdefault((ch.kind, tuple(map(id, ch.pending))), []).append(ch)
        for (kind, _), chans in groups.items():
            notices = chans[0].pending
            mail = _Mail(
                kind,
                tuple(ch.address for ch in chans),
                notices,
                refs=len(notices) * len(chans),
                channels=tuple(chans),
                dated_us=self._now_us(),
                message_id=make_msgid("scadad-alarm", domain=self._msgid_domain),
                next_try=now,
            )
            for ch in chans:
                # A new list, not clear(): the mail keeps the old one while it is in flight.
                ch.pending = []
                ch.last_mail = now
                ch.unsent = mail
                self._mailed_at.setdefault(ch.address, deque()).append(now)
            self._outbox.append(mail)

    def _next_due(self, now: float) -> float | None:
        # A held queue is not timed: the end of the send it waits for wakes run().
        times = [self._channel_due(ch, now) for ch in self._channels.values() if ch.pending and ch.unsent is None]
        if self._watch_due:
            times.append(self._watch_due[0][0])
        if self._outbox and not self._in_flight:
            times.append(min(m.next_try for m in self._outbox))
        return min(times) - now if times else None

    def _launch(self, batch: list[_Mail]) -> None:
        for mail in batch:
            mail.attempts += 1
            for ch in mail.channels:
                if ch.unsent is mail:
                    ch.unsent = None
        self._attempts += len(batch)
        fut = asyncio.get_running_loop().run_in_executor(self._executor, self._deliver, batch)
        self._in_flight[fut] = batch
        fut.add_done_callback(self._on_sent)

    def _on_sent(self, fut: asyncio.Future[list[tuple[bool, str]]]) -> None:
        batch = self._in_flight.pop(fut, None)
        if batch is None:  # already settled by close()
            return
        try:
            outcomes = fut.result()
        except BaseException as exc:  # cancelled at shutdown, or a bug in _deliver
            outcomes = [(False, _describe(exc))] * len(batch)
        now = time.monotonic()
        delays = self.email.retry_delays_s
        for mail, (ok, detail) in zip(batch, outcomes, strict=True):
            if mail.done:
                continue
            if ok:
                mail.done = True
                self._pending -= mail.refs
                self._sent += 1
                self._digests += int(len(mail.notices) > 1)
                self._escalations += int(mail.kind == ESCALATION)
                log.info(
                    "alarm mail sent",
                    extra={"fields": {"kind": mail.kind, "to": list(mail.to), "alarms": len(mail.notices)}},
                )
                detail = f"escalation {detail}" if mail.kind == ESCALATION else detail
                for n in mail.notices:
                    self._note(n.rule_id, "notified", detail)
                continue
            self._last_error, self._last_error_us = detail, self._now_us()
            if self._closing or mail.attempts > len(delays):
                tries = "1 attempt" if mail.attempts == 1 else f"{mail.attempts} attempts"
                self._give_up(mail, f"{detail} (after {tries})")
            else:
                log.warning(
                    "alarm mail failed; will retry",
                    extra={"fields": {"to": list(mail.to), "attempt": mail.attempts, "error": detail}},
                )
                mail.next_try = now + delays[mail.attempts - 1]
                self._outbox.append(mail)
        self._wake.set()

    def _give_up(self, mail: _Mail, detail: str) -> None:
        if mail.done:
            return
        mail.done = True
        self._pending -= mail.refs
        self._failed += 1
        log.error(
            "alarm mail given up",
            extra={"fields": {"kind": mail.kind, "to": list(mail.to), "alarms": len(mail.notices), "error": detail}},
        )
        detail = f"escalation: {detail}" if mail.kind == ESCALATION else detail
        for n in mail.notices:
            self._note(n.rule_id, "notify_failed", detail)

    def _note(self, rule_id: int, event: str, detail: str) -> None:
        try:
            self._journal(rule_id, event, detail)
        except Exception:
            log.exception("alarm notifier: journal callback failed", extra={"fields": {"rule_id": rule_id}})

    # ------------------------------------------------------------------ the worker thread

    def _deliver(self, mails: list[_Mail]) -> list[tuple[bool, str]]:
        """Send `mails` over one connection: (True, "to ...") or (False, error) each. Never raises."""
        try:
            conn = self._connect()
        except Exception as exc:
            return [(False, self._where(exc))] * len(mails)
        out: list[tuple[bool, str]] = []
        broken: str | None = None
        try:
            for mail in mails:
                if broken is not None:
                    out.append((False, broken))
                    continue
                try:
                    refused = conn.send_message(self._message(mail), self._envelope_from, list(mail.to))
                except smtplib.SMTPServerDisconnected as exc:
                    broken = self._where(exc)
                    out.append((False, broken))
                except smtplib.SMTPException as exc:  # this mail refused; the session goes on
                    out.append((False, self._where(exc)))
                except OSError as exc:  # timeout, reset: the connection is gone
                    broken = self._where(exc)
                    out.append((False, broken))
                except Exception as exc:
                    log.exception("alarm notifier: cannot build or send a mail")
                    out.append((False, _describe(exc)))
                else:
                    detail = "to " + ", ".join(a for a in mail.to if a not in refused)
                    if refused:
                        detail += (
                            " (refused: " + "; ".join(f"{a} {_describe_refusal(r)}" for a, r in refused.items()) + ")"
                        )
                    out.append((True, detail))
        finally:
            try:
                conn.quit()
            except Exception:
                conn.close()
        return out

    def _connect(self) -> smtplib.SMTP:
        s = self.smtp
        context = self._ssl_context or self._system_context()
        conn: smtplib.SMTP
        if s.security == "ssl":
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context)
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.security == "starttls":
                # No fallback to plain text when the relay lacks STARTTLS: the password and
                # the plant's alarms would cross the network in clear.
                conn.starttls(context=context)
            if s.username:
                password = self._smtp_password()
                if password:
                    conn.login(s.username, password)
        except BaseException:
            conn.close()
            raise
        return conn

    def _system_context(self) -> ssl.SSLContext:
        # Loading the system trust store takes a while: once, and on the worker thread.
        if self._default_context is None:
            self._default_context = ssl.create_default_context()
        return self._default_context

    def _smtp_password(self) -> str:
        # Asked once per notifier: a keyring that fails would otherwise warn on every mail.
        with self._password_lock:
            if self._password is None:
                self._password = smtp_password(self.smtp)
            return self._password

    def _message(self, mail: _Mail) -> EmailMessage:
        subject, body = render_mail(
            mail.kind,
            mail.notices,
            prefix=self.email.subject_prefix,
            site=self.site,
            tz=self.tz,
            escalate_after_s=self.email.escalate_after_s,
        )
        msg = EmailMessage()
        msg["From"] = self.smtp.from_address
        msg["To"] = ", ".join(mail.to)
        msg["Subject"] = subject
        msg["Date"] = format_datetime(clock.from_us(mail.dated_us).astimezone(self.tz))
        msg["Message-ID"] = mail.message_id
        # RFC 3834: vacation responders must not answer the alarm system.
        msg["Auto-Submitted"] = "auto-generated"
        if mail.kind == ESCALATION or any(n.priority == "critical" for n in mail.notices):
            msg["Importance"] = "high"
        # Quoted-printable keeps the mail 7-bit clean (°C, µ, names) for relays without 8BITMIME.
        msg.set_content(body, cte="quoted-printable")
        return msg

    def _where(self, exc: BaseException) -> str:
        where = f"{self.smtp.host}:{self.smtp.port}"
        # smtplib reports a read timeout as a disconnect; say what happened instead.
        if isinstance(exc, TimeoutError) or (
            isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError)
        ):
            return f"{where}: no answer within {self.smtp.timeout_s:g} s (timed out)"
        return f"{where}: {_describe(exc)}"


def _unique(addresses: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip() for a in addresses if a.strip()))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "all recipients refused: " + "; ".join(f"{a} {_describe_refusal(r)}" for a, r in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"SMTP {exc.smtp_code} {' '.join(msg.split())}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe_refusal(reply: tuple[int, bytes | str]) -> str:
    code, msg = reply
    text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
    return f"{code} {' '.join(text.split())}"
