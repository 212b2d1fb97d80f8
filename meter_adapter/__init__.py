"""The gridex meter adapter: what runs on a prosumer's home gateway.

Reading devices (read-only, over Modbus TCP)::

    from meter_adapter import MeterReader, ReadOnlyModbusClient

    async with ReadOnlyModbusClient("192.168.1.50", 502, unit_id=1) as client:
        reader = MeterReader(client, meter_id="home-17")  # SunSpec discovery
        reading = await reader.poll()  # a Reading, or None if this poll failed

A meter without SunSpec is read with a register map:
``MeterReader(client, meter_id=..., register_map=load_map("sdm630"))``.

Simulated meters and the SunSpec simulator server live in
:mod:`meter_adapter.simulation` (imported separately: it needs pvlib).

Modules: :mod:`~meter_adapter.reading` (the Reading value),
:mod:`~meter_adapter.reader` (polling), :mod:`~meter_adapter.modbus_client`
(the pymodbus boundary), :mod:`~meter_adapter.sunspec` (discovery and
models), :mod:`~meter_adapter.register_map` and :mod:`~meter_adapter.maps`
(non-SunSpec meters), :mod:`~meter_adapter.accumulator` (counter rollover),
:mod:`~meter_adapter.datatypes` (register encodings), :mod:`~meter_adapter.clock`,
:mod:`~meter_adapter.errors`.
"""

from __future__ import annotations

from meter_adapter.clock import Clock, ScaledClock, SimulatedClock, utc_now
from meter_adapter.errors import (
    DecodeError,
    DeviceError,
    DeviceTimeoutError,
    InconsistentReadingError,
    MeterConfigError,
    MeterError,
    ModbusExceptionError,
    ReadOnlyViolationError,
    SunSpecNotFoundError,
    UplinkError,
)
from meter_adapter.maps import builtin_map_names, load_map
from meter_adapter.modbus_client import ReadOnlyModbusClient, ReconnectPolicy
from meter_adapter.reader import MeterReader
from meter_adapter.reading import Reading
from meter_adapter.register_map import RegisterMap, load_register_map
from meter_adapter.registers import RegisterImage, RegisterReader, RegisterType

__all__ = [
    "Clock",
    "DecodeError",
    "DeviceError",
    "DeviceTimeoutError",
    "InconsistentReadingError",
    "MeterConfigError",
    "MeterError",
    "MeterReader",
    "ModbusExceptionError",
    "ReadOnlyModbusClient",
    "ReadOnlyViolationError",
    "Reading",
    "ReconnectPolicy",
    "RegisterImage",
    "RegisterMap",
    "RegisterReader",
    "RegisterType",
    "ScaledClock",
    "SimulatedClock",
    "SunSpecNotFoundError",
    "UplinkError",
    "builtin_map_names",
    "load_map",
    "load_register_map",
    "utc_now",
]
