"""Decoding SunSpec model data into values with units.

Pure functions of a model's data registers (the registers after its ``ID``
and ``L`` header). Scale factors are applied (value × 10^sf), "not
implemented" sentinels become ``None``, and energy accumulators are returned
raw with their scale as :class:`~meter_adapter.accumulator.CounterSample`, so
rollover can be tracked across polls. Any register contents either decode or
raise :class:`~meter_adapter.errors.DecodeError`; nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from meter_adapter.accumulator import CounterSample
from meter_adapter.datatypes import DataType, decode, decode_string, type_bits
from meter_adapter.errors import DecodeError
from meter_adapter.sunspec.models import (
    COMMON_MODEL,
    INVERTER_MODEL,
    INVERTER_MODEL_IDS,
    METER_MODEL,
    METER_MODEL_IDS,
    NAMEPLATE_MODEL,
    ModelLayout,
)

__all__ = [
    "MAX_SCALE_FACTOR",
    "CommonInfo",
    "InverterValues",
    "MeterValues",
    "decode_common",
    "decode_inverter",
    "decode_meter",
    "decode_nameplate",
    "point_counter",
    "point_scaled",
    "point_value",
]

MAX_SCALE_FACTOR = 10
"""SunSpec scale factors lie in -10..10; anything else is garbage."""


@dataclass(frozen=True, slots=True)
class CommonInfo:
    """Device identity from common model 1 (``None`` where not implemented)."""

    manufacturer: str | None
    model: str | None
    options: str | None
    version: str | None
    serial_number: str | None
    device_address: int | None


@dataclass(frozen=True, slots=True)
class InverterValues:
    """What the adapter uses from inverter models 101-103.

    Attributes:
        model_id: 101, 102 or 103.
        ac_power_w: AC power output, W (positive while producing).
        ac_energy: Lifetime AC energy counter (``WH``), raw with its scale.
    """

    model_id: int
    ac_power_w: float | None
    ac_energy: CounterSample | None


@dataclass(frozen=True, slots=True)
class MeterValues:
    """What the adapter uses from meter models 201-204.

    Attributes:
        model_id: 201, 202, 203 or 204.
        power_w: Total real power ``W``, in the meter's own convention:
            positive while the site imports (the direction that advances
            ``TotWhImp``), negative while it exports.
        energy_exported: ``TotWhExp`` counter, raw with its scale.
        energy_imported: ``TotWhImp`` counter, raw with its scale.
    """

    model_id: int
    power_w: float | None
    energy_exported: CounterSample | None
    energy_imported: CounterSample | None


def _check_length(layout: ModelLayout, data: Sequence[int], last_point: str) -> None:
    point = layout.point(last_point)
    if len(data) < point.offset + point.size:
        raise DecodeError(
            f"{layout.name} model data has {len(data)} registers; "
            f"{last_point} needs {point.offset + point.size}"
        )


def point_value(layout: ModelLayout, data: Sequence[int], name: str) -> int | float | None:
    """The raw value of point ``name``, ``None`` if not implemented.

    Raises:
        DecodeError: ``data`` is too short or holds a non-register value.
    """
    point = layout.point(name)
    registers = data[point.offset : point.offset + point.size]
    if len(registers) != point.size:
        raise DecodeError(f"{layout.name} model data too short for {name}")
    if point.data_type is None:
        raise DecodeError(f"{name} is a string point")
    return decode(registers, point.data_type, sunspec_sentinels=True)


def _scale_factor(layout: ModelLayout, data: Sequence[int], name: str) -> int | None:
    scale_name = layout.point(name).scale_factor
    if scale_name is None:
        return 0
    value = point_value(layout, data, scale_name)
    if value is None:
        return None
    if not isinstance(value, int) or not -MAX_SCALE_FACTOR <= value <= MAX_SCALE_FACTOR:
        raise DecodeError(f"{scale_name}={value} is outside -10..10")
    return value


def point_scaled(layout: ModelLayout, data: Sequence[int], name: str) -> float | None:
    """Point ``name`` × 10^(its scale factor); ``None`` if either is not implemented.

    Raises:
        DecodeError: Malformed data or a scale factor outside -10..10.
    """
    value = point_value(layout, data, name)
    scale = _scale_factor(layout, data, name)
    if value is None or scale is None:
        return None
    return float(value * 10**scale) if scale >= 0 else value / 10 ** (-scale)


def point_counter(layout: ModelLayout, data: Sequence[int], name: str) -> CounterSample | None:
    """Accumulator point ``name`` as a counter sample (raw count, Wh per count, width).

    Returns ``None`` when the scale factor is not implemented.

    Raises:
        DecodeError: Malformed data, a scale factor outside -10..10, or a point
            that is not an integer.
    """
    point = layout.point(name)
    value = point_value(layout, data, name)
    scale = _scale_factor(layout, data, name)
    if value is None or scale is None:
        return None
    if not isinstance(value, int) or point.data_type is None:
        raise DecodeError(f"{name} is not an integer counter")
    wraps = point.data_type in {DataType.ACC16, DataType.ACC32, DataType.ACC64}
    return CounterSample(
        raw=value,
        wh_per_unit=Fraction(10) ** scale,
        bits=type_bits(point.data_type) if wraps else None,
    )


def decode_common(data: Sequence[int]) -> CommonInfo:
    """Decode common model 1 from its data registers.

    Raises:
        DecodeError: Fewer registers than the serial number needs, or a value
            outside 0..65535.
    """
    _check_length(COMMON_MODEL, data, "SN")

    def text(name: str) -> str | None:
        point = COMMON_MODEL.point(name)
        return decode_string(data[point.offset : point.offset + point.size])

    address = point_value(COMMON_MODEL, data, "DA") if len(data) > 64 else None
    return CommonInfo(
        manufacturer=text("Mn"),
        model=text("Md"),
        options=text("Opt"),
        version=text("Vr"),
        serial_number=text("SN"),
        device_address=int(address) if address is not None else None,
    )


def decode_inverter(model_id: int, data: Sequence[int]) -> InverterValues:
    """Decode AC power and lifetime energy from inverter model 101, 102 or 103.

    Raises:
        DecodeError: Not an inverter model, too few registers, bad scale factors.
    """
    if model_id not in INVERTER_MODEL_IDS:
        raise DecodeError(f"model {model_id} is not an inverter model (101-103)")
    _check_length(INVERTER_MODEL, data, "WH_SF")
    return InverterValues(
        model_id=model_id,
        ac_power_w=point_scaled(INVERTER_MODEL, data, "W"),
        ac_energy=point_counter(INVERTER_MODEL, data, "WH"),
    )


def decode_meter(model_id: int, data: Sequence[int]) -> MeterValues:
    """Decode total real power and energy counters from meter model 201-204.

    Raises:
        DecodeError: Not a meter model, too few registers, bad scale factors.
    """
    if model_id not in METER_MODEL_IDS:
        raise DecodeError(f"model {model_id} is not a meter model (201-204)")
    _check_length(METER_MODEL, data, "TotWh_SF")
    return MeterValues(
        model_id=model_id,
        power_w=point_scaled(METER_MODEL, data, "W"),
        energy_exported=point_counter(METER_MODEL, data, "TotWhExp"),
        energy_imported=point_counter(METER_MODEL, data, "TotWhImp"),
    )


def decode_nameplate(data: Sequence[int]) -> float | None:
    """The continuous power rating ``WRtg`` of nameplate model 120, W (``None``: not given).

    Raises:
        DecodeError: Too few registers, a bad scale factor, or a rating that is
            not positive.
    """
    _check_length(NAMEPLATE_MODEL, data, "WRtg_SF")
    rating = point_scaled(NAMEPLATE_MODEL, data, "WRtg")
    if rating is None:
        return None
    if not rating > 0:
        raise DecodeError(f"nameplate WRtg={rating:g} W: a rating must be positive")
    return rating
