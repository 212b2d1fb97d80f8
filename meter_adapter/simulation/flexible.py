"""Simulated flexible loads: an EV's evening charging session and a heat pump's hot-water run.

Both are deterministic per (seed, local day), like the household profile:

- :class:`EvCharging`: the car arrives between ``arrival_hours``, needs a
  drawn amount of energy and charges at the wallbox's power until it has it
  (plain charging, no smart scheduling of its own);
- :class:`HeatPump`: an evening domestic-hot-water run of drawn length at
  the compressor's electric power.

A home's :class:`~meter_adapter.simulation.meter.SimulatedMeter` treats their
power as deferrable: a dispatch limit (the home's cleared schedule) holds
them back first, before the household's own load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from meter_adapter.errors import MeterConfigError
from meter_adapter.simulation._days import (
    MINUTES_PER_LOCAL_DAY,
    DayCache,
    day_generator,
    local_minutes,
)

__all__ = ["EvCharging", "FlexibleLoads", "HeatPump"]

_EV_STREAM = 3
_HP_STREAM = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class EvCharging:
    """An electric car charged at home every evening.

    Attributes:
        power_w: Wallbox power, W (11 kW: three-phase 16 A).
        arrival_hours: Range of the local arrival time, hours.
        energy_kwh: Range of the energy needed per day, kWh.
    """

    power_w: float = 11_000.0
    arrival_hours: tuple[float, float] = (17.5, 19.0)
    energy_kwh: tuple[float, float] = (15.0, 35.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeatPump:
    """A heat pump heating domestic hot water in the evening.

    Attributes:
        power_w: Electric power while running, W.
        start_hours: Range of the local start time, hours.
        run_minutes: Range of the run length, minutes.
    """

    power_w: float = 3_000.0
    start_hours: tuple[float, float] = (18.0, 20.5)
    run_minutes: tuple[int, int] = (60, 150)


class FlexibleLoads:
    """The deferrable loads of one home, as power by Unix minute.

    Args:
        ev: The car, or None.
        heat_pump: The heat pump, or None.
        timezone: IANA zone of the home (local days).
        seed: Seeds arrival times, energies and run lengths.
    """

    def __init__(
        self,
        *,
        ev: EvCharging | None = None,
        heat_pump: HeatPump | None = None,
        timezone: str = "Europe/Berlin",
        seed: int = 0,
    ) -> None:
        if seed < 0:
            raise MeterConfigError("seed must be non-negative")
        for name, value in (("ev", ev), ("heat_pump", heat_pump)):
            if value is not None and not 0 < value.power_w <= 50_000:
                raise MeterConfigError(f"{name}.power_w {value.power_w} outside (0, 50000]")
        self.ev = ev
        self.heat_pump = heat_pump
        self.timezone = timezone
        self.seed = seed
        self._days = DayCache(self._day)

    def _day(self, ordinal: int) -> NDArray[np.float64]:
        power = np.zeros(MINUTES_PER_LOCAL_DAY)
        if self.ev is not None:
            rng = day_generator(self.seed, _EV_STREAM, ordinal)
            start = int(rng.uniform(*self.ev.arrival_hours) * 60)
            minutes = int(rng.uniform(*self.ev.energy_kwh) * 1000 / self.ev.power_w * 60)
            power[start : start + minutes] += self.ev.power_w
        if self.heat_pump is not None:
            rng = day_generator(self.seed, _HP_STREAM, ordinal)
            start = int(rng.uniform(*self.heat_pump.start_hours) * 60)
            length = int(rng.integers(self.heat_pump.run_minutes[0], self.heat_pump.run_minutes[1]))
            power[start : start + length] += self.heat_pump.power_w
        # a session running past local midnight continues on the next day
        return power

    def power_w(self, minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Deferrable consumption during each Unix minute, whole W."""
        local = local_minutes(minutes, self.timezone)
        own = local.per_day(self._days)
        spill = local.per_day(lambda o: np.roll(self._days(o - 1), -24 * 60) * _after(24 * 60))
        return np.rint(own + spill).astype(np.int64)


def _after(minute: int) -> NDArray[np.float64]:
    """Mask of the previous day's minutes that spill past its midnight into this day."""
    mask = np.zeros(MINUTES_PER_LOCAL_DAY)
    mask[: MINUTES_PER_LOCAL_DAY - minute] = 1.0
    return mask
