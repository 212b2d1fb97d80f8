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
from typing import Any

import numpy as np
from eth_account import Account

from grid import Feeder

__all__ = ["Home", "build_gateways", "plan_homes"]


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


def plan_homes(
    feeder: Feeder,
    *,
    count: int,
    modbus: int,
    seed: int,
    pv_share: float,
    feed_in_price: int,
    retail_price: int,
) -> list[Home]:
    """Place ``count`` homes at the feeder's connectable buses, deterministically for ``seed``."""
    rng = np.random.default_rng(seed)
    buses = [b.index for b in feeder.connectable_buses]
    order = rng.permutation(len(buses))
    homes = []
    spread = retail_price - feed_in_price
    for i in range(count):
        key = "0x" + rng.bytes(32).hex()
        has_pv = rng.random() < pv_share
        homes.append(
            Home(
                key=key,
                address=Account.from_key(key).address.lower(),
                bus=buses[int(order[i % len(buses)])],
                meter_id=f"meter-{i:03d}",
                kwp=round(float(rng.uniform(4.0, 12.0)), 1) if has_pv else 0.0,
                annual_kwh=round(float(rng.uniform(2500.0, 5500.0))),
                # sellers ask at least a little above feed-in; buyers pay up to
                # around retail (some a premium for local power, so some import)
                sell_min_price=feed_in_price + int(rng.uniform(0.0, 0.3) * spread),
                buy_max_price=retail_price + int(rng.uniform(-0.15, 0.1) * spread),
                modbus=i < modbus,
                seed=int(rng.integers(0, 2**31)),
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
) -> list[Any]:
    """Start a simulated home and a gateway (uplink + agent) per home; return the gateways.

    Everything started is registered on ``stack`` and stops with it.
    """
    from meter_adapter.agent import AgentConfig
    from meter_adapter.modbus_client import ReadOnlyModbusClient
    from meter_adapter.reader import MeterReader
    from meter_adapter.simulation import (
        HouseholdProfile,
        PvProfile,
        PvSystem,
        SimulatedMeter,
        SunSpecSimulator,
        start_simulator_server,
    )
    from meter_adapter.uplink import SimulatedSource, clock_from_ms
    from meter_adapter.uplink.gateway import Gateway

    clock = clock_from_ms(now_ms)
    gateways = []
    for home in homes:
        pv = (
            PvProfile(PvSystem(kwp=home.kwp), seed=home.seed, cloudiness=0.3)
            if home.kwp > 0
            else None
        )
        meter = SimulatedMeter(
            household=HouseholdProfile(annual_kwh=home.annual_kwh, seed=home.seed),
            pv=pv,
            start=start,
        )
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
        )
        stack.push_async_callback(gateway.close)
        gateways.append(gateway)
    return gateways
