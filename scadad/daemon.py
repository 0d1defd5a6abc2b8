"""Wiring: builds the subsystems from the config, serves until told to stop.

Start order matters: lock the store and the socket first (a second daemon must not
touch anything), migrate, load the plant into memory, then open the socket, then tell
systemd we are ready. Stop order is the reverse, and every step runs even if an
earlier one failed, so a SIGTERM always leaves a consistent store behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import signal
import time
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from zoneinfo import ZoneInfo

import msgspec

from scadad import __version__, clock, logs, sdnotify
from scadad.acquisition import Acquisition
from scadad.alarms.manager import Alarms
from scadad.alarms.service import AlarmRulesService, AlarmsService
from scadad.api.alarm_messages import AlarmRuleSpec
from scadad.api.messages import StatusResult, SubsystemStatus
from scadad.api.protocol import PROTOCOL_VERSION
from scadad.api.registry import Registry
from scadad.api.server import ApiServer, ServerLimits, StreamService
from scadad.api.tag_messages import SimStart
from scadad.audit import AuditLog, AuditService
from scadad.auth.manager import AuthManager
from scadad.auth.permissions import CATALOGUE, PUBLIC, SELF
from scadad.auth.service import AuthService, RolesService, SessionsService, TokensService, UsersService
from scadad.bus import Bus
from scadad.config import RELOADABLE, Config, ConfigError, changed_keys, load, resolve_path
from scadad.energy.service import Energy, EnergyService, MetersService, MeterTemplatesService
from scadad.historian import HistorianWriter, SqliteHistorian
from scadad.instance import InstanceLock
from scadad.simulate import EnergyPlan, SimService
from scadad.sites import EquipmentService, PlantModel, SitesService
from scadad.store import migrations
from scadad.store.database import Database
from scadad.store.service import DbService
from scadad.system import SystemService
from scadad.tags.catalog import Catalog
from scadad.tags.service import DevicesService, HistoryService, ScanGroupsService, TagsService
from scadad.tags.table import GOOD, TagTable

log = logging.getLogger("scadad")

DECLARABLE = frozenset(CATALOGUE) | {PUBLIC, SELF}


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


class Daemon:
    """One scadad process: the owner of the store, the plant model and the socket."""

    def __init__(self, config: Config, log_overrides: dict[str, str] | None = None) -> None:
        self.config = config
        # --log-format / --log-level from the command line outlive a SIGHUP reload.
        self.log_overrides = dict(log_overrides or {})
        self._boot_settings = msgspec.convert(msgspec.to_builtins(config.settings), type(config.settings))
        # First, so every timestamp from here on (start time included) follows the setting.
        fixed = config.settings.simulator.fixed_clock
        clock.set_fixed(clock.to_us(fixed) if fixed is not None else None)
        self.started_us = 0
        self.started_at = clock.now()
        self._monotonic_start = time.monotonic()
        self.db = Database(config.store_url)
        self.lock = InstanceLock()
        self.plant = PlantModel(self.db)
        self.bus = Bus()
        self.audit = AuditLog(self.db, config.settings.auth.audit_max_records, self.bus)
        self.auth = AuthManager(self.db, config.settings.auth, config.settings.site.name, self.audit)
        self.catalog = Catalog(self.db)
        hs = config.settings.historian
        self.historian: SqliteHistorian | None = None
        self.writer: HistorianWriter | None = None
        self.historian_path = (
            resolve_path(hs.path, config.path.parent if config.path else None) if hs.path
            else config.data_dir / "historian.db"
        )  # fmt: skip
        self.table = TagTable(self.bus)
        self.acq = Acquisition(self.catalog, self.table, self.bus, config.settings.acquisition)
        self.alarms = Alarms(
            self.db, self.catalog, self.table, self.bus, config.settings.alarms, config.settings.smtp,
            config.settings.site.name, ZoneInfo(config.settings.site.timezone),
        )  # fmt: skip
        self.acq.listeners.append(self.alarms.on_catalog_change)
        self.energy = Energy(
            self.db, self.catalog, self.plant, self.table, self.acq, config.settings.energy,
            config.settings.site.name, config.settings.site.timezone,
        )  # fmt: skip
        self.acq.listeners.append(self.energy.on_catalog_change)
        self.energy.add_alarms = self._add_energy_alarms
        self.sim = SimService(
            self.catalog,
            self.acq,
            seed=config.settings.simulator.seed,
            add_alarms=self._add_sim_alarms,
            add_energy=self._add_sim_energy,
        )
        self.plant_started = False
        self._retention_task: asyncio.Task[None] | None = None
        self.registry = Registry()
        s = config.settings.api
        self.limits = ServerLimits(s.max_frame_bytes, s.idle_timeout_s, s.max_inflight)
        self.server = ApiServer(self.registry, self.limits, authorize=self.auth.authorize, audit=self.audit.record)
        for service in (
            SystemService(self.registry, self.status),
            StreamService(self.server),
            DbService(self.db, self._after_migration),
            SitesService(self.plant),
            EquipmentService(self.plant),
            AuthService(self.auth),
            UsersService(self.auth),
            RolesService(self.auth, self.registry),
            SessionsService(self.auth),
            TokensService(self.auth),
            AuditService(self.audit),
            DevicesService(self.catalog, self.acq),
            ScanGroupsService(self.catalog, self.acq),
            TagsService(self.catalog, self.table, self.acq),
            HistoryService(self.catalog, lambda: self.historian),
            AlarmRulesService(self.alarms),
            AlarmsService(self.alarms),
            MeterTemplatesService(self.energy),
            MetersService(self.energy),
            EnergyService(self.energy),
            self.sim,
        ):
            self.registry.add_service(service)
        unknown = [f"{m.name}: {m.permission}" for m in self.registry if m.permission not in DECLARABLE]
        if unknown:
            raise ValueError(f"methods declare permissions missing from the catalogue: {', '.join(unknown)}")
        self.schema_ready = False
        self.store_version = ""
        self.restart_pending: list[str] = []
        self.reloaded_at: datetime | None = None
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> None:
        """Blocking start-up work before the loop serves: lock, migrate, load."""
        self.lock.acquire_store(self.db, self.config.socket_path)
        self.lock.check_socket(self.config.socket_path)
        self.store_version = self.db.server_version()
        self._open_historian()
        if self.config.settings.store.auto_migrate:
            applied = migrations.migrate(self.db)
            for m in applied:
                log.info("migration applied", extra={"fields": {"version": m.version, "name": m.name}})
        self._load_if_current()

    def _load_if_current(self) -> None:
        states = migrations.status(self.db)
        for m in states:
            if not m.checksum_ok:
                log.warning(
                    "migration file changed after it was applied; the store keeps the old form",
                    extra={"fields": {"version": m.version, "name": m.name}},
                )
        pending = [m for m in states if m.applied_us is None]
        if pending:
            self.schema_ready = False
            log.warning(
                "schema is behind; plant data is not loaded until `scadactl db migrate`",
                extra={"fields": {"pending": ",".join(f"{m.version:04d}" for m in pending)}},
            )
            return
        self.plant.load()
        self.catalog.load()
        self.alarms.load()
        self.energy.load()
        self.audit.load()
        self.auth.load()
        self.schema_ready = True

    async def _after_migration(self) -> None:
        await self.db.run(self._load_if_current)
        await self._start_plant()

    def _open_historian(self) -> None:
        hs = self.config.settings.historian
        if not hs.enabled:
            return
        self.historian_path.parent.mkdir(parents=True, exist_ok=True)
        self.historian = SqliteHistorian(self.historian_path)

    async def _start_plant(self) -> None:
        """Start the historian writer, the tag table and the pollers (once the schema is current)."""
        if self.plant_started or not self.schema_ready:
            return
        self.plant_started = True
        hs = self.config.settings.historian
        restore: dict[int, float | None] = {}
        if self.historian is not None:
            self.writer = HistorianWriter(
                self.historian, max_queue=hs.max_queue, batch_size=hs.batch_size, flush_interval_s=hs.flush_interval_s
            )
            self.writer.start()
            self.table.submit = self.writer.submit
            memory = [r.id for r in self.catalog.tags.values() if r.spec.source == "memory"]
            if memory:
                found = await asyncio.to_thread(self.historian.latest, memory)
                restore = {tid: s.value for tid, s in found.items() if s.value is not None}
            self._retention_task = asyncio.create_task(self._retention_loop(), name="historian retention")
        # Alarms first: they see every value the pollers and memory tags produce.
        await self.alarms.start()
        await self.acq.start(restore)
        # After the pollers: meters resolve their points against the live tag table.
        await self.energy.start()
        sim = self.config.settings.simulator
        if sim.enabled:
            try:
                await self.sim.start_plant(
                    SimStart(
                        devices=sim.devices or None,
                        types=sim.types,
                        tags_per_device=sim.tags_per_device,
                        base_port=sim.base_port,
                        site=sim.site,
                        scan_ms=sim.scan_ms,
                        alarms=sim.alarms,
                        meters=sim.meters,
                    )  # fmt: skip
                )
            except Exception as exc:  # noqa: BLE001 - the daemon serves on without its demo plant
                log.error("simulated plant did not start", extra={"fields": {"error": str(exc)}})

    async def _add_sim_energy(self, plan: EnergyPlan) -> None:
        """The demo meters, made once (a meter someone changed since is left as it is)."""
        cat = self.energy.catalog
        _, changed = await self.catalog.import_tags(plan.tags, update=True, dry_run=False)
        self.acq.apply(changed)
        for spec in plan.meters:
            if spec.name not in cat.meters:
                _, changed = await cat.create_meter(spec)
                self.energy.applied(changed)
        for g in plan.generators:
            if g.meter not in cat.generators:
                await cat.set_generator(g)
        for r in plan.renewables:
            if r.meter not in cat.renewables:
                await cat.set_renewable(r)
        await self.energy.ensure_alarm_tags()

    async def _add_energy_alarms(self, rules: list[AlarmRuleSpec]) -> None:
        """Loss and theft alarm rules, added once (an engineer's later edits are kept)."""
        new = [r for r in rules if f"{r.tag}:{r.kind}" not in self.alarms.book.by_name]
        if new:
            await self.alarms.import_rules(new, update=False, dry_run=False)

    async def _add_sim_alarms(self, rules: list[AlarmRuleSpec]) -> None:
        await self.alarms.import_rules(rules, update=True, dry_run=False)

    async def _retention_loop(self) -> None:
        """Hourly: drop history older than the global or per-tag retention."""
        while True:
            try:
                await self._apply_retention()
            except Exception as exc:  # noqa: BLE001 - retried next hour; ingest goes on
                log.error("historian retention failed", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(3600)

    async def _apply_retention(self) -> None:
        h = self.historian
        if h is None:
            return
        # The daemon's clock, as the samples' timestamps: under a fixed clock nothing written
        # at that instant ages out, whatever the real date.
        now = clock.now_us()
        day = 86_400_000_000
        days = self.config.settings.historian.retention_days
        per_tag = {r.id: r.spec.retention_days for r in self.catalog.tags.values() if r.spec.retention_days}
        for tag_id, d in per_tag.items():
            await asyncio.to_thread(h.apply_retention, now - d * day, tag_id)
        if days:
            if per_tag:
                # Tags with their own retention may keep data longer than the global one.
                for r in self.catalog.tags.values():
                    if r.id not in per_tag:
                        await asyncio.to_thread(h.apply_retention, now - days * day, r.id)
            else:
                await asyncio.to_thread(h.apply_retention, now - days * day)

    async def _stop_plant(self) -> None:
        if self._retention_task is not None:
            self._retention_task.cancel()
        # Each step is bounded so one stuck peer cannot keep the historian from draining.
        for what, step in (("simulator", self.sim.stop_plant), ("pollers", self.acq.stop)):
            try:
                await asyncio.wait_for(step(), 3)
            except TimeoutError:
                log.error("stopping took too long; going on", extra={"fields": {"step": what}})
        try:
            await asyncio.wait_for(self.energy.stop(), 10)
        except TimeoutError:
            log.error("writing the energy readings took too long; going on")
        try:
            await asyncio.wait_for(self.alarms.stop(), 10)
        except TimeoutError:
            log.error("writing the alarm journal took too long; going on")
        if self.writer is not None:
            st = self.writer.stats
            if st.queue_depth or st.in_flight:
                log.info("draining the historian", extra={"fields": {"queued": st.queue_depth + st.in_flight}})
            await self.writer.close()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        s = self.config.settings.api
        await self._start_plant()
        await self.server.start(self.config.socket_path, self.config.socket_mode, s.socket_group or None)
        elapsed_ms = (time.monotonic() - self._monotonic_start) * 1000
        fixed = clock.fixed_us()
        if fixed is not None:
            log.warning(
                "wall clock fixed: every timestamp is this instant; expiry and retention stand still",
                extra={"fields": {"fixed_clock": clock.from_us(fixed).isoformat()}},
            )
        log.info(
            "ready",
            extra={
                "fields": {
                    "version": __version__,
                    "store": self.db.safe_url,
                    "socket": str(self.config.socket_path),
                    "startup_ms": round(elapsed_ms, 1),
                }
            },
        )
        sdnotify.notify("READY=1")
        await self._stop.wait()
        sdnotify.notify("STOPPING=1")
        log.info("stopping")
        await self.server.close()
        await self._stop_plant()

    def _request_stop(self, sig: signal.Signals) -> None:
        log.info("signal received", extra={"fields": {"signal": sig.name}})
        self._stop.set()

    def close(self) -> None:
        """Flush and release everything; safe after a failed start."""
        try:
            self.auth.close()
            if self.historian is not None:
                self.historian.close()
            self.db.close()
        finally:
            self.lock.release()
            clock.set_fixed(None)

    # ------------------------------------------------------------------ reload

    def reload(self) -> None:
        """SIGHUP: re-read the config, apply what can change live, report the rest."""
        path = self.config.path
        try:
            new = load(path)
        except ConfigError as exc:
            log.error("reload refused; keeping the running configuration", extra={"fields": {"error": str(exc)}})
            return
        for key, value in self.log_overrides.items():
            setattr(new.settings.log, key, value)
        live = [k for k in changed_keys(self.config.settings, new.settings) if k in RELOADABLE]
        # Restart-only keys are compared with what this process started with, so
        # reverting a change and reloading again clears the "restart needed" state.
        later = [k for k in changed_keys(self._boot_settings, new.settings) if k not in RELOADABLE]
        a = new.settings.api
        self.limits.max_frame_bytes = a.max_frame_bytes
        self.limits.idle_timeout_s = a.idle_timeout_s
        self.limits.max_inflight = a.max_inflight
        logs.setup(new.settings.log.level, new.settings.log.format)
        # Keep the restart-only values the process is really running with.
        old = self.config
        merged = new.settings
        merged.paths = old.settings.paths
        merged.store = old.settings.store
        merged.api.socket = old.settings.api.socket
        merged.api.socket_mode = old.settings.api.socket_mode
        merged.api.socket_group = old.settings.api.socket_group
        self.config = Config(old.path, merged, old.data_dir, old.socket_path, old.store_url)
        self.auth.settings = merged.auth
        self.acq.settings.reconnect_min_s = merged.acquisition.reconnect_min_s
        self.acq.settings.reconnect_max_s = merged.acquisition.reconnect_max_s
        self.audit.max_records = merged.auth.audit_max_records
        self.restart_pending = later
        self.reloaded_at = clock.now()
        log.info(
            "configuration reloaded",
            extra={"fields": {"applied": ",".join(live) or "-", "needs_restart": ",".join(later) or "-"}},
        )
        for key in later:
            log.warning("change needs a restart to take effect", extra={"fields": {"key": key}})

    # ------------------------------------------------------------------ status

    async def status(self) -> StatusResult:
        subs = [
            self._config_status(),
            await self._store_status(),
            self._api_status(),
            self._auth_status(),
            self._plant_status(),
            self._acquisition_status(),
            self._alarms_status(),
            self._energy_status(),
            self._historian_status(),
        ]
        return StatusResult(
            version=__version__,
            protocol=PROTOCOL_VERSION,
            pid=os.getpid(),
            site=self.config.settings.site.name,
            timezone=self.config.settings.site.timezone,
            started_at=self.started_at,
            uptime_s=round(time.monotonic() - self._monotonic_start, 3),
            config_path=str(self.config.path or ""),
            subsystems=subs,
            versions={
                "scadad": __version__,
                "python": platform.python_version(),
                "store": self.store_version,
                "sqlalchemy": _pkg_version("sqlalchemy"),
                "psycopg": _pkg_version("psycopg"),
                "msgspec": _pkg_version("msgspec"),
            },
        )

    def _config_status(self) -> SubsystemStatus:
        pending = self.restart_pending
        return SubsystemStatus(
            name="config",
            state="degraded" if pending else "ok",
            detail=f"restart needed for: {', '.join(pending)}" if pending else "as loaded",
            info={
                "path": str(self.config.path or "<defaults>"),
                "reloaded_at": self.reloaded_at.isoformat() if self.reloaded_at else None,
            },
        )

    async def _store_status(self) -> SubsystemStatus:
        info = {"dialect": self.db.dialect, "url": self.db.safe_url, "server": self.store_version}
        try:
            states = await asyncio.wait_for(self.db.run(migrations.status, self.db), timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - any failure here means "store down"
            return SubsystemStatus(name="store", state="down", detail=f"unreachable: {exc}", info=info)
        pending = [s.version for s in states if s.applied_us is None]
        edited = [f"{s.version:04d}" for s in states if not s.checksum_ok]
        info["schema_version"] = max((s.version for s in states if s.applied_us is not None), default=0)
        if pending:
            return SubsystemStatus(
                name="store",
                state="degraded",
                detail=f"{len(pending)} migration(s) pending; run `scadactl db migrate`",
                info=info,
            )
        if edited:
            return SubsystemStatus(
                name="store",
                state="degraded",
                detail=f"migration file(s) {', '.join(edited)} changed after they were applied",
                info=info,
            )
        return SubsystemStatus(name="store", state="ok", detail=f"schema {info['schema_version']:04d}", info=info)

    def _api_status(self) -> SubsystemStatus:
        st = self.server.stats
        return SubsystemStatus(
            name="api",
            state="ok",
            detail=f"{len(self.server.connections)} connection(s)",
            info={
                "socket": str(self.config.socket_path),
                "methods": len(self.registry),
                "connections": len(self.server.connections),
                "connections_total": st.connections_total,
                "calls_total": st.calls_total,
                "errors_total": st.errors_total,
                "max_frame_bytes": self.limits.max_frame_bytes,
                "bus_subscribers": self.bus.subscribers(),
                "bus_published": dict(self.bus.published),
                "bus_dropped_subscribers": dict(self.bus.drops),
                "idle_timeout_s": self.limits.idle_timeout_s,
            },
        )

    def _auth_status(self) -> SubsystemStatus:
        a = self.auth.settings
        modes = [m for m, on in (("local_admin", a.local_admin), ("anonymous_viewer", a.anonymous_viewer)) if on]
        if a.unix_identity != "off":
            modes.append(f"unix_identity={a.unix_identity}")
        info = {
            "users": len(self.auth.users),
            "sessions": len(self.auth.sessions),
            "audit_records": self.audit.count,
            "audit_cap": self.audit.max_records,
            "modes": modes,
        }
        if self.audit.fill >= 0.9:
            return SubsystemStatus(
                name="auth", state="degraded",
                detail=f"audit log at {self.audit.fill:.0%} of its cap ({self.audit.count} records)", info=info,
            )  # fmt: skip
        if self.schema_ready and not self.auth.admin_exists() and not a.local_admin:
            return SubsystemStatus(
                name="auth", state="degraded",
                detail="no administrator yet: `scadactl user add NAME --admin` on this host", info=info,
            )  # fmt: skip
        detail = f"{len(self.auth.users)} user(s), {len(self.auth.sessions)} session(s)"
        return SubsystemStatus(
            name="auth", state="ok", detail=detail + (f"; {', '.join(modes)}" if modes else ""), info=info
        )

    def _plant_status(self) -> SubsystemStatus:
        if not self.schema_ready:
            return SubsystemStatus(name="plant", state="down", detail="not loaded: schema is behind")
        return SubsystemStatus(
            name="plant",
            state="ok",
            detail=f"{len(self.plant.sites)} site(s), {len(self.plant.equipment)} equipment",
            info={"sites": len(self.plant.sites), "equipment": len(self.plant.equipment)},
        )

    def _acquisition_status(self) -> SubsystemStatus:
        if not self.plant_started:
            return SubsystemStatus(name="acquisition", state="down", detail="not started: schema is behind")
        states: dict[str, int] = {}
        for name in self.catalog.devices:
            st = self.acq.state_of(name)
            states[st] = states.get(st, 0) + 1
        tags = len(self.table.by_id)
        good = sum(1 for t in self.table.by_id.values() if t.quality is GOOD)
        info = {
            "devices": len(self.catalog.devices),
            "device_states": states,
            "tags": tags,
            "tags_good": good,
            "values_total": self.table.values_total,
            "jitter_p99_ms": self.acq.jitter_p99_ms(),
            "simulator": self.sim.sim is not None,
        }
        down = states.get("offline", 0) + states.get("connecting", 0)
        detail = f"{len(self.catalog.devices)} device(s), {tags} tag(s), {good} GOOD"
        return SubsystemStatus(name="acquisition", state="degraded" if down else "ok", detail=detail, info=info)

    def _historian_status(self) -> SubsystemStatus:
        if self.historian is None:
            return SubsystemStatus(name="historian", state="ok", detail="disabled")
        info: dict[str, object] = {"path": str(self.historian_path)}
        if self.writer is None:
            return SubsystemStatus(name="historian", state="down", detail="writer not started", info=info)
        st = self.writer.stats
        info.update(
            submitted=st.submitted, committed=st.committed, dropped=st.dropped, queue_depth=st.queue_depth,
            errors=st.errors, last_error=st.last_error,
        )  # fmt: skip
        state = "degraded" if st.dropped or st.last_error else "ok"
        return SubsystemStatus(
            name="historian", state=state, detail=f"{st.committed} sample(s) committed, {st.queue_depth} queued",
            info=info,
        )  # fmt: skip

    def _alarms_status(self) -> SubsystemStatus:
        if not self.plant_started:
            return SubsystemStatus(name="alarms", state="down", detail="not started: schema is behind")
        e = self.alarms.engine
        c = e.counts()
        info = {
            "rules": len(e.rules), "active": c.active, "unacked": c.unacked, "shelved": c.shelved,
            "suppressed": c.suppressed, "out_of_service": c.out_of_service, "evaluations": e.evaluations,
            "transitions": e.transitions, "journal_written": e.journal_written, "journal_pending": e.pending,
            "journal_errors": e.journal_errors, "journal_dropped": e.journal_dropped, "last_error": e.last_error,
            "email": self.alarms.notifier.status() if self.alarms.notifier.enabled else "off",
        }  # fmt: skip
        state = "degraded" if e.pending > 10_000 or e.journal_dropped else "ok"
        detail = f"{len(e.rules)} rule(s), {c.active} active, {c.unacked} unacknowledged"
        return SubsystemStatus(name="alarms", state=state, detail=detail, info=info)

    def _energy_status(self) -> SubsystemStatus:
        if not self.plant_started:
            return SubsystemStatus(name="energy", state="down", detail="not started: schema is behind")
        cat, eng = self.energy.catalog, self.energy.engine
        statuses: dict[str, int] = {}
        for lv in eng.live.values():
            statuses[lv.status] = statuses.get(lv.status, 0) + 1
        info = {
            "meters": len(cat.meters), "templates": len(cat.templates), "meter_status": statuses,
            "readings_written": eng.readings_written, "pending_rows": len(eng.pending), "last_error": eng.last_error,
            "template_errors": cat.template_errors,
        }  # fmt: skip
        state = "degraded" if cat.template_errors or eng.last_error else "ok"
        detail = f"{len(cat.meters)} meter(s), {len(cat.templates)} template(s)"
        if cat.template_errors:
            detail += f"; template errors: {cat.template_errors[0]}"
        return SubsystemStatus(name="energy", state=state, detail=detail, info=info)
