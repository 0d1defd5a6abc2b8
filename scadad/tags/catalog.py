"""Device, scan-group and tag definitions: validated, stored, and kept in memory.

The store is written first and the in-memory catalog changes only once the
transaction committed (as for sites). Every change returns what it touched so the
acquisition layer can re-plan just those devices while every other device keeps
polling. Validation names the field at fault: `params.tags[12].address: ...`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from drivers.base import DeviceConfig, PointConfig
from drivers.registry import check_point
from scadad.api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from scadad.api.tag_messages import DeviceSpec, DeviceUpdate, ScanGroupSet, TagSpec, TagUpdate
from scadad.clock import now_us
from scadad.store.database import Database
from scadad.tags.expr import ExpressionError, compile_expression

DEFAULT_GROUP = "default"
DEFAULT_GROUP_MS = 1000
_DEVICE_SETTINGS = ("max_gap", "max_registers", "opcua_mode")
_DEVICE_COLUMNS = (
    "name", "protocol", "description", "host", "port", "unit_id", "serial_port", "baudrate", "parity",
    "stopbits", "endpoint_url", "address_base", "byte_order", "word_order", "timeout_ms", "retries", "enabled",
)  # fmt: skip
_TAG_COLUMNS = (
    "path", "description", "data_type", "source", "device_id", "address", "function_code", "scan_group_id",
    "expression", "units", "raw_low", "raw_high", "eng_low", "eng_high", "deadband", "deadband_mode",
    "writable", "initial_value", "string_length", "byte_order", "word_order", "retention_days", "sentinels_json",
    "transform",
)  # fmt: skip


@dataclass(slots=True)
class DeviceRec:
    id: int
    spec: DeviceSpec
    created_us: int
    updated_us: int


@dataclass(slots=True)
class TagRec:
    id: int
    spec: TagSpec
    created_us: int
    updated_us: int


@dataclass(slots=True)
class GroupRec:
    id: int
    name: str
    interval_ms: int
    description: str


@dataclass(slots=True)
class Changed:
    """What one catalog change touched: device names and tag ids (removed ones included)."""

    devices: set[str] = field(default_factory=set)
    tags: set[int] = field(default_factory=set)
    groups: bool = False


def device_config(spec: DeviceSpec) -> DeviceConfig:
    """The driver's view of a device definition."""
    port = spec.port if spec.port is not None else (502 if spec.protocol == "modbus_tcp" else None)
    return DeviceConfig(
        name=spec.name, protocol=spec.protocol, host=spec.host, port=port, unit_id=spec.unit_id,
        serial_port=spec.serial_port, baudrate=spec.baudrate, parity=spec.parity, stopbits=spec.stopbits,
        endpoint_url=spec.endpoint_url, address_base=spec.address_base, byte_order=spec.byte_order,
        word_order=spec.word_order, timeout_s=spec.timeout_ms / 1000.0, retries=spec.retries,
        max_gap=spec.max_gap, max_registers=spec.max_registers, opcua_mode=spec.opcua_mode,
    )  # fmt: skip


def point_config(tag_id: int, spec: TagSpec) -> PointConfig:
    return PointConfig(
        key=tag_id, address=spec.address or "", data_type=spec.data_type, function=spec.function,
        string_length=spec.string_length, byte_order=spec.byte_order, word_order=spec.word_order,
    )  # fmt: skip


def check_device(spec: DeviceSpec, field_prefix: str = "params") -> None:
    """Refuse a device its driver could not even try to reach."""
    need = {"modbus_tcp": "host", "modbus_rtu": "serial_port", "opcua": "endpoint_url"}[spec.protocol]
    if not getattr(spec, need):
        raise InvalidArgument(f"a {spec.protocol} device needs {need}", f"{field_prefix}.{need}")
    if spec.protocol == "opcua" and not (spec.endpoint_url or "").startswith("opc.tcp://"):
        raise InvalidArgument("endpoint_url must start with opc.tcp://", f"{field_prefix}.endpoint_url")


def _merge(spec: msgspec.Struct, update: msgspec.Struct, key: str) -> Any:
    changes = {
        f: getattr(update, f) for f in update.__struct_fields__ if f != key and getattr(update, f) is not msgspec.UNSET
    }
    return msgspec.structs.replace(spec, **changes), changes


class Catalog:
    """The plant's acquisition configuration (loop thread reads, store thread writes)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.devices: dict[str, DeviceRec] = {}
        self.tags: dict[str, TagRec] = {}
        self.tags_by_id: dict[int, TagRec] = {}
        self.groups: dict[str, GroupRec] = {}
        self.loaded = False

    # ------------------------------------------------------------------ loading (store thread)

    def load(self) -> None:
        with self.db.engine.begin() as conn:
            if not conn.execute(
                text("SELECT COUNT(*) FROM scan_groups WHERE name = :n"), {"n": DEFAULT_GROUP}
            ).scalar():
                ts = now_us()
                conn.execute(
                    text(
                        "INSERT INTO scan_groups (name, interval_ms, description, created_us, updated_us)"
                        " VALUES (:n, :ms, :d, :ts, :ts)"
                    ),
                    {"n": DEFAULT_GROUP, "ms": DEFAULT_GROUP_MS, "d": "tags without a group of their own", "ts": ts},
                )
            groups = conn.execute(text("SELECT id, name, interval_ms, description FROM scan_groups")).all()
            devices = conn.execute(
                text(f"SELECT id, {', '.join(_DEVICE_COLUMNS)}, settings_json, created_us, updated_us FROM devices")
            ).all()
            tags = conn.execute(text(f"SELECT id, {', '.join(_TAG_COLUMNS)}, created_us, updated_us FROM tags")).all()
        self.groups = {r[1]: GroupRec(r[0], r[1], r[2], r[3] or "") for r in groups}
        group_names = {g.id: g.name for g in self.groups.values()}
        self.devices = {}
        device_names: dict[int, str] = {}
        for r in devices:
            row = dict(zip(_DEVICE_COLUMNS, r[1 : 1 + len(_DEVICE_COLUMNS)], strict=True))
            settings = json.loads(r[len(_DEVICE_COLUMNS) + 1] or "{}")
            row.update({k: settings[k] for k in _DEVICE_SETTINGS if k in settings})
            row["enabled"] = bool(row["enabled"])
            row = {k: v for k, v in row.items() if v is not None}
            spec = msgspec.convert(row, DeviceSpec)
            self.devices[spec.name] = DeviceRec(r[0], spec, r[-2], r[-1])
            device_names[r[0]] = spec.name
        self.tags, self.tags_by_id = {}, {}
        for r in tags:
            row = dict(zip(_TAG_COLUMNS, r[1 : 1 + len(_TAG_COLUMNS)], strict=True))
            row["device"] = device_names.get(row.pop("device_id"))
            row["scan_group"] = group_names.get(row.pop("scan_group_id"), DEFAULT_GROUP)
            row["function"] = row.pop("function_code")
            row["writable"] = bool(row["writable"])
            row["sentinels"] = json.loads(row.pop("sentinels_json") or "[]")
            row = {k: v for k, v in row.items() if v is not None}
            spec = msgspec.convert(row, TagSpec)
            rec = TagRec(r[0], spec, r[-2], r[-1])
            self.tags[spec.path] = rec
            self.tags_by_id[rec.id] = rec
        self.loaded = True

    def _require_loaded(self) -> None:
        if not self.loaded:
            raise FailedPrecondition("the store's schema is behind; run `scadactl db migrate` first")

    # ------------------------------------------------------------------ lookups

    def device(self, name: str, field_name: str = "params.name") -> DeviceRec:
        self._require_loaded()
        try:
            return self.devices[name]
        except KeyError:
            raise NotFound(f"no device named {name!r}", {"field": field_name}) from None

    def tag(self, path: str, field_name: str = "params.path") -> TagRec:
        self._require_loaded()
        try:
            return self.tags[path]
        except KeyError:
            raise NotFound(f"no tag {path!r}", {"field": field_name}) from None

    def tags_of(self, device: str) -> list[TagRec]:
        return [t for t in self.tags.values() if t.spec.device == device]

    # ------------------------------------------------------------------ validation

    def check_tag(self, spec: TagSpec, at: str = "params", pending: dict[str, TagSpec] | None = None) -> None:
        """Refuse a definition that could never give a value, naming the field."""
        s = spec
        if s.scan_group not in self.groups:
            raise InvalidArgument(f"no scan group {s.scan_group!r} (see `scadactl scangroup list`)", f"{at}.scan_group")
        bounds = (s.raw_low, s.raw_high, s.eng_low, s.eng_high)
        if any(b is not None for b in bounds):
            if any(b is None for b in bounds):
                raise InvalidArgument("scaling needs all four of raw_low, raw_high, eng_low, eng_high", f"{at}.raw_low")
            if s.raw_low == s.raw_high:
                raise InvalidArgument("raw_low and raw_high must differ", f"{at}.raw_high")
            if s.data_type in ("bool", "string"):
                raise InvalidArgument(f"a {s.data_type} tag cannot be scaled", f"{at}.data_type")
        if s.source == "device":
            if s.device is None:
                raise InvalidArgument("a device tag needs a device", f"{at}.device")
            if s.device not in self.devices:
                raise InvalidArgument(f"no device named {s.device!r}", f"{at}.device")
            if not s.address:
                raise InvalidArgument("a device tag needs an address", f"{at}.address")
            if s.expression is not None:
                raise InvalidArgument("only computed tags have an expression", f"{at}.expression")
            dev = self.devices[s.device].spec
            if dev.protocol == "opcua" and (s.function is not None or s.byte_order or s.word_order):
                raise InvalidArgument("function, byte_order and word_order are Modbus settings", f"{at}.function")
            problem = check_point(device_config(dev), point_config(0, s))
            if problem:
                raise InvalidArgument(problem, f"{at}.address")
        else:
            for name in ("device", "address", "function"):
                if getattr(s, name) is not None:
                    raise InvalidArgument(f"a {s.source} tag has no {name}", f"{at}.{name}")
        if s.source == "computed":
            if not s.expression:
                raise InvalidArgument("a computed tag needs an expression", f"{at}.expression")
            if s.writable:
                raise InvalidArgument("a computed tag cannot be writable", f"{at}.writable")
            try:
                expr = compile_expression(s.expression)
            except ExpressionError as exc:
                raise InvalidArgument(f"expression {exc}", f"{at}.expression") from None
            known = pending or {}
            for path in sorted(expr.inputs):
                if path not in self.tags and path not in known:
                    raise InvalidArgument(f"expression uses {path!r}, which is not a tag", f"{at}.expression")
            self._refuse_cycle(s.path, expr.inputs, known, at)
        elif s.expression is not None:
            raise InvalidArgument("only computed tags have an expression", f"{at}.expression")
        if s.initial_value is not None and s.source != "memory":
            raise InvalidArgument("only memory tags have an initial value", f"{at}.initial_value")

    def _expr_inputs(self, path: str, pending: dict[str, TagSpec]) -> frozenset[str]:
        spec = pending.get(path) or (self.tags[path].spec if path in self.tags else None)
        if spec is None or spec.source != "computed" or not spec.expression:
            return frozenset()
        try:
            return compile_expression(spec.expression).inputs
        except ExpressionError:
            return frozenset()

    def _refuse_cycle(self, path: str, inputs: Iterable[str], pending: dict[str, TagSpec], at: str) -> None:
        stack, seen = list(inputs), set()
        while stack:
            p = stack.pop()
            if p == path:
                raise InvalidArgument(f"expression of {path!r} depends on itself", f"{at}.expression")
            if p in seen:
                continue
            seen.add(p)
            stack.extend(self._expr_inputs(p, pending))

    # ------------------------------------------------------------------ devices

    async def create_device(self, spec: DeviceSpec) -> tuple[DeviceRec, Changed]:
        self._require_loaded()
        if spec.name in self.devices:
            raise AlreadyExists(f"device {spec.name!r} already exists", {"field": "params.name"})
        check_device(spec)
        ts = now_us()
        dev_id = await self.db.run(self._insert_device, spec, ts)
        rec = DeviceRec(dev_id, spec, ts, ts)
        self.devices[spec.name] = rec
        return rec, Changed(devices={spec.name})

    async def update_device(self, p: DeviceUpdate) -> tuple[DeviceRec, Changed]:
        old = self.device(p.name)
        spec, changes = _merge(old.spec, p, "name")
        if not changes:
            return old, Changed()
        check_device(spec)
        ts = now_us()
        await self.db.run(self._update_device, old.id, spec, ts)
        rec = DeviceRec(old.id, spec, old.created_us, ts)
        self.devices[spec.name] = rec
        return rec, Changed(devices={spec.name})

    async def delete_device(self, name: str, force: bool) -> Changed:
        rec = self.device(name)
        tags = self.tags_of(name)
        if tags and not force:
            raise FailedPrecondition(
                f"device {name!r} still has {len(tags)} tag(s); remove them first or delete with --force "
                "(the tags are kept, BAD with a config_error, so their history and alarms survive)",
                {"field": "params.name", "tags": len(tags)},
            )
        await self.db.run(self._delete_row, "devices", rec.id)
        del self.devices[name]
        for t in tags:
            self._put_tag(TagRec(t.id, msgspec.structs.replace(t.spec, device=None), t.created_us, t.updated_us))
        return Changed(devices={name}, tags={t.id for t in tags})

    async def import_devices(self, specs: list[DeviceSpec], update: bool, dry_run: bool) -> tuple[dict, Changed]:
        self._require_loaded()
        seen: set[str] = set()
        plan: dict[str, list[DeviceSpec]] = {"created": [], "updated": [], "unchanged": []}
        for i, spec in enumerate(specs):
            at = f"params.devices[{i}]"
            if spec.name in seen:
                raise InvalidArgument(f"device {spec.name!r} appears twice", f"{at}.name")
            seen.add(spec.name)
            check_device(spec, at)
            old = self.devices.get(spec.name)
            if old is None:
                plan["created"].append(spec)
            elif old.spec == spec:
                plan["unchanged"].append(spec)
            elif not update:
                raise AlreadyExists(f"device {spec.name!r} exists and differs (import with update)", {"field": at})
            else:
                plan["updated"].append(spec)
        names = {k: [s.name for s in v] for k, v in plan.items()}
        if dry_run:
            return names, Changed()
        ts = now_us()
        ids = await self.db.run(self._import_devices, plan["created"], plan["updated"], ts)
        for spec in plan["created"]:
            self.devices[spec.name] = DeviceRec(ids[spec.name], spec, ts, ts)
        for spec in plan["updated"]:
            old = self.devices[spec.name]
            self.devices[spec.name] = DeviceRec(old.id, spec, old.created_us, ts)
        return names, Changed(devices={s.name for s in plan["created"] + plan["updated"]})

    # ------------------------------------------------------------------ scan groups

    async def set_group(self, p: ScanGroupSet) -> tuple[GroupRec, Changed]:
        self._require_loaded()
        ts = now_us()
        old = self.groups.get(p.name)
        gid = await self.db.run(self._upsert_group, old.id if old else None, p, ts)
        rec = GroupRec(gid, p.name, p.interval_ms, p.description)
        self.groups[p.name] = rec
        users = {t.spec.device for t in self.tags.values() if t.spec.scan_group == p.name and t.spec.device}
        return rec, Changed(devices={d for d in users if d}, groups=True)

    async def delete_group(self, name: str) -> None:
        self._require_loaded()
        rec = self.groups.get(name)
        if rec is None:
            raise NotFound(f"no scan group {name!r}", {"field": "params.name"})
        if name == DEFAULT_GROUP:
            raise FailedPrecondition("the default scan group cannot be deleted", {"field": "params.name"})
        users = [t.spec.path for t in self.tags.values() if t.spec.scan_group == name]
        if users:
            raise FailedPrecondition(
                f"scan group {name!r} is used by {len(users)} tag(s), e.g. {users[0]}", {"field": "params.name"}
            )
        await self.db.run(self._delete_row, "scan_groups", rec.id)
        del self.groups[name]

    # ------------------------------------------------------------------ tags

    def _put_tag(self, rec: TagRec) -> None:
        old = self.tags_by_id.get(rec.id)
        if old is not None and old.spec.path != rec.spec.path:
            self.tags.pop(old.spec.path, None)
        self.tags[rec.spec.path] = rec
        self.tags_by_id[rec.id] = rec

    def _touched(self, *specs: TagSpec | None) -> set[str]:
        return {s.device for s in specs if s is not None and s.device}

    async def create_tag(self, spec: TagSpec) -> tuple[TagRec, Changed]:
        self._require_loaded()
        if spec.path in self.tags:
            raise AlreadyExists(f"tag {spec.path!r} already exists", {"field": "params.path"})
        self.check_tag(spec)
        ts = now_us()
        tag_id = (await self.db.run(self._import_tags, [spec], [], ts))[spec.path]
        rec = TagRec(tag_id, spec, ts, ts)
        self._put_tag(rec)
        return rec, Changed(devices=self._touched(spec), tags={tag_id})

    async def update_tag(self, p: TagUpdate) -> tuple[TagRec, Changed]:
        old = self.tag(p.path)
        spec, changes = _merge(old.spec, p, "path")
        if not changes:
            return old, Changed()
        self.check_tag(spec)
        ts = now_us()
        await self.db.run(self._import_tags, [], [(old.id, spec)], ts)
        rec = TagRec(old.id, spec, old.created_us, ts)
        self._put_tag(rec)
        return rec, Changed(devices=self._touched(old.spec, spec), tags={old.id})

    async def delete_tag(self, path: str) -> Changed:
        rec = self.tag(path)
        users = sorted(
            t.spec.path
            for t in self.tags.values()
            if t.spec.source == "computed" and path in self._expr_inputs(t.spec.path, {})
        )
        if users:
            raise FailedPrecondition(
                f"tag {path!r} is an input of computed tag(s) {', '.join(users[:5])}", {"field": "params.path"}
            )
        await self.db.run(self._delete_row, "tags", rec.id)
        del self.tags[path]
        del self.tags_by_id[rec.id]
        return Changed(devices=self._touched(rec.spec), tags={rec.id})

    async def import_tags(self, specs: list[TagSpec], update: bool, dry_run: bool) -> tuple[dict, Changed]:
        """All or nothing: every row is checked before anything is written."""
        self._require_loaded()
        pending: dict[str, TagSpec] = {}
        for i, spec in enumerate(specs):
            if spec.path in pending:
                raise InvalidArgument(f"tag {spec.path!r} appears twice", f"params.tags[{i}].path")
            pending[spec.path] = spec
        created: list[TagSpec] = []
        updated: list[tuple[int, TagSpec]] = []
        unchanged: list[str] = []
        for i, spec in enumerate(specs):
            at = f"params.tags[{i}]"
            old = self.tags.get(spec.path)
            if old is not None and old.spec == spec:
                unchanged.append(spec.path)
                continue
            if old is not None and not update:
                raise AlreadyExists(f"tag {spec.path!r} exists and differs (import with update)", {"field": at})
            self.check_tag(spec, at, pending)
            if old is None:
                created.append(spec)
            else:
                updated.append((old.id, spec))
        names = {
            "created": [s.path for s in created],
            "updated": [s.path for _, s in updated],
            "unchanged": unchanged,
        }
        if dry_run:
            return names, Changed()
        ts = now_us()
        ids = await self.db.run(self._import_tags, created, updated, ts)
        changed = Changed()
        for spec in created:
            self._put_tag(TagRec(ids[spec.path], spec, ts, ts))
            changed.tags.add(ids[spec.path])
            changed.devices |= self._touched(spec)
        for tag_id, spec in updated:
            old = self.tags_by_id[tag_id]
            changed.devices |= self._touched(old.spec, spec)
            self._put_tag(TagRec(tag_id, spec, old.created_us, ts))
            changed.tags.add(tag_id)
        return names, changed

    # ------------------------------------------------------------------ store thread

    def _device_row(self, spec: DeviceSpec) -> dict[str, Any]:
        row = {c: getattr(spec, c) for c in _DEVICE_COLUMNS}
        row["settings_json"] = json.dumps({k: getattr(spec, k) for k in _DEVICE_SETTINGS}, sort_keys=True)
        return row

    def _insert_device(self, spec: DeviceSpec, ts: int) -> int:
        with self.db.engine.begin() as conn:
            return self._insert_device_in(conn, spec, ts)

    def _insert_device_in(self, conn: Any, spec: DeviceSpec, ts: int) -> int:
        row = self._device_row(spec)
        cols = list(row)
        sql = (
            f"INSERT INTO devices ({', '.join(cols)}, created_us, updated_us)"
            f" VALUES ({', '.join(':' + c for c in cols)}, :ts, :ts) RETURNING id"
        )
        try:
            return int(conn.execute(text(sql), {**row, "ts": ts}).scalar_one())
        except IntegrityError as exc:
            raise InvalidArgument(f"device {spec.name!r} refused by the store: {exc.orig}", "params") from None

    def _update_device(self, dev_id: int, spec: DeviceSpec, ts: int) -> None:
        with self.db.engine.begin() as conn:
            self._update_device_in(conn, dev_id, spec, ts)

    def _update_device_in(self, conn: Any, dev_id: int, spec: DeviceSpec, ts: int) -> None:
        row = self._device_row(spec)
        sets = ", ".join(f"{k} = :{k}" for k in row)
        try:
            conn.execute(
                text(f"UPDATE devices SET {sets}, updated_us = :ts WHERE id = :id"), {**row, "ts": ts, "id": dev_id}
            )
        except IntegrityError as exc:
            raise InvalidArgument(f"device {spec.name!r} refused by the store: {exc.orig}", "params") from None

    def _import_devices(self, created: list[DeviceSpec], updated: list[DeviceSpec], ts: int) -> dict[str, int]:
        ids: dict[str, int] = {}
        with self.db.engine.begin() as conn:
            for spec in created:
                ids[spec.name] = self._insert_device_in(conn, spec, ts)
            for spec in updated:
                self._update_device_in(conn, self.devices[spec.name].id, spec, ts)
        return ids

    def _tag_row(self, spec: TagSpec) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for c in _TAG_COLUMNS:
            if c == "device_id":
                row[c] = self.devices[spec.device].id if spec.device else None
            elif c == "scan_group_id":
                row[c] = self.groups[spec.scan_group].id
            elif c == "function_code":
                row[c] = spec.function
            elif c == "sentinels_json":
                row[c] = json.dumps(spec.sentinels)
            else:
                row[c] = getattr(spec, c)
        return row

    def _import_tags(self, created: list[TagSpec], updated: list[tuple[int, TagSpec]], ts: int) -> dict[str, int]:
        ids: dict[str, int] = {}
        cols = list(_TAG_COLUMNS)
        insert = text(
            f"INSERT INTO tags ({', '.join(cols)}, created_us, updated_us)"
            f" VALUES ({', '.join(':' + c for c in cols)}, :ts, :ts) RETURNING id"
        )
        sets = ", ".join(f"{c} = :{c}" for c in cols)
        update = text(f"UPDATE tags SET {sets}, updated_us = :ts WHERE id = :id")
        try:
            with self.db.engine.begin() as conn:
                for spec in created:
                    ids[spec.path] = int(conn.execute(insert, {**self._tag_row(spec), "ts": ts}).scalar_one())
                for tag_id, spec in updated:
                    conn.execute(update, {**self._tag_row(spec), "ts": ts, "id": tag_id})
        except IntegrityError as exc:
            raise InvalidArgument(f"tag refused by the store: {exc.orig}", "params") from None
        return ids

    def _upsert_group(self, gid: int | None, p: ScanGroupSet, ts: int) -> int:
        with self.db.engine.begin() as conn:
            if gid is None:
                return int(
                    conn.execute(
                        text(
                            "INSERT INTO scan_groups (name, interval_ms, description, created_us, updated_us)"
                            " VALUES (:n, :ms, :d, :ts, :ts) RETURNING id"
                        ),
                        {"n": p.name, "ms": p.interval_ms, "d": p.description, "ts": ts},
                    ).scalar_one()
                )
            conn.execute(
                text("UPDATE scan_groups SET interval_ms = :ms, description = :d, updated_us = :ts WHERE id = :id"),
                {"ms": p.interval_ms, "d": p.description, "ts": ts, "id": gid},
            )
            return gid

    def _delete_row(self, table: str, row_id: int) -> None:
        try:
            with self.db.engine.begin() as conn:
                if table == "devices":
                    conn.execute(text("UPDATE tags SET device_id = NULL WHERE device_id = :id"), {"id": row_id})
                conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})
        except IntegrityError as exc:
            raise FailedPrecondition(f"still referenced: {exc.orig}") from None
