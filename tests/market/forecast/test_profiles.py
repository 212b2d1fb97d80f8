"""Built-in profiles: scaling to energy and peak, day shapes, clear-sky PV."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandapower as pp
import pytest

from grid import Feeder, load_feeder
from grid.feeders import builtin_net
from market.errors import ConfigError
from market.forecast import ProfileForecast, ViewCache, elements_of

DAY0 = int(dt.datetime(2026, 6, 22, tzinfo=dt.UTC).timestamp()) // 900  # a Monday


@pytest.fixture(scope="module")
def cigre() -> Feeder:
    return load_feeder("cigre-lv")


def test_energy_scaling_gives_the_annual_energy(cigre: Feeder) -> None:
    fc = ProfileForecast(cigre, annual_kwh=3500.0)
    load = next(e for e in fc.elements if e.key == "load:1")
    first = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()) // 900
    # one value per day sampled at every quarter hour of one week in four seasons
    # would be approximate; sum the whole year instead (35 040 intervals, vectorised by bus)
    total_mwh = 0.0
    for k in range(first, first + 365 * 96):
        p, _ = fc.base_at(k)
        total_mwh += -p[load.position] * 0.25
    assert total_mwh * 1000 == pytest.approx(3500.0, rel=0.01)


def test_peak_scaling_never_exceeds_the_design_value(cigre: Feeder) -> None:
    fc = ProfileForecast(cigre)
    load = next(e for e in fc.elements if e.key == "load:0")
    week = [-fc.base_at(k)[0][load.position] for k in range(DAY0, DAY0 + 7 * 96)]
    assert max(week) <= load.p_mw + 1e-12
    assert max(week) > 0.4 * load.p_mw  # a summer week; the year peaks in winter


def test_shapes_follow_the_day(cigre: Feeder) -> None:
    fc = ProfileForecast(cigre)
    by = {e.key: e for e in fc.elements}
    assert fc.assignment["load:0"][0] == "H0"  # Load R1
    assert fc.assignment["load:6"][0] == "industrial"  # Load I2
    assert fc.assignment["load:7"][0] == "G0"  # Load C1

    def at(key: str, hour: int) -> float:
        # Berlin summer time is UTC+2
        return -fc.base_at(DAY0 + (hour - 2) * 4)[0][by[key].position]

    assert at("load:0", 20) > 1.5 * at("load:0", 3)  # household: evening above night
    assert at("load:7", 11) > 2.5 * at("load:7", 3)  # commercial: working hours
    sunday = DAY0 - 96
    assert -fc.base_at(sunday + 9 * 4)[0][by["load:7"].position] < 0.5 * at("load:7", 11)


def test_pv_sgens_follow_the_sun() -> None:
    net = builtin_net("cigre-lv")
    pp.create_sgen(net, 5, p_mw=0.03, type="PV", name="rooftop")
    pp.create_sgen(net, 6, p_mw=0.01, type="WT", name="small wind")
    feeder = Feeder.from_net(net, name="cigre-lv-pv")
    fc = ProfileForecast(feeder)
    pv = next(e for e in elements_of(feeder) if e.name == "rooftop")
    wind = next(e for e in elements_of(feeder) if e.name == "small wind")
    no_pv = ProfileForecast(load_feeder("cigre-lv"))
    night = DAY0 + 0  # 02:00 local
    noon = DAY0 + 11 * 4  # 13:00 local
    diff_night = fc.base_at(night)[0] - no_pv.base_at(night)[0]
    diff_noon = fc.base_at(noon)[0] - no_pv.base_at(noon)[0]
    assert diff_night[pv.position] == pytest.approx(0.0, abs=1e-12)
    assert 0.5 * 0.03 < diff_noon[pv.position] <= 0.03
    # wind keeps its file value day and night
    assert diff_night[wind.position] == pytest.approx(0.01)
    assert diff_noon[wind.position] == pytest.approx(0.01)


def test_views_are_cached_per_interval_and_distinct_between_intervals(cigre: Feeder) -> None:
    views = ViewCache(cigre, ProfileForecast(cigre))
    a, rec_a = views.at(DAY0)
    assert views.at(DAY0)[0] is a
    b, _ = views.at(DAY0 + 40)
    assert b is not a
    assert not np.allclose(a.base_p_mw, b.base_p_mw)
    np.testing.assert_allclose(a.base_p_mw, rec_a.p_mw)
    assert rec_a.forecast.startswith("profiles@")


def test_bad_parameters_are_named(cigre: Feeder) -> None:
    with pytest.raises(ConfigError, match="profiles\\['load:0'\\]"):
        ProfileForecast(cigre, profiles={"load:0": "Z9"})
    with pytest.raises(ConfigError, match="'load:99' is not an in-service load"):
        ProfileForecast(cigre, profiles={"load:99": "H0"})
    with pytest.raises(ConfigError, match="annual_kwh"):
        ProfileForecast(cigre, annual_kwh=-1.0)
