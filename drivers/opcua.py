"""OPC UA client driver (asyncua; tested with 2.1): protocol ``opcua``.

One ``asyncua.Client`` session per device (``DeviceConfig.endpoint_url``,
security None, optional ``username`` / ``password`` in ``settings``). A
point's ``address`` is a node id (``ns=2;s=Pump1.Flow``, ``i=2258``,
``ns=3;g=<uuid>``, ``ns=1;b=<base64>``); namespace URIs (``nsu=``) are refused
at configure time, as the index they stand for is only known on the server.

Two modes (``DeviceConfig.opcua_mode``):

* ``subscribe`` (default): ``connect`` creates one subscription
  (``settings["publishing_interval_ms"]``, default 500) with one data-change
  monitored item per configured node. Notifications land in a cache;
  ``read`` answers from it, with each value's SourceTimestamp in
  ``Batch.source_us``. A point without a notification yet reads
  (COMM_FAILURE, "no value received yet"); a monitored item the server
  refused (unknown node) reads (DEVICE_EXCEPTION, "BadNodeIdUnknown"). Every
  ``read`` still costs one tiny request (the server's ``ServerStatus.State``,
  within ``timeout_s``): that is the connection check, so a dead server or
  session raises DriverError(COMM_FAILURE) within about ``timeout_s`` instead
  of serving the cache forever, and the request's round trip is the
  latency recorded in ``health``. A subscription that falls silent (no
  publish response, not even a keep-alive, for several keep-alive periods)
  or that the server reports lost also raises. If the server refuses
  subscriptions, the driver falls back to polling: ``mode_in_use`` says which
  mode runs, ``fallback_reason`` why.
* ``poll``: ``read`` reads all of the group's nodes in one Read service call.

Values are coerced to the point's ``data_type`` (bool, int16, uint16, int32,
uint32, int64, float32, float64, string): numbers are rounded to integers
and range-checked (OUT_OF_RANGE), float32 is rounded to single precision, a
DateTime becomes UTC µs (integers), epoch seconds (floats) or ISO text. A bad
StatusCode gives (DEVICE_EXCEPTION, status name); an uncertain one still
delivers its value. ``write`` sends a Variant of the type matching the
point's data_type (Boolean, Int16, UInt16, Int32, UInt32, Int64, Float,
Double, String), so the data_type must match the variable's DataType.

Reconfiguring while connected updates the subscription (adds and removes
monitored items, in the background and before the next ``read``); if that
fails the subscription is created afresh, and if that fails too the driver
polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import DataChangeNotif, Subscription

from drivers import clock
from drivers.base import Batch, DeviceConfig, Driver, DriverError, PointConfig, Reason, Value

__all__ = ["DATA_TYPES", "OpcUaDriver"]

log = logging.getLogger(__name__)

DATA_TYPES: dict[str, ua.VariantType] = {
    "bool": ua.VariantType.Boolean,
    "int16": ua.VariantType.Int16,
    "uint16": ua.VariantType.UInt16,
    "int32": ua.VariantType.Int32,
    "uint32": ua.VariantType.UInt32,
    "int64": ua.VariantType.Int64,
    "float32": ua.VariantType.Float,
    "float64": ua.VariantType.Double,
    "string": ua.VariantType.String,
}
"""The point data types this driver reads and writes, and the OPC UA type written for each."""

_INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_F32 = struct.Struct("<f")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# Service results that mean the channel or session is gone: the caller must reconnect.
_COMM_STATUSES = frozenset(
    {
        "BadCommunicationError",
        "BadConnectionClosed",
        "BadDisconnect",
        "BadNotConnected",
        "BadRequestTimeout",
        "BadSecureChannelClosed",
        "BadSecureChannelIdInvalid",
        "BadSecureChannelTokenUnknown",
        "BadServerHalted",
        "BadServerNotConnected",
        "BadSessionClosed",
        "BadSessionIdInvalid",
        "BadSessionNotActivated",
        "BadShutdown",
        "BadTcpInternalError",
        "BadTimeout",
    }
)

_SERVER_STATE = ua.NodeId(ua.ObjectIds.Server_ServerStatus_State)
_KEEPALIVE_S = 5.0  # asked-for keep-alive period of the subscription
_MAX_ITEMS_PER_CALL = 500  # monitored items per CreateMonitoredItems request


def _status_name(status: ua.StatusCode | int) -> str:
    code = status if isinstance(status, ua.StatusCode) else ua.StatusCode(status)
    try:
        return code.name
    except Exception:
        return f"0x{code.value:08X}"


def _to_us(stamp: datetime | None) -> int | None:
    """UTC µs of an OPC UA DateTime; None for a missing or null (1601) one."""
    if stamp is None or stamp.year <= 1601:
        return None
    if stamp.tzinfo is None:  # asyncua's naive datetimes are UTC
        stamp = stamp.replace(tzinfo=UTC)
    return (stamp - _EPOCH) // _US


def _first_status(statuses: Sequence[ua.StatusCode]) -> ua.StatusCode:
    return statuses[0] if statuses else ua.StatusCode(ua.StatusCodes.BadUnexpectedError)


class _BadValue(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _coerce(raw: Any, data_type: str, vtype: str) -> Value:
    """A value read from the server as ``data_type``; raises _BadValue."""
    if isinstance(raw, datetime):
        us = _to_us(raw)
        if data_type == "string":
            return raw.isoformat()
        if us is None or data_type == "bool":
            raise _BadValue(Reason.CONFIG_ERROR, f"DateTime {raw.isoformat()} cannot be read as {data_type}")
        raw = us / 1e6 if data_type in ("float32", "float64") else us
    if data_type == "string":
        if isinstance(raw, bytes):
            return raw.decode("utf-8", "replace")
        if isinstance(raw, ua.LocalizedText):
            return raw.Text or ""
        if isinstance(raw, ua.QualifiedName):
            return raw.Name or ""
        return str(raw)
    if isinstance(raw, str | bytes) or not isinstance(raw, bool | int | float):
        raise _BadValue(Reason.CONFIG_ERROR, f"a {vtype} value cannot be read as {data_type}")
    if data_type == "bool":
        return bool(raw)
    if data_type == "float64":
        return float(raw)
    if data_type == "float32":
        try:
            return _F32.unpack(_F32.pack(float(raw)))[0]
        except OverflowError:
            raise _BadValue(Reason.OUT_OF_RANGE, f"value {raw!r} outside the float32 range") from None
    low, high = _INT_RANGES[data_type]
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise _BadValue(Reason.OUT_OF_RANGE, f"value {raw!r} cannot be read as {data_type}")
        raw = round(raw)
    value = int(raw)
    if not low <= value <= high:
        raise _BadValue(Reason.OUT_OF_RANGE, f"value {value} outside the {data_type} range {low}..{high}")
    return value


def _variant(value: Value, data_type: str) -> ua.Variant:
    """The Variant written for ``value`` to a point of ``data_type``; raises DriverError."""
    vtype = DATA_TYPES[data_type]
    try:
        if data_type == "string":
            return ua.Variant(str(value), vtype)
        if data_type == "bool":
            if isinstance(value, str):
                text = value.strip().lower()
                if text not in ("true", "false", "1", "0", "on", "off"):
                    raise ValueError(value)
                return ua.Variant(text in ("true", "1", "on"), vtype)
            return ua.Variant(bool(value), vtype)
        if data_type in ("float32", "float64"):
            number = float(value)
            if data_type == "float32" and math.isfinite(number):
                try:
                    _F32.pack(number)
                except OverflowError:
                    raise DriverError(Reason.OUT_OF_RANGE, f"{value!r} outside the float32 range") from None
            return ua.Variant(number, vtype)
        number = float(value) if isinstance(value, str) and not value.strip().lstrip("+-").isdigit() else value
        if isinstance(number, float):
            if not math.isfinite(number):
                raise DriverError(Reason.OUT_OF_RANGE, f"{value!r} cannot be written as {data_type}")
            number = round(number)
        integer = int(number)
    except (TypeError, ValueError):
        raise DriverError(Reason.CONFIG_ERROR, f"cannot write {value!r} as {data_type}") from None
    low, high = _INT_RANGES[data_type]
    if not low <= integer <= high:
        raise DriverError(Reason.OUT_OF_RANGE, f"{value!r} outside the {data_type} range {low}..{high}")
    return ua.Variant(integer, vtype)


def parse_address(point: PointConfig) -> tuple[ua.NodeId | None, str | None]:
    """(node id, None) for a usable point, else (None, why it is not)."""
    if point.data_type not in DATA_TYPES:
        return None, f"data_type: {point.data_type!r} is not one of {', '.join(DATA_TYPES)}"
    text = (point.address or "").strip()
    example = "e.g. ns=2;s=Pump1.Flow or i=2258"
    try:
        nodeid = ua.NodeId.from_string(text)
    except Exception:
        return None, f"address: not an OPC UA node id: {point.address!r} ({example})"
    if isinstance(nodeid, ua.ExpandedNodeId):
        return None, f"address: namespace URIs and server indexes are not supported in {text!r}; use ns=<index>"
    return nodeid, None


@dataclass(slots=True)
class _Item:
    point: PointConfig
    nodeid: ua.NodeId | None
    error: str | None


class _Handler:
    """Subscription callbacks (called in their own tasks by asyncua)."""

    def __init__(self, driver: OpcUaDriver, sub_token: object) -> None:
        self._driver = driver
        self._token = sub_token

    def datachange_notification(self, node: Any, _val: Any, data: DataChangeNotif) -> None:
        if self._driver._sub_token is not self._token:
            return  # a late notification of a replaced subscription
        value = data.monitored_item.Value
        if value is not None:
            self._driver._cache[node.nodeid] = value

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        if self._driver._sub_token is not self._token:
            return
        code = status.Status
        if code is not None and not code.is_good():
            self._driver._lost = f"subscription lost: {_status_name(code)}"


class OpcUaDriver(Driver):
    """One OPC UA session to one server; see the module docstring."""

    protocol = "opcua"

    def __init__(self, config: DeviceConfig) -> None:
        super().__init__(config)
        settings = config.settings or {}
        self.publishing_interval_ms = float(settings.get("publishing_interval_ms", 500))
        self.mode_in_use: str = config.opcua_mode  # what runs once connected: "subscribe" | "poll"
        self.fallback_reason: str = ""  # why subscribe mode fell back to polling
        self._groups: dict[str, list[_Item]] = {}
        self._client: Client | None = None
        self._sub: Subscription | None = None
        self._sub_token: object = None
        self._sub_since = 0.0
        self._handles: dict[ua.NodeId, int] = {}  # node -> monitored item id
        self._refused: set[ua.NodeId] = set()  # monitored items the server refused (status in the cache)
        self._cache: dict[ua.NodeId, ua.DataValue] = {}
        self._dirty = False
        self._lost: str | None = None
        self._lock = asyncio.Lock()
        self._sync_task: asyncio.Task | None = None

    # -- configuration -------------------------------------------------------

    def configure(self, groups: Mapping[str, Sequence[PointConfig]]) -> dict[int, str]:
        errors: dict[int, str] = {}
        new: dict[str, list[_Item]] = {}
        for name, points in groups.items():
            items = []
            for point in points:
                nodeid, error = parse_address(point)
                if error is not None:
                    errors[point.key] = error
                items.append(_Item(point, nodeid, error))
            new[name] = items
        self._groups = new
        self._dirty = True
        if self._sub is not None and self._sync_task is None:
            with contextlib.suppress(RuntimeError):  # no running loop: the next read syncs
                self._sync_task = asyncio.get_running_loop().create_task(self._background_sync())
        return errors

    def _wanted(self) -> list[ua.NodeId]:
        """Every configured node once, in configuration order."""
        seen: dict[ua.NodeId, None] = {}
        for items in self._groups.values():
            for item in items:
                if item.nodeid is not None:
                    seen.setdefault(item.nodeid, None)
        return list(seen)

    # -- connection ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        client = self._client
        return client is not None and self._lost is None and client.uaclient.state is UaClientState.CONNECTED

    async def connect(self) -> None:
        if self._client is not None:
            await self.close()
        url = self.config.endpoint_url
        if not url:
            raise DriverError(Reason.CONFIG_ERROR, f"device {self.config.name}: no endpoint_url")
        if self.config.opcua_mode not in ("subscribe", "poll"):
            raise DriverError(Reason.CONFIG_ERROR, f"opcua_mode {self.config.opcua_mode!r} is not subscribe or poll")
        timeout = self.config.timeout_s
        settings = self.config.settings or {}
        # The connection is checked on every read; the library's own watchdog only backs that up.
        client = Client(url, timeout=timeout, watchdog_intervall=max(5.0, 2 * timeout))
        client.session_timeout = 60_000
        client.name = client.description = f"scada {self.config.name}"
        client.application_uri = "urn:scada:opcua-driver"
        if settings.get("username"):
            client.set_user(str(settings["username"]))
        if settings.get("password"):
            client.set_password(str(settings["password"]))
        started = time.perf_counter()
        try:
            await asyncio.wait_for(client.connect(), 3 * timeout + 1)
        except Exception as exc:
            # A failed connect has already undone its session and channel; only the socket may be left.
            with contextlib.suppress(Exception):
                client.disconnect_socket()
            detail = f"cannot connect to {url}: {self._describe(exc)}"
            self.health.request_failed(self._kind(exc), detail, clock.now_us())
            raise DriverError(Reason.COMM_FAILURE, detail) from exc
        self.health.request_ok(time.perf_counter() - started, clock.now_us())
        self._client = client
        self._lost = None
        self._cache.clear()
        self.mode_in_use = self.config.opcua_mode
        self.fallback_reason = ""
        if self.mode_in_use == "subscribe":
            try:
                await self._subscribe_all()
            except DriverError as exc:
                if exc.reason is Reason.COMM_FAILURE:
                    await self.close()
                    raise DriverError(Reason.COMM_FAILURE, f"cannot subscribe on {url}: {exc}") from exc
                await self._fall_back(exc)

    async def close(self) -> None:
        task, self._sync_task = self._sync_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._client = self._client, None
        self._sub = None
        self._sub_token = None
        self._handles.clear()
        self._refused.clear()
        self._cache.clear()
        if client is not None:
            dead = self._lost is not None or client.uaclient.state is not UaClientState.CONNECTED
            await self._drop(client, dead=dead)

    async def _drop(self, client: Client, *, dead: bool) -> None:
        """Disconnect ``client``: politely when it is alive, else just close the socket."""
        if dead:
            with contextlib.suppress(Exception):
                client.disconnect_socket()
        try:
            await asyncio.wait_for(client.disconnect(), self.config.timeout_s + 1)
        except Exception:
            with contextlib.suppress(Exception):
                client.disconnect_socket()

    def _require_client(self) -> Client:
        client = self._client
        if client is None:
            raise DriverError(Reason.COMM_FAILURE, f"not connected to {self.config.endpoint_url}")
        if self._lost is not None:
            raise DriverError(Reason.COMM_FAILURE, self._lost)
        if client.uaclient.state is not UaClientState.CONNECTED:
            self._lost = f"connection to {self.config.endpoint_url} lost"
            raise DriverError(Reason.COMM_FAILURE, self._lost)
        return client

    # -- requests ------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self.config.timeout_s:g} s"
        if isinstance(exc, ua.UaStatusCodeError):
            return _status_name(exc.code)
        text = str(exc)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    @staticmethod
    def _kind(exc: BaseException) -> str:
        return "timeout" if isinstance(exc, TimeoutError) else str(Reason.COMM_FAILURE)

    async def _request(self, what: str, call: Any, refused: Any = None) -> Any:
        """Await one service call; health bookkeeping and the error mapping of every request.

        A lost channel or session, a timeout or a transport error raise
        DriverError(COMM_FAILURE) (and the connection counts as lost); any other
        service fault raises DriverError(DEVICE_EXCEPTION, status name).
        ``refused(result)`` may name a device-side refusal carried by the result
        (a write's Bad status): it is counted as a failed request.
        """
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(call, self.config.timeout_s + 1)
        except ua.UaStatusCodeError as exc:
            name = _status_name(exc.code)
            if name in _COMM_STATUSES:
                self._lost = f"{what}: {name}"
                self.health.request_failed(str(Reason.COMM_FAILURE), self._lost, clock.now_us())
                raise DriverError(Reason.COMM_FAILURE, self._lost, exc.code) from exc
            self.health.request_failed(str(Reason.DEVICE_EXCEPTION), f"{what}: {name}", clock.now_us())
            raise DriverError(Reason.DEVICE_EXCEPTION, name, exc.code) from exc
        except Exception as exc:
            self._lost = f"{what}: {self._describe(exc)}"
            self.health.request_failed(self._kind(exc), self._lost, clock.now_us())
            raise DriverError(Reason.COMM_FAILURE, self._lost) from exc
        refusal = refused(result) if refused is not None else None
        if refusal:
            self.health.request_failed(str(Reason.DEVICE_EXCEPTION), f"{what}: {refusal}", clock.now_us())
        else:
            self.health.request_ok(time.perf_counter() - started, clock.now_us())
        return result

    async def _read_values(self, client: Client, nodeids: Sequence[ua.NodeId], what: str) -> list[ua.DataValue]:
        params = ua.ReadParameters(
            MaxAge=0,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            NodesToRead=[ua.ReadValueId(NodeId=n, AttributeId=ua.AttributeIds.Value) for n in nodeids],
        )
        results = await self._request(what, client.uaclient.read(params))
        if len(results) != len(nodeids):
            self._lost = f"{what}: {len(results)} results for {len(nodeids)} nodes"
            raise DriverError(Reason.COMM_FAILURE, self._lost)
        return results

    async def _check_alive(self, client: Client) -> None:
        """The per-read connection check of subscribe mode (one small Read)."""
        (state,) = await self._read_values(client, [_SERVER_STATE], "connection check")
        value = state.Value.Value if state.Value is not None else None
        if state.StatusCode is not None and state.StatusCode.is_good() and isinstance(value, int) and value != 0:
            try:
                name = ua.ServerState(value).name
            except ValueError:
                name = str(value)
            self._lost = f"server state {name}"
            raise DriverError(Reason.COMM_FAILURE, self._lost)
        sub = self._sub
        if sub is None:
            return
        last = sub.last_publish_at if sub.last_publish_at is not None else self._sub_since
        silent = time.monotonic() - last
        params = sub.parameters
        keepalive_s = params.RequestedPublishingInterval / 1000 * max(1, params.RequestedMaxKeepAliveCount or 1)
        if silent > 3 * max(keepalive_s, self.publishing_interval_ms / 1000) + self.config.timeout_s:
            self._lost = f"subscription silent for {silent:.1f} s (no publish response)"
            raise DriverError(Reason.COMM_FAILURE, self._lost)

    # -- subscriptions -------------------------------------------------------

    async def _subscribe_all(self) -> None:
        """Create the subscription and a monitored item for every configured node."""
        client = self._require_client()
        interval = self.publishing_interval_ms
        keepalive = max(1, math.ceil(_KEEPALIVE_S * 1000 / interval)) if interval > 0 else 10
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval,
            RequestedLifetimeCount=keepalive * 4,
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        token = object()
        self._sub_token = token
        self._handles.clear()
        self._refused.clear()
        self._cache.clear()
        self._dirty = False
        sub = await self._request("create subscription", client.create_subscription(params, _Handler(self, token)))
        self._sub = sub
        self._sub_since = time.monotonic()
        await self._add_items(sub, self._wanted())

    async def _add_items(self, sub: Subscription, nodeids: Sequence[ua.NodeId]) -> None:
        client = self._require_client()
        for start in range(0, len(nodeids), _MAX_ITEMS_PER_CALL):
            chunk = list(nodeids[start : start + _MAX_ITEMS_PER_CALL])
            results = await self._request(
                "create monitored items",
                sub.subscribe_data_change(
                    [client.get_node(n) for n in chunk],
                    queuesize=1,
                    sampling_interval=self.publishing_interval_ms,
                ),
            )
            for nodeid, result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    self._refused.add(nodeid)
                    self._cache[nodeid] = ua.DataValue(StatusCode=result)
                else:
                    self._handles[nodeid] = result

    async def _remove_items(self, sub: Subscription, nodeids: Iterable[ua.NodeId]) -> None:
        nodeids = list(nodeids)
        handles = [self._handles[n] for n in nodeids if n in self._handles]
        if handles:
            await self._request("delete monitored items", sub.unsubscribe(handles))
        for nodeid in nodeids:
            self._handles.pop(nodeid, None)
            self._refused.discard(nodeid)
            self._cache.pop(nodeid, None)

    async def _sync(self) -> None:
        """Bring the monitored items in line with the configuration (after ``configure``)."""
        async with self._lock:
            sub = self._sub
            if not self._dirty or sub is None:
                return
            self._dirty = False
            wanted = self._wanted()
            have = set(self._handles) | self._refused
            wanted_set = set(wanted)
            try:
                await self._remove_items(sub, [n for n in have if n not in wanted_set])
                await self._add_items(sub, [n for n in wanted if n not in have])
            except DriverError as exc:
                if exc.reason is Reason.COMM_FAILURE:
                    self._dirty = True
                    raise
                log.warning("%s: updating the monitored items failed (%s); subscribing afresh", self.config.name, exc)
                await self._resubscribe(sub)

    async def _resubscribe(self, old: Subscription) -> None:
        self._sub = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.delete(), self.config.timeout_s + 1)
        try:
            await self._subscribe_all()
        except DriverError as exc:
            if exc.reason is Reason.COMM_FAILURE:
                raise
            await self._fall_back(exc)

    async def _fall_back(self, exc: BaseException) -> None:
        """The server refuses subscriptions (or monitored items as a whole): poll instead."""
        sub, self._sub = self._sub, None
        self._sub_token = None
        self._handles.clear()
        self._refused.clear()
        self._cache.clear()
        self.mode_in_use = "poll"
        self.fallback_reason = f"subscriptions refused: {exc}"
        log.warning("%s: %s; polling instead", self.config.name, self.fallback_reason)
        if sub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sub.delete(), self.config.timeout_s + 1)

    async def _background_sync(self) -> None:
        try:
            await asyncio.sleep(0)
            await self._sync()
        except Exception as exc:  # the next read tries again and reports
            log.info("%s: background subscription update failed: %s", self.config.name, exc)
        finally:
            if self._sync_task is asyncio.current_task():
                self._sync_task = None

    # -- reads and writes ----------------------------------------------------

    @staticmethod
    def _convert(dv: ua.DataValue, point: PointConfig) -> tuple[Value, int | None]:
        """(value, source µs) of one DataValue for ``point``; raises _BadValue."""
        status = dv.StatusCode
        if status is not None and status.is_bad():
            raise _BadValue(Reason.DEVICE_EXCEPTION, _status_name(status))
        variant = dv.Value
        raw = variant.Value if variant is not None else None
        if raw is None:
            raise _BadValue(Reason.DEVICE_EXCEPTION, "the server sent no value (null)")
        vtype = variant.VariantType.name
        if variant.is_array or isinstance(raw, list):
            raise _BadValue(Reason.CONFIG_ERROR, f"the value is an array ({vtype}); only scalars are supported")
        value = _coerce(raw, point.data_type, vtype)
        source = _to_us(dv.SourceTimestamp)
        return value, source if source is not None else _to_us(dv.ServerTimestamp)

    def _batch(self, items: Sequence[_Item], values: Mapping[ua.NodeId, ua.DataValue], missing: str) -> Batch:
        out: list[Value | None] = [None] * len(items)
        sources: list[int | None] = [None] * len(items)
        errors: dict[int, tuple[Reason, str]] = {}
        for i, item in enumerate(items):
            if item.nodeid is None:
                errors[i] = (Reason.CONFIG_ERROR, item.error or "not configured")
                continue
            dv = values.get(item.nodeid)
            if dv is None:
                errors[i] = (Reason.COMM_FAILURE, missing)
                continue
            try:
                out[i], sources[i] = self._convert(dv, item.point)
            except _BadValue as exc:
                errors[i] = (exc.reason, exc.detail)
        return Batch(values=out, errors=errors, time_us=clock.now_us(), source_us=sources)

    def _items(self, group: str) -> list[_Item]:
        try:
            return self._groups[group]
        except KeyError:
            raise DriverError(Reason.CONFIG_ERROR, f"no scan group {group!r} configured") from None

    async def read(self, group: str) -> Batch:
        items = self._items(group)
        client = self._require_client()
        if self.mode_in_use == "subscribe" and self._sub is not None:
            if self._dirty:
                await self._sync()
            if self._sub is not None:
                await self._check_alive(client)
                return self._batch(items, self._cache, "no value received yet")
        nodeids = list(dict.fromkeys(item.nodeid for item in items if item.nodeid is not None))
        if not nodeids:
            await self._check_alive(client)
            return self._batch(items, {}, "not read")
        try:
            results = await self._read_values(client, nodeids, "read")
        except DriverError as exc:
            if exc.reason is not Reason.DEVICE_EXCEPTION:
                raise
            # A service fault for the whole request (BadTooManyOperations ...): every point gets it.
            bad = ua.DataValue(StatusCode=ua.StatusCode(exc.code or ua.StatusCodes.BadUnexpectedError))
            return self._batch(items, dict.fromkeys(nodeids, bad), "not read")
        return self._batch(items, dict(zip(nodeids, results, strict=True)), "not read")

    async def read_point(self, point: PointConfig) -> Value:
        nodeid, error = parse_address(point)
        if nodeid is None:
            raise DriverError(Reason.CONFIG_ERROR, error or "bad address")
        client = self._require_client()
        (dv,) = await self._read_values(client, [nodeid], f"read {point.address}")
        try:
            value, _source = self._convert(dv, point)
        except _BadValue as exc:
            code = dv.StatusCode.value if dv.StatusCode is not None and dv.StatusCode.is_bad() else None
            raise DriverError(exc.reason, exc.detail, code) from None
        return value

    async def write(self, point: PointConfig, value: Value) -> None:
        nodeid, error = parse_address(point)
        if nodeid is None:
            raise DriverError(Reason.CONFIG_ERROR, error or "bad address")
        variant = _variant(value, point.data_type)
        client = self._require_client()
        statuses = await self._request(
            f"write {point.address}",
            client.uaclient.write_attributes([nodeid], [ua.DataValue(variant)], ua.AttributeIds.Value),
            refused=lambda res: None if res and res[0].is_good() else _status_name(_first_status(res)),
        )
        status = _first_status(statuses)
        if not status.is_good():
            raise DriverError(Reason.DEVICE_EXCEPTION, _status_name(status), status.value)
