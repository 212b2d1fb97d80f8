"""Collateral at order entry: an order is taken only if the escrow can pay its worst case.

Worst case of one order, token base units (rounded up), with the tariffs of
:class:`market.config.MarketConfig` (base units per kWh)::

    buy  q Wh at limit p:   q × min(p, retail_price) / 1000   (filled in full, at its limit)
    sell q Wh:              q × retail_price / 1000           (filled in full, nothing
                                                               delivered: the imbalance
                                                               −q is bought at retail)

A participant's exposure is the worst case of every order it has in an
interval that is not settled yet (open, gate closed or cleared; a cleared
order counts its filled quantity, a cancelled or unfilled one nothing), plus
the new order. Once an interval is settled provisionally its money has moved
in escrow already, so it counts no more. Free escrow is the on-chain escrow
balance minus any pending withdrawal (see the Settlement contract's
time-locked withdrawals). An order whose exposure exceeds free escrow is
refused with :class:`~market.errors.InsufficientCollateralError`
(FAILED_PRECONDITION), naming both amounts.

Energy a household draws beyond its orders (its ordinary consumption at
retail) is not an order's cost and is not covered here; nor is a later
reconciliation of an interval whose provisional posting used an estimate.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gridex.v1 import types_pb2 as pb

from market.config import MarketConfig
from market.engine.state import MarketState
from market.errors import InsufficientCollateralError
from market.orders import Order, Side

__all__ = ["EscrowView", "check_collateral", "exposure", "worst_case"]

_WH_PER_KWH = 1000


@runtime_checkable
class EscrowView(Protocol):
    """Where the engine reads a participant's free escrow (a settler may be one)."""

    def free_escrow(self, address: str) -> int:
        """Escrow balance minus pending withdrawals, base units."""
        ...


def worst_case(order: Order, config: MarketConfig, quantity_wh: int | None = None) -> int:
    """Most the order can cost its participant, base units, ``>= 0`` (rounded up)."""
    q = order.quantity_wh if quantity_wh is None else quantity_wh
    price = (
        min(order.limit_price, config.retail_price)
        if order.side is Side.BUY
        else config.retail_price
    )
    return -(-q * price // _WH_PER_KWH)


def exposure(state: MarketState, participant: str, config: MarketConfig) -> int:
    """Worst case of ``participant``'s orders in intervals not settled yet, base units."""
    total = 0
    for record in state.by_participant.get(participant, []):
        if record.status in (pb.ORDER_STATUS_CANCELLED, pb.ORDER_STATUS_UNFILLED):
            continue
        if state.phase(record.order.interval) >= pb.INTERVAL_PHASE_SETTLED:
            continue
        cleared = state.phase(record.order.interval) >= pb.INTERVAL_PHASE_CLEARED
        total += worst_case(record.order, config, record.filled_wh if cleared else None)
    return total


def check_collateral(
    order: Order, state: MarketState, config: MarketConfig, escrow: EscrowView
) -> None:
    """Refuse ``order`` unless free escrow covers it and the participant's open positions.

    Raises:
        InsufficientCollateralError: it does not (both amounts in the message).
    """
    needed = exposure(state, order.participant, config) + worst_case(order, config)
    free = escrow.free_escrow(order.participant)
    if needed > free:
        raise InsufficientCollateralError(order.order_id, order.participant, needed, free)
