"""Clocks that drive the interval lifecycle.

:class:`WallClock` is the real time. :class:`SimClock` only moves when its
owner moves it, which lets a demo or a backtest run a day of intervals in
seconds, step by step (:meth:`market.engine.Engine.advance_to`).
"""

from __future__ import annotations

import threading
import time
from typing import Literal, Protocol

__all__ = ["Clock", "SimClock", "WallClock"]


class Clock(Protocol):
    """A source of the market's time, Unix milliseconds."""

    @property
    def kind(self) -> Literal["sim", "wall"]:
        """``"sim"`` or ``"wall"``."""

    def now_ms(self) -> int:
        """Current time, Unix ms."""


class WallClock:
    """The system clock."""

    @property
    def kind(self) -> Literal["wall"]:
        """Always ``"wall"``."""
        return "wall"

    def now_ms(self) -> int:
        """Current Unix time, ms."""
        return time.time_ns() // 1_000_000


class SimClock:
    """A simulated clock that moves only forward and only when told to.

    Args:
        start_ms: initial time, Unix ms.
    """

    def __init__(self, start_ms: int) -> None:
        self._now_ms = int(start_ms)
        self._lock = threading.Lock()

    @property
    def kind(self) -> Literal["sim"]:
        """Always ``"sim"``."""
        return "sim"

    def now_ms(self) -> int:
        """Current simulated time, Unix ms."""
        return self._now_ms

    def set(self, now_ms: int) -> None:
        """Move the clock to ``now_ms``; a time in the past leaves it where it is."""
        with self._lock:
            self._now_ms = max(self._now_ms, int(now_ms))
