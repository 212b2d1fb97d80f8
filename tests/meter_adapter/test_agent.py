"""The prosumer agent against a real gRPC server: signed, idempotent, engine-clocked orders."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from gridex.signing import Signer
from gridex.v1 import market_pb2, types_pb2

from meter_adapter.agent import AgentConfig, MarketClient, MarketEvents, ProsumerAgent
from meter_adapter.agent.agent import client_order_id
from meter_adapter.errors import MeterConfigError
from meter_adapter.uplink import BackoffPolicy, BufferedReading, ReadingBuffer, engine_channel
from tests.meter_adapter.uplink_fake_engine import FAKE_ENGINE_ID, FakeEngine, wait_until

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
I_MS = 900_000
K = 1_900_000  # an interval id around 2024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Rig:
    engine: FakeEngine
    channel: grpc.aio.Channel
    path: Path
    now_ms: int

    def clock(self) -> datetime:
        return EPOCH + timedelta(milliseconds=self.now_ms)

    def agent(self, config: AgentConfig, **kw: object) -> ProsumerAgent:
        buffer = ReadingBuffer(self.path, meter_id="m1", first_seq=1)
        return ProsumerAgent(
            self.channel,
            Signer(KEY),
            meter_id="m1",
            config=dataclasses.replace(config, engine_id=FAKE_ENGINE_ID),
            store=buffer,
            clock=self.clock,
            **kw,  # type: ignore[arg-type]
        )


@asynccontextmanager
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = FakeEngine()
    await engine.start()
    channel = engine_channel(engine.target, max_reconnect_s=0.1)
    try:
        yield Rig(engine, channel, tmp_path / "gw.sqlite", (K - 1) * I_MS + 600_000)
    finally:
        await channel.close(None)
        await engine.stop()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def feed(agent: ProsumerAgent, *, start_ms: int, end_ms: int, net_wh_per_interval: int) -> None:
    """Readings every minute with a steady net export (negative: import)."""
    seq, t = 1, start_ms
    while t <= end_ms:
        net = net_wh_per_interval * (t - start_ms) // I_MS
        agent.observe(BufferedReading(seq, t, max(0, -net), max(0, net), 0))
        seq, t = seq + 1, t + 60_000


SELLER = AgentConfig(sell_min_price=80_000, buy_max_price=300_000)


def test_sells_forecast_surplus_for_the_interval_after_the_latest_gate(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            agent = r.agent(SELLER)
            feed(agent, start_ms=(K - 3) * I_MS, end_ms=r.now_ms, net_wh_per_interval=1200)
            assert await agent.trade_once() is None  # no gate closed yet: the interval is unknown
            r.engine.market.add_event(K * I_MS - 300_000, K, "gate_closed")
            assert agent.events is not None
            follower = asyncio.create_task(agent.events.run())
            await wait_until(lambda: agent.open_interval() == K + 1)
            order = await agent.trade_once()
            follower.cancel()
            assert order is not None
            assert (order.interval, order.side, order.status) == (K + 1, "sell", "placed")
            assert order.quantity_wh == pytest.approx(1200, abs=2)
            assert order.limit_price == 80_000
            (request,) = r.engine.market.calls  # signed: the fake checked it over the exact bytes
            assert request.participant == Signer(KEY).address
            assert request.side == types_pb2.SIDE_SELL
            assert request.client_order_id == client_order_id("m1", K + 1)
            assert await agent.trade_once() == order  # decided once per interval
            assert len(r.engine.market.calls) == 1

    run(scenario)


def test_retry_after_a_crash_resends_the_same_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            config = AgentConfig(buy_max_price=300_000, gate_closure_s=300)
            first = r.agent(config)
            feed(first, start_ms=(K - 3) * I_MS, end_ms=r.now_ms, net_wh_per_interval=-800)
            r.engine.market.lose_answers = 1  # the engine takes the order, the answer is lost
            planned = await first.trade_once()
            assert planned is not None
            assert (planned.side, planned.status) == ("buy", "planned")
            # the gateway restarts: a new agent on the same file, with a different history
            second = r.agent(config)
            feed(second, start_ms=(K - 3) * I_MS, end_ms=r.now_ms, net_wh_per_interval=-5000)
            placed = await second.trade_once()
            assert placed is not None
            assert placed.status == "placed"
            assert placed.quantity_wh == planned.quantity_wh  # the saved decision, unchanged
            market = r.engine.market
            assert len(market.orders) == 1
            assert len(market.calls) == 2
            assert market.calls[0] == market.calls[1]

    run(scenario)


def test_unavailable_engine_is_retried_and_refusals_are_recorded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            config = AgentConfig(sell_min_price=1, gate_closure_s=300)
            agent = r.agent(config)
            feed(agent, start_ms=(K - 3) * I_MS, end_ms=r.now_ms, net_wh_per_interval=500)
            r.engine.market.fail_next = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL]
            for _ in range(2):
                order = await agent.trade_once()
                assert order is not None
                assert order.status == "planned"
            order = await agent.trade_once()
            assert order is not None
            assert order.status == "placed"
            # next interval: the gate has closed by the time the order arrives
            r.now_ms += I_MS
            r.engine.market.gate_closed = K + 2
            refused = await agent.trade_once()
            assert refused is not None
            assert (refused.interval, refused.status) == (K + 2, "refused")
            assert "FAILED_PRECONDITION" in refused.detail

    run(scenario)


def test_an_id_used_with_other_content_counts_as_ordered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            agent = r.agent(AgentConfig(sell_min_price=1, gate_closure_s=300))
            feed(agent, start_ms=(K - 3) * I_MS, end_ms=r.now_ms, net_wh_per_interval=500)
            address = Signer(KEY).address
            other = market_pb2.SubmitOrderRequest(
                participant=address,
                client_order_id=client_order_id("m1", K + 1),
                side=types_pb2.SIDE_SELL,
                interval=K + 1,
                quantity_wh=1,
                limit_price=1,
            )
            r.engine.market.orders[(address, other.client_order_id)] = other
            order = await agent.trade_once()
            assert order is not None
            assert order.status == "placed"
            assert len(r.engine.market.orders) == 1

    run(scenario)


def test_clock_mode_uses_the_engines_rule_for_the_open_interval(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            agent = r.agent(AgentConfig(sell_min_price=1, gate_closure_s=300))
            assert agent.events is None
            r.now_ms = K * I_MS - 300_001  # just before the gate of K
            assert agent.open_interval() == K
            r.now_ms += 1
            assert agent.open_interval() == K + 1

    run(scenario)


def test_decisions() -> None:
    async def scenario() -> None:
        channel = grpc.aio.insecure_channel("127.0.0.1:1")
        buffer = ReadingBuffer(":memory:", meter_id="m1")

        def agent(**kw: int | None) -> ProsumerAgent:
            config = AgentConfig(gate_closure_s=0, min_order_wh=50, **kw)  # type: ignore[arg-type]
            return ProsumerAgent(
                channel, Signer(KEY), meter_id="m1", config=config, store=buffer, clock=_now
            )

        both = agent(sell_min_price=10, buy_max_price=20)
        assert both.decide(5, 400.7).side == "sell"
        assert both.decide(5, 400.7).quantity_wh == 400
        assert (both.decide(5, -60).side, both.decide(5, -60).limit_price) == ("buy", 20)
        assert both.decide(5, 49).side is None
        assert both.decide(5, 49).status == "none"
        assert agent(sell_min_price=10).decide(5, -500).side is None
        assert agent(buy_max_price=10).decide(5, 500).side is None
        with pytest.raises(MeterConfigError, match="price limit"):
            agent()
        await channel.close(None)

    run(scenario)


def _now() -> datetime:
    return datetime(2024, 6, 1, tzinfo=UTC)


def test_client_order_ids_are_stable_short_and_per_meter() -> None:
    assert client_order_id("m1", 1944000) == client_order_id("m1", 1944000)
    assert client_order_id("m1", 1944000) != client_order_id("m2", 1944000)
    assert len(client_order_id("x" * 64, 2**40)) <= 64


def test_events_give_the_engine_clock_and_resume_after_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            market = r.engine.market
            market.add_event(K * I_MS - 300_000, K, "gate_closed")
            market.add_event(K * I_MS, K - 1, "interval_delivered")
            buffer = ReadingBuffer(r.path, meter_id="m1")
            client = MarketClient(r.channel, Signer(KEY), engine_id=FAKE_ENGINE_ID)
            events = MarketEvents(client, store=buffer, backoff=BackoffPolicy(initial_s=0.01))
            task = asyncio.create_task(events.run())
            await wait_until(lambda: events.sequence == 2)
            assert await events.wait_for_time() == K * I_MS
            assert events.clock() == EPOCH + timedelta(milliseconds=K * I_MS)
            assert (events.open_interval, events.interval_s) == (K + 1, 900)
            # the engine goes down and comes back; the follower reconnects and carries on
            await r.engine.stop()
            market.add_event((K + 1) * I_MS - 300_000, K + 1, "gate_closed")
            await r.engine.start()
            await wait_until(lambda: events.open_interval == K + 2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            # a restart resumes from the saved progress, not from the first event
            again = MarketEvents(client, store=buffer)
            assert (again.sequence, again.open_interval, again.interval_s) == (3, K + 2, 900)
            buffer.close()

    run(scenario)


def test_run_trades_on_every_gate_closure(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            # no timer to fall back on: only the gate-closure events can make it trade
            agent = r.agent(AgentConfig(sell_min_price=80_000, retry_s=3600))
            feed(agent, start_ms=(K - 3) * I_MS, end_ms=r.now_ms, net_wh_per_interval=900)
            task = asyncio.create_task(agent.run())
            for k in (K, K + 1, K + 2):
                r.engine.market.add_event(k * I_MS - 300_000, k, "gate_closed")
                # the engine's answer must be in before the next gate closes: waiting only
                # for the saved decision ("planned") let the next gate close before the
                # order reached the engine, which then refused it, rightly
                await wait_until(lambda k=k: _answered(agent, k + 1))  # type: ignore[misc]
                order = agent.order(k + 1)
                assert order is not None
                assert (order.status, order.detail) == ("placed", "")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert sorted(o.interval for o in r.engine.market.orders.values()) == [
                K + 1,
                K + 2,
                K + 3,
            ]

    run(scenario)


def test_events_start_over_when_the_engine_has_fewer_than_saved(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            buffer = ReadingBuffer(r.path, meter_id="m1")
            # saved by a gateway that followed another engine (or a journal since removed)
            buffer.set_meta([("events.sequence", "40"), ("events.gate_closed", str(K + 9))])
            r.engine.market.add_event(K * I_MS - 300_000, K, "gate_closed")
            client = MarketClient(r.channel, Signer(KEY), engine_id=FAKE_ENGINE_ID)
            events = MarketEvents(client, store=buffer, backoff=BackoffPolicy(initial_s=0.01))
            assert (events.sequence, events.gate_closed) == (40, K + 9)
            task = asyncio.create_task(events.run())
            await wait_until(lambda: events.sequence == 1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert events.gate_closed == K  # this engine's clock, not the saved one
            assert buffer.get_meta("events.gate_closed") == str(K)
            buffer.close()

    run(scenario)


def _answered(agent: ProsumerAgent, interval: int) -> bool:
    """The engine has answered the agent's order for ``interval`` (placed or refused)."""
    order = agent.order(interval)
    return order is not None and order.status != "planned"
