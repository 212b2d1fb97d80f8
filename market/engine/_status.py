"""The one table from domain errors to gRPC status codes.

A caller's mistake never comes back as INTERNAL or UNKNOWN: every error a
request can provoke is a :class:`~market.errors.MarketError` subclass listed
here, and its message names the field and the rule. Anything else that
escapes a handler is a bug in the engine: it is logged with its traceback and
answered with INTERNAL and no detail.

======================================  ====================
error                                   status
======================================  ====================
RequestError, OrderValidationError,     INVALID_ARGUMENT
ConfigError, MeteringError (others)
IntervalClosedError, EngineStateError,  FAILED_PRECONDITION
UnknownMeterError
NotFoundError                           NOT_FOUND
OutOfRangeError                         OUT_OF_RANGE
AlreadyExistsError (DuplicateOrder…),   ALREADY_EXISTS
MeterRegistrationError
AuthenticationError                     UNAUTHENTICATED
PermissionDeniedError                   PERMISSION_DENIED
RateLimitedError                        RESOURCE_EXHAUSTED
JournalError                            UNAVAILABLE
======================================  ====================
"""

from __future__ import annotations

import grpc

from market.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigError,
    EngineStateError,
    JournalError,
    MeteringError,
    MeterRegistrationError,
    NotFoundError,
    OrderValidationError,
    OutOfRangeError,
    PermissionDeniedError,
    RateLimitedError,
    RequestError,
    UnknownMeterError,
)

__all__ = ["STATUS_TABLE", "status_of"]

#: (error class, status code); the first class that matches wins, so subclasses come first.
STATUS_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (RequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (OrderValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownMeterError, grpc.StatusCode.FAILED_PRECONDITION),
    (MeterRegistrationError, grpc.StatusCode.ALREADY_EXISTS),
    (MeteringError, grpc.StatusCode.INVALID_ARGUMENT),
    (EngineStateError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (OutOfRangeError, grpc.StatusCode.OUT_OF_RANGE),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (AuthenticationError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (RateLimitedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (JournalError, grpc.StatusCode.UNAVAILABLE),
)


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The status code and message for a domain error; None for anything else (a bug)."""
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code, _message(exc)
    return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, OrderValidationError):
        return "; ".join(str(p) for p in exc.problems)
    return str(exc)
