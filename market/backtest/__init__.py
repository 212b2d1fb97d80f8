"""Backtests and what-if studies: many feeders, many days, on Dask.

Typical use::

    from market.backtest import BacktestSpec, resolve_feeders, run_backtest, read_intervals

    spec = BacktestSpec(feeders=tuple(resolve_feeders(["cigre-lv"])), days=7)
    outcome = run_backtest(spec, Path("backtest"))       # a LocalCluster by default
    table = read_intervals(Path("backtest"))             # one row per interval

- :mod:`market.backtest.spec`: what a backtest simulates.
- :mod:`market.backtest.day`: one (feeder, day), interval by interval.
- :mod:`market.backtest.store`: the parquet dataset, one file per (feeder, day).
- :mod:`market.backtest.runner`: Dask (or serial) execution, resume, failures.
- :mod:`market.backtest.study`: TOML parameter sweeps.
- :mod:`market.backtest.report`: summary tables, plots and the HTML page.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.backtest.runner import BacktestOutcome, TaskOutcome, run_backtest
    from market.backtest.spec import BacktestSpec, FeederRef, resolve_feeders
    from market.backtest.store import ResultStore, read_intervals

__all__ = [
    "BacktestOutcome",
    "BacktestSpec",
    "FeederRef",
    "ResultStore",
    "TaskOutcome",
    "read_intervals",
    "resolve_feeders",
    "run_backtest",
]

#: Where each public name lives; imported on first use, so that importing
#: ``market.backtest.cli`` (every ``gridex`` start) loads none of the heavy
#: packages (polars, pandapower, eth_account, distributed) the runner needs.
_HOMES = {
    "BacktestOutcome": "runner",
    "TaskOutcome": "runner",
    "run_backtest": "runner",
    "BacktestSpec": "spec",
    "FeederRef": "spec",
    "resolve_feeders": "spec",
    "ResultStore": "store",
    "read_intervals": "store",
}


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'market.backtest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"market.backtest.{module}"), name)
