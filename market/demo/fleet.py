"""The demo's participants: where they connect, what they own, how they are read.

Every participant is one Ethereum key (participant, gateway and signer at
once), a simulated home (household load, PV for some) and a gateway from
:mod:`meter_adapter` that streams signed readings and trades through its
prosumer agent over gRPC, exactly as on a real home gateway. The first
``modbus_devices`` homes are served as SunSpec devices on 127.0.0.1 and read
over real Modbus TCP; the others are read in-process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from eth_account import Account

from grid import Feeder

if TYPE_CHECKING:
    from market.demo.scenario import Scenario
    from meter_adapter.simulation import SimulatedMeter

__all__ = ["Home", "build_gateways", "plan_homes", "simulated_meter"]


@dataclass(frozen=True)
class Home:
    """One participant of the demo.

    Attributes:
        key: hex private key (participant, gateway and order signer).
        address: lower-case address of ``key``.
        bus: pandapower bus of the connection.
        meter_id: the meter's id at the engine.
        kwp: PV peak power, kWp (0: no PV).
        annual_kwh: yearly household consumption, kWh.
        sell_min_price: least accepted per kWh when selling, base units.
        buy_max_price: most paid per kWh when buying, base units.
        modbus: read over Modbus TCP from a simulated SunSpec device.
        seed: seeds the home's load and cloud profiles.
        ev: charges an 11 kW car in the evening.
        heat_pump: runs a 3 kW hot-water heat pump in the evening.
        cloudiness: mean cloud cover of the day at the home, 0..1.
    """

    key: str
    address: str
    bus: int
    meter_id: str
    kwp: float
    annual_kwh: float
    sell_min_price: int
    buy_max_price: int
    modbus: bool
    seed: int
    ev: bool = False
    heat_pump: bool = False
    cloudiness: float = 0.3


def _buses(feeder: Feeder, day: Scenario, rng: np.random.Generator) -> list[int]:
    """Connectable buses in placement order: load buses first when the scenario asks."""
    buses = [b.index for b in feeder.connectable_buses]
    order = [buses[int(i)] for i in rng.permutation(len(buses))]
    if not day.at_loads:
        return order
    loads = {int(b) for b in feeder.net.load.loc[feeder.net.load.in_service, "bus"]}
    return [b for b in order if b in loads] + [b for b in order if b not in loads]


def plan_homes(
    feeder: Feeder,
    *,
    count: int,
    modbus: int,
    seed: int,
    pv_share: float,
    feed_in_price: int,
    retail_price: int,
    day: Scenario | None = None,
    price_min: int = 0,
    price_max: int = 1_000_000,
) -> list[Home]:
    """Place ``count`` homes at the feeder's connectable buses, deterministically for ``seed``.

    Sizes are drawn from the scenario (``day``, default ``mild``): PV on a
    ``pv_share`` of homes, household consumption, and cars and heat pumps.
    With ``day.whole`` every seller offers its whole surplus at any price
    (``price_min``: the PV is there anyway) and every buyer bids for its
    whole deficit at any price (``price_max``); the household's tariff caps
    both (docs/clearing.md, price rules), so a seller is never paid below
    feed-in and a buyer never pays above retail, and an unsold surplus is
    one the grid could not take. Otherwise asks and bids are spread around
    the tariffs.
    """
    from market.demo.scenario import SCENARIOS

    day = day if day is not None else SCENARIOS["mild"]
    rng = np.random.default_rng(seed)
    buses = _buses(feeder, day, rng)
    homes = []
    spread = retail_price - feed_in_price
    for i in range(count):
        key = "0x" + rng.bytes(32).hex()
        has_pv = rng.random() < pv_share
        kwp = round(float(rng.uniform(*day.kwp)), 1) if has_pv else 0.0
        annual = round(float(rng.uniform(*day.annual_kwh)))
        # sellers ask at least a little above feed-in; buyers pay up to
        # around retail (some a premium for local power, so some import)
        ask = feed_in_price + int(rng.uniform(0.0, 0.3) * spread)
        bid = retail_price + int(rng.uniform(-0.15, 0.1) * spread)
        home_seed = int(rng.integers(0, 2**31))
        ev = bool(day.ev_share > 0 and rng.random() < day.ev_share)
        heat_pump = bool(day.heat_pump_share > 0 and rng.random() < day.heat_pump_share)
        homes.append(
            Home(
                key=key,
                address=Account.from_key(key).address.lower(),
                bus=buses[i % len(buses)],
                meter_id=f"meter-{i:03d}",
                kwp=kwp,
                annual_kwh=annual,
                sell_min_price=price_min if day.whole else ask,
                buy_max_price=price_max if day.whole else bid,
                modbus=i < modbus,
                seed=home_seed,
                ev=ev,
                heat_pump=heat_pump,
                cloudiness=day.cloudiness,
            )
        )
    return homes


async def build_gateways(
    homes: list[Home],
    *,
    stack: AsyncExitStack,
    channel: Any,
    now_ms: Callable[[], int],
    start: dt.datetime,
    buffer_dir: Path,
    interval_s: int,
    gate_closure_s: int,
    engine_id: str,
    planned_forecast: bool = False,
) -> tuple[list[Any], list[Any]]:
    """Start a simulated home and a gateway (uplink + agent) per home.

    Returns the gateways and the simulated meters, in the order of ``homes``.
    With ``planned_forecast`` each agent trades the home energy manager's
    own forecast (:meth:`SimulatedMeter.planned_net_wh`) instead of a
    persistence forecast of its readings. Everything started is registered
    on ``stack`` and stops with it.
    """
    from meter_adapter.agent import AgentConfig
    from meter_adapter.modbus_client import ReadOnlyModbusClient
    from meter_adapter.reader import MeterReader
    from meter_adapter.simulation import (
        SunSpecSimulator,
        start_simulator_server,
    )
    from meter_adapter.uplink import SimulatedSource, clock_from_ms
    from meter_adapter.uplink.gateway import Gateway

    clock = clock_from_ms(now_ms)
    gateways = []
    meters = []
    for home in homes:
        meter = simulated_meter(home, start)
        meters.append(meter)
        source: Any
        if home.modbus:
            server = await start_simulator_server(SunSpecSimulator(meter, clock))
            stack.push_async_callback(server.stop)
            client = ReadOnlyModbusClient("127.0.0.1", server.port)
            await stack.enter_async_context(client)
            source = MeterReader(client, meter_id=home.meter_id, clock=clock)
        else:
            source = SimulatedSource(meter, clock, meter_id=home.meter_id)
        agent = AgentConfig(
            sell_min_price=home.sell_min_price,
            buy_max_price=home.buy_max_price,
            interval_s=interval_s,
            gate_closure_s=gate_closure_s,
            engine_id=engine_id,
        )
        gateway = Gateway(
            source,
            home.key,
            channel,
            meter_id=home.meter_id,
            buffer_path=buffer_dir / f"{home.meter_id}.sqlite",
            agent=agent,
            clock=clock,
            synchronous="NORMAL",
            forecaster=_planner(meter, interval_s) if planned_forecast else None,
        )
        stack.push_async_callback(gateway.close)
        gateways.append(gateway)
    return gateways, meters


def simulated_meter(home: Home, start: dt.datetime) -> SimulatedMeter:
    """The home behind its meter (household, PV, car, heat pump), for the demo and backtests."""
    from meter_adapter.simulation import HouseholdProfile, PvProfile, PvSystem, SimulatedMeter
    from meter_adapter.simulation.flexible import EvCharging, FlexibleLoads, HeatPump

    pv = (
        PvProfile(PvSystem(kwp=home.kwp), seed=home.seed, cloudiness=home.cloudiness)
        if home.kwp > 0
        else None
    )
    flexible = (
        FlexibleLoads(
            ev=EvCharging() if home.ev else None,
            heat_pump=HeatPump() if home.heat_pump else None,
            seed=home.seed,
        )
        if home.ev or home.heat_pump
        else None
    )
    return SimulatedMeter(
        household=HouseholdProfile(annual_kwh=home.annual_kwh, seed=home.seed),
        pv=pv,
        start=start,
        flexible=flexible,
    )


def _planner(meter: Any, interval_s: int) -> Callable[[int], float | None]:
    """The home energy manager's forecast of interval ``k``'s net energy, Wh."""

    def forecast(k: int) -> float | None:
        begin = dt.datetime.fromtimestamp(k * interval_s, tz=dt.UTC)
        return float(meter.planned_net_wh(begin, begin + dt.timedelta(seconds=interval_s)))

    return forecast
