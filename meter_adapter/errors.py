"""Errors raised by :mod:`meter_adapter`.

::

    MeterError
    ├── MeterConfigError        (also ValueError)  — bad register map, flag or key file
    ├── DeviceError             (also OSError)     — the device could not be reached or read
    │   └── DeviceTimeoutError  (also TimeoutError)
    ├── DecodeError             (also ValueError)  — a response is malformed or inconsistent
    └── UplinkError             (also ConnectionError) — the engine rejected or dropped us

pymodbus and grpc exceptions are mapped to these at the transport boundary.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "DeviceError",
    "DeviceTimeoutError",
    "MeterConfigError",
    "MeterError",
    "UplinkError",
]


class MeterError(Exception):
    """Root of every error raised by the meter adapter."""


class MeterConfigError(MeterError, ValueError):
    """A register map, command-line flag or key file is invalid."""


class DeviceError(MeterError, OSError):
    """The Modbus device could not be reached or answered with an exception."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """The Modbus device did not answer in time."""


class DecodeError(MeterError, ValueError):
    """A Modbus response is malformed or inconsistent with the model."""


class UplinkError(MeterError, ConnectionError):
    """The engine could not be reached or rejected a batch."""
