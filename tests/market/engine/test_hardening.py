"""Hostile callers: garbage stream messages, replays after a restart or at another engine,
methods without a role, other participants' orders in the event stream, batch floods."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from gridex.v1 import market_pb2, meter_pb2, operator_pb2
from gridex.v1 import types_pb2 as pb

from grid import Feeder
from market.client import GatewayClient, TraderClient, status_code
from market.engine import auth
from market.engine.clock import SimClock
from market.engine.engine import Engine, EngineConfig
from market.engine.server import ServerConfig, ServerThread
from market.engine.signing import Signer

from .conftest import ENGINE_ID, FIRST, T0_MS, register

READINGS = "/gridex.v1.MeterService/StreamReadings"
STATUS = "/gridex.v1.OperatorService/GetEngineStatus"
BOOK = "/gridex.v1.MarketService/GetOrderBook"
EVENTS = "/gridex.v1.MarketService/StreamMarketEvents"


def failure(call: Callable[[], object]) -> tuple[grpc.StatusCode | None, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    text = info.value.details()  # type: ignore[attr-defined,unused-ignore]
    return status_code(info.value), str(text)


def batch(gateway: GatewayClient, batch_id: int, seq: int) -> meter_pb2.SignedReadingBatch:
    reading = meter_pb2.Reading(
        seq=seq, timestamp_ms=T0_MS + seq * 1000, energy_import_wh=seq, energy_export_wh=0
    )
    return gateway.signed_batch("m-1", batch_id, [reading])


def raw_stream(address: str, messages: list[bytes]) -> Iterator[bytes]:
    channel = grpc.insecure_channel(address)
    stub = channel.stream_stream(READINGS, request_serializer=None, response_deserializer=None)
    try:
        yield from stub(iter(messages), timeout=30)
    finally:
        channel.close()


@pytest.mark.parametrize("tail", ["garbage", "truncated"])
def test_an_undecodable_stream_message_is_invalid_argument_without_a_traceback(
    engine_server: ServerThread,
    gateway: GatewayClient,
    caplog: pytest.LogCaptureFixture,
    tail: str,
) -> None:
    good = batch(gateway, 1, 1).SerializeToString()
    bad = (
        b"\xff\xff\xff\xff" if tail == "garbage" else batch(gateway, 2, 2).SerializeToString()[:-7]
    )
    acks: list[bytes] = []
    with caplog.at_level(logging.WARNING):
        code, text = failure(lambda: acks.extend(raw_stream(engine_server.address, [good, bad])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "stream message 2" in text
    assert all(meter_pb2.BatchAck.FromString(a).code == 0 for a in acks)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback for a caller's mistake
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "127.0.0.1" in warnings[0] or "ipv" in warnings[0]  # names the peer


@pytest.mark.parametrize(
    ("method", "streaming"),
    [
        ("/grpc.health.v1.Health/Check", False),
        ("/grpc.health.v1.Health/Watch", True),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True),
    ],
)
def test_garbage_to_health_and_reflection_is_invalid_argument(
    engine_server: ServerThread, method: str, streaming: bool
) -> None:
    with grpc.insecure_channel(engine_server.address) as channel:
        if method.endswith("ServerReflectionInfo"):
            stub: Any = channel.stream_stream(method, None, None)
            code, _ = failure(lambda: list(stub(iter([b"\xff\xff"]), timeout=10)))
        elif streaming:
            stub = channel.unary_stream(method, None, None)
            code, _ = failure(lambda: list(stub(b"\xff\xff", timeout=10)))
        else:
            stub = channel.unary_unary(method, None, None)
            code, _ = failure(lambda: stub(b"\xff\xff", timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def start(feeder: Feeder, path: Path, operator: Signer, engine_id: str = "") -> Engine:
    engine = Engine(
        feeder,
        path,
        clock=SimClock(T0_MS),
        operators=[operator.address],
        config=EngineConfig(engine_id=engine_id),
    )
    engine.start()
    return engine


def signed_status(operator: Signer, engine_id: str) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    raw = operator_pb2.GetEngineStatusRequest().SerializeToString()
    return raw, tuple(operator.request_metadata(STATUS, raw, engine_id=engine_id))


def call_status(address: str, raw: bytes, metadata: tuple[tuple[str, str], ...]) -> object:
    with grpc.insecure_channel(address) as channel:
        stub = channel.unary_unary(STATUS, request_serializer=None, response_deserializer=None)
        return stub(raw, metadata=metadata, timeout=30)


def test_a_read_only_request_does_not_replay_after_a_restart(
    tmp_path: Path, engine_feeder: Feeder, operator_signer: Signer
) -> None:
    raw, metadata = signed_status(operator_signer, ENGINE_ID)
    engine = start(engine_feeder, tmp_path / "engine.db", operator_signer)
    with ServerThread(engine) as server:
        call_status(server.address, raw, metadata)  # accepted once
    engine.close()
    again = start(engine_feeder, tmp_path / "engine.db", operator_signer)
    try:
        with ServerThread(again) as server:
            code, text = failure(lambda: call_status(server.address, raw, metadata))
    finally:
        again.close()
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "nonce reused" in text


def test_a_request_signed_for_one_engine_is_refused_by_another(
    tmp_path: Path, engine_feeder: Feeder, operator_signer: Signer
) -> None:
    a = start(engine_feeder, tmp_path / "a.db", operator_signer, engine_id="feeder-a")
    b = start(engine_feeder, tmp_path / "b.db", operator_signer, engine_id="feeder-b")
    raw, metadata = signed_status(operator_signer, "feeder-a")
    try:
        with ServerThread(a) as server_a, ServerThread(b) as server_b:
            code, text = failure(lambda: call_status(server_b.address, raw, metadata))
            call_status(server_a.address, raw, metadata)  # valid where it was signed for
    finally:
        a.close()
        b.close()
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "'feeder-b'" in text  # the refusal says which engine id to sign for


def test_the_engine_id_defaults_to_the_feeder_name(engine: Engine) -> None:
    assert engine.engine_id == engine.feeder.name == ENGINE_ID


def test_a_served_method_without_a_role_is_denied_by_default(
    engine_server: ServerThread,
    traders: list[TraderClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roles = dict(auth.METHOD_ROLES)
    del roles[BOOK]
    monkeypatch.setattr(auth, "METHOD_ROLES", roles)
    raw = market_pb2.GetOrderBookRequest(interval=FIRST).SerializeToString()
    with grpc.insecure_channel(engine_server.address) as channel:
        stub = channel.unary_unary(BOOK, request_serializer=None, response_deserializer=None)
        unsigned, _ = failure(lambda: stub(raw, timeout=10))
        metadata = tuple(traders[0].signer.request_metadata(BOOK, raw, engine_id=ENGINE_ID))
        signed, text = failure(lambda: stub(raw, metadata=metadata, timeout=10))
        missing = channel.unary_unary("/gridex.v1.MarketService/NoSuchMethod", None, None)
        unknown, _ = failure(lambda: missing(b"", timeout=10))
    assert unsigned == signed == grpc.StatusCode.PERMISSION_DENIED
    assert "denied by default" in text
    assert unknown == grpc.StatusCode.UNIMPLEMENTED


def kept_nonces(engine: Engine) -> int:
    with sqlite3.connect(engine.journal_path) as db:
        count: int = db.execute("SELECT COUNT(*) FROM nonces").fetchone()[0]
    return count


def test_nonces_are_kept_only_after_the_role_check(
    engine: Engine, engine_server: ServerThread, traders: list[TraderClient]
) -> None:
    raw = market_pb2.GetOrderBookRequest(interval=FIRST).SerializeToString()
    with grpc.insecure_channel(engine_server.address) as channel:
        stub = channel.unary_unary(BOOK, request_serializer=None, response_deserializer=None)
        for _ in range(20):
            stranger = Signer.generate()
            metadata = tuple(stranger.request_metadata(BOOK, raw, engine_id=ENGINE_ID))
            code, _ = failure(lambda metadata=metadata: stub(raw, metadata=metadata, timeout=10))  # type: ignore[misc]
            assert code == grpc.StatusCode.PERMISSION_DENIED
        assert kept_nonces(engine) == 0
        metadata = tuple(traders[0].signer.request_metadata(BOOK, raw, engine_id=ENGINE_ID))
        stub(raw, metadata=metadata, timeout=10)
    assert kept_nonces(engine) == 1  # kept before the answer was sent


def test_the_event_stream_hides_other_participants_orders(
    engine: Engine, engine_server: ServerThread, operator_signer: Signer
) -> None:
    alice, bob = register(engine, 2)
    clients = [
        TraderClient(engine_server.address, s, retries=0, engine_id=ENGINE_ID) for s in (alice, bob)
    ]
    operator = TraderClient(engine_server.address, operator_signer, retries=0, engine_id=ENGINE_ID)
    try:
        clients[0].submit_order("a-1", "sell", interval=FIRST, quantity_wh=700, limit_price=90_000)
        clients[1].submit_order("b-1", "buy", interval=FIRST, quantity_wh=300, limit_price=250_000)
        clients[1].cancel_order("b-1")

        def orders(client: TraderClient) -> list[pb.OrderState]:
            seen = []
            for event in client.events(0, reconnect=False):
                kind = event.WhichOneof("event")
                if kind in ("order_accepted", "order_cancelled"):
                    seen.append(getattr(event, kind).order)
                if len(seen) == 3:
                    return seen
            raise AssertionError("stream ended")  # pragma: no cover

        seen_by_alice = orders(clients[0])
        seen_by_operator = orders(operator)
    finally:
        for c in [*clients, operator]:
            c.close()
    own, other, other_cancel = seen_by_alice
    assert (own.participant, own.client_order_id, own.quantity_wh) == (alice.address, "a-1", 700)
    for hidden in (other, other_cancel):
        assert (hidden.participant, hidden.client_order_id) == ("", "")
        assert (hidden.side, hidden.quantity_wh, hidden.limit_price) == (pb.SIDE_BUY, 300, 250_000)
    assert [o.participant for o in seen_by_operator] == [alice.address, bob.address, bob.address]


def test_meter_batches_are_rate_limited_per_gateway(engine: Engine) -> None:
    owner = register(engine, 1)[0]
    with ServerThread(engine, ServerConfig(batch_rate_limit_per_s=1.0)) as server:
        gateway = GatewayClient(server.address, Signer("0x" + "22" * 32), engine_id=ENGINE_ID)
        engine.register_gateway(gateway.address, "m-1", owner.address).result()
        acks = list(gateway.stream(iter([batch(gateway, i, i) for i in range(1, 7)]), timeout_s=30))
        gateway.close()
    codes = [a.code for a in acks]
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert codes[:2] == [0, 0]  # the burst
    assert exhausted in codes[2:]
    assert "batches/s" in next(a.message for a in acks if a.code == exhausted)
