"""A stand-in engine on a real ``grpc.aio`` server for the uplink and agent tests.

It speaks ``gridex.v1`` over real TCP on 127.0.0.1 and keeps the rules the
real engine keeps for what the gateway sees: batch signatures verified over the
exact bytes received, all-or-nothing batches, duplicates acknowledged and not
applied, gaps recorded, late readings refused; requests verified over the
exact request bytes, orders idempotent on (participant, client_order_id).
Its state outlives the server, so a test can stop the "engine" and start it
again on the same port, as after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from gridex import signing
from gridex.v1 import market_pb2, meter_pb2, types_pb2

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
FAKE_ENGINE_ID = "fake-engine"
"""The id the fake engine checks signatures against."""


@dataclass
class MeterLedger:
    """What the fake engine holds for each meter."""

    registered: dict[str, str] = field(default_factory=dict)  # meter_id -> gateway address
    applied: dict[str, list[meter_pb2.Reading]] = field(default_factory=dict)
    duplicates: int = 0
    batches: list[list[int]] = field(default_factory=list)  # seqs of every batch received
    poison: set[int] = field(default_factory=set)  # seqs refused with INVALID_ARGUMENT
    refuse_code: int = 0  # non-zero: refuse every batch with this code
    max_batch_readings: int = 10_000
    kill_before_ack: int = 0  # apply, then break the stream instead of acking, this often

    def seqs(self, meter_id: str) -> list[int]:
        """Seqs applied for a meter, in the order they were applied."""
        return [r.seq for r in self.applied.get(meter_id, [])]

    def ingest(self, signed: meter_pb2.SignedReadingBatch) -> meter_pb2.BatchAck:  # noqa: PLR0911 - one return per rule, as the engine checks them
        """Check and apply one batch as the engine does; return its ack."""
        batch = meter_pb2.ReadingBatch.FromString(signed.batch)
        ack = meter_pb2.BatchAck(batch_id=batch.batch_id, meter_id=batch.meter_id)
        self.batches.append([r.seq for r in batch.readings])

        def refuse(code: grpc.StatusCode | int, message: str) -> meter_pb2.BatchAck:
            ack.code = code if isinstance(code, int) else code.value[0]
            ack.message = message
            return ack

        if self.refuse_code:
            return refuse(self.refuse_code, "refused by the test")
        if not 1 <= len(batch.readings) <= self.max_batch_readings:
            return refuse(grpc.StatusCode.INVALID_ARGUMENT, "readings: too many")
        try:
            signer = signing.recover_batch_signer(
                signed.batch, signed.signature, engine_id=FAKE_ENGINE_ID
            )
        except signing.SignatureError as exc:
            return refuse(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if signer != batch.gateway.lower():
            return refuse(grpc.StatusCode.UNAUTHENTICATED, "signature: wrong signer")
        if batch.meter_id not in self.registered:
            return refuse(grpc.StatusCode.FAILED_PRECONDITION, "meter_id: is not registered")
        if self.registered[batch.meter_id] != signer:
            return refuse(grpc.StatusCode.PERMISSION_DENIED, "gateway: not the meter's")
        log = self.applied.setdefault(batch.meter_id, [])
        last = log[-1] if log else None
        new: list[meter_pb2.Reading] = []
        dups = 0
        for r in batch.readings:
            if r.seq in self.poison:
                return refuse(grpc.StatusCode.INVALID_ARGUMENT, f"seq {r.seq}: poisoned")
            if last is not None and r.seq <= last.seq:
                held = [x for x in log if x.seq == r.seq]
                if not held or held[0] != r:
                    return refuse(grpc.StatusCode.INVALID_ARGUMENT, f"seq {r.seq}: late or other")
                dups += 1
                continue
            if last is not None and (
                r.timestamp_ms <= last.timestamp_ms
                or r.energy_import_wh < last.energy_import_wh
                or r.energy_export_wh < last.energy_export_wh
            ):
                return refuse(grpc.StatusCode.INVALID_ARGUMENT, f"seq {r.seq}: out of order")
            new.append(r)
            last = r
        log.extend(new)
        self.duplicates += dups
        ack.ack_seq = log[-1].seq if log else 0
        ack.applied = len(new)
        ack.duplicates = dups
        return ack


@dataclass
class Market:
    """Orders and events of the fake engine."""

    participants: set[str] = field(default_factory=set)
    orders: dict[tuple[str, str], market_pb2.SubmitOrderRequest] = field(default_factory=dict)
    calls: list[market_pb2.SubmitOrderRequest] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    gate_closed: int = -1  # orders for this interval or earlier are refused
    events: list[market_pb2.MarketEvent] = field(default_factory=list)
    fail_next: list[grpc.StatusCode] = field(default_factory=list)  # refuse before anything
    lose_answers: int = 0  # accept the order, then fail the call with UNAVAILABLE, this often
    new_event: asyncio.Event = field(default_factory=asyncio.Event)

    def add_event(self, time_ms: int, interval: int, kind: str) -> None:
        """Append an event (``gate_closed`` or ``interval_delivered``) and wake the streams."""
        event = market_pb2.MarketEvent(
            sequence=len(self.events) + 1, time_ms=time_ms, interval=interval
        )
        if kind == "gate_closed":
            event.gate_closed.SetInParent()
            self.gate_closed = max(self.gate_closed, interval)
        else:
            event.interval_delivered.SetInParent()
        self.events.append(event)
        self.new_event.set()

    def authenticate(
        self,
        method: str,
        raw: bytes,
        context: grpc.aio.ServicerContext[Any, Any],
        *,
        engine_id: str = FAKE_ENGINE_ID,
    ) -> str:
        """The signer of a request, checked as the engine checks it (or abort)."""
        md = dict(context.invocation_metadata() or ())
        nonce = str(md[signing.NONCE_KEY])
        if nonce in self.nonces or not signing.NONCE_RE.match(nonce):
            raise PermissionError("nonce reused")
        self.nonces.add(nonce)
        signer = signing.recover_request_signer(
            method,
            raw,
            int(md[signing.TIMESTAMP_KEY]),
            nonce,
            bytes.fromhex(str(md[signing.SIGNATURE_KEY])[2:]),
            engine_id=engine_id,
        )
        if signer != str(md[signing.ADDRESS_KEY]).lower():
            raise PermissionError("signature does not match the address")
        return signer


class FakeEngine:
    """A real gRPC server with MeterService and MarketService over shared fake state."""

    def __init__(self) -> None:
        self.ledger = MeterLedger()
        self.market = Market()
        self.port = 0
        self.market_info_calls = 0
        self._server: grpc.aio.Server | None = None
        self._streams: set[asyncio.Task[Any]] = set()

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> int:
        """Serve (on the same port as before, after a stop); return the port."""
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(self._handlers())
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        assert self.port
        await server.start()
        self._server = server
        return self.port

    async def stop(self) -> None:
        """Go down at once, dropping every stream (an outage)."""
        if self._server is not None:
            await self._server.stop(0)
            self._server = None

    def _handlers(self) -> tuple[grpc.GenericRpcHandler[Any, Any], ...]:
        meter = grpc.stream_stream_rpc_method_handler(
            self._stream_readings,
            request_deserializer=meter_pb2.SignedReadingBatch.FromString,
            response_serializer=meter_pb2.BatchAck.SerializeToString,
        )
        submit = grpc.unary_unary_rpc_method_handler(
            self._submit_order,
            request_deserializer=None,
            response_serializer=market_pb2.SubmitOrderResponse.SerializeToString,
        )
        events = grpc.unary_stream_rpc_method_handler(
            self._stream_events,
            request_deserializer=None,
            response_serializer=market_pb2.MarketEvent.SerializeToString,
        )
        info = grpc.unary_unary_rpc_method_handler(
            self._market_info,
            request_deserializer=None,
            response_serializer=market_pb2.GetMarketInfoResponse.SerializeToString,
        )
        return (
            grpc.method_handlers_generic_handler(
                "gridex.v1.MeterService", {"StreamReadings": meter}
            ),
            grpc.method_handlers_generic_handler(
                "gridex.v1.MarketService",
                {"SubmitOrder": submit, "StreamMarketEvents": events, "GetMarketInfo": info},
            ),
        )

    async def _market_info(
        self, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> market_pb2.GetMarketInfoResponse:
        """The engine id only, for a request signed for engine ``*`` (how a client learns it)."""
        self.market_info_calls += 1
        try:
            self.market.authenticate(
                signing.DISCOVERY_METHOD, raw, context, engine_id=signing.ANY_ENGINE
            )
        except (PermissionError, signing.SignatureError, KeyError) as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        return market_pb2.GetMarketInfoResponse(engine_id=FAKE_ENGINE_ID)

    async def _stream_readings(
        self,
        requests: AsyncIterator[meter_pb2.SignedReadingBatch],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[meter_pb2.BatchAck]:
        async for signed in requests:
            ack = self.ledger.ingest(signed)
            if self.ledger.kill_before_ack > 0 and ack.code == 0:
                self.ledger.kill_before_ack -= 1
                await context.abort(grpc.StatusCode.UNAVAILABLE, "the test broke the stream")
            yield ack

    async def _submit_order(
        self, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> market_pb2.SubmitOrderResponse:
        market = self.market
        if market.fail_next:
            await context.abort(market.fail_next.pop(0), "failed by the test")
        try:
            signer = market.authenticate("/gridex.v1.MarketService/SubmitOrder", raw, context)
        except (PermissionError, signing.SignatureError, KeyError) as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        request = market_pb2.SubmitOrderRequest.FromString(raw)
        market.calls.append(request)
        if request.participant.lower() != signer:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "participant: not the signer")
        key = (signer, request.client_order_id)
        held = market.orders.get(key)
        if held is not None:
            if held != request:
                await context.abort(grpc.StatusCode.ALREADY_EXISTS, "client_order_id: reused")
        elif request.interval <= market.gate_closed:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "interval: gate closed")
        else:
            market.orders[key] = request
        if market.lose_answers > 0:
            market.lose_answers -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the answer got lost")
        order = types_pb2.OrderState(
            participant=signer,
            client_order_id=request.client_order_id,
            side=request.side,
            interval=request.interval,
            quantity_wh=request.quantity_wh,
            limit_price=request.limit_price,
            status=types_pb2.ORDER_STATUS_OPEN,
        )
        return market_pb2.SubmitOrderResponse(order=order)

    async def _stream_events(
        self, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[market_pb2.MarketEvent]:
        market = self.market
        try:
            market.authenticate("/gridex.v1.MarketService/StreamMarketEvents", raw, context)
        except (PermissionError, signing.SignatureError, KeyError) as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        after = market_pb2.StreamMarketEventsRequest.FromString(raw).after_sequence
        if after > len(market.events):  # as the engine does: a cursor beyond the head
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "after_sequence: beyond the head")
        while True:
            market.new_event.clear()  # before looking: an event added meanwhile sets it again
            for event in market.events[after:]:
                yield event
                after = event.sequence
            if len(market.events) > after:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await market.new_event.wait()


async def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 20.0) -> None:
    """Poll ``predicate`` until it holds (a test's safety net, not a timing assertion)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)
