"""The engine clears every interval against its base forecast, journals it, and replays it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from grid import Feeder
from market.clearing import ClearingOptions, clear
from market.config import MarketConfig
from market.engine.engine import Engine
from market.errors import ForecastError
from market.forecast import BaseInterval, ProfileForecast, elements_of, read_forecast

from .conftest import FIRST, register
from .test_engine import book, end_of


def _file(tmp_path: Path, feeder: Feeder, intervals: range, factor: float = 3.0) -> Path:
    lines = ["interval,element,p_mw,q_mvar"]
    loads = [e for e in elements_of(feeder) if e.table == "load"]
    for k in intervals:
        for e in loads:
            lines.append(f"{k},{e.key},{e.p_mw * factor * (1 + (k % 3) / 10)},{e.q_mvar}")
    path = tmp_path / "forecast.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_each_interval_is_cleared_against_its_forecast_and_replays(
    make_engine: Callable[..., Engine], engine_feeder: Feeder, tmp_path: Path
) -> None:
    forecast = read_forecast(_file(tmp_path, engine_feeder, range(FIRST, FIRST + 4)), engine_feeder)
    engine = make_engine(base_forecast=forecast)
    signers = register(engine, 4)
    orders = book(signers)
    for order in orders:
        engine.submit_order(order).result()
    engine.advance_to(end_of(FIRST) + 120_000)
    record = engine.clearing_record(FIRST)
    assert record is not None
    assert record.ok, record.error
    assert record.base is not None
    base = BaseInterval.from_json(record.base)
    assert base.forecast == f"{forecast.name}@{forecast.digest}"
    np.testing.assert_allclose(base.p_mw, forecast.base_at(FIRST)[0], atol=1e-9)
    # the journaled result is the clearing of the book on the forecast's view, not the static base
    participants = dict(engine.state.participants)
    on_view = clear(
        base.view(engine_feeder),
        orders,
        participants,
        MarketConfig(),
        options=ClearingOptions(validate=False),
        interval=FIRST,
    )
    static = clear(
        engine_feeder,
        orders,
        participants,
        MarketConfig(),
        options=ClearingOptions(validate=False),
        interval=FIRST,
    )
    assert record.result_json == on_view.to_json()
    assert record.result_json != static.to_json()
    engine.close()
    # verify_replay (the fixture's default) clears again from the journaled base
    replayed = make_engine(base_forecast=forecast)
    again = replayed.clearing_record(FIRST)
    assert again is not None
    assert again.result_json == record.result_json


def test_the_engine_refuses_an_incomplete_forecast(
    make_engine: Callable[..., Engine], engine_feeder: Feeder, tmp_path: Path
) -> None:
    # starts one interval late: the first open interval would be cleared against nothing
    late = read_forecast(_file(tmp_path, engine_feeder, range(FIRST + 1, FIRST + 6)), engine_feeder)
    with pytest.raises(ForecastError, match=f"no values for interval {FIRST}"):
        make_engine(base_forecast=late)
    assert not (tmp_path / "engine.db").exists()


def test_an_interval_past_the_forecast_fails_to_clear_instead_of_using_zero(
    make_engine: Callable[..., Engine], engine_feeder: Feeder, tmp_path: Path
) -> None:
    short = read_forecast(_file(tmp_path, engine_feeder, range(FIRST, FIRST + 1)), engine_feeder)
    engine = make_engine(base_forecast=short)
    signers = register(engine, 4)
    for order in book(signers, FIRST + 1):
        engine.submit_order(order).result()
    engine.advance_to(end_of(FIRST + 1) + 120_000)
    first = engine.clearing_record(FIRST)
    second = engine.clearing_record(FIRST + 1)
    assert first is not None
    assert first.ok
    assert second is not None
    assert not second.ok
    assert f"no values for interval {FIRST + 1}" in second.error


def test_profile_forecast_runs_unbounded(
    make_engine: Callable[..., Engine], engine_feeder: Feeder
) -> None:
    engine = make_engine(base_forecast=ProfileForecast(engine_feeder))
    signers = register(engine, 4)
    for order in book(signers):
        engine.submit_order(order).result()
    engine.advance_to(end_of(FIRST) + 120_000)
    record = engine.clearing_record(FIRST)
    assert record is not None
    assert record.ok
    assert record.base is not None
    assert str(record.base["forecast"]).startswith("profiles@")
