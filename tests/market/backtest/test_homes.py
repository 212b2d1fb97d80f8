"""The backtest's homes: the demo's fleet and flexible loads, shares, per-feeder seeds."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np

from grid import load_feeder
from market.backtest import BacktestSpec, resolve_feeders
from market.backtest.homes import plan_participants, simulated_meter
from meter_adapter.simulation.flexible import EvCharging, FlexibleLoads, HeatPump


def test_raising_the_ev_share_keeps_every_earlier_car(tiny_feeder: Path) -> None:
    feeder = load_feeder(tiny_feeder)
    spec = BacktestSpec(feeders=tuple(resolve_feeders([str(tiny_feeder)])), participants=40)
    cars = {}
    for share in (0.0, 0.25, 0.5, 1.0):
        homes = plan_participants(feeder, replace(spec, ev_share=share))
        cars[share] = {h.address for h in homes if h.ev}
    assert cars[0.0] == set()
    assert cars[0.25] <= cars[0.5] <= cars[1.0]
    assert len(cars[1.0]) == 40
    assert 4 <= len(cars[0.25]) <= 16


def test_pv_penetration_sets_the_share_of_homes_with_pv(tiny_feeder: Path) -> None:
    feeder = load_feeder(tiny_feeder)
    spec = BacktestSpec(feeders=tuple(resolve_feeders([str(tiny_feeder)])), participants=60)
    none = plan_participants(feeder, replace(spec, pv_penetration=0.0))
    every = plan_participants(feeder, replace(spec, pv_penetration=1.0))
    assert all(h.kwp == 0 for h in none)
    assert all(h.kwp > 0 for h in every)


def test_feeders_get_their_own_homes_and_the_same_ones_every_time(tiny_feeder: Path) -> None:
    feeder = load_feeder(tiny_feeder)
    other = load_feeder("cigre-lv")
    spec = BacktestSpec(feeders=tuple(resolve_feeders([str(tiny_feeder)])), participants=5)
    first = plan_participants(feeder, spec)
    assert first == plan_participants(feeder, spec)
    keys = {h.key for h in first}
    assert keys.isdisjoint({h.key for h in plan_participants(other, spec)})


def test_a_share_of_cars_or_heat_pumps_leaves_the_rest_of_the_fleet_as_it_was(
    tiny_feeder: Path,
) -> None:
    feeder = load_feeder(tiny_feeder)
    spec = BacktestSpec(feeders=tuple(resolve_feeders([str(tiny_feeder)])), participants=30)
    plain = plan_participants(feeder, replace(spec, ev_share=0.0, heat_pump_share=0.0))
    flexible = plan_participants(feeder, replace(spec, ev_share=0.6, heat_pump_share=0.4))
    assert any(h.ev for h in flexible)
    assert any(h.heat_pump for h in flexible)
    strip = [replace(h, ev=False, heat_pump=False) for h in flexible]
    assert strip == plain
    pumps = {
        s: {h.address for h in plan_participants(feeder, replace(spec, heat_pump_share=s))
            if h.heat_pump}
        for s in (0.2, 0.7)
    }  # fmt: skip
    assert pumps[0.2] <= pumps[0.7]


def test_the_scenario_sets_the_fleet_and_flags_override_it(tiny_feeder: Path) -> None:
    from market.demo.scenario import SCENARIOS

    refs = tuple(resolve_feeders([str(tiny_feeder)]))
    congested = BacktestSpec(feeders=refs, scenario="sunny-congested")
    day = SCENARIOS["sunny-congested"]
    assert congested.participants == day.participants
    assert congested.pv_penetration == day.pv_share
    homes = plan_participants(load_feeder(tiny_feeder), congested)
    assert all(day.kwp[0] <= h.kwp <= day.kwp[1] for h in homes if h.kwp)
    assert {h.sell_min_price for h in homes} == {0}  # "whole": offers at any price
    assert all(h.cloudiness == day.cloudiness for h in homes)
    fewer = BacktestSpec(feeders=refs, scenario="sunny-congested", participants=5, cloudiness=0.5)
    assert fewer.day.participants == 5
    assert fewer.day.kwp == day.kwp
    assert {h.cloudiness for h in plan_participants(load_feeder(tiny_feeder), fewer)} == {0.5}


def test_a_home_draws_the_demos_car_and_heat_pump_on_top_of_its_household(
    tiny_feeder: Path,
) -> None:
    feeder = load_feeder(tiny_feeder)
    spec = BacktestSpec(
        feeders=tuple(resolve_feeders([str(tiny_feeder)])),
        participants=10,
        ev_share=1.0,
        heat_pump_share=1.0,
        pv_penetration=0.0,
    )
    home = plan_participants(feeder, spec)[0]
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=2)
    with_loads = simulated_meter(home, start).advance_to(end).import_wh
    without = simulated_meter(replace(home, ev=False, heat_pump=False), start)
    minutes = np.arange(int(start.timestamp()) // 60, int(end.timestamp()) // 60, dtype=np.int64)
    loads = FlexibleLoads(ev=EvCharging(), heat_pump=HeatPump(), seed=home.seed)
    extra_wh = loads.power_w(minutes).sum() / 60
    assert extra_wh > 20_000  # two evenings of an 11 kW car
    assert abs(with_loads - without.advance_to(end).import_wh - extra_wh) <= 2
