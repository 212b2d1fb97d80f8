"""The report's copper-plate schedules and metered power flows, run while the day runs.

The demo's clock loop hands :class:`ReportAhead` each interval as the engine
clears it and as it meters it; one worker thread clears the same book
``uniform`` and runs that schedule's AC power flow, and runs the AC power
flow of what was metered, into an :class:`~market.report.ahead.Ahead` that
:func:`~market.report.journal.report_from_journal` reads. The report after
the day then runs neither (the nodal flow it reads from the journal). The
inputs are copied on the loop's thread when handed over, so the worker never
reads the engine's state while the engine changes it.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from grid import Feeder
from market.config import MarketConfig
from market.report.ahead import Ahead, delivered_figures, metered_key, uniform_key
from market.report.counterfactual import uniform_schedule

__all__ = ["REPORT_AHEAD", "ReportAhead"]

#: Phase of the worker's seconds (they overlap the trading loop).
REPORT_AHEAD = "report ahead: copper-plate schedules and metered AC flows (worker thread)"


class ReportAhead:
    """Computes the report's per-interval power flows on a worker thread as the day runs."""

    def __init__(self, feeder: Feeder, market: MarketConfig, timings: Any) -> None:
        self.ahead = Ahead()
        self._feeder = feeder
        self._market = market
        self._timings = timings
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gridex-demo-report")
        self._futures: list[Future[None]] = []

    def _view(self, base: Any) -> Feeder:
        if base is None:
            return self._feeder
        from market.forecast import BaseInterval

        return BaseInterval.from_json(base).view(self._feeder)

    def cleared(self, engine: Any, interval: int) -> None:
        """Queue the copper-plate schedule of ``interval``, which the engine has cleared."""
        from gridex.v1 import types_pb2 as pb

        s = engine.state.intervals[interval]
        record = s.clearing
        if record is None or not record.ok:
            return
        orders = tuple(r.order for r in s.orders if r.status != pb.ORDER_STATUS_CANCELLED)
        participants = dict(engine.state.participants)
        base = record.base

        def run() -> None:
            t0 = time.perf_counter()
            value = uniform_schedule(
                self._view(base), orders, participants, self._market, interval=interval
            )
            self.ahead.put_uniform(interval, uniform_key(orders, base), value)
            self._timings.add(REPORT_AHEAD, time.perf_counter() - t0)

        self._futures.append(self._pool.submit(run))

    def metered(self, engine: Any, interval: int) -> None:
        """Queue the metered power flow of ``interval``, which the engine has metered."""
        s = engine.state.intervals[interval]
        if s.clearing is None or s.metered is None:
            return
        metered = dict(s.metered)
        meters = dict(engine.state.meters)
        participants = dict(engine.state.participants)
        base = s.clearing.base

        def run() -> None:
            t0 = time.perf_counter()
            value = delivered_figures(
                self._view(base),
                metered,
                meters=meters,
                participants=participants,
                interval_s=self._market.interval_s,
                interval=interval,
            )
            self.ahead.put_delivered(interval, metered_key(metered), value)
            self._timings.add(REPORT_AHEAD, time.perf_counter() - t0)

        self._futures.append(self._pool.submit(run))

    def finish(self) -> Ahead:
        """Wait for the queued work (raising what it raised) and stop the worker."""
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self.ahead

    def abandon(self) -> None:
        """Drop the queued work without waiting (the job running, if any, ends by itself)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
