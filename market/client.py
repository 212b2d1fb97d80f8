"""Python clients of the gridex engine, with request signing built in.

Example (a trader)::

    from market.client import TraderClient

    with TraderClient("127.0.0.1:50051", key_file="trader.key") as trader:
        interval = trader.market_info().first_open_interval
        order = trader.submit_order("o-1", "sell", interval=interval,
                                    quantity_wh=1500, limit_price=120_000)
        results = trader.submit_orders([
            BatchOrder("o-2", "buy", interval=interval, quantity_wh=500, limit_price=90_000),
            BatchOrder("o-3", "sell", interval=interval + 1, quantity_wh=800,
                       limit_price=110_000),
        ])                                  # one signed request, one result per order
        for event in trader.events(after_sequence=0):
            ...

Every call is signed as ``docs/signing.md`` says, over exactly the bytes
sent, for one engine: ``engine_id`` (``gridex serve --engine-id``, by
default the engine's feeder name). Without it, the client asks the engine
once with ``GetMarketInfo``, the one call an engine accepts signed for any
engine (engine id ``*``), before its other signed calls. Calls have a
deadline (``timeout_s``); state-changing calls that fail with UNAVAILABLE
or DEADLINE_EXCEEDED are retried with a fresh signature, which is safe
because order entry is idempotent on the client order id.
Errors surface as :class:`grpc.RpcError` with the engine's status code and a
message naming the field and the rule.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf.message import Message
from gridex.keys import load_signer
from gridex.v1 import market_pb2, meter_pb2, operator_pb2
from gridex.v1 import types_pb2 as pb

from market.engine import _convert
from market.engine.signing import ANY_ENGINE, DISCOVERY_METHOD, Signer
from market.flex import FlexOrder

__all__ = [
    "BatchOrder",
    "EngineClient",
    "GatewayClient",
    "OperatorClient",
    "TraderClient",
    "status_code",
]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_MARKET = "/gridex.v1.MarketService/"
_OPERATOR = "/gridex.v1.OperatorService/"
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_SIDES = {"buy": pb.SIDE_BUY, "sell": pb.SIDE_SELL}


class BatchOrder(NamedTuple):
    """One order of :meth:`TraderClient.submit_orders` (the fields of ``submit_order``)."""

    client_order_id: str
    side: str
    interval: int
    quantity_wh: int
    limit_price: int


def status_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    """The status code of a failed call (None if the error carries none)."""
    code: Any = getattr(exc, "code", None)
    return code() if callable(code) else None


def _channel(target: str, tls_root: bytes | None, max_message_bytes: int) -> grpc.Channel:
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if tls_root is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(tls_root), options=options)


class EngineClient:
    """A signed connection to the engine.

    Args:
        target: ``host:port`` of the engine.
        key: the signer's private key (hex or 32 bytes) or a :class:`Signer`.
        key_file: instead of ``key``, a key file as every gridex tool reads it
            (:mod:`gridex.keys`: 0x-hex with ``#`` comments, mode 0600, or a
            keystore with ``$GRIDEX_KEY_PASSWORD``).
        tls_root: PEM root certificate(s) to verify the engine's TLS
            certificate (None: plaintext).
        timeout_s: deadline of each call.
        retries: extra attempts of a state-changing call after UNAVAILABLE or
            DEADLINE_EXCEEDED.
        max_message_bytes: largest message sent or received.
        engine_id: the engine's id, which every signature names (None: ask
            the engine with GetMarketInfo, signed for engine ``*``, first).
        wait_for_ready: a call waits (up to its deadline) for an engine that is
            not up yet instead of failing at once with UNAVAILABLE (what the
            ``gridex`` commands do, so they may follow ``gridex serve &``).

    Raises:
        ValueError: neither or both of ``key`` and ``key_file``, or a malformed key.
        gridex.keys.KeyFileError: ``key_file`` is unusable (a ValueError too).
    """

    def __init__(
        self,
        target: str,
        key: str | bytes | Signer | None = None,
        *,
        key_file: str | os.PathLike[str] | None = None,
        tls_root: bytes | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        max_message_bytes: int = 16 * 1024 * 1024,
        engine_id: str | None = None,
        wait_for_ready: bool = False,
    ) -> None:
        self.wait_for_ready = wait_for_ready
        if (key is None) == (key_file is None):
            raise ValueError("key, key_file: give exactly one")
        if key_file is not None:
            self.signer = load_signer(key_file)
        else:
            assert key is not None
            self.signer = key if isinstance(key, Signer) else Signer(key)
        self.timeout_s = timeout_s
        self.retries = retries
        self._channel = _channel(target, tls_root, max_message_bytes)
        self._engine_id = engine_id

    @property
    def engine_id(self) -> str:
        """The engine's id, asked for once with GetMarketInfo if not given.

        Raises:
            grpc.RpcError: the engine could not be asked.
            ValueError: this engine offers no GetMarketInfo; pass ``engine_id``.
        """
        if self._engine_id is None:
            self._engine_id = self._ask_engine_id()
        return self._engine_id

    def _ask_engine_id(self) -> str:
        request_type = getattr(market_pb2, "GetMarketInfoRequest", None)
        response_type = getattr(market_pb2, "GetMarketInfoResponse", None)
        if request_type is None or response_type is None:
            raise ValueError(
                "engine_id: pass the engine's id (gridex serve --engine-id; by default the "
                "feeder's name): this version has no GetMarketInfo to ask it"
            )
        stub: Callable[..., Any] = self._channel.unary_unary(
            DISCOVERY_METHOD,
            request_serializer=None,
            response_deserializer=response_type.FromString,
        )
        raw = request_type().SerializeToString()
        metadata = self.signer.request_metadata(DISCOVERY_METHOD, raw, engine_id=ANY_ENGINE)
        info = stub(
            raw, timeout=self.timeout_s, metadata=metadata, wait_for_ready=self.wait_for_ready
        )
        return str(info.engine_id)

    def sign(self, method: str, raw: bytes) -> Sequence[tuple[str, str]]:
        """Metadata signing one call of ``method`` with request bytes ``raw`` for this engine."""
        if self._engine_id is None and method == DISCOVERY_METHOD:
            return self.signer.request_metadata(method, raw, engine_id=ANY_ENGINE)
        return self.signer.request_metadata(method, raw, engine_id=self.engine_id)

    @property
    def address(self) -> str:
        """The signer's lower-case address."""
        return self.signer.address

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        retry: bool = False,
        timeout_s: float | None = None,
    ) -> M:
        """Sign and send one unary call; retry transient failures when ``retry``.

        Raises:
            grpc.RpcError: the engine's answer was an error.
        """
        raw = request.SerializeToString()
        stub: Callable[..., Any] = self._channel.unary_unary(
            method, request_serializer=None, response_deserializer=response_type.FromString
        )
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                result: M = stub(
                    raw,
                    timeout=timeout_s or self.timeout_s,
                    metadata=self.sign(method, raw),
                    wait_for_ready=self.wait_for_ready,
                )
                return result
            except grpc.RpcError as exc:
                code = status_code(exc)
                if code not in _RETRYABLE or attempt == attempts - 1:
                    raise
                logger.info("%s failed with %s; retrying", method, code)
                time.sleep(min(0.1 * 2**attempt, 2.0))
        raise AssertionError("unreachable")  # pragma: no cover


class TraderClient(EngineClient):
    """Order entry and market data for one participant (the signer)."""

    def submit_order(
        self,
        client_order_id: str,
        side: str,
        *,
        interval: int,
        quantity_wh: int,
        limit_price: int,
    ) -> pb.OrderState:
        """Place a limit order; ``side`` is ``"buy"`` or ``"sell"``. Safe to retry.

        Raises:
            ValueError: ``side`` is neither (nothing is sent).
            grpc.RpcError: the engine refused the order.
        """
        if side not in _SIDES:
            raise ValueError(f"side: must be 'buy' or 'sell', got {side!r}")
        request = market_pb2.SubmitOrderRequest(
            participant=self.address,
            client_order_id=client_order_id,
            side=_SIDES[side],
            interval=interval,
            quantity_wh=quantity_wh,
            limit_price=limit_price,
        )
        response = self.call(
            _MARKET + "SubmitOrder", request, market_pb2.SubmitOrderResponse, retry=True
        )
        return response.order

    def submit_orders(self, orders: Sequence[BatchOrder]) -> list[market_pb2.SubmitOrderResult]:
        """Place many limit orders in one signed request. Safe to retry.

        Each order is validated and answered on its own: result ``i`` belongs
        to ``orders[i]``; ``code`` 0 means accepted (``order`` holds it),
        otherwise ``code`` is the gRPC status code ``submit_order`` would have
        raised and ``message`` names the field and the rule. At most 1,000
        orders per call (the engine's limit); each costs one request of the
        signer's rate limit.

        Raises:
            ValueError: an order's ``side`` is neither ``"buy"`` nor ``"sell"`` (nothing is sent).
            grpc.RpcError: the engine refused the whole request (signature, size, rate).
        """
        entries = []
        for i, o in enumerate(orders):
            if o.side not in _SIDES:
                raise ValueError(f"orders[{i}].side: must be 'buy' or 'sell', got {o.side!r}")
            entries.append(
                market_pb2.SubmitOrdersRequest.Entry(
                    client_order_id=o.client_order_id,
                    side=_SIDES[o.side],
                    interval=o.interval,
                    quantity_wh=o.quantity_wh,
                    limit_price=o.limit_price,
                )
            )
        request = market_pb2.SubmitOrdersRequest(participant=self.address, orders=entries)
        response = self.call(
            _MARKET + "SubmitOrders", request, market_pb2.SubmitOrdersResponse, retry=True
        )
        return list(response.results)

    def cancel_order(self, client_order_id: str) -> pb.OrderState:
        """Cancel an open order."""
        request = market_pb2.CancelOrderRequest(
            participant=self.address, client_order_id=client_order_id
        )
        response = self.call(
            _MARKET + "CancelOrder", request, market_pb2.CancelOrderResponse, retry=True
        )
        return response.order

    def get_order(self, client_order_id: str) -> pb.OrderState:
        """The current state of one of the signer's orders."""
        request = market_pb2.GetOrderRequest(
            participant=self.address, client_order_id=client_order_id
        )
        return self.call(_MARKET + "GetOrder", request, market_pb2.GetOrderResponse).order

    def list_orders(self, *, interval: int | None = None) -> list[pb.OrderState]:
        """Every order of the signer (optionally of one interval), oldest first."""
        out: list[pb.OrderState] = []
        token = ""
        while True:
            request = market_pb2.ListOrdersRequest(
                participant=self.address, page_size=1000, page_token=token
            )
            if interval is not None:
                request.interval = interval
            page = self.call(_MARKET + "ListOrders", request, market_pb2.ListOrdersResponse)
            out.extend(page.orders)
            token = page.next_page_token
            if not token:
                return out

    def submit_flex_order(self, order: FlexOrder) -> market_pb2.FlexOrderState:
        """Place a flexibility order (:mod:`market.flex`) as the signer. Safe to retry.

        ``order.participant`` is ignored: the signer places it for itself.

        Raises:
            grpc.RpcError: the engine refused it (INVALID_ARGUMENT names the field).
        """
        request = market_pb2.SubmitFlexOrderRequest(
            participant=self.address, order=_convert.flex_to_pb(order)
        )
        response = self.call(
            _MARKET + "SubmitFlexOrder", request, market_pb2.SubmitFlexOrderResponse, retry=True
        )
        return response.order

    def amend_flex_order(self, order: FlexOrder) -> market_pb2.FlexOrderState:
        """Replace the signer's live flexibility order ``order.order_id`` by ``order``.

        Not retried: a retry would be a second amendment.
        """
        request = market_pb2.AmendFlexOrderRequest(
            participant=self.address, order=_convert.flex_to_pb(order)
        )
        return self.call(
            _MARKET + "AmendFlexOrder", request, market_pb2.AmendFlexOrderResponse
        ).order

    def cancel_flex_order(self, order_id: str) -> market_pb2.FlexOrderState:
        """Withdraw one of the signer's flexibility orders from the next roll on."""
        request = market_pb2.CancelFlexOrderRequest(
            participant=self.address, client_order_id=order_id
        )
        return self.call(
            _MARKET + "CancelFlexOrder", request, market_pb2.CancelFlexOrderResponse, retry=True
        ).order

    def flex_schedule(self, order_id: str) -> market_pb2.GetFlexScheduleResponse:
        """A flexibility order's state and its schedule from the latest roll."""
        request = market_pb2.GetFlexScheduleRequest(
            participant=self.address, client_order_id=order_id
        )
        return self.call(_MARKET + "GetFlexSchedule", request, market_pb2.GetFlexScheduleResponse)

    def order_book(self, interval: int) -> market_pb2.GetOrderBookResponse:
        """Price levels of ``interval``."""
        request = market_pb2.GetOrderBookRequest(interval=interval)
        return self.call(_MARKET + "GetOrderBook", request, market_pb2.GetOrderBookResponse)

    def account(
        self, *, from_interval: int | None = None, to_interval: int | None = None
    ) -> market_pb2.GetAccountResponse:
        """The signer's positions, fills, payments and settlements."""
        request = market_pb2.GetAccountRequest(participant=self.address)
        if from_interval is not None:
            request.from_interval = from_interval
        if to_interval is not None:
            request.to_interval = to_interval
        return self.call(_MARKET + "GetAccount", request, market_pb2.GetAccountResponse)

    def clearing_result(self, interval: int) -> pb.ClearingResult:
        """The clearing result of ``interval`` (NOT_FOUND until cleared)."""
        request = market_pb2.GetClearingResultRequest(interval=interval)
        response = self.call(
            _MARKET + "GetClearingResult", request, market_pb2.GetClearingResultResponse
        )
        return response.result

    def market_info(self, *, open_interval_count: int = 0) -> market_pb2.GetMarketInfoResponse:
        """The engine's clock, open intervals and their gates, rules, tariffs and buses."""
        request = market_pb2.GetMarketInfoRequest(open_interval_count=open_interval_count)
        return self.call(_MARKET + "GetMarketInfo", request, market_pb2.GetMarketInfoResponse)

    def events(
        self, after_sequence: int = 0, *, reconnect: bool = True
    ) -> Iterator[market_pb2.MarketEvent]:
        """Market events after ``after_sequence``, live, resuming after a broken stream.

        The iterator never ends on its own; break out of it (or close the
        client) to stop.
        """
        method = _MARKET + "StreamMarketEvents"
        stub: Callable[..., Any] = self._channel.unary_stream(
            method, request_serializer=None, response_deserializer=market_pb2.MarketEvent.FromString
        )
        last = after_sequence
        while True:
            raw = market_pb2.StreamMarketEventsRequest(after_sequence=last).SerializeToString()
            try:
                for event in stub(raw, metadata=self.sign(method, raw)):
                    last = event.sequence
                    yield event
            except grpc.RpcError as exc:
                code = status_code(exc)
                if not reconnect or code not in _RETRYABLE:
                    raise
                logger.info("event stream broke (%s); resuming after %d", code, last)
                time.sleep(0.5)


class OperatorClient(EngineClient):
    """The grid operator's calls (the signer must be an operator address)."""

    def register_participant(self, address: str, bus: int) -> pb.Participant:
        """Register a participant at a connectable bus (idempotent)."""
        request = operator_pb2.RegisterParticipantRequest(address=address, bus=bus)
        response = self.call(
            _OPERATOR + "RegisterParticipant",
            request,
            operator_pb2.RegisterParticipantResponse,
            retry=True,
        )
        return response.participant

    def register_gateway(
        self, gateway: str, meter_id: str, participant: str
    ) -> operator_pb2.RegisterGatewayResponse:
        """Register a gateway key for a meter of a participant (idempotent)."""
        request = operator_pb2.RegisterGatewayRequest(
            gateway=gateway, meter_id=meter_id, participant=participant
        )
        return self.call(
            _OPERATOR + "RegisterGateway",
            request,
            operator_pb2.RegisterGatewayResponse,
            retry=True,
        )

    def trigger_clearing(
        self, interval: int, *, mechanism: str = "", rerun: bool = False, timeout_s: float = 120.0
    ) -> pb.ClearingResult:
        """Clear ``interval`` now (or again) and return the result."""
        request = operator_pb2.TriggerClearingRequest(
            interval=interval, mechanism=mechanism, rerun=rerun
        )
        response = self.call(
            _OPERATOR + "TriggerClearing",
            request,
            operator_pb2.TriggerClearingResponse,
            timeout_s=timeout_s,
        )
        return response.result

    def advance_clock(self, to_ms: int, *, timeout_s: float = 300.0) -> int:
        """Advance a simulated clock; return the engine time afterwards."""
        request = operator_pb2.AdvanceClockRequest(to_ms=to_ms)
        response = self.call(
            _OPERATOR + "AdvanceClock",
            request,
            operator_pb2.AdvanceClockResponse,
            timeout_s=timeout_s,
        )
        return response.now_ms

    def engine_status(self) -> operator_pb2.GetEngineStatusResponse:
        """Clock, journal, counts, unsettled intervals and the state digest."""
        return self.call(
            _OPERATOR + "GetEngineStatus",
            operator_pb2.GetEngineStatusRequest(),
            operator_pb2.GetEngineStatusResponse,
        )

    def grid_status(self) -> operator_pb2.GetGridStatusResponse:
        """The feeder and the AC check of the latest clearing."""
        return self.call(
            _OPERATOR + "GetGridStatus",
            operator_pb2.GetGridStatusRequest(),
            operator_pb2.GetGridStatusResponse,
        )


class GatewayClient(EngineClient):
    """A minimal gateway uplink: signs reading batches and streams them (tests, benchmarks).

    Home gateways use :mod:`meter_adapter`'s uplink, which adds the on-disk buffer.
    """

    def signed_batch(
        self, meter_id: str, batch_id: int, readings: Sequence[meter_pb2.Reading]
    ) -> meter_pb2.SignedReadingBatch:
        """One batch, serialized and signed by this client's key for this client's engine."""
        batch = meter_pb2.ReadingBatch(
            gateway=self.address, meter_id=meter_id, batch_id=batch_id, readings=readings
        ).SerializeToString()
        signature = self.signer.sign_batch(batch, engine_id=self.engine_id)
        return meter_pb2.SignedReadingBatch(batch=batch, signature=signature)

    def stream(
        self, batches: Iterator[meter_pb2.SignedReadingBatch], *, timeout_s: float | None = None
    ) -> Iterator[meter_pb2.BatchAck]:
        """Send ``batches`` on one StreamReadings call; yield one ack per batch."""
        stub: Callable[..., Any] = self._channel.stream_stream(
            "/gridex.v1.MeterService/StreamReadings",
            request_serializer=meter_pb2.SignedReadingBatch.SerializeToString,
            response_deserializer=meter_pb2.BatchAck.FromString,
        )
        yield from stub(batches, timeout=timeout_s)
