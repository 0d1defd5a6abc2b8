"""Devices.*, ScanGroups.*, Tags.* and History.*: the API face of acquisition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from scadad.acquisition import Acquisition
from scadad.api.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from scadad.api.messages import Deleted, Empty
from scadad.api.registry import CallContext, Service, rpc
from scadad.api.tag_messages import (
    Device,
    DeviceDelete,
    DeviceExport,
    DeviceImport,
    DeviceList,
    DeviceRef,
    DeviceSpec,
    DeviceStatusParams,
    DeviceStatusResult,
    DeviceUpdate,
    HistoryBucket,
    HistoryQuery,
    HistoryResult,
    HistorySample,
    ImportResult,
    ScanGroup,
    ScanGroupList,
    ScanGroupRef,
    ScanGroupSet,
    Tag,
    TagEvent,
    TagExport,
    TagExportParams,
    TagImport,
    TagList,
    TagListParams,
    TagReadParams,
    TagReadResult,
    TagRef,
    TagSpec,
    TagUpdate,
    TagValue,
    TagWatch,
    TagWrite,
    TagWriteResult,
)
from scadad.bus import Dropped
from scadad.clock import from_us, now_us, to_us
from scadad.historian import SqliteHistorian
from scadad.historian.model import QUALITY_BY_CODE
from scadad.tags.catalog import Catalog, DeviceRec, TagRec
from scadad.tags.table import TOPIC_VALUE, TagTable, change_to_value, compile_pattern

__all__ = ["DevicesService", "HistoryService", "ScanGroupsService", "TagsService"]


class DevicesService(Service):
    """Devices.*: field connections (Modbus TCP/RTU, OPC UA) and their health."""

    name = "Devices"

    def __init__(self, catalog: Catalog, acq: Acquisition) -> None:
        self.catalog = catalog
        self.acq = acq

    def _device(self, rec: DeviceRec, tag_count: int | None = None) -> Device:
        s = rec.spec
        if tag_count is None:
            tag_count = len(self.catalog.tags_of(s.name))
        return Device(
            name=s.name, protocol=s.protocol, description=s.description, host=s.host, port=s.port,
            unit_id=s.unit_id, serial_port=s.serial_port, baudrate=s.baudrate, parity=s.parity,
            stopbits=s.stopbits, endpoint_url=s.endpoint_url, address_base=s.address_base,
            byte_order=s.byte_order, word_order=s.word_order, timeout_ms=s.timeout_ms, retries=s.retries,
            max_gap=s.max_gap, max_registers=s.max_registers, opcua_mode=s.opcua_mode, enabled=s.enabled,
            tag_count=tag_count, state=self.acq.state_of(s.name),
            created_at=from_us(rec.created_us), updated_at=from_us(rec.updated_us),
        )  # fmt: skip

    @rpc(permission="devices.read")
    async def list(self, ctx: CallContext, params: Empty) -> DeviceList:
        """All devices, by name, with their tag count and connection state."""
        self.catalog._require_loaded()
        counts: dict[str, int] = {}
        for t in self.catalog.tags.values():
            if t.spec.device:
                counts[t.spec.device] = counts.get(t.spec.device, 0) + 1
        return DeviceList(
            devices=[self._device(self.catalog.devices[n], counts.get(n, 0)) for n in sorted(self.catalog.devices)]
        )

    @rpc(permission="devices.read")
    async def get(self, ctx: CallContext, params: DeviceRef) -> Device:
        """One device, every field."""
        return self._device(self.catalog.device(params.name))

    @rpc(permission="devices.configure", mutates=True)
    async def create(self, ctx: CallContext, params: DeviceSpec) -> Device:
        """Add a device; it is polled at once (no restart)."""
        rec, changed = await self.catalog.create_device(params)
        self.acq.apply(changed)
        return self._device(rec)

    @rpc(permission="devices.configure", mutates=True)
    async def update(self, ctx: CallContext, params: DeviceUpdate) -> Device:
        """Change a device; only its own poller restarts, the others keep polling."""
        rec, changed = await self.catalog.update_device(params)
        self.acq.apply(changed)
        return self._device(rec)

    @rpc(permission="devices.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: DeviceDelete) -> Deleted:
        """Remove a device; with force its tags stay (BAD, config_error) to keep their history."""
        changed = await self.catalog.delete_device(params.name, params.force)
        self.acq.apply(changed)
        return Deleted()

    @rpc(permission="devices.configure", mutates=True)
    async def import_(self, ctx: CallContext, params: DeviceImport) -> ImportResult:
        """Add (and with update, change) many devices at once: all or nothing."""
        names, changed = await self.catalog.import_devices(params.devices, params.update, params.dry_run)
        self.acq.apply(changed)
        return ImportResult(dry_run=params.dry_run, **names)

    @rpc(permission="devices.read")
    async def export(self, ctx: CallContext, params: Empty) -> DeviceExport:
        """Every device definition, as Import takes it back."""
        self.catalog._require_loaded()
        return DeviceExport(devices=[self.catalog.devices[n].spec for n in sorted(self.catalog.devices)])

    @rpc(permission="devices.read")
    async def status(self, ctx: CallContext, params: DeviceStatusParams) -> DeviceStatusResult:
        """Communication health: state, last good read, errors by kind, response p50/p99, jitter."""
        if params.name is not None:
            self.catalog.device(params.name)
            return DeviceStatusResult(devices=[self.acq.health(params.name)])
        self.catalog._require_loaded()
        return DeviceStatusResult(devices=[self.acq.health(n) for n in sorted(self.catalog.devices)])


class ScanGroupsService(Service):
    """ScanGroups.*: named poll rates that tags are assigned to."""

    name = "ScanGroups"

    def __init__(self, catalog: Catalog, acq: Acquisition) -> None:
        self.catalog = catalog
        self.acq = acq

    @rpc(permission="tags.read")
    async def list(self, ctx: CallContext, params: Empty) -> ScanGroupList:
        """Every scan group with its rate and how many tags use it."""
        self.catalog._require_loaded()
        counts: dict[str, int] = {}
        for t in self.catalog.tags.values():
            counts[t.spec.scan_group] = counts.get(t.spec.scan_group, 0) + 1
        return ScanGroupList(
            scan_groups=[
                ScanGroup(name=g.name, interval_ms=g.interval_ms, description=g.description, tag_count=counts.get(n, 0))
                for n, g in sorted(self.catalog.groups.items())
            ]
        )

    @rpc(permission="tags.configure", mutates=True)
    async def set(self, ctx: CallContext, params: ScanGroupSet) -> ScanGroup:
        """Create a scan group or change its rate; pollers pick it up at once."""
        rec, changed = await self.catalog.set_group(params)
        self.acq.apply(changed)
        count = sum(1 for t in self.catalog.tags.values() if t.spec.scan_group == rec.name)
        return ScanGroup(name=rec.name, interval_ms=rec.interval_ms, description=rec.description, tag_count=count)

    @rpc(permission="tags.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: ScanGroupRef) -> Deleted:
        """Remove a scan group no tag uses."""
        await self.catalog.delete_group(params.name)
        return Deleted()


class TagsService(Service):
    """Tags.*: definitions, live values, writes and the live stream."""

    name = "Tags"

    def __init__(self, catalog: Catalog, table: TagTable, acq: Acquisition) -> None:
        self.catalog = catalog
        self.table = table
        self.acq = acq

    def _tag(self, rec: TagRec) -> Tag:
        live = self.table.by_id.get(rec.id)
        value = live.snapshot() if live is not None else TagValue(path=rec.spec.path, value=None, quality="BAD",
                                                                   reason="out_of_service", detail="not loaded")  # fmt: skip
        return Tag(
            id=rec.id,
            spec=rec.spec,
            value=value,
            created_at=from_us(rec.created_us),
            updated_at=from_us(rec.updated_us),
        )

    @rpc(permission="tags.read")
    async def list(self, ctx: CallContext, params: TagListParams) -> TagList:
        """Tags matching a pattern ('*' one segment, '**' any depth), with their live values."""
        self.catalog._require_loaded()
        match = compile_pattern(params.pattern)
        if params.device is not None:
            self.catalog.device(params.device, "params.device")
        recs = [
            r
            for p, r in sorted(self.catalog.tags.items())
            if match(p) and (params.device is None or r.spec.device == params.device)
        ]
        return TagList(tags=[self._tag(r) for r in recs[: params.limit]], total=len(recs))

    @rpc(permission="tags.read")
    async def get(self, ctx: CallContext, params: TagRef) -> Tag:
        """One tag: definition and live value."""
        return self._tag(self.catalog.tag(params.path))

    @rpc(permission="tags.configure", mutates=True)
    async def create(self, ctx: CallContext, params: TagSpec) -> Tag:
        """Add a tag; its device starts reading it at the next scan."""
        rec, changed = await self.catalog.create_tag(params)
        self.acq.apply(changed)
        return self._tag(rec)

    @rpc(permission="tags.configure", mutates=True)
    async def update(self, ctx: CallContext, params: TagUpdate) -> Tag:
        """Change a tag's definition live; fields left out are kept."""
        rec, changed = await self.catalog.update_tag(params)
        self.acq.apply(changed)
        return self._tag(rec)

    @rpc(permission="tags.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: TagRef) -> Deleted:
        """Remove a tag (refused while a computed tag uses it)."""
        changed = await self.catalog.delete_tag(params.path)
        self.acq.apply(changed)
        return Deleted()

    @rpc(permission="tags.configure", mutates=True)
    async def import_(self, ctx: CallContext, params: TagImport) -> ImportResult:
        """Add (and with update, change) many tags at once: checked whole, then all or nothing."""
        names, changed = await self.catalog.import_tags(params.tags, params.update, params.dry_run)
        self.acq.apply(changed)
        return ImportResult(dry_run=params.dry_run, **names)

    @rpc(permission="tags.read")
    async def export(self, ctx: CallContext, params: TagExportParams) -> TagExport:
        """Tag definitions matching a pattern, as Import takes them back."""
        self.catalog._require_loaded()
        match = compile_pattern(params.pattern)
        return TagExport(
            tags=[
                r.spec
                for p, r in sorted(self.catalog.tags.items())
                if match(p) and (params.device is None or r.spec.device == params.device)
            ]
        )

    @rpc(permission="tags.read")
    async def read(self, ctx: CallContext, params: TagReadParams) -> TagReadResult:
        """Live values of paths or patterns; an exact path that does not exist is NOT_FOUND."""
        self.catalog._require_loaded()
        out: list[TagValue] = []
        for i, p in enumerate(params.paths):
            if "*" in p:
                out.extend(t.snapshot() for t in self.table.match([p]))
                continue
            tag = self.table.by_path.get(p)
            if tag is None:
                raise InvalidArgument(f"no tag {p!r}", f"params.paths[{i}]")
            out.append(tag.snapshot())
        return TagReadResult(values=out)

    @rpc(permission="tags.write", mutates=True)
    async def write(self, ctx: CallContext, params: TagWrite) -> TagWriteResult:
        """Write a value (engineering units) to a writable tag; confirmed by reading it back."""
        self.catalog._require_loaded()
        return await self.acq.write(params.path, params.value, params.confirm)

    @rpc(permission="tags.read", stream=True)
    async def watch(self, ctx: CallContext, params: TagWatch) -> AsyncIterator[TagEvent]:
        """Live values as they change, filtered on the server (patterns, deadband, quality, rate)."""
        self.catalog._require_loaded()
        matchers = [compile_pattern(p) for p in params.patterns]
        matches: dict[str, bool] = {}
        sent: dict[str, tuple[object, str]] = {}

        def wanted(path: str) -> bool:
            m = matches.get(path)
            if m is None:
                m = matches[path] = any(f(path) for f in matchers)
            return m

        def passes(v: TagValue) -> bool:
            prev = sent.get(v.path)
            if prev is not None:
                pv, pq = prev
                if pq == v.quality:
                    if params.quality_only:
                        return False
                    if params.deadband and isinstance(v.value, (int, float)) and isinstance(pv, (int, float)):
                        if abs(v.value - pv) <= params.deadband:
                            return False
            sent[v.path] = (v.value, v.quality)
            return True

        with self.table.bus.subscribe(TOPIC_VALUE, maxsize=2000) as sub:
            # What the client has (or, without `initial`, what it would have seen): the
            # baseline for the deadband and for quality_only.
            snap = [t.snapshot() for t in self.table.match(params.patterns)]
            for v in snap:
                sent[v.path] = (v.value, v.quality)
            if params.initial:
                yield TagEvent(values=snap, initial=True)
            interval = params.min_interval_ms / 1000.0
            while True:
                try:
                    changes = await sub.get()
                except Dropped as exc:
                    raise ResourceExhausted(f"{exc}; open the stream again with a narrower pattern") from None
                pending: dict[str, TagValue] = {}
                for c in changes:
                    if wanted(c[0].path):
                        pending[c[0].path] = change_to_value(c)
                if interval:
                    deadline = time.monotonic() + interval
                    while (left := deadline - time.monotonic()) > 0:
                        try:
                            more = await asyncio.wait_for(sub.get(), left)
                        except TimeoutError:
                            break
                        except Dropped as exc:
                            raise ResourceExhausted(f"{exc}; open the stream again") from None
                        for c in more:
                            if wanted(c[0].path):
                                pending[c[0].path] = change_to_value(c)
                out = [v for v in pending.values() if passes(v)]
                if out:
                    yield TagEvent(values=out)


class HistoryService(Service):
    """History.*: what the historian recorded."""

    name = "History"

    def __init__(self, catalog: Catalog, historian: Callable[[], SqliteHistorian | None]) -> None:
        self.catalog = catalog
        self.historian = historian  # opened after the services are built, hence a getter

    @rpc(permission="tags.read")
    async def query(self, ctx: CallContext, params: HistoryQuery) -> HistoryResult:
        """Raw samples, time-weighted aggregates per interval, or the latest sample of one tag."""
        rec = self.catalog.tag(params.path)
        h = self.historian()
        if h is None:
            raise FailedPrecondition("the historian is disabled ([historian] enabled = false)")
        end_us = to_us(params.end) if params.end else now_us()
        start_us = to_us(params.start) if params.start else end_us - int(timedelta(hours=1).total_seconds() * 1e6)
        if start_us >= end_us:
            raise InvalidArgument("start must be before end", "params.start")
        result = HistoryResult(
            path=rec.spec.path, units=rec.spec.units, start=from_us(start_us), end=from_us(end_us),
            every_s=params.every_s,
        )  # fmt: skip
        if params.latest:
            found = await asyncio.to_thread(h.latest, [rec.id])
            s = found.get(rec.id)
            if s is not None:
                result.samples = [HistorySample(time=from_us(s.ts_us), value=s.value, quality=s.quality.name)]
            return result
        if params.every_s is not None:
            aggs = await asyncio.to_thread(h.query_aggregate, rec.id, start_us, end_us, params.every_s * 1_000_000)
            result.truncated = len(aggs) > params.limit
            result.buckets = [
                HistoryBucket(
                    time=from_us(a.bucket_us),
                    min=a.min,
                    max=a.max,
                    avg=a.avg,
                    last=a.last,
                    count=a.count,
                    bad_count=a.bad_count,
                )  # fmt: skip
                for a in aggs[: params.limit]
            ]
            return result
        samples = await asyncio.to_thread(h.query_raw, rec.id, start_us, end_us, params.limit + 1)
        result.truncated = len(samples) > params.limit
        result.samples = [
            HistorySample(time=from_us(s.ts_us), value=s.value, quality=QUALITY_BY_CODE[s.quality].name)
            for s in samples[: params.limit]
        ]
        return result
