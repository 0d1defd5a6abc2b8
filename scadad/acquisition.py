"""Acquisition: one poller task per device, scan groups on their own rates, reconnects.

A poller owns one driver (one connection). It reads each scan group on a fixed-rate
schedule (a late scan does not push the next one later; a scan that is more than a
whole period late is skipped and counted as an overrun), hands every batch to the
tag table, and when the transport fails it marks every tag of the device BAD at once
(never a silent stale value), closes, and reconnects with exponential backoff and
jitter, capped so a device that comes back is read again within seconds.

Configuration changes arrive as `Acquisition.apply(changed)`: only the devices named
in the change are touched. A tag edit re-plans that device's reads between two
scans without dropping its connection; a change of the device itself restarts only
its poller. Every other device keeps its rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from drivers.base import Driver, DriverError, Reason
from drivers.health import DeviceState, backoff_delay
from drivers.registry import create_driver
from scadad.api.errors import FailedPrecondition, InvalidArgument, Unavailable
from scadad.api.tag_messages import DeviceHealth, DeviceSpec, TagSpec, TagWriteResult
from scadad.bus import Bus
from scadad.clock import from_us, now_us
from scadad.config import AcquisitionSettings
from scadad.tags.catalog import Catalog, Changed, device_config, point_config
from scadad.tags.expr import compile_expression
from scadad.tags.table import BAD, GOOD, LiveTag, TagTable

log = logging.getLogger("scadad.acquisition")
TOPIC_DEVICE = "device.state"
# Per-device health as live tags, for the console and (later) alarms on lost devices.
SYSTEM_PREFIX = "_system/devices"
SYSTEM_TAGS = (
    ("online", "bool"),
    ("state", "string"),
    ("response_p99_ms", "float64"),
    ("errors", "int64"),
    ("tags_bad", "int64"),
)
SYSTEM_REFRESH_S = 5.0
JITTER_SAMPLES = 512


def _p99_ms(samples: Iterable[float]) -> float | None:
    ordered = sorted(samples)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 3)


class Group:
    """One scan group of one device: its tags (aligned with the driver's points) and schedule."""

    __slots__ = ("name", "period", "tags", "next_due", "jitter", "overruns")

    def __init__(self, name: str, period: float, tags: list[LiveTag]) -> None:
        self.name = name
        self.period = period
        self.tags = tags
        self.next_due = 0.0
        self.jitter: deque[float] = deque(maxlen=JITTER_SAMPLES)
        self.overruns = 0


class DevicePoller:
    """Polls one device until cancelled."""

    def __init__(
        self,
        spec: DeviceSpec,
        table: TagTable,
        bus: Bus,
        settings: AcquisitionSettings,
        driver_factory: Callable[..., Driver] = create_driver,
    ) -> None:
        self.spec = spec
        self.table = table
        self.bus = bus
        self.settings = settings
        self.driver = driver_factory(device_config(spec))
        self.groups: dict[str, Group] = {}
        self.tags: list[LiveTag] = []
        self.bad_config: list[LiveTag] = []
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None
        self._pending: dict[str, tuple[float, list[LiveTag]]] | None = None
        self._wake_fut: asyncio.Future[None] | None = None
        self.system: dict[str, LiveTag] = {}
        self.state = DeviceState.CONNECTING

    # ------------------------------------------------------------------ configuration

    def set_tags(self, groups: dict[str, tuple[float, list[LiveTag]]]) -> None:
        """New tag set; applied between two scans (immediately when not running)."""
        self._pending = groups
        if self.task is None:
            self._apply_pending()
        elif self._wake_fut is not None:
            _resolve(self._wake_fut)

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        points = {name: [point_config(t.id, t.spec) for t in tags] for name, (_, tags) in pending.items()}
        errors = self.driver.configure(points)
        bad = [t for _, tags in pending.values() for t in tags if t.id in errors]
        if errors:
            pending = {n: (p, [t for t in tags if t.id not in errors]) for n, (p, tags) in pending.items()}
            points = {name: [point_config(t.id, t.spec) for t in tags] for name, (_, tags) in pending.items()}
            self.driver.configure(points)
        for t in bad:
            self.table.set_quality([t], BAD, "config_error", errors[t.id])
        self.bad_config = bad
        loop_now = _loop_time()
        old = self.groups
        self.groups = {}
        for name, (period, tags) in pending.items():
            if not tags:
                continue
            g = Group(name, period, tags)
            prev = old.get(name)
            if prev is not None and prev.period == period:
                g.next_due, g.jitter, g.overruns = prev.next_due, prev.jitter, prev.overruns
            else:
                # Spread devices over the period so a plant's worth of polls is not one burst.
                g.next_due = loop_now + random.random() * period
            self.groups[name] = g
        self.tags = [t for g in self.groups.values() for t in g.tags]

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"poll {self.spec.name}")

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.driver.close()

    def _set_state(self, state: DeviceState) -> None:
        was = self.state
        self.state = state
        if self.driver.health.set_state(state, now_us()):
            self.bus.publish(TOPIC_DEVICE, (self.spec.name, str(state), self.driver.health.last_error))
            # Log arrivals and losses, not every retry of a device that stays away.
            self.update_system_tags()
            up = (DeviceState.ONLINE, DeviceState.DEGRADED)
            if state in up and was not in up:
                log.info("device online", extra={"fields": {"device": self.spec.name, "state": str(state)}})
            elif state is DeviceState.OFFLINE and was in up:
                log.warning("device lost", extra={"fields": {"device": self.spec.name,
                                                             "error": self.driver.health.last_error}})  # fmt: skip

    def _fail_all(self, exc: DriverError) -> None:
        self.table.set_quality(self.tags, BAD, str(exc.reason), str(exc))

    async def _run(self) -> None:
        attempt = 0
        drv = self.driver
        while True:
            if self._pending is not None:
                self._apply_pending()
            if not drv.connected:
                self._set_state(DeviceState.CONNECTING)
                try:
                    async with self.lock:
                        await drv.connect()
                except DriverError as exc:
                    drv.health.request_failed("connect", str(exc), now_us())
                    self._fail_all(exc)
                    attempt += 1
                    self._set_state(DeviceState.OFFLINE)
                    await self._sleep(
                        backoff_delay(attempt, self.settings.reconnect_min_s, self.settings.reconnect_max_s)
                    )
                    continue
                if attempt:
                    drv.health.reconnects += 1
                # Online only once a read answers: a device that accepts connections but
                # never replies must not flap between online and offline.
                if not self.groups:
                    self._set_state(DeviceState.ONLINE)
                now = _loop_time()
                for g in self.groups.values():
                    g.next_due = max(g.next_due, now)
            if not self.groups:
                await self._sleep(3600.0)
                continue
            now = _loop_time()
            first = min(g.next_due for g in self.groups.values())
            if first > now:
                await self._sleep(first - now)
                continue
            try:
                degraded = bool(self.bad_config)
                for g in list(self.groups.values()):
                    if g.next_due > now:
                        continue
                    g.jitter.append(now - g.next_due)
                    tags = g.tags
                    async with self.lock:
                        batch = await drv.read(g.name)
                    self.table.apply_batch(tags, batch)
                    if batch.errors:
                        degraded = True
                    g.next_due += g.period
                    now = _loop_time()
                    if g.next_due <= now - g.period:
                        # More than a whole period behind (a stalled device or loop):
                        # skip the missed scans instead of firing them back to back.
                        missed = int((now - g.next_due) // g.period)
                        g.overruns += missed
                        g.next_due += missed * g.period
            except DriverError as exc:
                self._fail_all(exc)
                with contextlib.suppress(Exception):
                    await drv.close()
                attempt += 1
                self._set_state(DeviceState.OFFLINE)
                await self._sleep(backoff_delay(attempt, self.settings.reconnect_min_s, self.settings.reconnect_max_s))
                continue
            attempt = 0
            self._set_state(DeviceState.DEGRADED if degraded else DeviceState.ONLINE)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early for a configuration change.

        A bare future and one timer: this runs for every scan of every device, and
        wait_for(Event.wait()) costs a task per call.
        """
        if self._pending is not None:
            return  # a change arrived while we were busy (connecting, reading)
        loop = asyncio.get_running_loop()
        fut = self._wake_fut = loop.create_future()
        timer = loop.call_later(seconds, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._wake_fut = None

    # ------------------------------------------------------------------ system tags

    def update_system_tags(self) -> None:
        """Publish this device's health as live tags (_system/devices/<name>/...)."""
        if not self.system:
            return
        h = self.driver.health
        _, p99 = h.percentiles()
        bad = sum(1 for t in self.tags if t.quality == BAD) + len(self.bad_config)
        values = {
            "online": self.state in (DeviceState.ONLINE, DeviceState.DEGRADED),
            "state": str(self.state),
            "response_p99_ms": p99 if p99 is not None else 0.0,
            "errors": sum(h.errors.values()),
            "tags_bad": bad,
        }
        for name, value in values.items():
            tag = self.system[name]
            if tag.value != value or tag.quality != GOOD:
                self.table.set_value(tag, value)

    # ------------------------------------------------------------------ writes

    async def write(self, tag: LiveTag, raw: Any, confirm: bool) -> Any:
        """Write a raw value; returns the raw read-back (or None without confirm)."""
        point = point_config(tag.id, tag.spec)
        if not self.driver.connected:
            raise Unavailable(
                f"device {self.spec.name!r} is {self.state}: {self.driver.health.last_error or 'not connected'}",
                {"field": "params.path"},
            )
        try:
            async with self.lock:
                await self.driver.write(point, raw)
                if not confirm:
                    return None
                return await self.driver.read_point(point)
        except DriverError as exc:
            if exc.reason is Reason.OUT_OF_RANGE:
                raise InvalidArgument(str(exc), "params.value") from None
            if exc.reason is Reason.COMM_FAILURE:
                raise Unavailable(f"device {self.spec.name!r}: {exc}") from None
            raise FailedPrecondition(f"device {self.spec.name!r} refused the write: {exc}") from None

    # ------------------------------------------------------------------ health

    def health(self) -> DeviceHealth:
        h = self.driver.health.snapshot()
        good = sum(1 for t in self.tags if t.quality is GOOD)
        bad = sum(1 for t in self.tags if t.quality == BAD) + len(self.bad_config)
        jitter = [j for g in self.groups.values() for j in g.jitter]
        return DeviceHealth(
            name=self.spec.name,
            protocol=self.spec.protocol,
            enabled=True,
            state=str(self.state),
            since=from_us(h.since_us) if h.since_us else None,
            last_good=from_us(h.last_good_us) if h.last_good_us else None,
            last_error=h.last_error,
            last_error_at=from_us(h.last_error_us) if h.last_error_us else None,
            errors=h.errors,
            requests=h.requests,
            reconnects=h.reconnects,
            p50_ms=h.p50_ms,
            p99_ms=h.p99_ms,
            tags=len(self.tags) + len(self.bad_config),
            tags_good=good,
            tags_bad=bad,
            scan_overruns=sum(g.overruns for g in self.groups.values()),
            jitter_p99_ms=_p99_ms(jitter),
            mode=str(getattr(self.driver, "mode_in_use", "")),
        )


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _loop_time() -> float:
    return time.monotonic()


class Acquisition:
    """Every device poller, the live tag table's membership, memory and computed tags."""

    def __init__(
        self,
        catalog: Catalog,
        table: TagTable,
        bus: Bus,
        settings: AcquisitionSettings,
        driver_factory: Callable[..., Driver] = create_driver,
    ) -> None:
        self.catalog = catalog
        self.table = table
        self.bus = bus
        self.settings = settings
        self.driver_factory = driver_factory
        self.pollers: dict[str, DevicePoller] = {}
        self.running = False
        self.last_memory: dict[int, Any] = {}
        self._next_system_id = -1
        # Live tags of each device, so a change re-plans one device without a scan of all tags.
        self.by_device: dict[str, dict[int, LiveTag]] = {}
        self._housekeeping: asyncio.Task[None] | None = None
        # Told of every applied catalog change (the alarm rules follow renamed and deleted tags).
        self.listeners: list[Callable[[Changed], None]] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self, restore: dict[int, float | None] | None = None) -> None:
        """Build the tag table from the catalog and start a poller per enabled device.

        ``restore`` holds the last historized value of memory tags, so an operator's
        setpoint survives a restart (falling back to the tag's initial value).
        """
        self.running = True
        self.last_memory = dict(restore or {})
        self.apply(Changed(devices=set(self.catalog.devices), tags=set(self.catalog.tags_by_id)))
        self._housekeeping = asyncio.create_task(self._refresh_system_tags(), name="device system tags")

    async def _refresh_system_tags(self) -> None:
        while True:
            await asyncio.sleep(SYSTEM_REFRESH_S)
            for poller in list(self.pollers.values()):
                poller.update_system_tags()

    def _add_system_tags(self, poller: DevicePoller) -> None:
        for name, data_type in SYSTEM_TAGS:
            spec = TagSpec(path=f"{SYSTEM_PREFIX}/{poller.spec.name}/{name}", data_type=data_type, source="memory",
                           description=f"communication health of device {poller.spec.name}")  # fmt: skip
            tag = LiveTag(self._next_system_id, spec)
            self._next_system_id -= 1
            self.table.add(tag)
            poller.system[name] = tag
        poller.update_system_tags()

    def _drop_poller(self, name: str) -> None:
        poller = self.pollers.pop(name)
        for tag in poller.system.values():
            self.table.remove(tag.id)
        asyncio.get_running_loop().create_task(poller.stop())

    async def stop(self) -> None:
        self.running = False
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        pollers, self.pollers = list(self.pollers.values()), {}
        await asyncio.gather(*(p.stop() for p in pollers), return_exceptions=True)

    # ------------------------------------------------------------------ configuration changes

    def apply(self, changed: Changed) -> None:
        """Bring the live table and the pollers in line with the catalog for what changed."""
        if not self.running:
            return
        devices = set(changed.devices)
        new_computed: list[LiveTag] = []
        relink = False
        for tag_id in changed.tags:
            rec = self.catalog.tags_by_id.get(tag_id)
            live = self.table.by_id.get(tag_id)
            if live is not None and live.spec.device:
                devices.add(live.spec.device)
                self.by_device.get(live.spec.device, {}).pop(tag_id, None)
            if rec is None:
                if live is not None:
                    relink |= live.expr is not None or bool(live.dependents)
                    self.table.remove(tag_id)
                continue
            if rec.spec.device:
                devices.add(rec.spec.device)
            if live is None:
                live = LiveTag(tag_id, rec.spec)
                self.table.add(live)
                # A new plain tag matters to computed tags only if one names it.
                relink |= self.table.has_computed
            else:
                old_path = live.path
                live.configure(rec.spec)
                if old_path != live.path:
                    self.table.rename(live, old_path)
                    relink = True
            if rec.spec.device:
                self.by_device.setdefault(rec.spec.device, {})[tag_id] = live
            if rec.spec.source == "computed":
                live.expr = compile_expression(rec.spec.expression or "")
                new_computed.append(live)
                relink = True
            else:
                relink |= live.expr is not None
                live.expr = None
            if rec.spec.source == "memory":
                self._init_memory(live)
            elif rec.spec.source == "device" and not rec.spec.device:
                self.table.set_quality([live], BAD, "config_error", "its device was deleted")
        if relink:
            self.table.link_computed()
        for name in devices:
            self._sync_device(name)
        if changed.groups:
            for name in list(self.pollers):
                self._sync_device(name)
        if new_computed:
            self.table.evaluate(new_computed)
        for listener in self.listeners:
            listener(changed)

    def _init_memory(self, tag: LiveTag) -> None:
        if tag.quality is GOOD:
            return
        restored = self.last_memory.pop(tag.id, None)
        source = restored if restored is not None else tag.spec.initial_value
        if source is None:
            self.table.set_quality([tag], "UNCERTAIN", "last_usable", "memory tag without a value yet")
            return
        try:
            value = tag.parse(source)
        except ValueError as exc:
            what = "restored value" if restored is not None else "initial_value"
            self.table.set_quality([tag], BAD, "config_error", f"{what}: {exc}")
            return
        self.table.set_value(tag, value)

    def _sync_device(self, name: str) -> None:
        rec = self.catalog.devices.get(name)
        poller = self.pollers.get(name)
        if rec is None or not rec.spec.enabled:
            if poller is not None:
                self._drop_poller(name)
            tags = list(self.by_device.get(name, {}).values())
            if rec is not None:
                self.table.set_quality(tags, BAD, "out_of_service", f"device {name} is disabled")
            return
        if poller is not None and poller.spec != rec.spec:
            self._drop_poller(name)
            poller = None
        groups: dict[str, tuple[float, list[LiveTag]]] = {}
        for t in sorted(
            (t for t in self.by_device.get(name, {}).values() if t.spec.source == "device"),
            key=lambda t: t.id,
        ):
            g = self.catalog.groups.get(t.spec.scan_group)
            period = (g.interval_ms if g else 1000) / 1000.0
            groups.setdefault(t.spec.scan_group, (period, []))[1].append(t)
        if poller is None:
            poller = DevicePoller(rec.spec, self.table, self.bus, self.settings, self.driver_factory)
            poller.set_tags(groups)
            self.pollers[name] = poller
            self._add_system_tags(poller)
            poller.start()
        else:
            poller.set_tags(groups)

    # ------------------------------------------------------------------ writes

    async def write(self, path: str, value: Any, confirm: bool) -> TagWriteResult:
        tag = self.table.by_path.get(path)
        if tag is None:
            raise InvalidArgument(f"no tag {path!r}", "params.path")
        spec = tag.spec
        if tag.id < 0:
            raise FailedPrecondition(f"{path} is a system tag kept by the daemon", {"field": "params.path"})
        if spec.source == "computed":
            raise FailedPrecondition(
                f"{path} is computed from other tags and cannot be written", {"field": "params.path"}
            )
        if spec.source == "device" and not spec.writable:
            raise FailedPrecondition(
                f"{path} is read-only (set writable with `scadactl tag edit {path} --writable`)",
                {"field": "params.path"},
            )
        try:
            eng = tag.parse(value)
            raw = tag.to_raw(eng)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidArgument(f"{value!r} is not a valid {tag.data_type} value: {exc}", "params.value") from None
        if spec.source == "memory":
            self.table.set_value(tag, eng)
            return TagWriteResult(path=path, written=eng, raw=None, confirmed=True, read_back=tag.snapshot())
        poller = self.pollers.get(spec.device or "")
        if poller is None:
            raise Unavailable(f"device {spec.device!r} of {path} is not polled (disabled or deleted)")
        back = await poller.write(tag, raw, confirm)
        if not confirm:
            return TagWriteResult(path=path, written=eng, raw=raw, confirmed=False, read_back=None)
        eng_back = tag.to_eng(back)
        self.table.set_value(tag, eng_back)
        return TagWriteResult(
            path=path, written=eng, raw=raw, confirmed=_same(raw, back, tag.data_type), read_back=tag.snapshot()
        )

    # ------------------------------------------------------------------ status

    def health(self, name: str) -> DeviceHealth:
        poller = self.pollers.get(name)
        if poller is not None:
            return poller.health()
        rec = self.catalog.devices[name]
        tags = list(self.by_device.get(name, {}).values())
        return DeviceHealth(
            name=name, protocol=rec.spec.protocol, enabled=rec.spec.enabled,
            state="disabled" if not rec.spec.enabled else "connecting", since=None, last_good=None,
            last_error="", last_error_at=None, errors={}, requests=0, reconnects=0, p50_ms=None, p99_ms=None,
            tags=len(tags), tags_good=0, tags_bad=len(tags), scan_overruns=0, jitter_p99_ms=None,
        )  # fmt: skip

    def state_of(self, name: str) -> str:
        poller = self.pollers.get(name)
        if poller is not None:
            return str(poller.state)
        rec = self.catalog.devices.get(name)
        return "disabled" if rec is not None and not rec.spec.enabled else "connecting"

    def jitter_p99_ms(self) -> float | None:
        return _p99_ms(j for p in self.pollers.values() for g in p.groups.values() for j in g.jitter)


def _same(a: Any, b: Any, data_type: str) -> bool:
    if b is None:
        return False
    if data_type in ("float32", "float64") or isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)))
        except (TypeError, ValueError):
            return False
    return a == b
