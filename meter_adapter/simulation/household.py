"""Simulated household consumption: a realistic daily shape with seeded appliance use.

Each local day is built from:

- a smooth shape with a night-time base load, a morning peak and a larger
  evening peak (later mornings and a busier midday at weekends), scaled to the
  annual consumption with more use in winter than in summer;
- a day-to-day level drawn around 1;
- appliance events drawn for the day: kettle, cooking, washing machine;
- a fridge compressor cycling through the day.

Deterministic: power at a minute depends only on the parameters, the seed and
the minute, never on the order of evaluation or on the wall clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from numpy.typing import NDArray

from meter_adapter.errors import MeterConfigError
from meter_adapter.simulation._days import (
    MINUTES_PER_LOCAL_DAY,
    DayCache,
    day_generator,
    day_of_year,
    local_minutes,
    minute_of,
)

__all__ = ["HouseholdProfile"]

_STREAM = 2
_HOURS = np.arange(MINUTES_PER_LOCAL_DAY) / 60.0


def _bump(hours: NDArray[np.float64], centre: float, width: float) -> NDArray[np.float64]:
    return np.exp(-0.5 * ((hours - centre) / width) ** 2)


def _shape(weekend: bool) -> NDArray[np.float64]:
    """Relative load over a local day (minute resolution), mean 1 over 24 h."""
    h = _HOURS % 24
    morning = (9.0, 1.5) if weekend else (7.2, 1.0)
    shape = (
        0.45
        + 0.9 * _bump(h, *morning)
        + (0.6 if weekend else 0.35) * _bump(h, 12.5, 1.5)
        + 1.4 * _bump(h, 19.0, 1.8)
        + 0.3 * _bump(h, 22.0, 1.0)
    )
    return shape / float(shape[: 24 * 60].mean())


_WEEKDAY_SHAPE = _shape(weekend=False)
_WEEKEND_SHAPE = _shape(weekend=True)


@dataclass(frozen=True, slots=True)
class _Appliance:
    power_w: float
    minutes: tuple[int, int]  # duration range
    hours: tuple[float, float]  # start time range, local hours
    per_day: tuple[int, int]  # how many uses, range
    probability: float  # chance the appliance is used at all on a day


_APPLIANCES = (
    _Appliance(2000.0, (3, 5), (6.5, 22.5), (1, 4), 0.95),  # kettle
    _Appliance(2200.0, (20, 60), (17.0, 19.5), (1, 1), 0.6),  # oven / hob
    _Appliance(1900.0, (15, 25), (8.0, 20.0), (1, 1), 0.35),  # washing machine heating
    _Appliance(800.0, (10, 20), (7.0, 8.5), (1, 1), 0.5),  # toaster, coffee, hair dryer
)


class HouseholdProfile:
    """Consumption of a simulated household, by minute.

    Args:
        annual_kwh: Consumption over a year, kWh (3500 is a typical 3-person home).
        timezone: IANA zone of the home (for local days and weekends).
        seed: Seeds the day-to-day variation and appliance use.
    """

    def __init__(
        self, *, annual_kwh: float = 3500.0, timezone: str = "Europe/Berlin", seed: int = 0
    ) -> None:
        if not 0 < annual_kwh <= 1_000_000:
            raise MeterConfigError(f"annual_kwh {annual_kwh} outside (0, 1e6]")
        if seed < 0:
            raise MeterConfigError("seed must be non-negative")
        self.annual_kwh = annual_kwh
        self.timezone = timezone
        self.seed = seed
        self._days = DayCache(self._day)

    def _day(self, ordinal: int) -> NDArray[np.float64]:
        rng = day_generator(self.seed, _STREAM, ordinal)
        weekend = date.fromordinal(ordinal).weekday() >= 5
        season = 1.0 + 0.18 * math.cos(2 * math.pi * (day_of_year(ordinal) - 15) / 365.25)
        mean_w = self.annual_kwh * 1000.0 / 8766.0 * season * rng.lognormal(0.0, 0.12)
        events = np.zeros(MINUTES_PER_LOCAL_DAY)
        for appliance in _APPLIANCES:
            if rng.random() >= appliance.probability:
                continue
            for _ in range(rng.integers(appliance.per_day[0], appliance.per_day[1] + 1)):
                start = int(rng.uniform(*appliance.hours) * 60)
                length = int(rng.integers(appliance.minutes[0], appliance.minutes[1] + 1))
                events[start : start + length] += appliance.power_w
        fridge_phase = rng.integers(0, 40)
        fridge = np.where((np.arange(MINUTES_PER_LOCAL_DAY) + fridge_phase) % 40 < 15, 90.0, 0.0)
        # appliances and fridge are part of the day's energy, not on top of it
        smooth_wh = max(
            mean_w * 24 - (events.sum() + fridge[: 24 * 60].sum()) / 60, 0.3 * mean_w * 24
        )
        shape = _WEEKEND_SHAPE if weekend else _WEEKDAY_SHAPE
        wobble = 1.0 + 0.1 * np.repeat(rng.normal(0.0, 1.0, MINUTES_PER_LOCAL_DAY // 10), 10)
        smooth = np.clip(shape * wobble, 0.2, None) * smooth_wh / 24
        return np.asarray(smooth + events + fridge, dtype=np.float64)

    def power_w(self, minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Consumption during each Unix minute, whole W."""
        local = local_minutes(minutes, self.timezone)
        return np.rint(local.per_day(self._days)).astype(np.int64)

    def power_at(self, when: datetime) -> int:
        """Consumption during the minute containing ``when``, W."""
        return int(self.power_w(np.array([minute_of(when)], dtype=np.int64))[0])
