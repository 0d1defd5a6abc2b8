"""The historian's data: one sample of one tag, the quality scale, one aggregated bucket.

Time is UTC integer microseconds since the epoch (`scadad.clock`), as everywhere in the daemon.
"""

from __future__ import annotations

from enum import IntEnum

import msgspec

MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000


class Quality(IntEnum):
    """How far a value can be trusted; stored as this small integer (0/1/2) in every backend.

    The numbers are part of the file format: never renumber them.
    """

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


# Indexed by the stored integer; faster than Quality(n) on the read paths that build many samples.
QUALITY_BY_CODE: tuple[Quality, ...] = (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD)


class HistorianError(Exception):
    """A historian operation failed in a way a person can act on (the message says how)."""


# A Struct rather than a dataclass: millions of these pass through the writer, and a frozen,
# gc-less Struct is several times cheaper to build and to encode for the spool (array_like
# encodes it as a 4-element array, no field names repeated per sample).
class Sample(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One recorded value of one tag.

    `value` is None when there is no number to record (a BAD read). NaN is stored as None
    too: SQLite has no NaN, and a NaN is no more usable than a missing value.
    """

    tag_id: int
    ts_us: int
    value: float | None
    quality: Quality


class Aggregate(msgspec.Struct, frozen=True, gc=False):
    """One time bucket of one tag, [bucket_us, bucket_us + width).

    The signal is a step function: each value holds from its timestamp until the next
    sample (or the bucket end); the value held when the bucket opens (the last sample
    before it) is carried in until the first sample inside the bucket.

    * `avg` is time-weighted over the time a usable value held (`held_us`).
    * `min` / `max` cover every usable value that held for some time inside the bucket,
      including the carried-in one, so min <= avg <= max always.
    * "Usable" means quality GOOD or UNCERTAIN with a number. A BAD sample (or one with no
      value) ends the previous value's hold and contributes nothing to min/max/avg: the
      time it covers is simply absent from `held_us`. It is counted in `bad_count`.
    * `count` is the number of usable samples inside the bucket (the carried-in one is not
      counted); `count + bad_count` is every sample inside it.
    * `last` is the value held at the bucket end: None when the last sample was BAD.
    * min/max/avg are None when no usable value held at all during the bucket.

    Buckets with no sample inside them are not returned (the value carried through them
    shows up as the next bucket's carried-in value).
    """

    bucket_us: int
    min: float | None
    max: float | None
    avg: float | None
    last: float | None
    count: int
    bad_count: int
    held_us: int
