"""The method registry: each API method declared once, with its types and permission.

A service is a class whose `@rpc`-decorated methods *are* the API (after supervisor's
rpcinterface). The wire name is `<Service.name>.<CamelCase of the Python name>`, the
params type and result type come from the annotations, and the docstring's first line
is the summary `System.Describe` shows.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from scadad.api.messages import MethodInfo, Params


@dataclass(slots=True)
class Peer:
    """Who is on the other end of a connection, from SO_PEERCRED."""

    pid: int
    uid: int
    gid: int


@dataclass(slots=True)
class CallContext:
    """What a handler knows about the call besides its params."""

    peer: Peer
    connection_id: int
    request_id: int | str | None
    method: str
    token: str | None = None
    user: str | None = None  # the name the audit trail records (set by auth)
    principal: Any = None  # scadad.auth.manager.Principal, set before the handler runs


@dataclass(slots=True, frozen=True)
class MethodSpec:
    name: str
    permission: str
    mutates: bool
    stream: bool
    params_type: type[Params]
    result_type: Any
    summary: str
    handler: Callable[..., Awaitable[Any]] | Callable[..., AsyncIterator[Any]]
    decoder: msgspec.json.Decoder[Any] = field(compare=False, repr=False)


_RPC_ATTR = "__scada_rpc__"


def rpc(*, permission: str, mutates: bool = False, stream: bool = False) -> Callable[[Any], Any]:
    """Declare a service method as an API method needing `permission`."""

    def mark(fn: Any) -> Any:
        setattr(fn, _RPC_ATTR, {"permission": permission, "mutates": mutates, "stream": stream})
        return fn

    return mark


class Service:
    """Base class of an API service; `name` is the part before the dot."""

    name: typing.ClassVar[str]


def camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


class Registry:
    """All methods of the daemon, looked up by wire name."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}

    def add_service(self, service: Service) -> None:
        for attr, fn in inspect.getmembers(type(service), predicate=inspect.isfunction):
            meta = getattr(fn, _RPC_ATTR, None)
            if meta is None:
                continue
            hints = typing.get_type_hints(fn)
            params_type = hints.get("params")
            if params_type is None or not (isinstance(params_type, type) and issubclass(params_type, Params)):
                raise TypeError(f"{type(service).__name__}.{attr}: 'params' must be annotated with a Params type")
            result_type = hints.get("return", Any)
            if meta["stream"]:
                # AsyncIterator[Event] -> Event
                args = typing.get_args(result_type)
                result_type = args[0] if args else Any
            name = f"{service.name}.{camel(attr)}"
            if name in self._methods:
                raise ValueError(f"method {name} declared twice")
            doc = inspect.getdoc(fn) or ""
            self._methods[name] = MethodSpec(
                name=name,
                permission=meta["permission"],
                mutates=meta["mutates"],
                stream=meta["stream"],
                params_type=params_type,
                result_type=result_type,
                summary=doc.splitlines()[0] if doc else "",
                handler=getattr(service, attr),
                decoder=msgspec.json.Decoder(params_type),
            )

    def get(self, name: str) -> MethodSpec | None:
        return self._methods.get(name)

    def __iter__(self) -> typing.Iterator[MethodSpec]:
        return iter(sorted(self._methods.values(), key=lambda m: m.name))

    def __len__(self) -> int:
        return len(self._methods)

    def describe(self) -> list[MethodInfo]:
        """Every method with its params and result as JSON Schema (reflection)."""
        return [
            MethodInfo(
                name=m.name,
                kind="stream" if m.stream else "unary",
                permission=m.permission,
                mutates=m.mutates,
                summary=m.summary,
                params=_schema(m.params_type),
                result=_schema(m.result_type),
            )
            for m in self
        ]


def _schema(tp: Any) -> dict[str, Any]:
    """A self-contained JSON Schema for one type (its $defs inlined at the top)."""
    return msgspec.json.schema(tp)
