"""The simulated homes of a backtest and what their meters count, interval by interval.

The homes are the demo's: placed and sized by :func:`market.demo.fleet.plan_homes`
from the backtest's scenario (:mod:`market.demo.scenario`: PV sizes,
consumption, price rule, placement at load buses), seeded per feeder from the
study's seed and the feeder's name, with PV on a ``pv_penetration`` share of
them. An ``ev_share`` of them charge an electric car in the evening and a
``heat_pump_share`` run a hot-water heat pump, the demo's flexible loads
(:class:`meter_adapter.simulation.flexible.FlexibleLoads`); which homes is
drawn from a stream of its own per load, so raising a share keeps every
earlier car (heat pump) where it was and leaves the rest of the fleet as it
was.

Each home is a :class:`meter_adapter.simulation.SimulatedMeter` built as the
demo builds it (:func:`simulated_meter`); :class:`HomeMeter` reads its
cumulative counters at every interval boundary, one interval at a time, and
passes on the home's dispatch when the scenario has homes follow their
cleared schedule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import TYPE_CHECKING

import numpy as np

from grid import Feeder
from market.backtest.spec import BacktestSpec

if TYPE_CHECKING:
    from market.demo.fleet import Home
    from meter_adapter.simulation import SimulatedMeter

__all__ = ["HomeMeter", "feeder_seed", "plan_participants", "simulated_meter"]

_EV_STREAM = b"ev"
_HEAT_PUMP_STREAM = b"heat-pump"


def feeder_seed(seed: int, feeder_name: str, stream: bytes = b"homes") -> int:
    """A seed for one feeder's homes: a pure function of the study seed and the name."""
    digest = hashlib.sha256(f"{seed}:{feeder_name}:".encode() + stream).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def plan_participants(feeder: Feeder, spec: BacktestSpec) -> list[Home]:
    """The homes of ``feeder`` for ``spec``, deterministic in the seed and the feeder's name."""
    from market.demo.fleet import plan_homes

    market = spec.market()
    day = spec.day
    homes = plan_homes(
        feeder,
        count=day.participants,
        modbus=0,
        seed=feeder_seed(spec.seed, feeder.name),
        pv_share=day.pv_share,
        feed_in_price=market.feed_in_price,
        retail_price=market.retail_price,
        # cars and heat pumps are drawn below, each from its own stream
        day=dataclasses.replace(day, ev_share=0.0, heat_pump_share=0.0),
        price_min=market.price_min,
        price_max=market.price_max,
    )
    cars = _draws(spec, feeder, _EV_STREAM, len(homes)) < day.ev_share
    pumps = _draws(spec, feeder, _HEAT_PUMP_STREAM, len(homes)) < day.heat_pump_share
    return [
        dataclasses.replace(h, ev=bool(car), heat_pump=bool(pump))
        for h, car, pump in zip(homes, cars, pumps, strict=True)
    ]


def _draws(spec: BacktestSpec, feeder: Feeder, stream: bytes, count: int) -> np.ndarray:
    return np.random.default_rng(feeder_seed(spec.seed, feeder.name, stream)).random(count)


def simulated_meter(home: Home, start: dt.datetime) -> SimulatedMeter:
    """The home behind its meter, as the demo simulates it (``market.demo.fleet``)."""
    from market.demo.fleet import simulated_meter as demo_meter

    meter: SimulatedMeter = demo_meter(home, start)
    return meter


class HomeMeter:
    """A home's simulated meter and its counters at every interval boundary read so far.

    ``import_wh[j]``, ``export_wh[j]`` and ``production_wh[j]`` are the
    counters at ``start_s + j·interval_s``; :meth:`advance` reads the next
    boundary. The meter starts at the previous day's midnight (UTC), so the
    agent's history has "same time yesterday" from the first interval on.
    """

    def __init__(self, home: Home, day: dt.date, spec: BacktestSpec) -> None:
        self.start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        self.start_s = int(self.start.timestamp())
        self.interval_s = spec.interval_s
        self.meter = simulated_meter(home, self.start)
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

    def planned_net_wh(self, j: int) -> float:
        """The home energy manager's plan: net Wh between boundaries ``j`` and ``j + 1``."""
        return self.meter.planned_net_wh(self.boundary(j), self.boundary(j + 1))

    def dispatch(self, j: int, *, export_wh: int | None, import_wh: int | None) -> None:
        """Follow a cleared schedule between boundaries ``j`` and ``j + 1`` (None: no limit)."""
        self.meter.dispatch(
            self.boundary(j), self.boundary(j + 1), export_wh=export_wh, import_wh=import_wh
        )
