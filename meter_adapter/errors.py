"""Errors raised by :mod:`meter_adapter`.

::

    MeterError
    ├── MeterConfigError          (also ValueError)  — bad register map, flag or key file
    ├── DeviceError               (also OSError)     — the device could not be reached or read
    │   ├── DeviceTimeoutError    (also TimeoutError)
    │   └── ModbusExceptionError                     — the device answered with a Modbus exception
    ├── DecodeError               (also ValueError)  — a response is malformed or inconsistent
    │   ├── SunSpecNotFoundError                     — no ``SunS`` marker at any base address
    │   ├── FramingError          (in mbap)          — an answer not framed exactly for its request
    │   └── ImplausibleReadingError                  — a value no device of its rating reports
    │       └── InconsistentReadingError             — values contradict earlier readings
    ├── ReadOnlyViolationError    (also PermissionError) — something tried to write to a device
    └── UplinkError               (also ConnectionError) — the engine rejected or dropped us

pymodbus and grpc exceptions are mapped to these at the transport boundary.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "DeviceError",
    "DeviceTimeoutError",
    "ImplausibleReadingError",
    "InconsistentReadingError",
    "MeterConfigError",
    "MeterError",
    "ModbusExceptionError",
    "ReadOnlyViolationError",
    "SunSpecNotFoundError",
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


class ModbusExceptionError(DeviceError):
    """The Modbus device answered a request with an exception response.

    Attributes:
        function_code: The function code of the request (3 or 4).
        exception_code: The Modbus exception code (2 = illegal data address, ...).
    """

    def __init__(self, message: str, *, function_code: int, exception_code: int) -> None:
        super().__init__(message)
        self.function_code = function_code
        self.exception_code = exception_code


class DecodeError(MeterError, ValueError):
    """A Modbus response is malformed or inconsistent with the model."""


class SunSpecNotFoundError(DecodeError):
    """No ``SunS`` marker was found at any SunSpec base address."""


class ImplausibleReadingError(DecodeError):
    """A reading decodes but holds a value outside what the device can report.

    Such a reading is quarantined (counted, never sent).

    Attributes:
        quantity: the field that broke the rule (``power_w``, ``energy_import_wh``,
            ...; empty when not known where it was raised).
    """

    def __init__(self, message: str, *, quantity: str = "") -> None:
        super().__init__(message)
        self.quantity = quantity


class InconsistentReadingError(ImplausibleReadingError):
    """A reading decodes but contradicts earlier ones (a counter ran backwards or leapt)."""


class ReadOnlyViolationError(MeterError, PermissionError):
    """A request other than a register read was about to be sent to a device."""


class UplinkError(MeterError, ConnectionError):
    """The engine could not be reached or rejected a batch."""
