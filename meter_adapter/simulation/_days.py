"""Shared machinery of the profiles: minutes, local days, per-day random series.

Profiles are evaluated on whole minutes: minute ``m`` is the interval
``[60 m, 60 (m + 1))`` seconds after the Unix epoch, and power is constant
within it. Everything random about a day is drawn from a generator seeded with
``(seed, stream, local date)``, so any minute's value depends only on the seed
and the time, never on what was evaluated before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "MINUTES_PER_LOCAL_DAY",
    "DayCache",
    "LocalMinutes",
    "day_generator",
    "day_of_year",
    "local_minutes",
    "minute_of",
]

MINUTES_PER_LOCAL_DAY = 25 * 60
"""Room for the longest local day (the autumn daylight-saving change)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def minute_of(when: datetime) -> int:
    """The Unix minute containing ``when`` (which must be timezone-aware)."""
    return int((when - _EPOCH).total_seconds() // 60)


class LocalMinutes:
    """Unix minutes seen in a time zone: their times, local dates and minute of the local day."""

    def __init__(self, minutes: NDArray[np.int64], timezone: str) -> None:
        self.utc = pd.to_datetime(np.asarray(minutes, dtype=np.int64) * 60, unit="s", utc=True)
        local = self.utc.tz_convert(timezone)
        midnight = local.normalize()
        self.minute_of_day: NDArray[np.int64] = np.asarray(
            (local - midnight).total_seconds() // 60, dtype=np.int64
        )
        self.ordinals: NDArray[np.int64] = np.asarray(
            [d.toordinal() for d in midnight.date], dtype=np.int64
        )
        self.hour: NDArray[np.float64] = np.asarray(self.minute_of_day / 60.0, dtype=np.float64)

    def per_day(self, series: Callable[[int], NDArray[np.float64]]) -> NDArray[np.float64]:
        """Look up each minute in ``series(ordinal)``, a per-local-day array by minute of day."""
        result = np.empty(len(self.ordinals), dtype=np.float64)
        for ordinal in np.unique(self.ordinals):
            mask = self.ordinals == ordinal
            result[mask] = series(int(ordinal))[self.minute_of_day[mask]]
        return result


def local_minutes(minutes: NDArray[np.int64], timezone: str) -> LocalMinutes:
    """Describe ``minutes`` in ``timezone``."""
    return LocalMinutes(minutes, timezone)


def day_generator(seed: int, stream: int, ordinal: int) -> np.random.Generator:
    """The random generator of one local day: a pure function of its arguments."""
    return np.random.default_rng([seed, stream, ordinal])


class DayCache:
    """A small least-recently-used cache of per-day arrays, keyed by date ordinal."""

    def __init__(self, build: Callable[[int], NDArray[np.float64]], *, size: int = 8) -> None:
        self._build = build
        self._size = size
        self._entries: OrderedDict[int, NDArray[np.float64]] = OrderedDict()

    def __call__(self, ordinal: int) -> NDArray[np.float64]:
        if ordinal in self._entries:
            self._entries.move_to_end(ordinal)
            return self._entries[ordinal]
        value = self._build(ordinal)
        self._entries[ordinal] = value
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value


def day_of_year(ordinal: int) -> int:
    """Day of the year (1..366) of a date ordinal."""
    return date.fromordinal(ordinal).timetuple().tm_yday
