"""SunSpec over Modbus: the models as data, discovery, decoding and encoding.

- :mod:`~meter_adapter.sunspec.models`: point layouts of models 1, 101-103, 120, 201-204, 802.
- :mod:`~meter_adapter.sunspec.discovery`: the ``SunS`` marker and the model chain.
- :mod:`~meter_adapter.sunspec.decode`: model data to values with units.
- :mod:`~meter_adapter.sunspec.battery`: battery model 802 to a typed battery reading.
- :mod:`~meter_adapter.sunspec.encode`: values to registers (for the simulator).
"""

from __future__ import annotations

from meter_adapter.sunspec.decode import (
    CommonInfo,
    InverterValues,
    MeterValues,
    decode_common,
    decode_inverter,
    decode_meter,
)
from meter_adapter.sunspec.discovery import ModelHeader, SunSpecMap, discover, read_model

__all__ = [
    "CommonInfo",
    "InverterValues",
    "MeterValues",
    "ModelHeader",
    "SunSpecMap",
    "decode_common",
    "decode_inverter",
    "decode_meter",
    "discover",
    "read_model",
]
