"""Reading batches are signed for one engine: refused at another, not applied twice after a
restart, and the gateway's uplink learns the engine id it signs for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from gridex.v1 import meter_pb2

from grid import Feeder
from market.client import GatewayClient
from market.engine.clock import SimClock
from market.engine.engine import Engine, EngineConfig
from market.engine.server import ServerThread
from market.engine.signing import Signer
from meter_adapter.uplink import MEMORY, ReadingBuffer, Uplink, engine_channel

from .conftest import T0_MS, register

GATEWAY = Signer("0x" + "22" * 32)
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED.value[0]


def start(feeder: Feeder, path: Path, operator: Signer, engine_id: str) -> Engine:
    engine = Engine(
        feeder,
        path,
        clock=SimClock(T0_MS),
        operators=[operator.address],
        config=EngineConfig(engine_id=engine_id),
    )
    engine.start()
    return engine


def with_meter(engine: Engine) -> None:
    """The gateway registered for meter m-1 of a participant (the same at every engine)."""
    owner = register(engine, 1)[0]
    engine.register_gateway(GATEWAY.address, "m-1", owner.address).result()


def readings(n: int) -> list[meter_pb2.Reading]:
    return [
        meter_pb2.Reading(seq=s, timestamp_ms=T0_MS + s * 1000, energy_import_wh=s)
        for s in range(1, n + 1)
    ]


def send(address: str, signed: meter_pb2.SignedReadingBatch) -> meter_pb2.BatchAck:
    with GatewayClient(address, GATEWAY, engine_id="unused") as client:
        (ack,) = client.stream(iter([signed]), timeout_s=30)
        return ack


def test_a_batch_signed_for_one_engine_is_refused_by_another(
    tmp_path: Path, engine_feeder: Feeder, operator_signer: Signer
) -> None:
    a = start(engine_feeder, tmp_path / "a.db", operator_signer, "feeder-a")
    b = start(engine_feeder, tmp_path / "b.db", operator_signer, "feeder-b")
    try:
        with_meter(a)
        with_meter(b)
        signed = GatewayClient("127.0.0.1:1", GATEWAY, engine_id="feeder-a").signed_batch(
            "m-1", 1, readings(3)
        )
        with ServerThread(a) as server_a, ServerThread(b) as server_b:
            at_b = send(server_b.address, signed)
            at_a = send(server_a.address, signed)
    finally:
        a.close()
        b.close()
    assert at_b.code == UNAUTHENTICATED
    assert "'feeder-b'" in at_b.message  # says which engine id to sign for
    assert at_b.applied == 0
    assert (at_a.code, at_a.applied) == (0, 3)  # valid where it was signed for


def test_a_batch_replayed_after_a_restart_applies_nothing(
    tmp_path: Path, engine_feeder: Feeder, operator_signer: Signer
) -> None:
    engine = start(engine_feeder, tmp_path / "engine.db", operator_signer, "feeder-a")
    with_meter(engine)
    signed = GatewayClient("127.0.0.1:1", GATEWAY, engine_id="feeder-a").signed_batch(
        "m-1", 1, readings(5)
    )
    with ServerThread(engine) as server:
        first = send(server.address, signed)
    digest = engine.digest()
    engine.close()
    again = start(engine_feeder, tmp_path / "engine.db", operator_signer, "feeder-a")
    try:
        with ServerThread(again) as server:
            replay = send(server.address, signed)
        assert again.digest() == digest  # the replay changed nothing
    finally:
        again.close()
    assert (first.code, first.applied, first.ack_seq) == (0, 5, 5)
    assert (replay.code, replay.applied, replay.duplicates, replay.ack_seq) == (0, 0, 5, 5)


def test_the_uplink_learns_the_engine_id_and_signs_for_it(
    tmp_path: Path, engine_feeder: Feeder, operator_signer: Signer
) -> None:
    engine = start(engine_feeder, tmp_path / "engine.db", operator_signer, "feeder-a")
    with_meter(engine)

    async def deliver(address: str) -> tuple[int, str | None]:
        channel = engine_channel(address)
        buffer = ReadingBuffer(MEMORY, meter_id="m-1", first_seq=1)
        uplink = Uplink(channel, buffer, GATEWAY)
        try:
            for r in readings(4):
                buffer.append(r.timestamp_ms, r.energy_import_wh, 0, 0)
            left = await uplink.flush(timeout_s=60)
            return left, uplink.engine_id
        finally:
            await uplink.close()
            await channel.close(None)
            buffer.close()

    try:
        with ServerThread(engine) as server:
            left, learned = asyncio.run(deliver(server.address))
        held = engine.state.ledger.ack_seq("m-1")
    finally:
        engine.close()
    assert (left, learned) == (0, "feeder-a")
    assert held == 4  # every reading arrived, under a signature for feeder-a
