"""The simulated homes of a backtest and what their meters count, interval by interval.

The homes are the demo's (:func:`market.demo.fleet.plan_homes`: placement,
PV sizes, consumption and price limits), seeded per feeder from the study's
seed and the feeder's name, with PV on a ``pv_penetration`` share of them.
An ``ev_share`` of them also charge an electric car at home
(:class:`meter_adapter.simulation.EvCharging`); which ones is drawn from its
own stream, so raising the share keeps every earlier car where it was.

Each home is a :class:`meter_adapter.simulation.SimulatedMeter` (the
gateway's simulated meter) with the gateway's household, PV and car
profiles; its cumulative counters are read at every interval boundary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from grid import Feeder
from market.backtest.spec import BacktestSpec
from market.demo.fleet import Home, plan_homes

if TYPE_CHECKING:
    from meter_adapter.simulation import PowerProfile

__all__ = ["BacktestHome", "MeterSeries", "feeder_seed", "meter_series", "plan_participants"]

_EV_STREAM = b"ev"


def feeder_seed(seed: int, feeder_name: str, stream: bytes = b"homes") -> int:
    """A seed for one feeder's homes: a pure function of the study seed and the name."""
    digest = hashlib.sha256(f"{seed}:{feeder_name}:".encode() + stream).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


@dataclass(frozen=True, slots=True)
class BacktestHome:
    """A demo home plus whether it charges a car."""

    home: Home
    ev: bool


def plan_participants(feeder: Feeder, spec: BacktestSpec) -> list[BacktestHome]:
    """The homes of ``feeder`` for ``spec``, deterministic in the seed and the feeder's name."""
    homes = plan_homes(
        feeder,
        count=spec.participants,
        modbus=0,
        seed=feeder_seed(spec.seed, feeder.name),
        pv_share=spec.pv_penetration,
        feed_in_price=spec.feed_in_price,
        retail_price=spec.retail_price,
    )
    rng = np.random.default_rng(feeder_seed(spec.seed, feeder.name, _EV_STREAM))
    draws = rng.random(len(homes))
    return [BacktestHome(h, bool(d < spec.ev_share)) for h, d in zip(homes, draws, strict=True)]


@dataclass(frozen=True)
class MeterSeries:
    """A home's counters at each interval boundary of the day before and the day itself.

    ``import_wh[j]``, ``export_wh[j]`` and ``production_wh[j]`` are the
    counters at ``start_s + j·interval_s``, ``j = 0 .. 2·n`` (``n`` intervals
    a day), with ``start_s`` the previous day's midnight (UTC).
    """

    start_s: int
    interval_s: int
    import_wh: NDArray[np.int64]
    export_wh: NDArray[np.int64]
    production_wh: NDArray[np.int64]


def meter_series(home: BacktestHome, day: dt.date, spec: BacktestSpec) -> MeterSeries:
    """Run ``home``'s simulated meter over the day before ``day`` and ``day``."""
    from meter_adapter.simulation import (
        EvCharging,
        HouseholdProfile,
        PvProfile,
        PvSystem,
        SimulatedMeter,
    )

    h = home.home
    household = HouseholdProfile(annual_kwh=h.annual_kwh, seed=h.seed)
    load = _Sum(household, EvCharging(seed=h.seed)) if home.ev else household
    pv = (
        PvProfile(PvSystem(kwp=h.kwp), seed=h.seed, cloudiness=spec.cloudiness)
        if h.kwp > 0
        else None
    )
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    meter = SimulatedMeter(household=load, pv=pv, start=start)
    n = 2 * spec.intervals_per_day
    counters = np.zeros((3, n + 1), dtype=np.int64)
    step = dt.timedelta(seconds=spec.interval_s)
    for j in range(1, n + 1):
        state = meter.advance_to(start + j * step)
        counters[:, j] = (state.import_wh, state.export_wh, state.production_wh)
    return MeterSeries(
        start_s=int(start.timestamp()),
        interval_s=spec.interval_s,
        import_wh=counters[0],
        export_wh=counters[1],
        production_wh=counters[2],
    )


class _Sum:
    """Two power profiles drawn through one meter (household load plus car charging)."""

    def __init__(self, *parts: PowerProfile) -> None:
        self._parts = parts

    def power_w(self, minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        total = np.zeros(len(minutes), dtype=np.int64)
        for part in self._parts:
            total += part.power_w(minutes)
        return total
