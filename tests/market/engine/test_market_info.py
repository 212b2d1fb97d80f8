"""GetMarketInfo, truthful interval phases, engine ids and the event cursor."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from gridex.v1 import market_pb2
from gridex.v1 import types_pb2 as pb

from market.client import OperatorClient, TraderClient, status_code
from market.config import MarketConfig
from market.engine.engine import Engine, EngineConfig
from market.engine.server import ServerConfig, ServerThread
from market.engine.signing import Signer
from market.errors import ConfigError
from tests.market.engine.conftest import FIRST, T0_MS, connectable, register

I_MS = 900_000


def test_info_gives_the_clock_rules_and_truthful_phases(
    engine: Engine, traders: list[TraderClient], operator_client: OperatorClient
) -> None:
    alice = traders[0]
    alice.submit_order("a", "buy", interval=FIRST, quantity_wh=100, limit_price=100_000)
    info = alice.market_info(open_interval_count=3)
    assert info.engine_id == "cigre-lv"  # the default: the feeder's name
    assert (info.feeder, info.clock, info.now_ms) == ("cigre-lv", "sim", T0_MS)
    assert (info.current_interval, info.first_open_interval) == (T0_MS // I_MS, FIRST)
    assert info.last_open_interval == T0_MS // I_MS + 192
    market = MarketConfig()
    assert (info.price_min, info.price_max) == (market.price_min, market.price_max)
    assert (info.retail_price, info.feed_in_price) == (market.retail_price, market.feed_in_price)
    assert (info.interval_s, info.gate_closure_s, info.horizon_intervals) == (900, 300, 192)
    assert [k.interval for k in info.intervals] == [FIRST, FIRST + 1, FIRST + 2]
    assert {k.phase for k in info.intervals} == {pb.INTERVAL_PHASE_OPEN}
    assert info.intervals[0].order_count == 1
    assert info.intervals[0].gate_ms == FIRST * I_MS - 300_000
    assert info.intervals[0].start_ms == FIRST * I_MS
    assert [b.bus for b in info.buses] == connectable(engine)

    # the clock passes FIRST's gate and its delivery: the phases say so
    operator_client.advance_clock((FIRST + 1) * I_MS + 1)
    info = alice.market_info(open_interval_count=1)
    phases = {k.interval: k.phase for k in info.intervals}
    assert phases == {
        # FIRST ended 1 ms ago; no meter is registered, so its metering is complete
        # at once and it settles without waiting for the window: no longer listed
        FIRST + 1: pb.INTERVAL_PHASE_CLEARED,  # being delivered
        FIRST + 2: pb.INTERVAL_PHASE_OPEN,  # its gate closes in 10 minutes
    }
    assert info.first_open_interval == FIRST + 2
    operator_client.advance_clock((FIRST + 1) * I_MS + 120_000)
    phases = {k.interval: k.phase for k in alice.market_info(open_interval_count=1).intervals}
    assert FIRST not in phases  # settled: no longer listed
    assert phases[FIRST + 1] == pb.INTERVAL_PHASE_CLEARED

    # GetOrderBook agrees: never OPEN for an interval SubmitOrder refuses
    now_interval = info.current_interval
    book = {
        k: alice.order_book(k).phase
        for k in (FIRST - 5, now_interval, now_interval + 192, now_interval + 193)
    }
    assert book[FIRST - 5] == pb.INTERVAL_PHASE_UNSPECIFIED  # before the engine's first interval
    assert book[now_interval] == pb.INTERVAL_PHASE_CLEARED  # being delivered
    assert book[now_interval + 192] == pb.INTERVAL_PHASE_OPEN  # the last one in the horizon
    assert book[now_interval + 193] == pb.INTERVAL_PHASE_UNSPECIFIED  # beyond the horizon
    for k in (FIRST - 5, now_interval + 193):
        with pytest.raises(grpc.RpcError) as refused:
            alice.submit_order(f"x{k}", "buy", interval=k, quantity_wh=1, limit_price=1)
        assert status_code(refused.value) == grpc.StatusCode.FAILED_PRECONDITION


def test_the_gate_time_passed_is_gate_closed_before_the_tick_journals_it(engine: Engine) -> None:
    from market.engine.queries import phase_at

    with engine.core.lock:
        gate = engine.lifecycle.gate_ms(FIRST)
        assert phase_at(engine, FIRST, gate - 1) == pb.INTERVAL_PHASE_OPEN
        assert phase_at(engine, FIRST, gate) == pb.INTERVAL_PHASE_GATE_CLOSED


def test_who_may_ask(engine: Engine, engine_server: ServerThread) -> None:
    owner = register(engine, 1)[0]
    gateway = Signer("0x" + "22" * 32)
    engine.register_gateway(gateway.address, "m-1", owner.address).result()
    stranger = Signer("0x" + "33" * 32)
    with TraderClient(engine_server.address, gateway, retries=0) as client:
        assert client.market_info().engine_id == "cigre-lv"  # a registered gateway key
    with TraderClient(engine_server.address, stranger, retries=0) as client:
        with pytest.raises(grpc.RpcError) as denied:
            client.market_info()
        assert status_code(denied.value) == grpc.StatusCode.PERMISSION_DENIED
        assert "is not a registered participant" in (denied.value.details() or "")  # type: ignore[attr-defined]
    with TraderClient(engine_server.address, owner, retries=0) as client:
        with pytest.raises(grpc.RpcError) as bad:
            client.market_info(open_interval_count=194)
        assert status_code(bad.value) == grpc.StatusCode.INVALID_ARGUMENT
        assert "open_interval_count: must be 0 (for 4) to 193" in (bad.value.details() or "")  # type: ignore[attr-defined]


def test_engine_id_is_configurable_and_checked(
    make_engine: Callable[..., Engine], operator_signer: Signer
) -> None:
    engine = make_engine(config=EngineConfig(engine_id="berlin-7"))
    assert engine.config.engine_id == "berlin-7"
    with ServerThread(engine, ServerConfig(rate_limit_per_s=None)) as server:
        with OperatorClient(server.address, operator_signer, retries=0) as op:
            assert op.engine_status().engine_id == "berlin-7"
        alice = register(engine, 1)[0]
        with TraderClient(server.address, alice, retries=0) as client:
            assert client.market_info().engine_id == "berlin-7"
    with pytest.raises(ConfigError, match=r"engine_id: must be 1 to 64 characters"):
        make_engine(config=EngineConfig(engine_id="has space"))


def test_a_cursor_beyond_the_head_is_out_of_range(traders: list[TraderClient]) -> None:
    alice = traders[0]
    alice.submit_order("a", "buy", interval=FIRST, quantity_wh=100, limit_price=100_000)
    head = next(iter(alice.events(0))).sequence
    with pytest.raises(grpc.RpcError) as info:
        next(iter(alice.events(head + 1, reconnect=False)))
    assert status_code(info.value) == grpc.StatusCode.OUT_OF_RANGE
    assert f"after_sequence: {head + 1} is beyond the latest event {head}" in (
        info.value.details() or ""  # type: ignore[attr-defined]
    )
    assert isinstance(market_pb2.GetMarketInfoResponse(), market_pb2.GetMarketInfoResponse)
