"""The prosumer agent's forecast of an interval's net energy.

Net energy is seen from the grid, like power in :mod:`meter_adapter.reading`:
``export − import`` in Wh, positive for a surplus the home can sell, negative
for a deficit it must buy.

:class:`EnergyHistory` turns the meter's cumulative counters into net energy
per market interval: the change of ``export − import`` between two
consecutive readings is spread over the intervals between them in proportion
to time. An interval's value counts once readings cover at least half of it,
and is scaled up to the whole interval (so a gateway that started late in an
interval still gives a usable figure).

The forecast for interval ``t`` (:func:`forecast_net_wh`) is deliberately
simple, a blend of two persistence forecasts::

    recent    = net energy of the latest usable interval among the current one
                and the three before it (persistence: the next quarter hour
                looks like the last one)
    yesterday = net energy of interval t − one day (same time yesterday:
                PV and household load follow the day)
    forecast  = blend · recent + (1 − blend) · yesterday   when both are known,
                whichever one is known otherwise, None when neither is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EnergyHistory", "IntervalEnergy", "forecast_net_wh"]

_DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """What the readings say about one interval.

    Attributes:
        interval: Interval id (interval k covers ``[k·I, (k+1)·I)`` of Unix time).
        net_wh: Export minus import within the covered part, Wh.
        covered_ms: How much of the interval lies between two readings, ms.
    """

    interval: int
    net_wh: float
    covered_ms: int


class EnergyHistory:
    """Net energy per interval from a meter's counters (see the module docstring).

    Args:
        interval_s: Market interval length, s.
        keep_s: How far back intervals are kept, s (default: two days).
    """

    def __init__(self, interval_s: int, *, keep_s: int = 2 * _DAY_S) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s: must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._interval_ms = interval_s * 1000
        self._keep = max(2, -(-keep_s // interval_s))
        self._net: dict[int, float] = {}
        self._covered: dict[int, int] = {}
        self._last: tuple[int, int] | None = None  # (timestamp_ms, export − import)

    @property
    def intervals_per_day(self) -> int:
        """Intervals in one day (rounded down)."""
        return _DAY_S // self.interval_s

    def observe(self, timestamp_ms: int, energy_import_wh: int, energy_export_wh: int) -> list[int]:
        """Take one reading; return the intervals this reading has just completed.

        Readings must come in time order; an earlier or equal timestamp is ignored.
        """
        net = energy_export_wh - energy_import_wh
        last, self._last = self._last, (timestamp_ms, net)
        if last is None:
            return []
        t0, net0 = last
        if timestamp_ms <= t0:
            self._last = last
            return []
        span = timestamp_ms - t0
        delta = net - net0
        step = self._interval_ms
        first, end = t0 // step, (timestamp_ms - 1) // step
        for k in range(first, end + 1):
            overlap = min(timestamp_ms, (k + 1) * step) - max(t0, k * step)
            self._net[k] = self._net.get(k, 0.0) + delta * overlap / span
            self._covered[k] = self._covered.get(k, 0) + overlap
        done = list(range(first, timestamp_ms // step))
        if done:
            self._forget(before=timestamp_ms // step - self._keep)
        return done

    def _forget(self, *, before: int) -> None:
        for k in [k for k in self._net if k < before]:
            del self._net[k], self._covered[k]

    def get(self, interval: int) -> IntervalEnergy | None:
        """The raw figures of one interval, if any reading covers part of it."""
        if interval not in self._net:
            return None
        return IntervalEnergy(interval, self._net[interval], self._covered[interval])

    def net_wh(self, interval: int) -> float | None:
        """Net energy of ``interval`` scaled up to the whole interval, Wh.

        None when readings cover less than half of it.
        """
        covered = self._covered.get(interval, 0)
        if 2 * covered < self._interval_ms:
            return None
        return self._net[interval] * self._interval_ms / min(covered, self._interval_ms)

    def load(self, entries: Iterable[IntervalEnergy]) -> None:
        """Restore intervals saved earlier (after a restart)."""
        for e in entries:
            self._net[e.interval] = e.net_wh
            self._covered[e.interval] = e.covered_ms


def forecast_net_wh(
    history: EnergyHistory, target: int, *, now_ms: int, blend: float = 0.5
) -> float | None:
    """Forecast net energy of interval ``target``, Wh (see the module docstring).

    Args:
        history: The meter's history.
        target: Interval to forecast.
        now_ms: The engine's time, Unix ms (which interval is "current").
        blend: Weight of the recent interval against the same time yesterday, 0..1.
    """
    current = now_ms // (history.interval_s * 1000)
    recent = None
    for k in range(current, current - 4, -1):
        if (recent := history.net_wh(k)) is not None:
            break
    yesterday = history.net_wh(target - history.intervals_per_day)
    if recent is None:
        return yesterday
    if yesterday is None:
        return recent
    return blend * recent + (1.0 - blend) * yesterday
