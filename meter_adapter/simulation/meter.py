"""A simulated home behind one bidirectional meter, with cumulative counters.

:class:`SimulatedMeter` integrates PV production and household consumption
over simulated time. Power is constant within each Unix minute (see
:mod:`meter_adapter.simulation._days`), and energy is accumulated exactly in
integer W·µs, so the counters after reaching a time are the same however the
time was reached: in one jump of a year or in a million small steps.

The meter never reads a clock; it moves when :meth:`SimulatedMeter.advance_to`
is called with a time.

A home may also follow a dispatch (:meth:`SimulatedMeter.dispatch`): for one
market interval, the energy it may export (what it sold) and import (what it
bought). A home energy manager then curtails PV and holds back the deferrable
loads (EV, heat pump) minute by minute so that the interval's export and
import stay within those amounts, spreading what is left of each budget
evenly over the minutes left. The household's own load is never held back,
so import can exceed its budget when that load alone does.

A battery or an EV behind the meter runs its cleared schedule
(:meth:`SimulatedMeter.follow`): for one interval, the energy it charges and
discharges, at constant power over the interval's whole minutes and exact
to the Wh. It is neither curtailed nor held back; a dispatch works around it.
"""

from __future__ import annotations

import math
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
        storage_w: Battery or EV power during the current minute, W, positive
            discharging (into the home), negative charging.
    """

    time: datetime
    production_w: int
    consumption_w: int
    import_wh: int
    export_wh: int
    production_wh: int
    storage_w: int = 0

    @property
    def net_power_w(self) -> int:
        """Power at the meter, W, positive into the grid."""
        return self.production_w - self.consumption_w + self.storage_w


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
        flexible: Deferrable consumption (EV, heat pump), or ``None``.
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
        flexible: PowerProfile | None = None,
    ) -> None:
        if min(initial_import_wh, initial_export_wh, initial_production_wh) < 0:
            raise MeterConfigError("initial counters must be non-negative")
        self.household = household
        self.pv = pv
        self.flexible = flexible
        # per UTC day: Unix minute offsets held back by a dispatch → (production, flexible) W
        self._held: dict[int, dict[int, tuple[int, int]]] = {}
        # per UTC day: Unix minute offsets a battery or EV runs → W, positive discharging
        self._storage: dict[int, dict[int, int]] = {}
        self._raw_index: int | None = None
        self._raw: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]] | None = None
        self._now_us = _to_us(start)
        # energy in W·µs on top of the initial counters, exact integers
        self._import = initial_import_wh * _US_PER_WH
        self._export = initial_export_wh * _US_PER_WH
        self._production = initial_production_wh * _US_PER_WH
        self._day_index: int | None = None
        self._day: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]] | None = None

    def _raw_day(
        self, day_index: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Production, household and deferrable load for each minute of UTC day ``day_index``."""
        if self._raw_index != day_index or self._raw is None:
            minutes = np.arange(
                day_index * _MINUTES_PER_DAY, (day_index + 1) * _MINUTES_PER_DAY, dtype=np.int64
            )
            household = np.clip(self.household.power_w(minutes), 0, None).astype(np.int64)
            production = (
                np.zeros_like(household)
                if self.pv is None
                else np.clip(self.pv.power_w(minutes), 0, None).astype(np.int64)
            )
            flexible = (
                np.zeros_like(household)
                if self.flexible is None
                else np.clip(self.flexible.power_w(minutes), 0, None).astype(np.int64)
            )
            self._raw_index, self._raw = day_index, (production, household, flexible)
        return self._raw

    def _power_day(
        self, day_index: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Production, consumption and storage power per minute of UTC day
        ``day_index``, dispatch and schedules applied."""
        if self._day_index != day_index or self._day is None:
            production, household, flexible = self._raw_day(day_index)
            held = self._held.get(day_index)
            production, flexible = production.copy(), flexible.copy()
            if held:
                offsets = np.fromiter(held, dtype=np.int64, count=len(held))
                values = np.array(list(held.values()), dtype=np.int64)
                production[offsets], flexible[offsets] = values[:, 0], values[:, 1]
            storage = np.zeros_like(production)
            runs = self._storage.get(day_index)
            if runs:
                storage[np.fromiter(runs, dtype=np.int64, count=len(runs))] = list(runs.values())
            self._day_index, self._day = day_index, (production, household + flexible, storage)
        return self._day

    def follow(self, start: datetime, end: datetime, *, charge_wh: int, discharge_wh: int) -> None:
        """Run a battery or EV behind the meter in ``[start, end)``: ``charge_wh``
        in and ``discharge_wh`` out, at constant power over the whole minutes
        (the first minutes take the remainder, so the energies are exact).

        Minutes the meter has already integrated are left as they were; a
        second call for the same window replaces the first.

        Raises:
            MeterConfigError: a negative energy, or a window not within one UTC day.
        """
        if charge_wh < 0 or discharge_wh < 0:
            raise MeterConfigError("follow: charge_wh and discharge_wh must be >= 0")
        days = _minutes_by_day(_to_us(start), _to_us(end))
        if len(days) != 1:
            raise MeterConfigError("follow: the window must lie within one UTC day")
        day_index, offsets = days[0]
        n = len(offsets)
        first_open = -(-(self._now_us - day_index * _US_PER_DAY) // _US_PER_MINUTE)
        runs = self._storage.setdefault(day_index, {})
        # W·min per minute: energy × 60 spread over n minutes, remainder first
        out_w, out_left = divmod(discharge_wh * 60, n)
        in_w, in_left = divmod(charge_wh * 60, n)
        for i, m in enumerate(int(o) for o in offsets):
            w = out_w + (i < out_left) - in_w - (i < in_left)
            if m >= first_open:
                runs[m] = w
                if self._day_index == day_index and self._day is not None:
                    self._day[2][m] = w

    def planned_net_wh(self, start: datetime, end: datetime) -> float:
        """Net energy the home would exchange in ``[start, end)`` without a dispatch, Wh.

        Positive for a surplus (export), negative for a deficit; what the
        home's energy manager knows of its PV, its household load and its
        deferrable loads.
        """
        total = 0.0
        for day_index, offsets in _minutes_by_day(_to_us(start), _to_us(end)):
            production, household, flexible = self._raw_day(day_index)
            total += float((production - household - flexible)[offsets].sum()) / 60.0
        return total

    def dispatch(
        self,
        start: datetime,
        end: datetime,
        *,
        export_wh: int | None,
        import_wh: int | None,
    ) -> None:
        """Hold export and import in ``[start, end)`` to these energies (None: no limit).

        Minutes the meter has already integrated are left as they were.

        Raises:
            MeterConfigError: a negative energy, or a window not within one UTC day.
        """
        if (export_wh is not None and export_wh < 0) or (import_wh is not None and import_wh < 0):
            raise MeterConfigError("dispatch: export_wh and import_wh must be >= 0")
        days = _minutes_by_day(_to_us(start), _to_us(end))
        if len(days) != 1:
            raise MeterConfigError("dispatch: the window must lie within one UTC day")
        day_index, offsets = days[0]
        production, household, flexible = self._raw_day(day_index)
        first_open = -(-(self._now_us - day_index * _US_PER_DAY) // _US_PER_MINUTE)
        rem_ex = None if export_wh is None else float(export_wh)
        rem_im = None if import_wh is None else float(import_wh)
        held = self._held.setdefault(day_index, {})
        runs = self._storage.get(day_index, {})
        n = len(offsets)
        for i, m in enumerate(int(o) for o in offsets):
            p, h, f = int(production[m]), int(household[m]), int(flexible[m])
            d = runs.get(m, 0)  # the battery's schedule runs as it is
            left = n - i
            if rem_im is not None:
                cap = max(rem_im, 0.0) * 60.0 / left
                f = min(f, max(0, math.floor(cap + p + d - h)))
            if rem_ex is not None:
                cap = max(rem_ex, 0.0) * 60.0 / left
                p = min(p, max(0, math.floor(h + f - d + cap)))
            net = p - h - f + d
            if rem_ex is not None and net > 0:
                rem_ex -= net / 60.0
            if rem_im is not None and net < 0:
                rem_im += net / 60.0
            if m >= first_open:
                held[m] = (p, f)
                if self._day_index == day_index and self._day is not None:
                    self._day[0][m], self._day[1][m] = p, h + f

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
            production, consumption, storage = self._power_day(day_index)
            # only the minutes between now and end contribute
            m0 = (self._now_us - day_start) // _US_PER_MINUTE
            m1 = min(-(-(end - day_start) // _US_PER_MINUTE), _MINUTES_PER_DAY)
            production, consumption = production[m0:m1], consumption[m0:m1]
            starts = day_start + np.arange(m0, m1, dtype=np.int64) * _US_PER_MINUTE
            overlap = np.clip(starts + _US_PER_MINUTE, self._now_us, end) - np.clip(
                starts, self._now_us, end
            )
            net = production - consumption + storage[m0:m1]
            self._export += int(np.dot(np.clip(net, 0, None), overlap))
            self._import += int(np.dot(np.clip(-net, 0, None), overlap))
            self._production += int(np.dot(production, overlap))
            self._now_us = end
        return self.state

    def forget_before(self, when: datetime) -> None:
        """Drop dispatch records of UTC days before ``when`` (memory of a long run)."""
        day = _to_us(when) // _US_PER_DAY
        for records in (self._held, self._storage):
            for d in [d for d in records if d < day]:
                del records[d]

    @property
    def state(self) -> MeterState:
        """The state at the meter's current time (no integration)."""
        day_index = self._now_us // _US_PER_DAY
        production, consumption, storage = self._power_day(day_index)
        minute = (self._now_us - day_index * _US_PER_DAY) // _US_PER_MINUTE
        return MeterState(
            time=_EPOCH + timedelta(microseconds=self._now_us),
            production_w=int(production[minute]),
            consumption_w=int(consumption[minute]),
            import_wh=self._import // _US_PER_WH,
            export_wh=self._export // _US_PER_WH,
            production_wh=self._production // _US_PER_WH,
            storage_w=int(storage[minute]),
        )


def _minutes_by_day(start_us: int, end_us: int) -> list[tuple[int, NDArray[np.int64]]]:
    """The whole Unix minutes in ``[start_us, end_us)``, grouped by UTC day as minute offsets."""
    first = -(-start_us // _US_PER_MINUTE)
    last = end_us // _US_PER_MINUTE
    minutes = np.arange(first, last, dtype=np.int64)
    out = []
    for day in np.unique(minutes // _MINUTES_PER_DAY):
        sel = minutes[minutes // _MINUTES_PER_DAY == day]
        out.append((int(day), sel - int(day) * _MINUTES_PER_DAY))
    return out
