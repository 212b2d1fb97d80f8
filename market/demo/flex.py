"""Batteries and EVs as flexibility orders in the demo (``gridex demo --flex``).

Seeded from the demo's seed: about one PV home in three gets a home battery
(5 to 13.5 kWh usable, 3.3 to 5 kW, 95 % each way, starting at 20 to 40 %
and asked to end the horizon where it started, wear 20,000 base units per
kWh), and about one home in six without a battery an EV that arrives
between 16:00 and 19:00 local time, needs 8 to 20 kWh at 11 kW by 07:00
the next morning and values a missing kWh at 250,000 base units. Each home
submits its order over gRPC, signed with its own key, before the first
gate closes (:meth:`market.client.TraderClient.submit_flex_order`).

Each battery and EV runs its firm fills behind its home's simulated meter
(:meth:`meter_adapter.simulation.meter.SimulatedMeter.follow`), so what the
roll traded is what the meters measure and the settlement finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from market.demo.fleet import Home
from market.flex import EvOrder, FlexOrder, StorageOrder

__all__ = ["FLEX_HORIZON_INTERVALS", "FlexHome", "plan_flex", "submit_flex"]

#: Intervals one roll clears in the demo: 10 h, enough to see the evening peak from noon.
FLEX_HORIZON_INTERVALS = 40
#: Local time is UTC + 2 h on the demo's June day (Europe/Berlin, summer time).
_LOCAL_OFFSET_H = 2


@dataclass(frozen=True, slots=True)
class FlexHome:
    """A home and the flexibility order it submits."""

    home: Home
    order: FlexOrder


def plan_flex(
    homes: Sequence[Home], *, seed: int, first_interval: int, interval_s: int
) -> list[FlexHome]:
    """Batteries and EVs for some homes (module docstring), seeded."""
    rng = np.random.default_rng([seed, 16])
    per_hour = 3600 // interval_s
    day0 = (first_interval * interval_s // 86_400) * 86_400 // interval_s  # UTC midnight
    out: list[FlexHome] = []
    for h in homes:
        draw = rng.random()
        if h.kwp > 0 and draw < 1 / 3:
            capacity = int(rng.choice([5_000, 7_700, 10_000, 13_500]))
            power = int(rng.choice([3_300, 4_600, 5_000]))
            soc = int(capacity * rng.uniform(0.2, 0.4))
            order: FlexOrder = StorageOrder(
                "battery", h.address, capacity, soc, capacity // 10, capacity, power, power,
                0.95, 0.95, soc, 20_000,
            )  # fmt: skip
        elif draw > 5 / 6 and not h.ev:  # a home's own evening car is in its meter already
            arrive_h = int(rng.integers(16, 20)) - _LOCAL_OFFSET_H
            arrival = day0 + arrive_h * per_hour
            departure = day0 + (24 + 7 - _LOCAL_OFFSET_H) * per_hour
            need = int(rng.integers(8, 21)) * 1000
            order = EvOrder("ev", h.address, need, 11_000, arrival, departure, 250_000)
        else:
            continue
        out.append(FlexHome(h, order))
    return out


def submit_flex(target: str, fleet: Sequence[FlexHome], *, engine_id: str) -> int:
    """Each home submits its order over gRPC with its own key; how many were accepted.

    Raises:
        grpc.RpcError: the engine refused one.
    """
    from market.client import TraderClient

    for f in fleet:
        with TraderClient(target, f.home.key, engine_id=engine_id) as client:
            client.submit_flex_order(f.order)
    return len(fleet)
