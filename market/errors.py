"""Errors raised by :mod:`market`.

::

    MarketError
    ├── OrderValidationError     (also ValueError)  — carries every problem found
    ├── ConfigError              (also ValueError)
    ├── InputFileError           (also ValueError)  — names the row and column
    └── ClearingError            (also RuntimeError)
        ├── InfeasibleClearingError
        ├── AcInfeasibleClearingError               — the schedule fails the AC power flow
        └── SolverError                             — the solver failed or was not optimal

Exceptions from pyomo and highspy are mapped to these at the solver boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AcInfeasibleClearingError",
    "ClearingError",
    "ConfigError",
    "InfeasibleClearingError",
    "InputFileError",
    "MarketError",
    "OrderValidationError",
    "SolverError",
]


class MarketError(Exception):
    """Root of every error raised by the market package."""


class OrderValidationError(MarketError, ValueError):
    """One or more orders break a rule; ``problems`` lists all of them."""

    def __init__(self, problems: Sequence[object]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} order problem(s):\n{lines}")


class ConfigError(MarketError, ValueError):
    """A market configuration value breaks a rule."""


class InputFileError(MarketError, ValueError):
    """An input file (orders CSV/parquet) is malformed; the message names row and column."""


class ClearingError(MarketError, RuntimeError):
    """Clearing an interval did not produce an optimal result."""


class InfeasibleClearingError(ClearingError):
    """The clearing problem has no feasible solution (the base case already breaks a limit)."""


class AcInfeasibleClearingError(ClearingError):
    """The LP solved, but its schedule breaks a limit in the AC power flow (or that
    power flow diverges) after every round: the interval is not cleared."""


class SolverError(ClearingError):
    """The solver failed, hit a limit, or returned a non-optimal status."""


# --- meter ledger and settlement (market.metering, market.settlement) -----------------
#
#   MarketError
#   ├── MeteringError            (also ValueError)  — names meter, seq, field and rule;
#   │   │                                              the whole batch was not applied
#   │   ├── UnknownMeterError                       — the meter is not registered
#   │   ├── MeterRegistrationError                  — meter already registered to another
#   │   ├── ReadingValueError                       — a field has the wrong type or range
#   │   ├── ReadingOrderError                       — seq or timestamp out of order
#   │   ├── ClockSkewError                          — timestamp outside the skew window
#   │   ├── CounterDecreaseError                    — a cumulative counter went down
#   │   └── DuplicateReadingError                   — a seq re-sent with other content
#   └── SettlementInputError     (also ValueError)  — settlement inputs are inconsistent

__all__ += [  # appended section: the list above belongs to the foundation
    "ClockSkewError",
    "CounterDecreaseError",
    "DuplicateReadingError",
    "MeterRegistrationError",
    "MeteringError",
    "ReadingOrderError",
    "ReadingValueError",
    "SettlementInputError",
    "UnknownMeterError",
]


class MeteringError(MarketError, ValueError):
    """A meter reading or batch breaks a rule; nothing of the batch was applied.

    Attributes:
        field: the offending field (``meter_id``, ``seq``, ``timestamp_ms``, ...).
        rule: the rule it breaks, in words.
        meter_id: the meter concerned, if known.
        seq: the sequence number of the offending reading, if any.
    """

    def __init__(
        self, field: str, rule: str, *, meter_id: str | None = None, seq: int | None = None
    ) -> None:
        self.field = field
        self.rule = rule
        self.meter_id = meter_id
        self.seq = seq
        where = []
        if meter_id is not None:
            where.append(f"meter {meter_id!r}")
        if seq is not None:
            where.append(f"seq {seq}")
        prefix = ", ".join(where) + ": " if where else ""
        super().__init__(f"{prefix}{field}: {rule}")


class UnknownMeterError(MeteringError):
    """The meter id is not registered with the ledger."""


class MeterRegistrationError(MeteringError):
    """The meter is already registered to a different participant."""


class ReadingValueError(MeteringError):
    """A reading field has the wrong type or is out of range."""


class ReadingOrderError(MeteringError):
    """A sequence number or timestamp is out of order (or falls in a recorded gap)."""


class ClockSkewError(MeteringError):
    """A reading's timestamp is further from the caller's clock than the skew window."""


class CounterDecreaseError(MeteringError):
    """A cumulative energy counter is lower than in the previous reading."""


class DuplicateReadingError(MeteringError):
    """A sequence number already applied was sent again with different content."""


class SettlementInputError(MarketError, ValueError):
    """The inputs of an interval's settlement are malformed or inconsistent."""


# --- market engine (market.engine) ----------------------------------------------------
#
#   MarketError
#   └── EngineError                                 — each maps to one gRPC status code in
#       │                                              market.engine._status
#       ├── RequestError         (also ValueError)  — a request field breaks a rule
#       ├── EngineStateError     (also RuntimeError) — not allowed in the engine's state
#       │   └── IntervalClosedError                 — gate closed or beyond the horizon
#       ├── NotFoundError        (also LookupError)
#       ├── OutOfRangeError      (also IndexError)  — a cursor beyond the end (event sequence)
#       ├── AlreadyExistsError
#       │   └── DuplicateOrderError                 — same client order id, other content
#       ├── AuthenticationError                     — bad signature, stale time, reused nonce
#       ├── PermissionDeniedError (also PermissionError) — wrong role or other participant
#       ├── RateLimitedError
#       └── JournalError         (also RuntimeError) — the journal failed or does not replay

__all__ += [  # appended section: the engine's errors
    "AlreadyExistsError",
    "AuthenticationError",
    "DuplicateOrderError",
    "EngineError",
    "EngineStateError",
    "IntervalClosedError",
    "JournalError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestError",
]


class EngineError(MarketError):
    """Root of the errors the market engine reports to its callers."""


class RequestError(EngineError, ValueError):
    """A request field breaks a rule (→ INVALID_ARGUMENT)."""


class EngineStateError(EngineError, RuntimeError):
    """The request is valid but the engine's state does not allow it (→ FAILED_PRECONDITION)."""


class IntervalClosedError(EngineStateError):
    """The interval's gate has closed, or the interval is outside the order horizon."""


class NotFoundError(EngineError, LookupError):
    """No order, participant, meter or clearing result with that key (→ NOT_FOUND)."""


class OutOfRangeError(EngineError, IndexError):
    """A cursor lies beyond the end, e.g. an event sequence past the latest (→ OUT_OF_RANGE)."""


class AlreadyExistsError(EngineError):
    """A key is already taken by different content (→ ALREADY_EXISTS)."""


class DuplicateOrderError(AlreadyExistsError):
    """The client order id was used before with a different order."""


class AuthenticationError(EngineError):
    """A signature is missing or wrong, a timestamp stale or a nonce reused (→ UNAUTHENTICATED)."""


class PermissionDeniedError(EngineError, PermissionError):
    """The signer may not call that method or act for that participant (→ PERMISSION_DENIED)."""


class RateLimitedError(EngineError):
    """The signer sends faster than its rate limit (→ RESOURCE_EXHAUSTED)."""


class JournalError(EngineError, RuntimeError):
    """The journal cannot be written or read, or it does not replay to the same state."""


class ForecastError(MarketError, ValueError):
    """A base-load forecast is unusable: it misses an interval or names no element of the feeder."""
