"""The gRPC servicers of ``gridex.v1`` over one :class:`~market.engine.engine.Engine`.

Requests arrive authenticated and parsed (:mod:`market.engine.auth`). Each
handler turns proto fields into domain values, calls the engine, and — for
anything that changes state — awaits the journal's durability future before
it answers (with :func:`~market.engine.journal.durable`: one loop wake-up per
commit, however many handlers wait for it). Domain errors become status codes through
:mod:`market.engine._status`; anything else is a bug, logged and answered
with INTERNAL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from gridex.v1 import (
    market_pb2,
    market_pb2_grpc,
    meter_pb2,
    meter_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
)

from market.engine import _convert, queries
from market.engine._status import status_of
from market.engine.auth import CALLER, RateLimiter
from market.engine.batch import MAX_BATCH_ORDERS, order_of, submit_orders
from market.engine.engine import Engine
from market.engine.events import redacted
from market.engine.ingest import ingest_batch
from market.engine.journal import durable
from market.errors import OutOfRangeError, RequestError
from market.orders import normalise_address

__all__ = ["MarketServicer", "MeterServicer", "OperatorServicer"]

logger = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R")

#: How long a stream waits for a new event before checking that its client is still there.
_STREAM_POLL_S = 1.0


async def _abort(context: Ctx, exc: BaseException) -> None:
    mapped = status_of(exc)
    if mapped is None:
        logger.error("unexpected error in a handler", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    else:
        await context.abort(*mapped)


def _unary(
    fn: Callable[[Any, Any, Ctx], Awaitable[R]],
) -> Callable[[Any, Any, Ctx], Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: Ctx) -> R:
        try:
            return await fn(self, request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc)
            raise AssertionError("unreachable: abort raises") from exc

    return wrapper


def _nonce() -> str | None:
    caller = CALLER.get(None)
    return None if caller is None else caller.nonce_tag


def _participant(value: str) -> str:
    try:
        return normalise_address(value)
    except ValueError:
        raise RequestError(
            f"participant: must be 0x followed by 40 hex digits, got {value!r}"
        ) from None


class MarketServicer(market_pb2_grpc.MarketServiceServicer):
    """Order entry, queries and the event stream.

    Args:
        engine: the engine served.
        max_batch_orders: most orders in one SubmitOrders request.
    """

    def __init__(self, engine: Engine, *, max_batch_orders: int = MAX_BATCH_ORDERS) -> None:
        self._engine = engine
        self._max_batch_orders = max_batch_orders

    @_unary
    async def SubmitOrder(  # noqa: N802 - gRPC method name
        self, request: market_pb2.SubmitOrderRequest, context: Ctx
    ) -> market_pb2.SubmitOrderResponse:
        order = order_of(_participant(request.participant), request)
        accepted = self._engine.submit_order(order, nonce=_nonce())
        await durable(accepted.durable)
        return market_pb2.SubmitOrderResponse(order=accepted.value)

    @_unary
    async def SubmitOrders(  # noqa: N802 - gRPC method name
        self, request: market_pb2.SubmitOrdersRequest, context: Ctx
    ) -> market_pb2.SubmitOrdersResponse:
        accepted = submit_orders(
            self._engine,
            _participant(request.participant),
            request.orders,
            nonce=_nonce(),
            limit=self._max_batch_orders,
        )
        await durable(accepted.durable)
        return market_pb2.SubmitOrdersResponse(results=accepted.value)

    @_unary
    async def CancelOrder(  # noqa: N802 - gRPC method name
        self, request: market_pb2.CancelOrderRequest, context: Ctx
    ) -> market_pb2.CancelOrderResponse:
        accepted = self._engine.cancel_order(
            _participant(request.participant), request.client_order_id, nonce=_nonce()
        )
        await durable(accepted.durable)
        return market_pb2.CancelOrderResponse(order=accepted.value)

    @_unary
    async def GetOrder(  # noqa: N802 - gRPC method name
        self, request: market_pb2.GetOrderRequest, context: Ctx
    ) -> market_pb2.GetOrderResponse:
        order = self._engine.get_order(_participant(request.participant), request.client_order_id)
        return market_pb2.GetOrderResponse(order=order)

    @_unary
    async def ListOrders(  # noqa: N802 - gRPC method name
        self, request: market_pb2.ListOrdersRequest, context: Ctx
    ) -> market_pb2.ListOrdersResponse:
        orders, token = self._engine.list_orders(
            _participant(request.participant),
            interval=request.interval if request.HasField("interval") else None,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return market_pb2.ListOrdersResponse(orders=orders, next_page_token=token)

    @_unary
    async def GetOrderBook(  # noqa: N802 - gRPC method name
        self, request: market_pb2.GetOrderBookRequest, context: Ctx
    ) -> market_pb2.GetOrderBookResponse:
        return queries.order_book(self._engine, request.interval)

    @_unary
    async def GetAccount(  # noqa: N802 - gRPC method name
        self, request: market_pb2.GetAccountRequest, context: Ctx
    ) -> market_pb2.GetAccountResponse:
        return queries.account(
            self._engine,
            _participant(request.participant),
            request.from_interval if request.HasField("from_interval") else None,
            request.to_interval if request.HasField("to_interval") else None,
        )

    @_unary
    async def GetClearingResult(  # noqa: N802 - gRPC method name
        self, request: market_pb2.GetClearingResultRequest, context: Ctx
    ) -> market_pb2.GetClearingResultResponse:
        result = queries.clearing_result(self._engine, request.interval)
        return market_pb2.GetClearingResultResponse(result=result)

    async def StreamMarketEvents(  # noqa: N802 - gRPC method name
        self, request: market_pb2.StreamMarketEventsRequest, context: Ctx
    ) -> AsyncIterator[market_pb2.MarketEvent]:
        """Stored events after ``after_sequence``, then live ones, until the client leaves.

        A participant sees its own orders' events in full and other
        participants' as the anonymous book shows them (:func:`events.redacted`);
        an operator sees everything.
        """
        hub = self._engine.core.hub
        caller = CALLER.get(None)
        viewer = None if caller is None or caller.is_operator else caller.address
        after = request.after_sequence
        if after > hub.published:
            await _abort(
                context,
                OutOfRangeError(
                    f"after_sequence: {after} is beyond the latest event {hub.published} "
                    "(a sequence from another engine or journal?)"
                ),
            )
        while True:
            batch = hub.after(after)
            if not batch:
                await hub.wait(after, _STREAM_POLL_S)
                continue
            for event in batch:
                yield event if viewer is None else redacted(event, viewer)
            after = batch[-1].sequence

    @_unary
    async def SubmitFlexOrder(  # noqa: N802 - gRPC method name
        self, request: market_pb2.SubmitFlexOrderRequest, context: Ctx
    ) -> market_pb2.SubmitFlexOrderResponse:
        order = _convert.flex_from_pb(_participant(request.participant), request.order)
        accepted = self._engine.submit_flex_order(order, nonce=_nonce())
        await durable(accepted.durable)
        return market_pb2.SubmitFlexOrderResponse(order=accepted.value)

    @_unary
    async def AmendFlexOrder(  # noqa: N802 - gRPC method name
        self, request: market_pb2.AmendFlexOrderRequest, context: Ctx
    ) -> market_pb2.AmendFlexOrderResponse:
        order = _convert.flex_from_pb(_participant(request.participant), request.order)
        accepted = self._engine.amend_flex_order(order, nonce=_nonce())
        await durable(accepted.durable)
        return market_pb2.AmendFlexOrderResponse(order=accepted.value)

    @_unary
    async def CancelFlexOrder(  # noqa: N802 - gRPC method name
        self, request: market_pb2.CancelFlexOrderRequest, context: Ctx
    ) -> market_pb2.CancelFlexOrderResponse:
        accepted = self._engine.cancel_flex_order(
            _participant(request.participant), request.client_order_id, nonce=_nonce()
        )
        await durable(accepted.durable)
        return market_pb2.CancelFlexOrderResponse(order=accepted.value)

    @_unary
    async def GetFlexSchedule(  # noqa: N802 - gRPC method name
        self, request: market_pb2.GetFlexScheduleRequest, context: Ctx
    ) -> market_pb2.GetFlexScheduleResponse:
        state, schedule = self._engine.flex_schedule(
            _participant(request.participant), request.client_order_id
        )
        return market_pb2.GetFlexScheduleResponse(order=state, schedule=schedule)

    @_unary
    async def GetMarketInfo(  # noqa: N802 - gRPC method name
        self, request: market_pb2.GetMarketInfoRequest, context: Ctx
    ) -> market_pb2.GetMarketInfoResponse:
        return queries.market_info(self._engine, request.open_interval_count)


class MeterServicer(meter_pb2_grpc.MeterServiceServicer):
    """Signed reading batches in, one acknowledgement per batch out."""

    def __init__(self, engine: Engine, *, batch_rate_per_s: float | None = None) -> None:
        self._engine = engine
        self._rate = RateLimiter(batch_rate_per_s, what="batches")

    async def StreamReadings(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[meter_pb2.SignedReadingBatch], context: Ctx
    ) -> AsyncIterator[meter_pb2.BatchAck]:
        """Acknowledge each batch once it is durable, in arrival order.

        Batches are applied as they arrive while earlier ones wait for their
        commit, so a stream keeps the journal's group commit busy.
        """
        pending: asyncio.Queue[asyncio.Future[meter_pb2.BatchAck] | None] = asyncio.Queue(64)

        async def read() -> None:
            try:
                async for signed in request_iterator:
                    accepted = ingest_batch(
                        self._engine, signed.batch, signed.signature, rate=self._rate
                    )
                    ack = accepted.value
                    done = durable(accepted.durable)
                    await pending.put(asyncio.ensure_future(_after(done, ack)))
            finally:
                await pending.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await pending.get()) is not None:
                yield await item
            await reader  # re-raise a reader failure (e.g. the client cancelled)
        finally:
            reader.cancel()


async def _after(done: Awaitable[Any], ack: meter_pb2.BatchAck) -> meter_pb2.BatchAck:
    await done
    return ack


class OperatorServicer(operator_pb2_grpc.OperatorServiceServicer):
    """Registration, clearing control, the simulated clock and status."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_unary
    async def RegisterParticipant(  # noqa: N802 - gRPC method name
        self, request: operator_pb2.RegisterParticipantRequest, context: Ctx
    ) -> operator_pb2.RegisterParticipantResponse:
        accepted = self._engine.register_participant(request.address, request.bus, nonce=_nonce())
        await durable(accepted.durable)
        return operator_pb2.RegisterParticipantResponse(participant=accepted.value)

    @_unary
    async def RegisterGateway(  # noqa: N802 - gRPC method name
        self, request: operator_pb2.RegisterGatewayRequest, context: Ctx
    ) -> operator_pb2.RegisterGatewayResponse:
        accepted = self._engine.register_gateway(
            request.gateway, request.meter_id, request.participant, nonce=_nonce()
        )
        await durable(accepted.durable)
        gateway, meter_id, participant = accepted.value
        return operator_pb2.RegisterGatewayResponse(
            gateway=gateway, meter_id=meter_id, participant=participant
        )

    @_unary
    async def TriggerClearing(  # noqa: N802 - gRPC method name
        self, request: operator_pb2.TriggerClearingRequest, context: Ctx
    ) -> operator_pb2.TriggerClearingResponse:
        engine = self._engine
        record = await asyncio.to_thread(
            engine.trigger_clearing,
            request.interval,
            mechanism=request.mechanism or None,
            rerun=request.rerun,
        )
        with engine.core.lock:
            result = _convert.clearing_result(
                request.interval, record, engine.state.participants, True
            )
        return operator_pb2.TriggerClearingResponse(result=result)

    @_unary
    async def AdvanceClock(  # noqa: N802 - gRPC method name
        self, request: operator_pb2.AdvanceClockRequest, context: Ctx
    ) -> operator_pb2.AdvanceClockResponse:
        now = await asyncio.to_thread(self._engine.advance_to, request.to_ms)
        return operator_pb2.AdvanceClockResponse(now_ms=now)

    @_unary
    async def GetEngineStatus(  # noqa: N802 - gRPC method name
        self, request: operator_pb2.GetEngineStatusRequest, context: Ctx
    ) -> operator_pb2.GetEngineStatusResponse:
        return queries.engine_status(self._engine)

    @_unary
    async def GetGridStatus(  # noqa: N802 - gRPC method name
        self, request: operator_pb2.GetGridStatusRequest, context: Ctx
    ) -> operator_pb2.GetGridStatusResponse:
        return queries.grid_status(self._engine)
