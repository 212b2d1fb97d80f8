"""The gRPC surface on 127.0.0.1: signing, roles, status codes, streams, health, reflection."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import grpc
import pytest
from gridex.v1 import market_pb2, meter_pb2
from gridex.v1 import types_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from market.client import GatewayClient, OperatorClient, TraderClient, status_code
from market.engine.engine import Engine
from market.engine.server import ServerConfig, ServerThread
from market.engine.signing import Signer

from .conftest import ENGINE_ID, FIRST, T0_MS

SUBMIT = "/gridex.v1.MarketService/SubmitOrder"


def details(exc: grpc.RpcError) -> str:
    text = exc.details()  # type: ignore[attr-defined,unused-ignore]  # a call's RpcError has it
    assert isinstance(text, str)
    return text


def code_of(call: Any) -> grpc.StatusCode | None:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return status_code(info.value)


def raw_submit(
    address: str, signer: Signer, metadata_edit: Any = None, *, participant: str | None = None
) -> Any:
    """A SubmitOrder call with hand-made metadata (to break the signature on purpose)."""
    request = market_pb2.SubmitOrderRequest(
        participant=participant or signer.address,
        client_order_id="raw-1",
        side=pb.SIDE_BUY,
        interval=FIRST,
        quantity_wh=100,
        limit_price=100_000,
    ).SerializeToString()
    metadata = dict(signer.request_metadata(SUBMIT, request, engine_id=ENGINE_ID))
    if metadata_edit is not None:
        metadata_edit(metadata, request)
    channel = grpc.insecure_channel(address)
    stub = channel.unary_unary(SUBMIT, request_serializer=None, response_deserializer=None)

    def call() -> Any:
        try:
            return stub(request, metadata=tuple(metadata.items()), timeout=10)
        finally:
            channel.close()

    return call


def test_orders_round_trip_with_the_documented_errors(traders: list[TraderClient]) -> None:
    alice, bob = traders[0], traders[1]
    accepted = alice.submit_order(
        "a-1", "buy", interval=FIRST, quantity_wh=1000, limit_price=200_000
    )
    assert accepted.status == pb.ORDER_STATUS_OPEN
    assert accepted.participant == alice.address
    # a retry returns the original answer
    assert (
        alice.submit_order("a-1", "buy", interval=FIRST, quantity_wh=1000, limit_price=200_000)
        == accepted
    )
    with pytest.raises(grpc.RpcError) as info:
        alice.submit_order("a-1", "buy", interval=FIRST, quantity_wh=999, limit_price=200_000)
    assert status_code(info.value) == grpc.StatusCode.ALREADY_EXISTS
    assert "quantity_wh" in details(info.value)

    with pytest.raises(grpc.RpcError) as info:
        alice.submit_order("a-2", "buy", interval=FIRST, quantity_wh=0, limit_price=10**9)
    assert status_code(info.value) == grpc.StatusCode.INVALID_ARGUMENT
    text = details(info.value)
    assert "quantity_wh: must be positive" in text
    assert "limit_price: must be within the price band" in text
    # the client refuses an unknown side before sending; the engine refuses an unset one
    with pytest.raises(ValueError, match="side: must be 'buy' or 'sell', got 'hold'"):
        alice.submit_order("a-3", "hold", interval=FIRST, quantity_wh=1, limit_price=1)
    unset = market_pb2.SubmitOrderRequest(
        participant=alice.address, client_order_id="a-3", interval=FIRST, quantity_wh=1
    )
    assert (
        code_of(
            lambda: alice.call(
                "/gridex.v1.MarketService/SubmitOrder", unset, market_pb2.SubmitOrderResponse
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert [o.client_order_id for o in alice.list_orders()] == ["a-1"]
    assert (
        code_of(
            lambda: alice.submit_order(
                "a-4", "buy", interval=FIRST - 1, quantity_wh=1, limit_price=1
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert code_of(lambda: alice.get_order("nope")) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: alice.clearing_result(FIRST)) == grpc.StatusCode.NOT_FOUND

    bob.submit_order("b-1", "sell", interval=FIRST, quantity_wh=500, limit_price=90_000)
    book = alice.order_book(FIRST)
    assert [(lv.price, lv.quantity_wh) for lv in book.bids] == [(200_000, 1000)]
    assert [(lv.price, lv.quantity_wh) for lv in book.asks] == [(90_000, 500)]
    assert [o.client_order_id for o in alice.list_orders()] == ["a-1"]
    assert alice.cancel_order("a-1").status == pb.ORDER_STATUS_CANCELLED
    assert alice.get_order("a-1").status == pb.ORDER_STATUS_CANCELLED


def test_signature_timestamp_nonce_and_role_failures(
    engine_server: ServerThread, traders: list[TraderClient], operator_signer: Signer
) -> None:
    address = engine_server.address
    alice = traders[0].signer
    unauth = grpc.StatusCode.UNAUTHENTICATED

    def wrong_key(md: dict[str, str], request: bytes) -> None:
        other = dict(Signer.generate().request_metadata(SUBMIT, request, engine_id=ENGINE_ID))
        md["x-gridex-signature"] = other["x-gridex-signature"]

    def stale(md: dict[str, str], request: bytes) -> None:
        md.update(alice.request_metadata(SUBMIT, request, engine_id=ENGINE_ID, timestamp_ms=T0_MS))

    def missing(md: dict[str, str], request: bytes) -> None:
        del md["x-gridex-nonce"]

    def tampered(md: dict[str, str], request: bytes) -> None:
        # flip one bit of s, so the signature always changes: zeroing its last two
        # bytes left it valid whenever s already ended in 00 and v = 27 (1 run in 512)
        signature = md["x-gridex-signature"]
        at = 2 + 100  # after "0x": a hex digit inside s (bytes 32..63)
        flipped = format(int(signature[at], 16) ^ 1, "x")
        md["x-gridex-signature"] = signature[:at] + flipped + signature[at + 1 :]

    for edit in (wrong_key, stale, missing, tampered):
        assert code_of(raw_submit(address, alice, edit)) == unauth, edit.__name__

    fixed = dict(alice.request_metadata(SUBMIT, b"", engine_id=ENGINE_ID, nonce="fixed-nonce-1"))

    def reuse(md: dict[str, str], request: bytes) -> None:
        md.update(
            alice.request_metadata(SUBMIT, request, engine_id=ENGINE_ID, nonce="fixed-nonce-1")
        )

    assert fixed  # the first use of the nonce is accepted:
    raw_submit(address, alice, reuse)()
    with pytest.raises(grpc.RpcError) as info:
        raw_submit(address, alice, reuse)()
    assert status_code(info.value) == unauth
    assert "nonce reused" in details(info.value)

    # wrong role: a participant calling the operator, or acting for someone else
    with OperatorClient(address, alice, engine_id=ENGINE_ID) as fake_operator:
        assert (
            code_of(lambda: fake_operator.register_participant(alice.address, 2))
            == grpc.StatusCode.PERMISSION_DENIED
        )
    bob = traders[1].signer
    assert (
        code_of(raw_submit(address, alice, participant=bob.address))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    stranger = Signer.generate()
    with TraderClient(address, stranger, retries=0, engine_id=ENGINE_ID) as outsider:
        assert code_of(lambda: outsider.order_book(FIRST)) == grpc.StatusCode.PERMISSION_DENIED
    # an operator may read a participant's orders but not trade for it
    assert code_of(raw_submit(address, operator_signer, participant=alice.address)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_rate_limit_is_resource_exhausted(engine: Engine, traders: list[TraderClient]) -> None:
    with (
        ServerThread(engine, ServerConfig(rate_limit_per_s=2)) as limited,
        TraderClient(limited.address, traders[0].signer, retries=0, engine_id=ENGINE_ID) as client,
    ):
        codes = set()
        for _ in range(10):
            try:
                client.order_book(FIRST)
            except grpc.RpcError as exc:
                codes.add(status_code(exc))
        assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}


def test_operator_flow_over_grpc(
    operator_client: OperatorClient, engine: Engine, traders: list[TraderClient]
) -> None:
    extra = Signer.generate()
    participant = operator_client.register_participant(extra.address.upper().replace("0X", "0x"), 2)
    assert participant.address == extra.address
    assert (
        code_of(lambda: operator_client.register_participant(extra.address, 3))
        == grpc.StatusCode.ALREADY_EXISTS
    )
    traders[0].submit_order("x", "buy", interval=FIRST, quantity_wh=800, limit_price=250_000)
    traders[1].submit_order("y", "sell", interval=FIRST, quantity_wh=800, limit_price=50_000)
    result = operator_client.trigger_clearing(FIRST)
    assert result.ok
    assert result.result_json
    assert len(result.result_hash) == 32
    assert traders[0].clearing_result(FIRST).result_json == result.result_json
    status = operator_client.engine_status()
    assert status.clock == "sim"
    assert status.state_digest == engine.digest()
    assert (
        operator_client.advance_clock((FIRST + 1) * 900_000 + 60_000)
        == (FIRST + 1) * 900_000 + 60_000
    )
    account = traders[0].account()
    assert account.total_settled == sum(p.settled_delta for p in account.intervals)
    assert [f.client_order_id for f in account.fills] == ["x"]
    grid = operator_client.grid_status()
    assert grid.latest_cleared_interval >= FIRST
    assert len(grid.buses) == engine.feeder.n_bus
    assert code_of(lambda: operator_client.advance_clock(0)) == grpc.StatusCode.INVALID_ARGUMENT


def test_event_stream_resumes_from_a_sequence(traders: list[TraderClient]) -> None:
    alice = traders[0]
    for i in range(3):
        alice.submit_order(f"e-{i}", "buy", interval=FIRST, quantity_wh=100, limit_price=100_000)
    first_two = list(itertools.islice(alice.events(0), 2))
    assert [e.sequence for e in first_two] == [1, 2]
    rest = list(itertools.islice(alice.events(first_two[-1].sequence), 1))
    assert rest[0].sequence == 3
    assert rest[0].order_accepted.order.client_order_id == "e-2"
    # a live event reaches a waiting stream
    received: list[market_pb2.MarketEvent] = []
    reader = threading.Thread(target=lambda: received.extend(itertools.islice(alice.events(3), 1)))
    reader.start()
    time.sleep(0.2)  # let the stream start waiting (not a timing assertion)
    alice.submit_order("e-3", "buy", interval=FIRST, quantity_wh=100, limit_price=100_000)
    reader.join(10)
    assert [e.sequence for e in received] == [4]


def test_meter_stream_acknowledges_every_batch(gateway: GatewayClient, engine: Engine) -> None:
    def readings(first: int, n: int) -> list[meter_pb2.Reading]:
        return [
            meter_pb2.Reading(
                seq=s,
                timestamp_ms=T0_MS + s * 1000,
                energy_import_wh=s,
                energy_export_wh=0,
                power_w=1,
            )
            for s in range(first, first + n)
        ]

    good = gateway.signed_batch("m-1", 1, readings(1, 10))
    resent = good
    gap = gateway.signed_batch("m-1", 2, readings(15, 5))
    forged = meter_pb2.SignedReadingBatch(
        batch=good.batch,
        signature=Signer.generate().sign_batch(good.batch, engine_id=gateway.engine_id),
    )
    unknown = gateway.signed_batch("m-unknown", 3, readings(1, 1))
    garbage = meter_pb2.SignedReadingBatch(batch=b"\xff\xff", signature=b"")
    backwards = gateway.signed_batch(
        "m-1", 4, [meter_pb2.Reading(seq=20, timestamp_ms=T0_MS + 20_000, energy_import_wh=0)]
    )
    acks = list(
        gateway.stream(iter([good, resent, gap, forged, unknown, garbage, backwards]), timeout_s=30)
    )
    codes = [a.code for a in acks]
    assert codes == [
        0,
        0,
        0,
        grpc.StatusCode.UNAUTHENTICATED.value[0],
        grpc.StatusCode.FAILED_PRECONDITION.value[0],
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
    ]
    assert (acks[0].applied, acks[0].ack_seq) == (10, 10)
    assert (acks[1].applied, acks[1].duplicates) == (0, 10)
    assert acks[2].ack_seq == 19
    assert [(g.first_seq, g.last_seq) for g in acks[2].gaps] == [(11, 14)]
    assert "energy_import_wh" in acks[6].message
    assert engine.state.ledger.ack_seq("m-1") == 19


def test_health_and_reflection(engine_server: ServerThread) -> None:
    with grpc.insecure_channel(engine_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "gridex.v1.MarketService", "gridex.v1.MeterService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [answer] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        names = {s.name for s in answer.list_services_response.service}
        assert {
            "gridex.v1.MarketService",
            "gridex.v1.MeterService",
            "gridex.v1.OperatorService",
        } <= names
