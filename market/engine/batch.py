"""Batched order entry: many orders of one participant, one signed request, one commit.

:func:`submit_orders` places each order exactly as
:meth:`~market.engine.engine.Engine.submit_order` would (the same validation,
idempotency and messages) and answers each on its own: a rejected order does
not stop the others. It holds the engine's lock for the whole batch and opens a
:meth:`~market.engine.journal.Journal.group`, so the accepted orders are
journaled in one transaction: after a crash either all of them are on disk or
none is (and none was acknowledged). Every entry carries the request's nonce
tag, as a single order's entry does, so the nonce is kept across a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

from gridex.v1 import market_pb2

from market.engine import _convert
from market.engine._status import status_of
from market.engine.engine import Accepted, Engine
from market.errors import JournalError, MarketError, RequestError
from market.orders import Order

__all__ = ["MAX_BATCH_ORDERS", "check_size", "order_of", "submit_orders"]

#: Most orders in one SubmitOrders request.
MAX_BATCH_ORDERS = 1000

OrderFields = market_pb2.SubmitOrderRequest | market_pb2.SubmitOrdersRequest.Entry


def order_of(participant: str, fields: OrderFields) -> Order:
    """The domain order of a request's fields (``participant`` already normalised).

    Raises:
        RequestError: ``side`` is unset or unknown.
    """
    side = _convert.SIDE_FROM_PB.get(fields.side)
    if side is None:
        raise RequestError(f"side: must be SIDE_BUY or SIDE_SELL, got {fields.side}")
    return Order(
        order_id=fields.client_order_id,
        participant=participant,
        side=side,
        interval=fields.interval,
        quantity_wh=fields.quantity_wh,
        limit_price=fields.limit_price,
    )


def check_size(count: int, limit: int = MAX_BATCH_ORDERS) -> None:
    """Raise unless a batch holds 1 to ``limit`` orders.

    Raises:
        RequestError: it holds none or more than ``limit``.
    """
    if not 1 <= count <= limit:
        raise RequestError(
            f"orders: must hold 1 to {limit} orders, got {count} (split larger batches)"
        )


def submit_orders(
    engine: Engine,
    participant: str,
    entries: Sequence[OrderFields],
    *,
    nonce: str | None = None,
    limit: int = MAX_BATCH_ORDERS,
) -> Accepted[list[market_pb2.SubmitOrderResult]]:
    """Place every order of a batch; one result per entry, in order.

    The future resolves once every accepted order (and, for re-sent ones,
    everything before them) is on disk.

    Raises:
        RequestError: the batch holds no orders or more than ``limit``.
        JournalError: the journal failed (nothing of the batch is acknowledged).
    """
    check_size(len(entries), limit)
    core = engine.core
    results: list[market_pb2.SubmitOrderResult] = []
    with core.lock, core.journal.group():
        for entry in entries:
            try:
                accepted = engine.submit_order(order_of(participant, entry), nonce=nonce)
            except JournalError:
                raise
            except MarketError as exc:
                mapped = status_of(exc)
                if mapped is None:  # a MarketError missing from the status table: a bug
                    raise
                code, message = mapped
                results.append(market_pb2.SubmitOrderResult(code=code.value[0], message=message))
                continue
            results.append(market_pb2.SubmitOrderResult(order=accepted.value))
        last_seq = core.journal.last_seq
    return Accepted(results, core.journal.when_durable(last_seq))
