"""Participants and orders: the market's domain values.

Units: energy in integer Wh; prices in integer token base units per kWh;
money in integer token base units. Sides are seen from the participant: a
``sell`` order injects energy into the grid, a ``buy`` order withdraws it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ADDRESS_RE",
    "Order",
    "Participant",
    "Side",
    "book_order",
    "normalise_address",
]

#: An Ethereum address: 0x and 40 hexadecimal digits (any case).
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def normalise_address(address: str) -> str:
    """Lower-case form of an Ethereum address, used as the participant key.

    Raises:
        ValueError: ``address`` is not 0x followed by 40 hexadecimal digits.
    """
    if not isinstance(address, str) or not ADDRESS_RE.match(address):
        raise ValueError(f"address: expected 0x followed by 40 hex digits, got {address!r}")
    return address.lower()


class Side(StrEnum):
    """Order side, from the participant's point of view."""

    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Participant:
    """A market participant: an Ethereum address connected at one bus.

    Attributes:
        address: lower-case Ethereum address (see :func:`normalise_address`).
        bus: pandapower bus index of the connection point.
    """

    address: str
    bus: int


@dataclass(frozen=True, slots=True)
class Order:
    """A limit order for one interval.

    Attributes:
        order_id: the client's order id, unique per participant.
        participant: lower-case address of the participant.
        side: buy or sell.
        interval: interval id (start time = id × interval length, Unix seconds).
        quantity_wh: maximum energy to trade, integer Wh, positive.
        limit_price: the worst acceptable price in token base units per kWh:
            the most a buyer pays, the least a seller receives.
    """

    order_id: str
    participant: str
    side: Side
    interval: int
    quantity_wh: int
    limit_price: int

    @property
    def key(self) -> tuple[str, str]:
        """The order's unique key: (participant, order id)."""
        return (self.participant, self.order_id)


def book_order(orders: Iterable[Order]) -> list[Order]:
    """``orders`` in the canonical book order: by participant (lower case), then order id.

    The clearing LP can have several optima when equal offers compete for
    the same room (two sellers at one price and demand for one of them);
    which one the solver returns follows the order of its columns. Clearing
    in this order, never in arrival order, makes the same orders clear the
    same way however they arrived (the sort is stable: equal keys keep their
    order).
    """
    return sorted(orders, key=_book_key)


def _book_key(order: Order) -> tuple[str, str]:
    return order.participant.lower(), order.order_id
