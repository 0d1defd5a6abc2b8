"""Db.*: schema version and migrations, through the daemon (scadactl never opens the store)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from scadad.api.messages import DbStatusResult, Empty, MigrateResult, Migration
from scadad.api.registry import CallContext, Service, rpc
from scadad.clock import from_us
from scadad.store import migrations
from scadad.store.database import Database


class DbService(Service):
    """Db.*: the metadata store's schema."""

    name = "Db"

    def __init__(self, db: Database, on_migrated: Callable[[], Awaitable[None]]) -> None:
        self.db = db
        self._on_migrated = on_migrated

    async def _status(self) -> DbStatusResult:
        states = await self.db.run(migrations.status, self.db)
        version = await self.db.run(self.db.server_version)
        applied = [s.version for s in states if s.applied_us is not None]
        return DbStatusResult(
            dialect=self.db.dialect,
            url=self.db.safe_url,
            server_version=version,
            current_version=max(applied, default=0),
            latest_version=max((s.version for s in states), default=0),
            migrations=[
                Migration(
                    version=s.version,
                    name=s.name,
                    applied_at=from_us(s.applied_us) if s.applied_us else None,
                    modified=not s.checksum_ok,
                )
                for s in states
            ],
        )

    @rpc(permission="system.read")
    async def status(self, ctx: CallContext, params: Empty) -> DbStatusResult:
        """Store dialect, server version and each migration with when it was applied."""
        return await self._status()

    @rpc(permission="system.admin", mutates=True)
    async def migrate(self, ctx: CallContext, params: Empty) -> MigrateResult:
        """Apply pending migrations now (the daemon also does this at start unless told not to)."""
        applied = await self.db.run(migrations.migrate, self.db)
        if applied:
            await self._on_migrated()
        status = await self._status()
        return MigrateResult(
            applied=[Migration(version=m.version, name=m.name, applied_at=None) for m in applied],
            current_version=status.current_version,
        )
