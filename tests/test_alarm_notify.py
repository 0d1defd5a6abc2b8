"""Alarm e-mail against a real SMTP server on loopback (aiosmtpd), and relays that fail.

Every mail here crosses a real socket: aiosmtpd records the envelopes it accepted, a port
that refuses connections stands for a relay that is down, and a listening socket that
never answers stands for one that hangs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import keyring
import keyring.backend
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from scadad import clock
from scadad.alarms.notify import ESCALATION, Notice, Notifier, render_mail
from scadad.config import AlarmEmailSettings, AlarmRoute, SmtpSettings

SITE = "plant-north"
TZ = ZoneInfo("Europe/Zurich")
OPS = "ops@example.com"
SHIFT = "shift@example.com"
BOSS = "boss@example.com"


# ---------------------------------------------------------------------- the SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    msg: EmailMessage
    tls: bool
    at: float  # monotonic

    @property
    def subject(self) -> str:
        # strip(): a subject folded whole onto a continuation line keeps the fold's space
        # in Python's parser (mail clients drop it).
        return str(self.msg["Subject"]).strip()

    @property
    def body(self) -> str:
        return self.msg.get_body(("plain",)).get_content()


class Mailbox:
    """aiosmtpd handler that keeps every accepted mail."""

    def __init__(self) -> None:
        self.mails: list[Received] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.mails.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), msg, session.ssl is not None, time.monotonic())
            )
        return "250 OK"

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.mails)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.snapshot() if address in m.rcpt_tos]


class _AnyPortController(Controller):
    # Bind port 0 and learn the port from the socket: no guessing a free port, no race.
    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def smtp_server(**smtp_kwargs) -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    ctl = _AnyPortController(box, hostname="127.0.0.1", port=0, **smtp_kwargs)
    ctl.start()
    try:
        yield box, ctl.port
    finally:
        ctl.stop()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port that refuses connections: bound (so nobody else takes it), never listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


@contextmanager
def hanging_port() -> Iterator[int]:
    """A port that accepts TCP (the kernel's backlog does) and never sends the SMTP banner."""
    s = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------------- helpers


class Journal:
    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    def __call__(self, rule_id: int, event: str, detail: str) -> None:
        self.rows.append((rule_id, event, detail))

    def rules(self, event: str) -> set[int]:
        return {r for r, e, _ in self.rows if e == event}


def notice(
    rule_id: int,
    priority: str = "critical",
    area: str = "sim/pm5xxx",
    *,
    name: str | None = None,
    message: str | None = None,
    value: float | str | None = 97.0,
    ts_us: int | None = None,
) -> Notice:
    tag = f"sim/tank/t{rule_id:04d}"
    return Notice(
        rule_id=rule_id,
        name=name or f"{tag}:hihi",
        tag=tag,
        kind="hihi",
        priority=priority,
        area=area,
        event="activated",
        state="unack_active",
        message=message or f"Tank {rule_id:04d} level very high",
        value=value,
        ts_us=clock.now_us() if ts_us is None else ts_us,
    )


def smtp_settings(port: int, **kw) -> SmtpSettings:
    return SmtpSettings(**{"host": "127.0.0.1", "port": port, "security": "none", "timeout_s": 2.0, **kw})


def email_settings(to: list[str] | None = None, **kw) -> AlarmEmailSettings:
    fields = {
        "routes": [AlarmRoute(areas=["**"], priorities=["critical", "high"], to=to or [OPS])],
        "escalate_after_s": 0.0,
        "digest_window_s": 0.5,
        "retry_delays_s": [0.05],
        **kw,
    }
    return AlarmEmailSettings(**fields)


def make_notifier(
    smtp: SmtpSettings,
    mail: AlarmEmailSettings,
    journal: Journal,
    is_unacked: Callable[[int], bool] = lambda rule_id: True,
    **kw,
) -> Notifier:
    return Notifier(smtp, mail, site=SITE, tz=TZ, journal=journal, is_unacked=is_unacked, **kw)


@asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        await notifier.close()
        await asyncio.wait_for(task, 5)


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Ticker:
    """Ticks every 10 ms on the loop and keeps the longest gap: a blocked loop shows here."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


# ---------------------------------------------------------------------- 1. one alarm, one mail


def test_critical_alarm_sends_one_mail_with_subject_and_body() -> None:
    ts = clock.to_us(dt.datetime(2024, 5, 1, 12, 3, 7, tzinfo=dt.UTC))
    alarm = Notice(
        rule_id=7,
        name="sim/tank/level:hihi",
        tag="sim/tank/level",
        kind="hihi",
        priority="critical",
        area="sim/pm5xxx",
        event="activated",
        state="unack_active",
        message="Tank level very high: 97 % > 95 %",
        value=97.0,
        ts_us=ts,
    )
    journal = Journal()

    async def main(port: int, box: Mailbox) -> None:
        n = make_notifier(
            smtp_settings(port, from_address="SCADA <scadad@plant.example>"), email_settings([OPS, SHIFT]), journal
        )
        assert n.enabled
        async with running(n):
            n.offer([alarm])
            await until(lambda: journal.rows, what="the journal entry")
        assert n.status()["sent"] == 1 and n.status()["pending"] == 0 and n.status()["digests"] == 0

    with smtp_server() as (box, port):
        asyncio.run(main(port, box))
        mails = box.snapshot()
    assert len(mails) == 1  # one mail for both addresses of the route
    m = mails[0]
    assert m.mail_from == "scadad@plant.example" and m.rcpt_tos == [OPS, SHIFT]
    assert m.subject == "[SCADA] CRITICAL sim/tank/level:hihi: Tank level very high: 97 % > 95 %"
    assert m.msg["To"] == f"{OPS}, {SHIFT}" and m.msg["Auto-Submitted"] == "auto-generated"
    body = m.body
    for text in (SITE, "2024-05-01T14:03:07+02:00", "sim/tank/level", "hihi", "critical", "sim/pm5xxx", "97"):
        assert text in body
    assert "Tank level very high: 97 % > 95 %" in body
    assert journal.rows == [(7, "notified", f"to {OPS}, {SHIFT}")]


# ---------------------------------------------------------------------- 2. a flood becomes digests


def test_flood_of_200_alarms_goes_out_as_few_digests_listing_all() -> None:
    window = 0.5
    routes = [
        AlarmRoute(areas=["**"], priorities=["critical", "high"], to=[OPS, SHIFT]),
        AlarmRoute(areas=["sim/**"], priorities=["critical"], to=[BOSS]),
    ]
    alarms = [
        notice(i, "critical" if i % 2 else "high", "sim/a" if i % 4 < 2 else "plant/b", name=f"flood/t{i:03d}:hi")
        for i in range(200)
    ]
    boss_names = {a.name for a in alarms if a.priority == "critical" and a.area.startswith("sim/")}
    all_names = {a.name for a in alarms}
    journal = Journal()
    name_re = re.compile(r"flood/t\d{3}:hi")

    def names_in(mails: list[Received]) -> list[str]:
        return [x for m in mails for x in name_re.findall(m.body)]

    async def main(port: int, box: Mailbox) -> float:
        n = make_notifier(smtp_settings(port), email_settings(routes=routes, digest_window_s=window), journal)
        async with running(n):
            start = time.monotonic()
            for a in alarms:  # 200 alarms over about 2.5 s, five digest windows
                n.offer([a])
                await asyncio.sleep(0.0125)
            await until(
                lambda: set(names_in(box.to(OPS))) == all_names and set(names_in(box.to(BOSS))) == boss_names,
                what="every alarm in some mail",
            )
            elapsed = max(m.at for m in box.snapshot()) - start
            assert n.status()["pending"] == 0 and n.status()["digests"] >= 2
        return elapsed

    with smtp_server() as (box, port):
        elapsed = asyncio.run(main(port, box))
        mails = box.snapshot()
    # Mails to one address are at least a window apart, so this many fit in the time taken.
    bound = 2 + math.ceil(elapsed / window)
    for address, expected in ((OPS, all_names), (SHIFT, all_names), (BOSS, boss_names)):
        got = [m for m in mails if address in m.rcpt_tos]
        assert 2 <= len(got) <= bound, (address, len(got), elapsed)
        listed = names_in(got)
        assert sorted(listed) == sorted(expected)  # each alarm exactly once
        assert got[0].subject.startswith("[SCADA] HIGH flood/t000:hi") or got[0].subject.startswith("[SCADA] CRITICAL")
        assert all(re.fullmatch(r"\[SCADA\] \d+ alarms \(\d+ critical\) at plant-north", m.subject) for m in got[1:])
    assert len(mails) < 30  # not one mail per alarm
    assert journal.rules("notified") == {a.rule_id for a in alarms}
    assert not journal.rules("notify_failed")


def test_digest_lists_most_urgent_first_then_by_time() -> None:
    t0 = clock.to_us(dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC))
    alarms = [
        notice(1, "low", ts_us=t0),
        notice(2, "critical", ts_us=t0 + 5_000_000),
        notice(3, "high", ts_us=t0 + 1_000_000),
        notice(4, "critical", ts_us=t0 + 2_000_000),
    ]
    subject, body = render_mail("alarm", alarms, prefix="[SCADA]", site=SITE, tz=TZ)
    assert subject == "[SCADA] 4 alarms (2 critical) at plant-north"
    order = [body.index(f"t{i:04d}:hihi") for i in (4, 2, 3, 1)]
    assert order == sorted(order)
    assert body.index("CRITICAL") < body.index("HIGH") < body.index("LOW")
    assert "2024-05-01T14:00:02+02:00" in body and "2 critical, 1 high, 1 low" in body
    subject, _ = render_mail(ESCALATION, alarms[1:2], prefix="[SCADA]", site=SITE, tz=TZ, escalate_after_s=900)
    assert (
        subject
        == "[SCADA] ESCALATION CRITICAL sim/tank/t0002:hihi unacknowledged for 15 min: Tank 0002 level very high"
    )


def test_hourly_cap_holds_mails_back_and_close_sends_what_was_held() -> None:
    journal = Journal()

    async def main(port: int, box: Mailbox) -> None:
        n = make_notifier(smtp_settings(port), email_settings(digest_window_s=0.0, max_mails_per_hour=2), journal)
        async with running(n):
            n.offer([notice(1)])
            await until(lambda: len(box.snapshot()) == 1, what="mail 1")
            n.offer([notice(2)])
            await until(lambda: len(box.snapshot()) == 2, what="mail 2")
            n.offer([notice(100 + i) for i in range(50)])
            await asyncio.sleep(0.3)  # the cap must hold these back: nothing may arrive
            assert len(box.snapshot()) == 2 and n.status()["pending"] == 50
        # close() sends what the cap held, in one digest
        assert len(box.snapshot()) == 3 and n.status()["pending"] == 0

    with smtp_server() as (box, port):
        asyncio.run(main(port, box))
        last = box.snapshot()[-1]
    assert last.subject == "[SCADA] 50 alarms (50 critical) at plant-north"
    assert journal.rules("notified") == {1, 2} | {100 + i for i in range(50)}


# ---------------------------------------------------------------------- 3. a dead or hanging relay


@pytest.mark.parametrize("relay", ["refusing", "hanging"])
def test_dead_or_hanging_relay_never_stalls_the_loop(relay: str) -> None:
    journal = Journal()
    # A blocking call would stall the loop for timeout_s (or ~0 for refused, hence the
    # offer timing); the ticker's longest gap must stay well below that.
    timeout_s = 0.8

    async def main(port: int) -> None:
        n = make_notifier(
            smtp_settings(port, timeout_s=timeout_s),
            email_settings(digest_window_s=0.2, retry_delays_s=[0.05]),
            journal,
        )
        ticker = Ticker()
        ticker.start()
        async with running(n):
            n.offer([notice(0)])
            await until(lambda: n.status()["attempts"] >= 1, what="the first send attempt")
            t = time.perf_counter()
            n.offer([notice(1 + i) for i in range(1000)])
            offer_s = time.perf_counter() - t
            await until(lambda: len(journal.rules("notify_failed")) == 1001, timeout=15, what="every alarm given up")
            status = n.status()
            t = time.perf_counter()
        close_s = time.perf_counter() - t
        await ticker.stop()
        assert offer_s < 0.2, offer_s
        assert ticker.max_gap < timeout_s / 2, ticker.max_gap
        assert status["failed"] >= 2 and status["sent"] == 0 and status["pending"] == 0 and status["dropped"] == 0
        assert status["last_error"] and f":{port}: " in status["last_error"]
        assert close_s < 0.5

    with refusing_port() if relay == "refusing" else hanging_port() as port:
        asyncio.run(main(port))
    assert not journal.rules("notified")
    details = {d for _, e, d in journal.rows if e == "notify_failed"}
    expected = "ConnectionRefusedError" if relay == "refusing" else f"no answer within {timeout_s:g} s"
    assert all(expected in d and d.endswith("(after 2 attempts)") for d in details), details


def test_a_hanging_relay_does_not_pile_up_mails() -> None:
    journal = Journal()
    timeout_s = 2.0

    async def main(port: int) -> None:
        n = make_notifier(smtp_settings(port, timeout_s=timeout_s), email_settings(digest_window_s=0.1), journal)
        async with running(n):
            n.offer([notice(0)])
            await until(lambda: n.status()["attempts"] == 1, what="the first send attempt")
            start = time.monotonic()
            for burst in range(4):  # each burst a digest window after the last
                n.offer([notice(1 + burst * 250 + i) for i in range(250)])
                await asyncio.sleep(0.15)
            assert time.monotonic() - start < timeout_s - 0.5  # still stuck in the first attempt
            status = n.status()
            # The hanging mail plus ONE digest waiting behind it, not one digest per window.
            assert (status["attempts"], status["mails_queued"], status["pending"]) == (1, 2, 1001), status
            t = time.perf_counter()
        assert time.perf_counter() - t < timeout_s + 0.5  # close is bounded by the timeout

    with hanging_port() as port:
        asyncio.run(main(port))
    assert journal.rules("notify_failed") == set(range(1001))


def test_pending_is_capped_and_drops_are_counted() -> None:
    journal = Journal()

    async def main(port: int) -> None:
        n = make_notifier(smtp_settings(port, timeout_s=0.5), email_settings(), journal, max_pending=400)
        t = time.perf_counter()
        n.offer([notice(i) for i in range(1000)])
        assert time.perf_counter() - t < 0.2
        assert n.status()["pending"] == 400 and n.status()["dropped"] == 600
        await n.close()  # never ran: close's one attempt fails at once
        assert n.status()["pending"] == 0

    with refusing_port() as port:
        asyncio.run(main(port))
    assert journal.rules("notify_failed") == set(range(400))


def test_close_is_bounded_by_the_timeout_when_the_relay_hangs() -> None:
    journal = Journal()

    async def main(port: int) -> None:
        n = make_notifier(smtp_settings(port, timeout_s=0.5), email_settings(retry_delays_s=[10.0]), journal)
        task = asyncio.create_task(n.run())
        n.offer([notice(1)])
        await until(lambda: n.status()["attempts"] >= 1, what="the send attempt")
        n.offer([notice(2)])  # waits in its digest window
        t = time.perf_counter()
        await n.close()
        await asyncio.wait_for(task, 1)
        assert time.perf_counter() - t < 1.0

    with hanging_port() as port:
        asyncio.run(main(port))
    assert journal.rules("notify_failed") == {1, 2}


# ---------------------------------------------------------------------- 4. escalation


def test_unacknowledged_critical_alarm_escalates_acknowledged_does_not() -> None:
    journal = Journal()
    acked = {1}

    async def main(port: int, box: Mailbox) -> None:
        mail = email_settings(escalate_after_s=0.3, escalate_to=[BOSS])
        n = make_notifier(smtp_settings(port), mail, journal, is_unacked=lambda rule_id: rule_id not in acked)
        async with running(n):
            n.offer([notice(1)])  # acknowledged before its escalation is due
            await asyncio.sleep(0.05)  # so rule 2 falls due later than rule 1
            n.offer([notice(2), notice(3, "high")])  # high: never escalated
            assert n.status()["watching"] == 2
            await until(lambda: box.to(BOSS), what="the escalation mail")
            await until(lambda: n.status()["watching"] == 0, what="both watches checked")
            await asyncio.sleep(0.1)
        assert n.status()["escalations"] == 1

    with smtp_server() as (box, port):
        asyncio.run(main(port, box))
        to_boss = box.to(BOSS)
    assert len(to_boss) == 1 and to_boss[0].rcpt_tos == [BOSS]
    subject = to_boss[0].subject
    assert "ESCALATION" in subject and "unacknowledged" in subject and "t0002" in subject, subject
    assert "t0001" not in to_boss[0].body and "t0003" not in to_boss[0].body
    assert (2, "notified", f"escalation to {BOSS}") in journal.rows
    assert not any(r == 1 and "escalation" in d for r, _, d in journal.rows)


# ---------------------------------------------------------------------- 5. routing


def test_routing_by_area_and_priority() -> None:
    routes = [
        AlarmRoute(areas=["sim/*"], priorities=["critical", "high"], to=["sim@example.com"]),
        AlarmRoute(areas=["plant/**", "**"], priorities=["critical"], to=["all@example.com", "sim@example.com"]),
        AlarmRoute(areas=["utilities/*/water"], priorities=["medium"], to=["water@example.com"]),
    ]
    n = make_notifier(smtp_settings(25), email_settings(routes=routes), Journal())
    assert n.recipients("sim/pm5xxx", "critical") == ("sim@example.com", "all@example.com")
    assert n.recipients("sim/pm5xxx", "high") == ("sim@example.com",)
    assert n.recipients("sim/pm5xxx/deep", "high") == ()  # '*' is one segment
    assert n.recipients("", "critical") == ("all@example.com", "sim@example.com")  # only '**' takes ""
    assert n.recipients("", "high") == ()
    assert n.recipients("utilities/north/water", "medium") == ("water@example.com",)
    assert n.recipients("sim/pm5xxx", "low") == ()

    # Enabled needs a host, e-mail on, and somebody to write to.
    assert not make_notifier(smtp_settings(25, host=""), email_settings(), Journal()).enabled
    assert not make_notifier(smtp_settings(25), email_settings(enabled=False), Journal()).enabled
    assert not make_notifier(smtp_settings(25), email_settings(routes=[]), Journal()).enabled
    assert make_notifier(
        smtp_settings(25), email_settings(routes=[], escalate_to=[BOSS], escalate_after_s=60), Journal()
    ).enabled


def test_unrouted_alarm_sends_nothing() -> None:
    journal = Journal()

    async def main(port: int, box: Mailbox) -> None:
        routes = [AlarmRoute(areas=["sim/**"], priorities=["critical", "high"], to=[OPS])]
        n = make_notifier(smtp_settings(port), email_settings(routes=routes, digest_window_s=0.0), journal)
        async with running(n):
            n.offer([notice(1, "low"), notice(2, "critical", "plant/boiler")])  # neither is routed
            n.offer([notice(3, "high", "sim/pm5xxx")])
            await until(lambda: box.snapshot(), what="the routed alarm's mail")
        # close() sent everything still pending: had 1 or 2 been routed, they would be here

    with smtp_server() as (box, port):
        asyncio.run(main(port, box))
        mails = box.snapshot()
    assert len(mails) == 1 and mails[0].subject.startswith("[SCADA] HIGH sim/tank/t0003:hihi")
    assert journal.rows == [(3, "notified", f"to {OPS}")]


def test_disabled_notifier_ignores_offers_and_run_returns_on_close() -> None:
    async def main() -> None:
        n = make_notifier(smtp_settings(25, host=""), email_settings(), Journal())
        task = asyncio.create_task(n.run())
        n.offer([notice(1)])
        assert n.status()["pending"] == 0 and not n.status()["enabled"]
        await n.close()
        await asyncio.wait_for(task, 1)

    asyncio.run(main())


# ---------------------------------------------------------------------- 6. TLS and credentials


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


def _send_one(port: int, security: str, journal: Journal, ssl_context: ssl.SSLContext | None) -> None:
    async def main() -> None:
        n = make_notifier(smtp_settings(port, security=security), email_settings(), journal, ssl_context=ssl_context)
        async with running(n):
            n.offer([notice(1)])
            await until(lambda: journal.rows, what="the journal entry")

    asyncio.run(main())


def test_starttls_with_a_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    journal = Journal()
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with smtp_server(tls_context=_server_context(certificate), require_starttls=True) as (box, port):
        _send_one(port, "starttls", journal, trust)
        mails = box.snapshot()
    assert journal.rows == [(1, "notified", f"to {OPS}")]
    assert len(mails) == 1 and mails[0].tls


def test_starttls_refuses_an_untrusted_certificate(certificate: tuple[Path, Path]) -> None:
    journal = Journal()
    with smtp_server(tls_context=_server_context(certificate), require_starttls=True) as (box, port):
        _send_one(port, "starttls", journal, None)  # system trust store: the self-signed cert is not in it
        assert box.snapshot() == []
    [(rule_id, event, detail)] = journal.rows
    assert (rule_id, event) == (1, "notify_failed") and "certificate" in detail, detail


def test_implicit_ssl(certificate: tuple[Path, Path]) -> None:
    journal = Journal()
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with smtp_server(ssl_context=_server_context(certificate)) as (box, port):
        _send_one(port, "ssl", journal, trust)
        assert len(box.snapshot()) == 1
    assert journal.rows == [(1, "notified", f"to {OPS}")]


class _Keyring(keyring.backend.KeyringBackend):
    """A keyring holding one password, or failing like a locked one."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, password: str | None, fail: bool = False) -> None:
        super().__init__()
        self.password, self.fail, self.asked = password, fail, []

    def get_password(self, service: str, username: str) -> str | None:
        self.asked.append((service, username))
        if self.fail:
            raise keyring.errors.KeyringLocked("the keyring is locked")
        return self.password

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NotImplementedError

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError


@contextmanager
def using_keyring(backend: keyring.backend.KeyringBackend) -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"plant", b"s3cret")
    return AuthResult(success=ok)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_password_from_the_keyring_logs_in() -> None:
    journal = Journal()
    ring = _Keyring("s3cret")
    auth = {"authenticator": _authenticator, "auth_required": True, "auth_require_tls": False}
    with smtp_server(**auth) as (box, port), using_keyring(ring):

        async def main() -> None:
            n = make_notifier(smtp_settings(port, username="plant"), email_settings(), journal)
            async with running(n):
                n.offer([notice(1)])
                await until(lambda: journal.rows, what="the journal entry")

        asyncio.run(main())
        assert len(box.snapshot()) == 1
    assert ring.asked == [("scadad-smtp", "plant")]
    assert journal.rows == [(1, "notified", f"to {OPS}")]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_failing_keyring_means_no_password_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    journal = Journal()
    auth = {"authenticator": _authenticator, "auth_required": True, "auth_require_tls": False}
    with smtp_server(**auth) as (box, port), using_keyring(_Keyring(None, fail=True)):

        async def main() -> None:
            mail = email_settings(retry_delays_s=[])
            n = make_notifier(smtp_settings(port, username="plant"), mail, journal)
            async with running(n):
                n.offer([notice(1)])
                await until(lambda: journal.rows, what="the journal entry")

        with caplog.at_level(logging.WARNING, logger="scadad.alarms.notify"):
            asyncio.run(main())
        assert box.snapshot() == []
    assert any("keyring lookup failed" in r.getMessage() for r in caplog.records)
    [(rule_id, event, detail)] = journal.rows
    assert (rule_id, event) == (1, "notify_failed") and "SMTP 530" in detail, detail
