"""One (feeder, day): an interval that does not clear is recorded and the day goes on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from grid import load_feeder
from market import clearing
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
    real_clear = clearing.clear

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


def test_every_interval_clears_on_the_engines_base_load_forecast_for_it(
    tiny_feeder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from market.forecast import ProfileForecast

    spec = BacktestSpec(
        feeders=tuple(resolve_feeders([str(tiny_feeder)])),
        scenario="sunny-congested",  # participants take the place of the loads at their buses
        participants=2,
        interval_s=3600,
    )
    feeder = load_feeder(tiny_feeder)
    homes = plan_participants(feeder, spec)
    seen: dict[int, Any] = {}
    real_clear = clearing.clear

    def clear(grid: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("mechanism") == "nodal":
            seen[kwargs["interval"]] = grid.base_p_mw.copy()
        return real_clear(grid, *args, **kwargs)

    monkeypatch.setattr(day_module, "clear", clear)
    result = day_module.simulate_day(
        feeder, homes, dt.date(2026, 6, 1), spec, operator="0x" + "ab" * 20
    )
    # an independent forecast: the H0 profile at 4,000 kWh a year for the one
    # network load left (three houses, two of them taken by participants)
    taken = {feeder.position_of(h.bus) for h in homes}
    assert len(taken) == 2
    expected = ProfileForecast(
        feeder, interval_s=3600, annual_kwh=4000.0, exclude_buses={h.bus for h in homes}
    )
    assert len(seen) == 24
    for interval, base in seen.items():
        p, _ = expected.base_at(interval)
        assert base == pytest.approx(p, abs=1e-9)
        assert all(base[k] == 0 for k in taken)
    loads = [-float(b.sum()) for b in seen.values()]
    assert max(loads) > 1.5 * min(loads)  # the profile moves over the day
    table = result.table.sort("interval")
    totals = [float(seen[k].sum()) for k in sorted(seen)]
    assert table["base_p_mw"].to_list() == pytest.approx(totals)
