"""The agent's energy history and forecast: spreading by time, coverage, blending."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_adapter.agent.forecast import EnergyHistory, IntervalEnergy, forecast_net_wh

I_MS = 900_000


def test_energy_between_readings_is_spread_by_time() -> None:
    history = EnergyHistory(900)
    assert history.observe(0, 0, 0) == []
    done = history.observe(I_MS * 3 // 2, 0, 1500)  # 1500 Wh exported over 1.5 intervals
    assert done == [0]
    assert history.get(0) == IntervalEnergy(0, pytest.approx(1000.0), I_MS)  # type: ignore[arg-type]
    assert history.net_wh(0) == pytest.approx(1000.0)
    # interval 1 is half covered: its 500 Wh are scaled to the whole interval
    assert history.net_wh(1) == pytest.approx(1000.0)


def test_import_counts_negative_and_thin_coverage_gives_nothing() -> None:
    history = EnergyHistory(900)
    history.observe(0, 1000, 0)
    history.observe(I_MS // 4, 1100, 0)  # a quarter of interval 0 seen
    assert history.net_wh(0) is None
    history.observe(I_MS, 1400, 0)
    assert history.net_wh(0) == pytest.approx(-400.0)


def test_out_of_order_readings_are_ignored() -> None:
    history = EnergyHistory(900)
    history.observe(1000, 0, 0)
    history.observe(500, 0, 100)
    history.observe(1000, 0, 100)
    assert history.get(0) is None


@given(
    st.lists(
        st.tuples(st.integers(1, 3 * I_MS), st.integers(0, 500), st.integers(0, 500)),
        min_size=2,
        max_size=30,
    )
)
def test_spreading_conserves_energy(steps: list[tuple[int, int, int]]) -> None:
    history = EnergyHistory(900, keep_s=10**9)
    t = imp = exp = 0
    history.observe(t, imp, exp)
    for dt, di, de in steps:
        t, imp, exp = t + dt, imp + di, exp + de
        history.observe(t, imp, exp)
    total = sum(e.net_wh for k in range(t // I_MS + 1) if (e := history.get(k)) is not None)
    assert total == pytest.approx(exp - imp, abs=1e-6)


def test_old_intervals_are_forgotten() -> None:
    history = EnergyHistory(900, keep_s=3600)
    history.observe(0, 0, 0)
    history.observe(I_MS, 0, 10)
    history.observe(20 * I_MS, 0, 20)
    assert history.get(0) is None
    assert history.get(19) is not None


def history_with(values: dict[int, float]) -> EnergyHistory:
    history = EnergyHistory(900)
    history.load(IntervalEnergy(k, v, I_MS) for k, v in values.items())
    return history


def test_forecast_blends_recent_with_same_time_yesterday() -> None:
    day = 96
    target = 1000
    now = (target - 1) * I_MS + 1  # interval target-1 is current
    history = history_with({target - 1: 400.0, target - day: 1000.0})
    assert forecast_net_wh(history, target, now_ms=now, blend=0.5) == pytest.approx(700.0)
    assert forecast_net_wh(history, target, now_ms=now, blend=1.0) == pytest.approx(400.0)
    only_recent = history_with({target - 3: -250.0})
    assert forecast_net_wh(only_recent, target, now_ms=now) == pytest.approx(-250.0)
    only_yesterday = history_with({target - day: 123.0})
    assert forecast_net_wh(only_yesterday, target, now_ms=now) == pytest.approx(123.0)
    assert forecast_net_wh(history_with({}), target, now_ms=now) is None
    stale = history_with({target - 6: 500.0})  # older than the current and three before it
    assert forecast_net_wh(stale, target, now_ms=now) is None
