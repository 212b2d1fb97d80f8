"""Order validation that returns every problem at once.

:func:`validate_orders` returns a list of :class:`OrderProblem` (empty when
the book is valid); :func:`assert_valid_orders` raises one
:class:`~market.errors.OrderValidationError` carrying all of them. Each
problem names the order, the field and the rule, so the same mistake always
gives the same message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from grid import Feeder
from market.config import MarketConfig
from market.errors import OrderValidationError
from market.orders import ADDRESS_RE, Order, Participant

__all__ = ["OrderProblem", "assert_valid_orders", "validate_order", "validate_orders"]

#: Largest quantity one order may carry: 1 GWh, far above any feeder interval.
MAX_QUANTITY_WH = 10**9


@dataclass(frozen=True, slots=True)
class OrderProblem:
    """One broken rule: which order, which field, which rule."""

    order_id: str
    field: str
    rule: str

    def __str__(self) -> str:
        return f"order {self.order_id!r}: {self.field}: {self.rule}"


def validate_order(
    order: Order,
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None = None,
) -> list[OrderProblem]:
    """Every rule ``order`` breaks on its own (no book-level checks)."""
    out: list[OrderProblem] = []

    def bad(field: str, rule: str) -> None:
        out.append(OrderProblem(order.order_id, field, rule))

    if not order.order_id or len(order.order_id) > 64 or not order.order_id.isprintable():
        bad("order_id", "must be 1 to 64 printable characters")
    if not ADDRESS_RE.match(order.participant):
        bad("participant", "must be 0x followed by 40 hexadecimal digits")
    elif order.participant.lower() not in participants:
        bad("participant", "is not a registered participant")
    else:
        bus = participants[order.participant.lower()].bus
        try:
            connectable = feeder.bus(bus).connectable
        except KeyError:
            bad("participant", f"is registered at bus {bus}, which the feeder does not have")
        else:
            if not connectable:
                bad(
                    "participant", f"is registered at bus {bus}, where participants may not connect"
                )
    if order.quantity_wh <= 0:
        bad("quantity_wh", f"must be positive, got {order.quantity_wh}")
    elif order.quantity_wh > MAX_QUANTITY_WH:
        bad("quantity_wh", f"must be at most {MAX_QUANTITY_WH}, got {order.quantity_wh}")
    if not config.price_min <= order.limit_price <= config.price_max:
        bad(
            "limit_price",
            f"must be within the price band [{config.price_min}, {config.price_max}], "
            f"got {order.limit_price}",
        )
    if interval is not None and order.interval != interval:
        bad("interval", f"must be {interval}, got {order.interval}")
    return out


def validate_orders(
    orders: Iterable[Order],
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None = None,
) -> list[OrderProblem]:
    """Every rule the book breaks: per-order rules plus duplicate (participant, order id)."""
    out: list[OrderProblem] = []
    seen: set[tuple[str, str]] = set()
    for order in orders:
        out.extend(
            validate_order(
                order, config=config, participants=participants, feeder=feeder, interval=interval
            )
        )
        key = (order.participant.lower(), order.order_id)
        if key in seen:
            out.append(
                OrderProblem(order.order_id, "order_id", "is used twice by the same participant")
            )
        seen.add(key)
    return out


def assert_valid_orders(
    orders: Iterable[Order],
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None = None,
) -> None:
    """Raise :class:`OrderValidationError` with every problem, if there is any."""
    problems = validate_orders(
        orders, config=config, participants=participants, feeder=feeder, interval=interval
    )
    if problems:
        raise OrderValidationError(problems)
