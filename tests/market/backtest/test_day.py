"""One (feeder, day): an interval that does not clear is recorded and the day goes on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from grid import load_feeder
from market.backtest import BacktestSpec, resolve_feeders
from market.backtest import day as day_module
from market.backtest.homes import plan_participants
from market.errors import SolverError


def test_an_interval_that_fails_to_clear_is_settled_against_the_grid(
    tiny_feeder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = BacktestSpec(
        feeders=tuple(resolve_feeders([str(tiny_feeder)])),
        participants=3,
        interval_s=3600,
        pv_penetration=1.0,
    )
    feeder = load_feeder(tiny_feeder)
    homes = plan_participants(feeder, spec)
    day = dt.date(2026, 6, 1)
    first = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp()) // 3600
    broken = first + 12  # noon: PV sells, so a cleared interval would trade
    real_clear = day_module.clear

    def clear(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("interval") == broken and kwargs.get("mechanism") == "nodal":
            raise SolverError(f"interval {broken}: the nodal clearing LP ended badly")
        return real_clear(*args, **kwargs)

    monkeypatch.setattr(day_module, "clear", clear)
    result = day_module.simulate_day(feeder, homes, day, spec, operator="0x" + "ab" * 20)

    table = result.table
    assert table.height == 24
    assert result.failed == (
        (broken, f"SolverError: interval {broken}: the nodal clearing LP ended badly"),
    )
    row = table.filter(pl.col("interval") == broken).row(0, named=True)
    assert row["status"] == "failed"
    assert row["orders"] > 0
    assert "SolverError" in row["reason"]
    assert row["traded_wh"] == 0
    assert row["curtailed_wh"] == 0
    # nothing was traded, so everything metered is imbalance
    assert row["imbalance_export_wh"] - row["imbalance_import_wh"] == (
        row["metered_export_wh"] - row["metered_import_wh"]
    )
    others = table.filter(pl.col("interval") != broken)
    assert (others["status"] == "cleared").all()
    assert others.filter(pl.col("interval") == broken + 1)["orders"].item() > 0
