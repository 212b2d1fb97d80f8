"""The backtest's homes: the demo's fleet, PV and cars by share, per-feeder seeds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grid import load_feeder
from market.backtest import BacktestSpec, resolve_feeders
from market.backtest.homes import plan_participants


def test_raising_the_ev_share_keeps_every_earlier_car(tiny_feeder: Path) -> None:
    feeder = load_feeder(tiny_feeder)
    spec = BacktestSpec(feeders=tuple(resolve_feeders([str(tiny_feeder)])), participants=40)
    cars = {}
    for share in (0.0, 0.25, 0.5, 1.0):
        homes = plan_participants(feeder, replace(spec, ev_share=share))
        cars[share] = {h.home.address for h in homes if h.ev}
    assert cars[0.0] == set()
    assert cars[0.25] <= cars[0.5] <= cars[1.0]
    assert len(cars[1.0]) == 40
    assert 4 <= len(cars[0.25]) <= 16


def test_pv_penetration_sets_the_share_of_homes_with_pv(tiny_feeder: Path) -> None:
    feeder = load_feeder(tiny_feeder)
    spec = BacktestSpec(feeders=tuple(resolve_feeders([str(tiny_feeder)])), participants=60)
    none = plan_participants(feeder, replace(spec, pv_penetration=0.0))
    every = plan_participants(feeder, replace(spec, pv_penetration=1.0))
    assert all(h.home.kwp == 0 for h in none)
    assert all(h.home.kwp > 0 for h in every)


def test_feeders_get_their_own_homes_and_the_same_ones_every_time(tiny_feeder: Path) -> None:
    feeder = load_feeder(tiny_feeder)
    other = load_feeder("cigre-lv")
    spec = BacktestSpec(feeders=tuple(resolve_feeders([str(tiny_feeder)])), participants=5)
    first = plan_participants(feeder, spec)
    assert first == plan_participants(feeder, spec)
    keys = {h.home.key for h in first}
    assert keys.isdisjoint({h.home.key for h in plan_participants(other, spec)})
