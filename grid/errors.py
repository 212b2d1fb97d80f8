"""Errors raised by :mod:`grid`.

::

    GridError
    ├── FeederNotFoundError      (also LookupError)
    ├── FeederFileError          (also ValueError)
    ├── UnsupportedFeederError   (also ValueError)
    ├── InjectionShapeError      (also ValueError)
    └── PowerFlowError           (also RuntimeError)

pandapower's own exceptions never leave this package: they are mapped here,
with ``raise ... from`` so the original stays on ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "FeederFileError",
    "FeederNotFoundError",
    "GridError",
    "InjectionShapeError",
    "PowerFlowError",
    "UnsupportedFeederError",
]


class GridError(Exception):
    """Root of every error raised by the grid package."""


class FeederNotFoundError(GridError, LookupError):
    """A feeder name is neither a built-in feeder nor an existing file."""


class FeederFileError(GridError, ValueError):
    """A feeder file exists but is not a usable pandapower network."""


class UnsupportedFeederError(GridError, ValueError):
    """The network uses an element the market model cannot represent."""


class InjectionShapeError(GridError, ValueError):
    """An injection vector does not match the feeder's buses."""


class PowerFlowError(GridError, RuntimeError):
    """The AC (or DC) power flow did not converge for a schedule."""
