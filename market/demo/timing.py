"""Where the demo's time goes: clearing (and its AC checks), settlement, report, plots.

The engine clears and settles in its own threads; the demo plugs in a
clearing backend and a settler that time each call, and times the report's
phases itself. Seconds are wall time of each call, summed over the run.
Settlement postings run on the engine's settlement thread behind the clock
(``EngineConfig.settle_behind_clock``), overlapping the trading loop: their
seconds are not part of the loop's, and the shares add up to more than 100 %.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from grid import Feeder
from market.clearing import ClearingResult
from market.config import MarketConfig
from market.engine.clearing import MarketClearing
from market.orders import Order, Participant

__all__ = ["TimedClearing", "TimedSettler", "Timings"]

#: Phase of the on-chain postings: they run on the engine's settlement thread,
#: overlapping the trading loop, so they are not part of its wall time.
SETTLEMENT = "settlement on chain (own thread, behind the clock)"


class Timings:
    """Seconds per phase, summed over calls (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        """Add ``seconds`` to ``phase``."""
        with self._lock:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def rows(self, wall_s: float) -> list[tuple[str, str]]:
        """(phase, "s (share of wall time)") pairs, largest first."""
        return [
            (phase, f"{s:.1f} s ({s / wall_s:.0%})" if wall_s else f"{s:.1f} s")
            for phase, s in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        ]


class TimedClearing(MarketClearing):
    """:class:`MarketClearing` that records each clearing's time and its AC-check share."""

    def __init__(self, timings: Timings) -> None:
        super().__init__()
        self.timings = timings

    def clear_result(
        self,
        feeder: Feeder,
        orders: Sequence[Order],
        participants: Mapping[str, Participant],
        config: MarketConfig,
        *,
        interval: int,
        mechanism: str,
    ) -> ClearingResult:
        """Clear like :class:`MarketClearing`, timing it."""
        t0 = time.perf_counter()
        result = super().clear_result(
            feeder, orders, participants, config, interval=interval, mechanism=mechanism
        )
        total = time.perf_counter() - t0
        self.timings.add(
            "clearing (engine, without its AC checks)", total - result.stats.ac_check_s
        )
        self.timings.add("AC checks of the cleared schedules", result.stats.ac_check_s)
        return result


class TimedSettler:
    """A settler proxy that records the time of each settlement."""

    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner = inner
        self._timings = timings

    def settle(self, settlement: Any) -> object:
        """Settle through the wrapped settler, timing it."""
        t0 = time.perf_counter()
        try:
            return self._inner.settle(settlement)
        finally:
            self._timings.add(SETTLEMENT, time.perf_counter() - t0)

    def correct(self, correction: Any) -> object:
        """Post a reconciliation through the wrapped settler, timing it."""
        t0 = time.perf_counter()
        try:
            return self._inner.correct(correction)
        finally:
            self._timings.add(SETTLEMENT, time.perf_counter() - t0)

    def advance(self, final_before: int, open_through: int) -> object:
        """Move the contract's watermarks through the wrapped settler, timing it."""
        t0 = time.perf_counter()
        try:
            return self._inner.advance(final_before, open_through)
        finally:
            self._timings.add(SETTLEMENT, time.perf_counter() - t0)

    def __getattr__(self, name: str) -> Any:
        # everything else (free_escrow, ...) as the wrapped settler has it
        return getattr(self._inner, name)
