"""Plausibility of one measurement: the values a device of its rating can report.

A well-framed answer can still be garbage (a register bank being rewritten,
a firmware bug, a hostile device): ``W = 32767`` with ``W_SF = 10`` decodes
to 3.3·10¹⁴ W. Such a measurement is refused here, before it becomes a
reading, so it is never sent; :class:`~meter_adapter.reader.MeterReader`
quarantines and counts it.

The rules (each a :class:`Limits` field):

- net power ``|power_w|`` at most ``site_power_w`` — from the register map's
  ``[device] max_power_w`` or the gateway's configured bound (``gridex-meter
  --max-power-w``; SunSpec meter models carry no rating);
- inverter output ``production_w`` within ``[-standby, 1.1 × rating]`` where
  the device has a rating: SunSpec nameplate model 120 (``WRtg``), else the
  site bound;
- energy counters never run backwards and never step by more than the
  bound power × the time since the last accepted reading (plus two counts
  of resolution) — checked by the reader, which knows the elapsed time.

- a battery (SunSpec model 802, :meth:`Limits.check_battery`): capacity
  positive and chargeable through the connection within a day (at most
  ``site_power_w`` × 24 h), charge and discharge limits at most
  ``site_power_w``, battery power within its own limits (× 1.1, plus 50 W of
  standby); its state of charge and reserve limits within 0..100 % (refused
  while decoding, :mod:`meter_adapter.sunspec.battery`) and stepping by at
  most the rated power × elapsed time (checked by the reader).

SunSpec scale factors outside the spec's -10..10 are refused while decoding
(:mod:`meter_adapter.sunspec.decode`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meter_adapter.errors import ImplausibleReadingError, MeterConfigError
from meter_adapter.sources import Measurement
from meter_adapter.sunspec.battery import BatteryValues

__all__ = ["BATTERY_FILL_HOURS", "RATING_TOLERANCE", "Limits"]

RATING_TOLERANCE = 1.1
"""A device may exceed its continuous rating by this factor (short peaks, meter error)."""

BATTERY_FILL_HOURS = 24
"""A home battery fills through its connection within this many hours at the site's bound."""

_STANDBY_FRACTION = 0.05  # an inverter draws at most this share of its rating at night
_STANDBY_MIN_W = 50.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds one device's measurements must stay within.

    Attributes:
        site_power_w: Largest |net power| at the grid connection, W.
        production_rating_w: Inverter continuous rating, W (``None``: the site bound).
    """

    site_power_w: float
    production_rating_w: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.site_power_w) and self.site_power_w > 0):
            raise MeterConfigError(f"site_power_w: must be positive, got {self.site_power_w}")
        rating = self.production_rating_w
        if rating is not None and not (math.isfinite(rating) and rating > 0):
            raise MeterConfigError(f"production_rating_w: must be positive, got {rating}")

    @property
    def production_power_w(self) -> float:
        """Largest plausible inverter output, W."""
        if self.production_rating_w is None:
            return self.site_power_w
        return RATING_TOLERANCE * self.production_rating_w

    def step_power_w(self, counter: str) -> float:
        """The power bounding a step of energy counter ``counter``, W."""
        return self.production_power_w if counter == "production_wh" else self.site_power_w

    def check(self, measurement: Measurement) -> None:
        """Refuse a measurement with a power no device of these limits reports.

        Raises:
            ImplausibleReadingError: naming the quantity, its value and the bound.
        """
        power = measurement.power_w
        if not math.isfinite(power) or abs(power) > self.site_power_w:
            raise ImplausibleReadingError(
                f"power_w={power:.6g} W is beyond the site's bound of ±{self.site_power_w:g} W",
                quantity="power_w",
            )
        production = measurement.production_w
        if production is None:
            return
        top = self.production_power_w
        standby = max(_STANDBY_MIN_W, _STANDBY_FRACTION * top)
        if not math.isfinite(production) or not -standby <= production <= top:
            raise ImplausibleReadingError(
                f"production_w={production:.6g} W is outside {-standby:g}..{top:g} W "
                "(the inverter's rating)",
                quantity="production_w",
            )

    def check_battery(self, battery: BatteryValues) -> None:
        """Refuse a battery reading no battery at this site reports.

        Raises:
            ImplausibleReadingError: naming the model point, its value and the bound.
        """
        most_wh = self.site_power_w * BATTERY_FILL_HOURS
        if not 0 < battery.capacity_wh <= most_wh:
            raise ImplausibleReadingError(
                f"battery WHRtg={battery.capacity_wh} Wh is outside (0, {most_wh:g}] Wh "
                f"(the site's bound × {BATTERY_FILL_HOURS} h)",
                quantity="battery.WHRtg",
            )
        for name, value in (
            ("WChaRteMax", battery.max_charge_w),
            ("WDisChaRteMax", battery.max_discharge_w),
        ):
            if value > self.site_power_w:
                raise ImplausibleReadingError(
                    f"battery {name}={value} W is beyond the site's bound of "
                    f"{self.site_power_w:g} W",
                    quantity=f"battery.{name}",
                )
        power = battery.power_w
        if power is None:
            return
        top = RATING_TOLERANCE * battery.max_discharge_w + _STANDBY_MIN_W
        bottom = -(RATING_TOLERANCE * battery.max_charge_w + _STANDBY_MIN_W)
        if not bottom <= power <= top:
            raise ImplausibleReadingError(
                f"battery W={power} W is outside {bottom:g}..{top:g} W "
                "(its charge and discharge limits)",
                quantity="battery.W",
            )
