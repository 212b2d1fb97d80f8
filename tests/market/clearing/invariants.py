"""Invariants every clearing result must satisfy, checked by several test modules."""

from __future__ import annotations

from collections import defaultdict

from grid import Feeder
from market.clearing import GRID, ClearingResult
from market.clearing.audit import audit
from market.config import MarketConfig
from market.orders import Order, Side

#: Price margin (base units per kWh) beyond which an order counts as in or out of the money.
MONEY_MARGIN = 1.0


def check_books(
    result: ClearingResult,
    orders: list[Order],
    config: MarketConfig,
    feeder: Feeder | None = None,
) -> None:
    """Fills within quantities and limits; exact energy and money books; trades add up.

    With ``feeder``, the energy is also checked against the AC power flow
    (:func:`market.clearing.audit.audit`).
    """
    assert result.ok
    assert audit(result, feeder, config) == []
    assert len(result.fills) == len(orders)
    for fill, order in zip(result.fills, orders, strict=True):
        assert fill.order_id == order.order_id
        assert fill.side == order.side.value
        assert 0 <= fill.filled_wh <= order.quantity_wh
        if fill.filled_wh == 0:
            assert fill.amount == 0
            continue
        value = fill.filled_wh * order.limit_price  # base units × 1000
        if order.side == Side.BUY:
            assert fill.price <= order.limit_price
            assert fill.amount * 1000 <= value
        else:
            assert fill.price >= order.limit_price
            assert fill.amount * 1000 >= value
    buy_wh = sum(f.filled_wh for f in result.fills if f.side == "buy")
    sell_wh = sum(f.filled_wh for f in result.fills if f.side == "sell")
    # energy: Σ sell + import == Σ buy + export + losses, exactly, one of import/export zero
    assert sell_wh + result.grid_import_wh == buy_wh + result.grid_export_wh + result.losses_wh
    assert min(result.grid_import_wh, result.grid_export_wh) == 0
    # money: buyers pay what sellers, the grid and the operator receive, exactly
    assert result.buyers_pay == (
        result.sellers_receive
        + result.grid_import_amount
        - result.grid_export_amount
        + result.grid_rounding_amount
        + result.operator_surplus
    )
    assert result.operator_surplus >= 0
    assert result.grid_rounding_amount <= 0
    assert result.operator_surplus == 0 or result.grid_rounding_amount == 0
    assert result.grid_import_amount * 1000 >= result.grid_import_wh * config.retail_price
    assert result.grid_export_amount * 1000 <= result.grid_export_wh * config.feed_in_price
    # payments per participant are the signed sum of their fills
    expected: dict[str, int] = defaultdict(int)
    for f in result.fills:
        expected[f.participant] += f.amount if f.side == "sell" else -f.amount
    assert {p.participant: p.amount for p in result.payments} == dict(expected)
    assert [p.participant for p in result.payments] == sorted(expected)
    # trades: every order's fill is attributed exactly once
    traded: dict[tuple[str, str], int] = defaultdict(int)
    for t in result.trades:
        assert t.energy_wh > 0
        assert not (t.buyer == GRID and t.seller == GRID)
        if t.buyer != GRID:
            traded[(t.buyer, t.buyer_order)] += t.energy_wh
        if t.seller != GRID:
            traded[(t.seller, t.seller_order)] += t.energy_wh
    filled = {(f.participant, f.order_id): f.filled_wh for f in result.fills if f.filled_wh}
    assert dict(traded) == filled
    assert result.welfare >= -1e-6 * max(config.retail_price, 1)


def check_merit_consistency(result: ClearingResult, config: MarketConfig) -> None:
    """Against its own bus price, every order clearly in the money is filled, out of it not.

    A buyer bids its limit minus the grid fee. Orders within
    :data:`MONEY_MARGIN` of the price may be filled partly.
    """
    lmp = {p.bus: p.lmp for p in result.prices}
    for f in result.fills:
        price = lmp[f.bus]
        # the market bids the tariff-capped limits (a buyer never above retail,
        # a seller never below feed-in)
        if f.side == "buy":
            bid = min(f.limit_price, config.retail_price) - config.grid_fee_per_kwh
        else:
            bid = max(f.limit_price, config.feed_in_price)
        surplus = bid - price if f.side == "buy" else price - bid
        if surplus > MONEY_MARGIN:
            assert f.filled_wh == f.quantity_wh, f
        elif surplus < -MONEY_MARGIN:
            assert f.filled_wh == 0, f


def check_serialisation(result: ClearingResult) -> None:
    """Canonical bytes round-trip to an equal value and the same bytes."""
    data = result.to_json()
    again = ClearingResult.from_json(data)
    assert again == result
    assert again.to_json() == data
    assert b'"stats"' not in data
