"""The simulated homes of a backtest and what their meters count, interval by interval.

The homes are the demo's (:func:`market.demo.fleet.plan_homes`: placement,
PV sizes, consumption and price limits), seeded per feeder from the study's
seed and the feeder's name, with PV on a ``pv_penetration`` share of them.
An ``ev_share`` of them also charge an electric car at home
(:class:`meter_adapter.simulation.EvCharging`); which ones is drawn from its
own stream, so raising the share keeps every earlier car where it was.

Each home is a :class:`meter_adapter.simulation.SimulatedMeter` (the
gateway's simulated meter) with the gateway's household, PV and car
profiles (:class:`HomeMeter`); its cumulative counters are read at every
interval boundary, one interval at a time.
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

__all__ = ["BacktestHome", "HomeMeter", "feeder_seed", "plan_participants"]

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


class HomeMeter:
    """A home's simulated meter and its counters at every interval boundary read so far.

    ``import_wh[j]``, ``export_wh[j]`` and ``production_wh[j]`` are the
    counters at ``start_s + j·interval_s``; :meth:`advance` reads the next
    boundary. The meter starts at the previous day's midnight (UTC), so the
    agent's history has "same time yesterday" from the first interval on.
    """

    def __init__(self, home: BacktestHome, day: dt.date, spec: BacktestSpec) -> None:
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
        self.start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        self.start_s = int(self.start.timestamp())
        self.interval_s = spec.interval_s
        self.meter = SimulatedMeter(household=load, pv=pv, start=self.start)
        self.import_wh = [0]
        self.export_wh = [0]
        self.production_wh = [0]

    def boundary(self, j: int) -> dt.datetime:
        """The time of boundary ``j``."""
        return self.start + dt.timedelta(seconds=j * self.interval_s)

    def advance(self) -> None:
        """Integrate to the next interval boundary and record the counters there."""
        state = self.meter.advance_to(self.boundary(len(self.import_wh)))
        self.import_wh.append(state.import_wh)
        self.export_wh.append(state.export_wh)
        self.production_wh.append(state.production_wh)

    def interval(self, j: int) -> tuple[int, int, int]:
        """(import, export, production) Wh between boundaries ``j`` and ``j + 1``."""
        return (
            self.import_wh[j + 1] - self.import_wh[j],
            self.export_wh[j + 1] - self.export_wh[j],
            self.production_wh[j + 1] - self.production_wh[j],
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
