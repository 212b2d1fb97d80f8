"""The feeder as each interval of a backtest day sees it: the one seam for base load.

Clearing, its AC check and the check of what was metered all take the grid
from :func:`interval_grids`. Today the feeder carries the static base load
of its network file, so every interval sees the same feeder (and the
sensitivities cached on it). Per-interval base-load forecasts, where the
feeder offers them, plug in here and nowhere else.
"""

from __future__ import annotations

import datetime as dt

from grid import Feeder
from market.backtest.spec import BacktestSpec

__all__ = ["interval_grids"]


def interval_grids(feeder: Feeder, spec: BacktestSpec, day: dt.date) -> list[Feeder]:
    """One feeder view per interval of ``day``, in order."""
    return [feeder] * spec.intervals_per_day
