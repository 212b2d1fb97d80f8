"""Collateral at order entry: free escrow must cover the worst case of the order
and the participant's open positions (imbalance at retail included)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from market.client import TraderClient
from market.config import MarketConfig
from market.engine.collateral import worst_case
from market.engine.engine import Engine
from market.engine.server import ServerConfig, ServerThread
from market.engine.settler import RecordingSettler
from market.errors import InsufficientCollateralError
from market.orders import Order, Side

from .conftest import FIRST, register

CONFIG = MarketConfig()  # retail 300,000 and feed-in 80,000 base units per kWh


class EscrowSettler(RecordingSettler):
    """Records settlements and reports free escrow from a dict, as the chain would."""

    def __init__(self, free: dict[str, int]) -> None:
        super().__init__()
        self.free = free

    def free_escrow(self, address: str) -> int:
        return self.free.get(address, 0)


def test_worst_case_by_hand() -> None:
    buy = Order("b", "0x" + "01" * 20, Side.BUY, FIRST, 1500, 250_000)
    dear = Order("d", "0x" + "01" * 20, Side.BUY, FIRST, 1500, 900_000)
    sell = Order("s", "0x" + "01" * 20, Side.SELL, FIRST, 1001, 100_000)
    assert worst_case(buy, CONFIG) == 375_000  # 1.5 kWh at its limit
    assert worst_case(dear, CONFIG) == 450_000  # no buyer pays above retail
    assert worst_case(sell, CONFIG) == 300_300  # 1.001 kWh not delivered, bought at retail
    assert worst_case(sell, CONFIG, 1) == 300  # rounded up


def test_orders_beyond_free_escrow_are_refused_with_both_amounts(
    make_engine: Callable[..., Engine],
) -> None:
    free: dict[str, int] = {}
    engine = make_engine(settler=EscrowSettler(free))
    (alice,) = register(engine, 1)
    free[alice.address] = 700_000
    engine.submit_order(Order("s1", alice.address, Side.SELL, FIRST, 2000, 90_000)).result()
    second = Order("b1", alice.address, Side.BUY, FIRST + 1, 1000, 200_000)
    with pytest.raises(InsufficientCollateralError) as refused:
        engine.submit_order(second)
    assert (refused.value.needed, refused.value.free) == (600_000 + 200_000, 700_000)
    assert "deposit at least 100000 more" in str(refused.value)
    assert second.key not in engine.state.orders  # nothing journaled
    engine.cancel_order(alice.address, "s1").result()  # a cancelled order costs nothing
    engine.submit_order(second).result()


def test_a_refusal_is_failed_precondition_over_grpc(make_engine: Callable[..., Engine]) -> None:
    free: dict[str, int] = {}
    engine = make_engine(settler=EscrowSettler(free))
    (alice,) = register(engine, 1)
    with (
        ServerThread(engine, ServerConfig(rate_limit_per_s=None)) as server,
        TraderClient(server.address, alice, retries=0) as client,
    ):
        with pytest.raises(grpc.RpcError) as caught:
            client.submit_order("b1", "buy", interval=FIRST, quantity_wh=1000, limit_price=1000)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "needs 1000 base units of free escrow, 0 are free" in (caught.value.details() or "")
