"""A simulated home behind one bidirectional meter, with cumulative counters.

:class:`SimulatedMeter` integrates PV production and household consumption
over simulated time. Power is constant within each Unix minute (see
:mod:`meter_adapter.simulation._days`), and energy is accumulated exactly in
integer W·µs, so the counters after reaching a time are the same however the
time was reached: in one jump of a year or in a million small steps.

The meter never reads a clock; it moves when :meth:`SimulatedMeter.advance_to`
is called with a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from meter_adapter.errors import MeterConfigError

__all__ = ["MeterState", "PowerProfile", "SimulatedMeter"]

_US_PER_MINUTE = 60_000_000
_MINUTES_PER_DAY = 1440
_US_PER_DAY = _US_PER_MINUTE * _MINUTES_PER_DAY
_US_PER_WH = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PowerProfile(Protocol):
    """Power by Unix minute (whole W, non-negative)."""

    def power_w(self, minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Power during each Unix minute, W."""
        ...


@dataclass(frozen=True, slots=True)
class MeterState:
    """The simulated home at one instant.

    Attributes:
        time: The instant.
        production_w: PV output during the current minute, W.
        consumption_w: Household load during the current minute, W.
        import_wh: Energy drawn from the grid so far, Wh.
        export_wh: Energy fed into the grid so far, Wh.
        production_wh: PV energy produced so far, Wh.
    """

    time: datetime
    production_w: int
    consumption_w: int
    import_wh: int
    export_wh: int
    production_wh: int

    @property
    def net_power_w(self) -> int:
        """Power at the meter, W, positive into the grid."""
        return self.production_w - self.consumption_w


def _to_us(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise MeterConfigError(f"simulated time must be timezone-aware, got {when!r}")
    return (when - _EPOCH) // timedelta(microseconds=1)


class SimulatedMeter:
    """PV and household load behind one bidirectional meter.

    Args:
        household: Consumption profile.
        pv: Production profile, or ``None`` for a home without PV.
        start: Simulated time at which the counters hold their initial values.
        initial_import_wh: Import counter at ``start``, Wh.
        initial_export_wh: Export counter at ``start``, Wh.
        initial_production_wh: Production counter at ``start``, Wh.
    """

    def __init__(
        self,
        *,
        household: PowerProfile,
        pv: PowerProfile | None,
        start: datetime,
        initial_import_wh: int = 0,
        initial_export_wh: int = 0,
        initial_production_wh: int = 0,
    ) -> None:
        if min(initial_import_wh, initial_export_wh, initial_production_wh) < 0:
            raise MeterConfigError("initial counters must be non-negative")
        self.household = household
        self.pv = pv
        self._now_us = _to_us(start)
        # energy in W·µs on top of the initial counters, exact integers
        self._import = initial_import_wh * _US_PER_WH
        self._export = initial_export_wh * _US_PER_WH
        self._production = initial_production_wh * _US_PER_WH
        self._day_index: int | None = None
        self._day: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None

    def _power_day(self, day_index: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Production and consumption for each minute of UTC day ``day_index``."""
        if self._day_index != day_index or self._day is None:
            minutes = np.arange(
                day_index * _MINUTES_PER_DAY, (day_index + 1) * _MINUTES_PER_DAY, dtype=np.int64
            )
            consumption = np.clip(self.household.power_w(minutes), 0, None).astype(np.int64)
            production = (
                np.zeros_like(consumption)
                if self.pv is None
                else np.clip(self.pv.power_w(minutes), 0, None).astype(np.int64)
            )
            self._day_index, self._day = day_index, (production, consumption)
        return self._day

    def advance_to(self, when: datetime) -> MeterState:
        """Integrate up to ``when`` and return the state there.

        A time earlier than the meter's current time leaves the counters as
        they are (a meter cannot un-count) and reports the current state.
        """
        target = _to_us(when)
        while self._now_us < target:
            day_index = self._now_us // _US_PER_DAY
            day_start = day_index * _US_PER_DAY
            end = min(target, day_start + _US_PER_DAY)
            production, consumption = self._power_day(day_index)
            starts = day_start + np.arange(_MINUTES_PER_DAY, dtype=np.int64) * _US_PER_MINUTE
            overlap = np.clip(starts + _US_PER_MINUTE, self._now_us, end) - np.clip(
                starts, self._now_us, end
            )
            net = production - consumption
            self._export += int(np.dot(np.clip(net, 0, None), overlap))
            self._import += int(np.dot(np.clip(-net, 0, None), overlap))
            self._production += int(np.dot(production, overlap))
            self._now_us = end
        return self.state

    @property
    def state(self) -> MeterState:
        """The state at the meter's current time (no integration)."""
        day_index = self._now_us // _US_PER_DAY
        production, consumption = self._power_day(day_index)
        minute = (self._now_us - day_index * _US_PER_DAY) // _US_PER_MINUTE
        return MeterState(
            time=_EPOCH + timedelta(microseconds=self._now_us),
            production_w=int(production[minute]),
            consumption_w=int(consumption[minute]),
            import_wh=self._import // _US_PER_WH,
            export_wh=self._export // _US_PER_WH,
            production_wh=self._production // _US_PER_WH,
        )
