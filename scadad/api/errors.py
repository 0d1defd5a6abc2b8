"""Typed errors shared by the daemon and its clients.

Handlers raise a `ScadaError` subclass; only the dispatcher writes it to the wire, and
the client turns a wire error back into the same class. The codes are gRPC's names, so
anyone who has used grpcurl knows what they mean.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL = "INTERNAL"


class ScadaError(Exception):
    """An error with a code and a message a person can act on."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": self.details}

    @staticmethod
    def from_wire(error: dict[str, Any]) -> ScadaError:
        """Rebuild the typed error a daemon sent; an unknown code becomes INTERNAL."""
        cls = _BY_CODE.get(str(error.get("code")), InternalError)
        return cls(str(error.get("message", "")), details=dict(error.get("details") or {}))

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class InvalidArgument(ScadaError):
    code = ErrorCode.INVALID_ARGUMENT

    def __init__(self, message: str, field: str | None = None, details: dict[str, Any] | None = None) -> None:
        merged = dict(details or {})
        if field is not None:
            merged.setdefault("field", field)
        super().__init__(message, merged)


class NotFound(ScadaError):
    code = ErrorCode.NOT_FOUND


class AlreadyExists(ScadaError):
    code = ErrorCode.ALREADY_EXISTS


class PermissionDenied(ScadaError):
    code = ErrorCode.PERMISSION_DENIED


class Unauthenticated(ScadaError):
    code = ErrorCode.UNAUTHENTICATED


class FailedPrecondition(ScadaError):
    code = ErrorCode.FAILED_PRECONDITION


class ResourceExhausted(ScadaError):
    code = ErrorCode.RESOURCE_EXHAUSTED


class Unavailable(ScadaError):
    code = ErrorCode.UNAVAILABLE


class DeadlineExceeded(ScadaError):
    code = ErrorCode.DEADLINE_EXCEEDED


class InternalError(ScadaError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[str, type[ScadaError]] = {
    cls.code.value: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        FailedPrecondition,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        InternalError,
    )
}
