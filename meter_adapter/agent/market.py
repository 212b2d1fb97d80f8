"""The agent's side of ``MarketService``: signed calls and the market-event stream.

Every call is signed as ``docs/signing.md`` says (:mod:`gridex.signing`): the
request is serialized once, those exact bytes are hashed, signed and sent (the
method is called with an identity serializer), and every call, retries
included, carries a fresh nonce and the wall-clock time, which the engine
checks against its wall clock even when its market runs on a simulated clock.

:class:`MarketEvents` follows ``StreamMarketEvents`` and keeps what a gateway
needs to know about the engine's time, from the engine itself:

- ``now_ms``: the latest event's time on the engine's clock, so a gateway next
  to an engine on a simulated clock can follow that clock;
- ``gate_closed``: the latest interval whose gate closed — the open interval
  the agent trades in is the one after it;
- ``interval_s``: the interval length, learnt from ``IntervalDelivered``
  (delivered at the interval's end, ``(k+1)·I``).

It resumes after the last sequence it saved, reconnecting with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from gridex.signing import ANY_ENGINE, DISCOVERY_METHOD, Signer
from gridex.v1 import market_pb2

from meter_adapter.agent.storage import StorageOrder
from meter_adapter.errors import MeterConfigError
from meter_adapter.uplink.backoff import Backoff, BackoffPolicy
from meter_adapter.uplink.buffer import ReadingBuffer

__all__ = ["STREAM_EVENTS", "SUBMIT_ORDER", "MarketClient", "MarketEvents"]

logger = logging.getLogger(__name__)

SUBMIT_ORDER = "/gridex.v1.MarketService/SubmitOrder"
SUBMIT_FLEX_ORDER = "/gridex.v1.MarketService/SubmitFlexOrder"
AMEND_FLEX_ORDER = "/gridex.v1.MarketService/AmendFlexOrder"
STREAM_EVENTS = "/gridex.v1.MarketService/StreamMarketEvents"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_META = ("events.sequence", "events.now_ms", "events.gate_closed", "events.interval_s")


_Message = market_pb2.SubmitFlexOrderRequest | market_pb2.AmendFlexOrderRequest
_Reply = TypeVar("_Reply", market_pb2.SubmitFlexOrderResponse, market_pb2.AmendFlexOrderResponse)


def _identity(data: bytes) -> bytes:
    return data


class MarketClient:
    """Signed ``MarketService`` calls for one participant.

    Args:
        channel: A ``grpc.aio`` channel to the engine.
        signer: The participant's key.
        timeout_s: Deadline of a unary call, s.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        signer: Signer,
        *,
        timeout_s: float = 10.0,
        engine_id: str | None = None,
    ):
        self.signer = signer
        self.timeout_s = timeout_s
        self.engine_id = engine_id
        """The engine's id every signature names (None: asked with GetMarketInfo when needed)."""
        self._channel = channel
        self._submit: grpc.aio.UnaryUnaryMultiCallable[bytes, market_pb2.SubmitOrderResponse] = (
            channel.unary_unary(SUBMIT_ORDER, _identity, market_pb2.SubmitOrderResponse.FromString)
        )
        self._events: grpc.aio.UnaryStreamMultiCallable[bytes, market_pb2.MarketEvent] = (
            channel.unary_stream(STREAM_EVENTS, _identity, market_pb2.MarketEvent.FromString)
        )

    async def submit_order(
        self, request: market_pb2.SubmitOrderRequest
    ) -> market_pb2.SubmitOrderResponse:
        """Place an order (idempotent on its ``client_order_id``).

        Raises:
            grpc.aio.AioRpcError: The engine refused it or could not be reached.
        """
        raw = request.SerializeToString()
        engine_id = await self.resolve_engine_id()
        metadata = self.signer.request_metadata(SUBMIT_ORDER, raw, engine_id=engine_id)
        return await self._submit(raw, timeout=self.timeout_s, metadata=tuple(metadata))

    async def submit_flex_order(self, order: StorageOrder) -> market_pb2.FlexOrderState:
        """Place the battery's storage order, or amend it if the engine holds another version.

        The engine answers ALREADY_EXISTS for a known id with other content
        (docs/engine.md); that is this gateway's amendment, sent as
        AmendFlexOrder. The same content again returns the original answer.

        Raises:
            grpc.aio.AioRpcError: The engine refused it or could not be reached.
        """
        flex = market_pb2.FlexOrder(
            client_order_id=order.order_id,
            storage=market_pb2.StorageFlex(
                capacity_wh=order.capacity_wh,
                soc_wh=order.soc_wh,
                min_soc_wh=order.min_soc_wh,
                max_soc_wh=order.max_soc_wh,
                max_charge_w=order.max_charge_w,
                max_discharge_w=order.max_discharge_w,
                charge_efficiency=order.charge_efficiency,
                discharge_efficiency=order.discharge_efficiency,
                end_soc_wh=order.end_soc_wh,
                cycling_price=order.cycling_price,
            ),
        )
        participant = self.signer.address
        try:
            submitted = await self._signed_call(
                SUBMIT_FLEX_ORDER,
                market_pb2.SubmitFlexOrderRequest(participant=participant, order=flex),
                market_pb2.SubmitFlexOrderResponse,
            )
            return submitted.order
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        amended = await self._signed_call(
            AMEND_FLEX_ORDER,
            market_pb2.AmendFlexOrderRequest(participant=participant, order=flex),
            market_pb2.AmendFlexOrderResponse,
        )
        return amended.order

    async def _signed_call(self, method: str, request: _Message, reply: type[_Reply]) -> _Reply:
        raw = request.SerializeToString()
        engine_id = await self.resolve_engine_id()
        metadata = self.signer.request_metadata(method, raw, engine_id=engine_id)
        call = self._channel.unary_unary(method, _identity, reply.FromString)
        response: _Reply = await call(raw, timeout=self.timeout_s, metadata=tuple(metadata))
        return response

    async def resolve_engine_id(self) -> str:
        """The engine's id: as given, or asked once with GetMarketInfo (signed for engine ``*``).

        Raises:
            grpc.aio.AioRpcError: The engine could not be asked.
            MeterConfigError: The engine offers no GetMarketInfo; pass ``--engine-id``.
        """
        if self.engine_id is not None:
            return self.engine_id
        request_type = getattr(market_pb2, "GetMarketInfoRequest", None)
        response_type = getattr(market_pb2, "GetMarketInfoResponse", None)
        if request_type is None or response_type is None:
            raise MeterConfigError(
                "--engine-id: required (the engine's id; by default its feeder's name)"
            )
        call = self._channel.unary_unary(DISCOVERY_METHOD, _identity, response_type.FromString)
        raw = request_type().SerializeToString()
        metadata = self.signer.request_metadata(DISCOVERY_METHOD, raw, engine_id=ANY_ENGINE)
        info = await call(raw, timeout=self.timeout_s, metadata=tuple(metadata))
        self.engine_id = str(info.engine_id)
        return self.engine_id

    async def stream_events(self, after_sequence: int) -> AsyncIterator[market_pb2.MarketEvent]:
        """Market events with a sequence above ``after_sequence``, stored ones then live ones.

        Raises (while iterating):
            grpc.aio.AioRpcError: The stream failed.
        """
        raw = market_pb2.StreamMarketEventsRequest(after_sequence=after_sequence)
        data = raw.SerializeToString()
        engine_id = await self.resolve_engine_id()
        metadata = self.signer.request_metadata(STREAM_EVENTS, data, engine_id=engine_id)
        async for event in self._events(data, metadata=tuple(metadata)):
            yield event


class MarketEvents:
    """Follows the engine's market events (see the module docstring).

    Args:
        client: Signed market calls.
        store: Where the progress is saved (the gateway's buffer file), or None.
        backoff: Delays between reconnects.
    """

    def __init__(
        self,
        client: MarketClient,
        *,
        store: ReadingBuffer | None = None,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._backoff = Backoff(backoff if backoff is not None else BackoffPolicy())
        self.sequence = 0
        """Sequence of the latest event processed."""
        self.now_ms: int | None = None
        """The engine's clock as of the latest event, Unix ms (None before any)."""
        self.gate_closed: int | None = None
        """The latest interval whose gate closed (None before any)."""
        self.interval_s: int | None = None
        """Interval length learnt from the events, s (None until an interval is delivered)."""
        self.changed = asyncio.Event()
        """Set whenever ``gate_closed`` moves on (the agent clears it)."""
        self._has_time = asyncio.Event()
        if store is not None:
            saved = [store.get_meta(key) for key in _META]
            sequence, now_ms, gate_closed, interval_s = (
                None if v is None else int(v) for v in saved
            )
            self.sequence = sequence or 0
            self.now_ms, self.gate_closed, self.interval_s = now_ms, gate_closed, interval_s
            if now_ms is not None:
                self._has_time.set()

    @property
    def open_interval(self) -> int | None:
        """The first interval whose gate is open, as far as the events tell."""
        return None if self.gate_closed is None else self.gate_closed + 1

    def clock(self) -> datetime:
        """The engine's time as of the latest event (a :data:`~meter_adapter.clock.Clock`).

        Raises:
            RuntimeError: No event has been seen yet (await :meth:`wait_for_time` first).
        """
        if self.now_ms is None:
            raise RuntimeError("the engine's time is not known yet: no market event seen")
        return _EPOCH + timedelta(milliseconds=self.now_ms)

    async def wait_for_time(self) -> int:
        """Wait for the first event; return the engine's time then, Unix ms."""
        await self._has_time.wait()
        assert self.now_ms is not None
        return self.now_ms

    def apply(self, event: market_pb2.MarketEvent) -> None:
        """Take one event into account (events must come in sequence order)."""
        if event.sequence <= self.sequence:
            return
        self.sequence = event.sequence
        if self.now_ms is None or event.time_ms > self.now_ms:
            self.now_ms = event.time_ms
            self._has_time.set()
        kind = event.WhichOneof("event")
        if kind == "gate_closed":
            if self.gate_closed is None or event.interval > self.gate_closed:
                self.gate_closed = event.interval
                self.changed.set()
                self._save()
        elif kind == "interval_delivered":
            end_s, remainder = divmod(event.time_ms, 1000 * (event.interval + 1))
            if remainder == 0 and end_s > 0 and end_s != self.interval_s:
                self.interval_s = int(end_s)
                self._save()

    def _save(self) -> None:
        if self._store is None:
            return
        values = (self.sequence, self.now_ms, self.gate_closed, self.interval_s)
        self._store.set_meta(
            (k, str(v)) for k, v in zip(_META, values, strict=True) if v is not None
        )

    async def run(self) -> None:
        """Follow the stream for ever (until cancelled), reconnecting with backoff."""
        while True:
            try:
                async for event in self._client.stream_events(self.sequence):
                    self.apply(event)
                    self._backoff.reset()
                logger.warning("market events: the engine ended the stream")
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
                if code == grpc.StatusCode.OUT_OF_RANGE:
                    self._forget(exc)
                    continue
                log = logger.error if code in _FATAL else logger.warning
                log("market events: stream failed (%s)", _describe(exc))
            await self._backoff.sleep()

    def _forget(self, exc: grpc.RpcError) -> None:
        """The saved position lies beyond the engine's log (a new engine or journal): start over.

        The engine's clock and gate come from the new log's events; the
        agent's saved orders stay (their ids are per interval).
        """
        logger.warning(
            "market events: the engine has fewer events than this gateway saw (%s); "
            "following its log from the start",
            _describe(exc),
        )
        self.sequence = 0
        self.now_ms = self.gate_closed = self.interval_s = None
        self._has_time.clear()
        if self._store is not None:
            self._store.delete_meta(_META)


_FATAL = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def _describe(exc: grpc.RpcError) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)
