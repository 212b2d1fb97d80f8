"""Simulated electric-vehicle home charging, by minute.

Each local day the car comes home (with probability ``home_probability`` on
a weekday, less at weekends) at an arrival time drawn around ``arrival_hour``
and charges at ``charge_power_w`` until the day's driving energy, drawn
around ``daily_kwh``, is back in the battery (uncontrolled charging, the
common case today). A charge that would run past the end of the local day
stops there.

Deterministic: power at a minute depends only on the parameters, the seed and
the minute, never on the order of evaluation or on the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from meter_adapter.errors import MeterConfigError
from meter_adapter.simulation._days import (
    MINUTES_PER_LOCAL_DAY,
    DayCache,
    day_generator,
    local_minutes,
)

__all__ = ["EvCharging"]

_STREAM = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class _EvParams:
    charge_power_w: float
    daily_kwh: float
    arrival_hour: float
    home_probability: float


class EvCharging:
    """Charging load of one car at home, by minute (a :class:`PowerProfile`).

    Args:
        charge_power_w: Wallbox power, W (11 kW three-phase is common in Europe).
        daily_kwh: Mean energy recharged on a charging day, kWh.
        arrival_hour: Mean local arrival time, hours.
        home_probability: Chance the car charges on a weekday, 0..1 (weekends: 60 % of it).
        timezone: IANA zone of the home.
        seed: Seeds the arrival times and energies.

    Raises:
        MeterConfigError: a parameter is out of range (every problem named).
    """

    def __init__(
        self,
        *,
        charge_power_w: float = 11_000.0,
        daily_kwh: float = 12.0,
        arrival_hour: float = 18.0,
        home_probability: float = 0.8,
        timezone: str = "Europe/Berlin",
        seed: int = 0,
    ) -> None:
        problems = []
        if not 0 < charge_power_w <= 350_000:
            problems.append(f"charge_power_w {charge_power_w} outside (0, 350000]")
        if not 0 < daily_kwh <= 200:
            problems.append(f"daily_kwh {daily_kwh} outside (0, 200]")
        if not 0 <= arrival_hour < 24:
            problems.append(f"arrival_hour {arrival_hour} outside [0, 24)")
        if not 0 <= home_probability <= 1:
            problems.append(f"home_probability {home_probability} outside 0..1")
        if seed < 0:
            problems.append("seed must be non-negative")
        if problems:
            raise MeterConfigError("invalid EV charging: " + "; ".join(problems))
        self._params = _EvParams(
            charge_power_w=charge_power_w,
            daily_kwh=daily_kwh,
            arrival_hour=arrival_hour,
            home_probability=home_probability,
        )
        self.timezone = timezone
        self.seed = seed
        self._days = DayCache(self._day)

    def _day(self, ordinal: int) -> NDArray[np.float64]:
        p = self._params
        rng = day_generator(self.seed, _STREAM, ordinal)
        weekend = date.fromordinal(ordinal).weekday() >= 5
        chance = p.home_probability * (0.6 if weekend else 1.0)
        # draw everything every day, so one day's draws never shift another's
        charges = rng.random() < chance
        arrival = float(np.clip(rng.normal(p.arrival_hour, 1.5), 0.0, 23.75))
        energy_kwh = float(np.clip(rng.normal(p.daily_kwh, 0.35 * p.daily_kwh), 1.0, None))
        out = np.zeros(MINUTES_PER_LOCAL_DAY)
        if charges:
            start = int(arrival * 60)
            minutes = int(np.ceil(energy_kwh * 60_000.0 / p.charge_power_w))
            out[start : min(start + minutes, 24 * 60)] = p.charge_power_w
        return out

    def power_w(self, minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Charging power during each Unix minute, whole W."""
        local = local_minutes(minutes, self.timezone)
        return np.rint(local.per_day(self._days)).astype(np.int64)
