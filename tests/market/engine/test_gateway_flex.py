"""A gateway's storage agent places and amends its battery order at a real engine.

The agent (meter_adapter.agent.storage) and its gRPC client
(meter_adapter.agent.market.MarketClient) against the engine's flexibility
RPCs over a real gRPC server: the first post is a SubmitFlexOrder, a drift of
the measured state of charge becomes an AmendFlexOrder of the same order (the
engine would refuse a re-submit with other content as ALREADY_EXISTS), and
the engine's view of the order is what the battery measured.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from fractions import Fraction

import grpc
from gridex.v1 import market_pb2

from market.client import TraderClient
from market.engine.engine import Engine
from market.engine.server import ServerConfig, ServerThread
from meter_adapter.agent.market import MarketClient
from meter_adapter.agent.storage import StorageAgent, StorageConfig, storage_order_id
from meter_adapter.sunspec.battery import decode_battery
from tests.market.engine.conftest import register
from tests.meter_adapter import dumps

HAND = decode_battery(802, dumps.BATTERY_802[2:])  # 13 500 Wh at 9004 Wh
CONFIG = StorageConfig(cycling_price=20_000, reserve_percent=20.0, drift_wh=300)
T0_MS = 1_900_000_000_000


def test_the_gateway_posts_then_amends_its_battery_at_the_engine(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    owner = register(engine, 1)[0]
    with ServerThread(engine, ServerConfig(rate_limit_per_s=None)) as server:

        async def scenario() -> tuple[str | None, str | None]:
            async with grpc.aio.insecure_channel(server.address) as channel:
                client = MarketClient(channel, owner, engine_id=engine.engine_id)
                agent = StorageAgent(
                    client, participant=owner.address, meter_id="home", config=CONFIG
                )
                agent.observe(HAND, T0_MS)
                first = await agent.post_once(T0_MS)
                drifted = dataclasses.replace(HAND, soc_percent=Fraction(690, 10))
                agent.observe(drifted, T0_MS + 60_000)
                second = await agent.post_once(T0_MS + 60_000)
                return (
                    None if first is None else first.status,
                    None if second is None else second.status,
                )

        assert asyncio.run(scenario()) == ("posted", "amended")
        with TraderClient(server.address, owner, retries=0, engine_id=engine.engine_id) as t:
            state = t.flex_schedule(storage_order_id("home")).order
    assert state.status == market_pb2.FLEX_ORDER_STATUS_LIVE
    assert state.version == 2
    assert state.order.storage.soc_wh == 9_315  # 69.0 % of 13.5 kWh, as measured
    assert state.order.storage.capacity_wh == 13_500
