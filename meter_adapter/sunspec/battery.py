"""Decoding SunSpec battery base model 802 into a typed battery reading.

The layout is :data:`~meter_adapter.sunspec.models.BATTERY_MODEL`, point for
point as ``sunspec/models`` ``json/model_802.json`` gives it. What gridex uses:

- ``WHRtg`` × 10^``WHRtg_SF``: the nameplate energy capacity, Wh;
- ``SoC`` × 10^``SoC_SF``: state of charge, % of ``WHRtg``;
- ``SoCMin``/``SoCRsvMin`` and ``SoCMax``/``SoCRsvMax`` (same scale): the lowest
  and highest state of charge the battery is operated at, % (the tighter of
  the manufacturer's limit and the reserve setpoint; 0 and 100 where neither
  is implemented);
- ``WChaRteMax``/``WDisChaRteMax`` × 10^``WChaDisChaMax_SF``: charge and
  discharge power limits, W;
- ``W`` × 10^``W_SF``: battery power, W, positive while discharging;
- ``ChaSt``: charge status (1 off, 2 empty, 3 discharging, 4 charging, 5
  full, 6 holding, 7 testing).

Energy comes out in integer Wh by one stated rule, computed exactly from the
registers (no float on the way): capacity and the highest allowed charge
round down, the state of charge rounds down (the battery holds at least
that), the lowest allowed charge rounds up. Power limits round down to whole W.

Any register contents either decode or raise: a malformed model or a
mandatory point "not implemented" raises :class:`~meter_adapter.errors.DecodeError`;
a percentage outside 0..100, or a lowest charge above the highest, raises
:class:`~meter_adapter.errors.ImplausibleReadingError` naming the point (the
reader quarantines it). Whether the capacity and powers fit the site is
:meth:`meter_adapter.plausibility.Limits.check_battery`'s business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from meter_adapter.errors import DecodeError, ImplausibleReadingError
from meter_adapter.sunspec.decode import point_value
from meter_adapter.sunspec.models import BATTERY_MODEL, BATTERY_MODEL_ID

__all__ = ["CHARGE_STATUS", "BatteryValues", "decode_battery"]

CHARGE_STATUS = {
    1: "off",
    2: "empty",
    3: "discharging",
    4: "charging",
    5: "full",
    6: "holding",
    7: "testing",
}
"""``ChaSt`` values of model 802 and what they mean."""

_HUNDRED = Fraction(100)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryValues:
    """One battery reading from model 802.

    Attributes:
        capacity_wh: Nameplate energy capacity, Wh (rounded down).
        soc_percent: State of charge, % of the capacity, exact.
        min_soc_percent: Lowest state of charge it is operated at, %, exact.
        max_soc_percent: Highest state of charge it is operated at, %, exact.
        max_charge_w: Charging power limit, W (rounded down).
        max_discharge_w: Discharging power limit, W (rounded down).
        power_w: Battery power, whole W, positive while discharging (None: not given).
        charge_status: ``ChaSt`` (see :data:`CHARGE_STATUS`; None: not given).
        soc_count_percent: What one count of ``SoC`` is worth, % (10^``SoC_SF``).

    The energies in Wh (``soc_wh``, ``min_soc_wh``, ``max_soc_wh``,
    ``soc_resolution_wh``) follow from these, by the rounding rule above.
    """

    capacity_wh: int
    soc_percent: Fraction
    min_soc_percent: Fraction
    max_soc_percent: Fraction
    max_charge_w: int
    max_discharge_w: int
    power_w: int | None = None
    charge_status: int | None = None
    soc_count_percent: Fraction = Fraction(1)

    soc_wh: int = field(init=False)
    """State of charge, Wh: ⌊capacity × SoC / 100⌋."""
    min_soc_wh: int = field(init=False)
    """Lowest allowed state of charge, Wh: ⌈capacity × min / 100⌉."""
    max_soc_wh: int = field(init=False)
    """Highest allowed state of charge, Wh: ⌊capacity × max / 100⌋."""
    soc_resolution_wh: int = field(init=False)
    """Wh one count of ``SoC`` stands for, rounded up."""

    def __post_init__(self) -> None:
        capacity = self.capacity_wh
        energy = {
            "soc_wh": math.floor(capacity * self.soc_percent / _HUNDRED),
            "min_soc_wh": math.ceil(capacity * self.min_soc_percent / _HUNDRED),
            "max_soc_wh": math.floor(capacity * self.max_soc_percent / _HUNDRED),
            "soc_resolution_wh": math.ceil(capacity * self.soc_count_percent / _HUNDRED),
        }
        for name, value in energy.items():
            object.__setattr__(self, name, value)

    def to_json_dict(self) -> dict[str, int | float | str | None]:
        """The reading as JSON-ready values."""
        return {
            "capacity_wh": self.capacity_wh,
            "soc_wh": self.soc_wh,
            "soc_percent": float(self.soc_percent),
            "min_soc_wh": self.min_soc_wh,
            "max_soc_wh": self.max_soc_wh,
            "max_charge_w": self.max_charge_w,
            "max_discharge_w": self.max_discharge_w,
            "power_w": self.power_w,
            "charge_status": None
            if self.charge_status is None
            else CHARGE_STATUS.get(self.charge_status, str(self.charge_status)),
        }


def _scaled(data: Sequence[int], name: str, scale: int | None) -> Fraction | None:
    """Point ``name`` × 10^``scale`` exactly (None: the point or its scale not implemented)."""
    value = point_value(BATTERY_MODEL, data, name)
    if value is None or scale is None:
        return None
    assert isinstance(value, int)  # every point read here is an integer type
    return Fraction(value * 10**scale) if scale >= 0 else Fraction(value, 10**-scale)


def _scale(data: Sequence[int], name: str) -> int | None:
    """Scale factor ``name`` (None: not implemented); outside -10..10 raises DecodeError."""
    value = point_value(BATTERY_MODEL, data, name)
    if value is not None and not (isinstance(value, int) and -10 <= value <= 10):
        raise DecodeError(f"{name}={value} is outside -10..10")
    return None if value is None else int(value)


def _mandatory(data: Sequence[int], name: str, scale: int | None) -> Fraction:
    value = _scaled(data, name, scale)
    if value is None:
        raise DecodeError(f"battery model 802: {name} (mandatory) is not implemented")
    return value


def _percent(data: Sequence[int], name: str, scale: int | None) -> Fraction | None:
    value = _scaled(data, name, scale)
    if value is not None and not 0 <= value <= _HUNDRED:
        raise ImplausibleReadingError(
            f"battery {name}={float(value):g} % is outside 0..100 %", quantity=f"battery.{name}"
        )
    return value


def decode_battery(model_id: int, data: Sequence[int]) -> BatteryValues:
    """Decode battery base model 802 from its data registers (after ``ID``, ``L``).

    Raises:
        DecodeError: Not model 802, too few registers, a scale factor outside
            -10..10, or ``WHRtg``, ``SoC``, ``WChaRteMax`` or ``WDisChaRteMax``
            not implemented.
        ImplausibleReadingError: A state of charge (or limit) outside 0..100 %,
            or the lowest allowed charge above the highest.
    """
    if model_id != BATTERY_MODEL_ID:
        raise DecodeError(f"model {model_id} is not the battery model ({BATTERY_MODEL_ID})")
    if len(data) < BATTERY_MODEL.length:
        raise DecodeError(
            f"battery model data has {len(data)} registers; it needs {BATTERY_MODEL.length}"
        )
    rate_sf, soc_sf = _scale(data, "WChaDisChaMax_SF"), _scale(data, "SoC_SF")
    capacity = _mandatory(data, "WHRtg", _scale(data, "WHRtg_SF"))
    charge = _mandatory(data, "WChaRteMax", rate_sf)
    discharge = _mandatory(data, "WDisChaRteMax", rate_sf)
    soc = _percent(data, "SoC", soc_sf)
    if soc is None or soc_sf is None:
        raise DecodeError("battery model 802: SoC (mandatory) is not implemented")
    lows = [v for n in ("SoCMin", "SoCRsvMin") if (v := _percent(data, n, soc_sf)) is not None]
    highs = [v for n in ("SoCMax", "SoCRsvMax") if (v := _percent(data, n, soc_sf)) is not None]
    low, high = max(lows, default=Fraction(0)), min(highs, default=_HUNDRED)
    if low > high:
        raise ImplausibleReadingError(
            f"battery lowest state of charge {float(low):g} % is above the highest "
            f"{float(high):g} % (SoCMin/SoCRsvMin vs SoCMax/SoCRsvMax)",
            quantity="battery.SoCMin",
        )
    power = _scaled(data, "W", _scale(data, "W_SF"))
    status = point_value(BATTERY_MODEL, data, "ChaSt")
    return BatteryValues(
        capacity_wh=math.floor(capacity),
        soc_percent=soc,
        min_soc_percent=low,
        max_soc_percent=high,
        max_charge_w=math.floor(charge),
        max_discharge_w=math.floor(discharge),
        power_w=None if power is None else round(power),
        charge_status=None if status is None else int(status),
        soc_count_percent=Fraction(10) ** soc_sf,
    )
