"""Gateways against the real engine: an outage of several intervals loses and doubles nothing.

The engine runs in this process (journal in tmp_path, gRPC on 127.0.0.1, a
simulated clock); the gateway is :class:`meter_adapter.uplink.gateway.Gateway`
with a simulated home and the prosumer agent, stepped the way the demo steps
its fleet. The engine is shut down for four intervals and restarted from its
journal; meanwhile the gateway keeps reading and is itself restarted on its
buffer file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gridex.signing import Signer

from grid import Feeder, load_feeder
from market.engine.clock import SimClock
from market.engine.engine import Engine, EngineConfig
from market.engine.server import ServerConfig, ServerThread
from meter_adapter.agent import AgentConfig, client_order_id
from meter_adapter.simulation import HouseholdProfile, PvProfile, PvSystem, SimulatedMeter
from meter_adapter.uplink import (
    BackoffPolicy,
    BufferedReading,
    SimulatedSource,
    UplinkConfig,
    clock_from_ms,
    engine_channel,
)
from meter_adapter.uplink.gateway import Gateway

pytestmark = pytest.mark.integration

I_MS = 900_000
#: 2025-06-11 10:00 UTC (noon in Berlin): the simulated home has a PV surplus.
T0_MS = (1944000 + 40) * I_MS
STEP_MS = 300_000
OPERATOR = Signer("0x" + "11" * 32)
HOME = Signer("0x" + "33" * 32)
METER = "home-1"


@pytest.fixture(scope="module")
def gateway_feeder() -> Feeder:
    return load_feeder("cigre-lv")


@dataclass
class EngineHost:
    """The engine and its gRPC server, which a test can take down and bring back."""

    feeder: Feeder
    db: Path
    clock: SimClock = field(default_factory=lambda: SimClock(T0_MS))
    port: int = 0
    engine: Engine | None = None
    server: ServerThread | None = None

    def start(self) -> Engine:
        engine = Engine(
            self.feeder,
            self.db,
            clock=self.clock,
            operators=[OPERATOR.address],
            config=EngineConfig(synchronous="NORMAL"),
        )
        engine.start()
        self.server = ServerThread(engine, ServerConfig(port=self.port, rate_limit_per_s=None))
        self.port = self.server.start()
        self.engine = engine
        return engine

    def stop(self) -> None:
        assert self.server is not None
        assert self.engine is not None
        self.server.stop(grace_s=0)
        self.engine.close()
        self.engine = self.server = None

    def advance(self, to_ms: int) -> None:
        if self.engine is None:
            self.clock.set(to_ms)  # the world goes on while the engine is down
        else:
            self.engine.advance_to(to_ms)


@pytest.fixture
def engine_host(gateway_feeder: Feeder, tmp_path: Path) -> Iterator[EngineHost]:
    host = EngineHost(gateway_feeder, tmp_path / "engine.db")
    engine = host.start()
    bus = engine.feeder.connectable_buses[0].index
    engine.register_participant(HOME.address, bus).result()
    engine.register_gateway(HOME.address, METER, HOME.address).result()
    yield host
    if host.engine is not None:
        host.stop()


def test_outage_of_several_intervals_loses_and_doubles_nothing(
    engine_host: EngineHost, tmp_path: Path
) -> None:
    host = engine_host
    clock = clock_from_ms(host.clock.now_ms)
    system = PvSystem(kwp=9.0)
    meter = SimulatedMeter(
        household=HouseholdProfile(seed=2),
        pv=PvProfile(system, seed=2, cloudiness=0.1),
        start=clock(),
    )
    buffered: list[BufferedReading] = []

    async def scenario() -> None:
        channel = engine_channel(f"127.0.0.1:{host.port}", max_reconnect_s=0.2)

        def gateway() -> Gateway:
            return Gateway(
                SimulatedSource(meter, clock, meter_id=METER),
                HOME,
                channel,
                meter_id=METER,
                buffer_path=tmp_path / "gateway.sqlite",
                clock=clock,
                agent=AgentConfig(
                    sell_min_price=90_000,
                    buy_max_price=290_000,
                    gate_closure_s=300,
                    engine_id="cigre-lv",
                ),
                uplink=UplinkConfig(
                    max_batch_readings=4, backoff=BackoffPolicy(initial_s=0.01, max_s=0.1)
                ),
                synchronous="NORMAL",
            )

        gw = gateway()
        t = T0_MS
        for step in range(40):  # 40 steps of 5 min: 13 intervals
            t += STEP_MS
            if step == 8:
                host.stop()  # the engine is down from here ...
            if step == 14:
                await gw.close()  # ... and the gateway restarts on its buffer meanwhile
                gw = gateway()
            if step == 20:
                host.start()  # ... to here: four intervals later, replayed from its journal
            up = host.engine is not None
            host.advance(t)
            reading = await gw.poll_once()
            assert reading is not None
            buffered.append(reading)
            left = await gw.flush(timeout_s=20 if up else 0.05)
            assert left == (0 if up else gw.buffer.pending_count)
            await gw.trade_once()
        assert await gw.flush(timeout_s=20) == 0
        assert gw.buffer.quarantined() == []
        await gw.close()
        await channel.close(None)

    asyncio.run(scenario())

    engine = host.engine
    assert engine is not None
    frame = engine.state.ledger.readings_frame().filter(meter_id=METER)
    held = list(
        zip(
            frame["seq"],
            frame["timestamp_ms"],
            frame["energy_import_wh"],
            frame["energy_export_wh"],
            frame["power_w"],
            strict=True,
        )
    )
    sent = [
        (r.seq, r.timestamp_ms, r.energy_import_wh, r.energy_export_wh, r.power_w) for r in buffered
    ]
    assert held == sent  # every reading, once, in order, as read
    assert [s for s, *_ in sent] == list(range(sent[0][0], sent[0][0] + len(sent)))
    assert engine.state.ledger.gaps(METER) == ()
    # the agent's orders reached the real engine, signed, one per interval at most
    orders, _ = engine.list_orders(HOME.address, interval=None, page_size=1000, page_token="")
    intervals = [o.interval for o in orders]
    assert len(intervals) == len(set(intervals)) > 0
    assert all(o.client_order_id == client_order_id(METER, o.interval) for o in orders)
    assert {o.side for o in orders} <= {1, 2}


def test_engine_refusals_reach_the_gateway_as_codes(
    engine_host: EngineHost, tmp_path: Path
) -> None:
    """An unregistered meter keeps its readings; once registered, they all arrive."""
    host = engine_host
    clock = clock_from_ms(host.clock.now_ms)
    meter = SimulatedMeter(household=HouseholdProfile(seed=5), pv=None, start=clock())

    async def scenario() -> int:
        channel = engine_channel(f"127.0.0.1:{host.port}", max_reconnect_s=0.2)
        gw = Gateway(
            SimulatedSource(meter, clock, meter_id="garage"),
            HOME,
            channel,
            meter_id="garage",
            buffer_path=tmp_path / "garage.sqlite",
            clock=clock,
            uplink=UplinkConfig(backoff=BackoffPolicy(initial_s=0.01, max_s=0.05)),
        )
        for _ in range(3):
            host.advance(host.clock.now_ms() + 60_000)
            await gw.poll_once()
        assert await gw.flush(timeout_s=0.3) == 3  # FAILED_PRECONDITION: not registered
        assert gw.uplink.stats.batches_refused > 0
        assert host.engine is not None
        host.engine.register_gateway(HOME.address, "garage", HOME.address).result()
        left = await gw.flush(timeout_s=20)
        await gw.close()
        await channel.close(None)
        return left

    assert asyncio.run(scenario()) == 0
    assert host.engine is not None
    assert host.engine.state.ledger.ack_seq("garage") is not None
