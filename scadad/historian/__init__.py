"""The historian: (tag, time, value, quality) history with minute and hour rollups.

How the tag engine uses it
--------------------------
    historian = SqliteHistorian(data_dir / "historian.db")      # or a remote Backend,
    writer = HistorianWriter(historian)                         #   wrapped in SpooledBackend
    writer.start()                                              # on the daemon's event loop
    ...
    ok = writer.submit([Sample(tag_id, ts_us, value, Quality.GOOD), ...])   # never blocks
    ...
    await writer.close()                                        # drains, then closes

* `tag_id` is the integer id of the tag in the metadata store (the historian knows no
  names); `ts_us` is the source time in UTC microseconds (`scadad.clock`); `value` is a
  float or None; quality BAD with value None on a failed read, so the history shows the
  gap instead of a stale value.
* `submit` is all or nothing and returns False (counted in `writer.stats.dropped`) when the
  bounded queue is full. `writer.committed_through` / `writer.stats` say what is durable.
* Writing the same (tag_id, ts_us) twice keeps the last value: re-submitting after a
  restart is harmless, and a setpoint written at the instant of an earlier sample (a fixed
  daemon clock) is what history shows and a restart restores.
* Reads (`query_raw`, `query_aggregate`, `latest`) are plain blocking methods on the
  historian, safe from any thread: call them with `asyncio.to_thread` from the loop.
* `query_aggregate` is time-weighted; see `Aggregate` for exactly what each field means
  (BAD samples are excluded from min/max/avg and counted in `bad_count`).
* Retention is `historian.apply_retention(before_us, tag_id=None)`, for the scheduler.

Modules: `model` (data), `rollup` (pure bucket math), `sqlite` (the embedded store),
`spool` (Backend protocol, store-and-forward for remote backends), `writer` (asyncio face).
"""

from scadad.historian.model import HOUR_US, MINUTE_US, Aggregate, HistorianError, Quality, Sample
from scadad.historian.spool import Backend, Maintained, SpooledBackend, SpoolStats
from scadad.historian.sqlite import RetentionResult, SqliteHistorian
from scadad.historian.writer import HistorianWriter, WriterStats

__all__ = [
    "HOUR_US",
    "MINUTE_US",
    "Aggregate",
    "Backend",
    "HistorianError",
    "HistorianWriter",
    "Maintained",
    "Quality",
    "RetentionResult",
    "Sample",
    "SpoolStats",
    "SpooledBackend",
    "SqliteHistorian",
    "WriterStats",
]
