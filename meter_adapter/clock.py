"""Time sources: the wall clock for real meters, controllable clocks for simulation.

Everything that needs the time takes a :data:`Clock` (a function returning a
timezone-aware ``datetime``) instead of reading the wall clock, so the engine
can drive simulated meters with its own fast-forwarding clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from meter_adapter.errors import MeterConfigError

__all__ = ["Clock", "ScaledClock", "SimulatedClock", "utc_now"]

Clock: TypeAlias = Callable[[], datetime]
"""A source of timezone-aware timestamps."""


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def _aware(when: datetime, what: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise MeterConfigError(f"{what} must be timezone-aware, got {when!r}")
    return when


class SimulatedClock:
    """A clock that moves only when told to; never backwards.

    Args:
        start: The initial time, timezone-aware.
    """

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start, "start")

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move forward by ``seconds`` (or a timedelta) and return the new time.

        Raises:
            MeterConfigError: A negative step.
        """
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise MeterConfigError(f"a clock cannot go backwards ({step})")
        self._now += step
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``, which must not be earlier than now.

        Raises:
            MeterConfigError: ``when`` is naive or in the past of this clock.
        """
        if _aware(when, "when") < self._now:
            raise MeterConfigError(f"a clock cannot go backwards (to {when})")
        self._now = when


class ScaledClock:
    """Simulated time running ``speed`` times faster than a monotonic timer.

    Args:
        start: Simulated time at construction, timezone-aware.
        speed: Simulated seconds per real second (3600 = an hour per second).
        monotonic: The real timer, s (``time.monotonic`` unless a test fakes it).
    """

    def __init__(
        self,
        start: datetime,
        *,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise MeterConfigError(f"clock speed must be positive, got {speed}")
        self._start = _aware(start, "start")
        self._speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def __call__(self) -> datetime:
        elapsed_s = (self._monotonic() - self._origin) * self._speed
        return self._start + timedelta(seconds=elapsed_s)
