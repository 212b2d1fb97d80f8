"""Errors raised by :mod:`market`.

::

    MarketError
    ├── OrderValidationError     (also ValueError)  — carries every problem found
    ├── ConfigError              (also ValueError)
    ├── InputFileError           (also ValueError)  — names the row and column
    └── ClearingError            (also RuntimeError)
        ├── InfeasibleClearingError
        └── SolverError                             — the solver failed or was not optimal

Exceptions from pyomo and highspy are mapped to these at the solver boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
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


class SolverError(ClearingError):
    """The solver failed, hit a limit, or returned a non-optimal status."""
