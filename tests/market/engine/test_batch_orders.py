"""SubmitOrders: per-order results, idempotency, one group commit, size and rate limits,
nonces kept across a restart, and a crash between the journal write and the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from gridex.v1 import market_pb2
from gridex.v1 import types_pb2 as pb

from grid import Feeder
from market.client import BatchOrder, TraderClient, status_code
from market.engine import journal as journal_module
from market.engine.batch import MAX_BATCH_ORDERS, submit_orders
from market.engine.clock import SimClock
from market.engine.engine import Engine
from market.engine.server import ServerConfig, ServerThread
from market.engine.signing import Signer

from .conftest import ENGINE_ID, FIRST, T0_MS, register

SUBMIT_ORDERS = "/gridex.v1.MarketService/SubmitOrders"
OK = 0


def failure(call: Any) -> tuple[grpc.StatusCode | None, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return status_code(info.value), str(info.value.details())  # type: ignore[attr-defined]


def single_failure(client: TraderClient, o: BatchOrder) -> tuple[int, str]:
    """What SubmitOrder answers for the same order: the reference for a batch's result."""
    code, text = failure(
        lambda: client.submit_order(
            o.client_order_id,
            o.side,
            interval=o.interval,
            quantity_wh=o.quantity_wh,
            limit_price=o.limit_price,
        )
    )
    assert code is not None
    return code.value[0], text


def order(i: int | str, **change: Any) -> BatchOrder:
    fields: dict[str, Any] = {
        "client_order_id": f"b-{i}",
        "side": "buy",
        "interval": FIRST,
        "quantity_wh": 100 + (i if isinstance(i, int) else 0),
        "limit_price": 150_000,
    }
    fields.update(change)
    return BatchOrder(**fields)


def entry(o: BatchOrder) -> market_pb2.SubmitOrdersRequest.Entry:
    side = pb.SIDE_BUY if o.side == "buy" else pb.SIDE_SELL
    return market_pb2.SubmitOrdersRequest.Entry(**(o._asdict() | {"side": side}))


def test_a_mixed_batch_answers_each_order_as_submit_order_would(
    traders: list[TraderClient],
) -> None:
    alice = traders[0]
    held = alice.submit_order("held", "sell", interval=FIRST, quantity_wh=700, limit_price=90_000)
    batch = [
        order(1),  # valid
        order(2, quantity_wh=0),  # breaks a field rule
        order(3, interval=FIRST - 1),  # gate closed
        BatchOrder("held", "sell", FIRST, 700, 90_000),  # re-sent, same content
        BatchOrder("held", "sell", FIRST, 701, 90_000),  # same id, other content
        order(1),  # the same id twice in one batch, same content
        order(1, limit_price=1),  # ... and other content
        order(4, side="sell", limit_price=10**12),  # outside the price band
        order(5),  # valid after the rejections
    ]
    results = alice.submit_orders(batch)
    assert len(results) == len(batch)
    codes = [r.code for r in results]
    assert codes[0] == codes[3] == codes[5] == codes[8] == OK
    assert results[3].order == held  # the original answer
    assert results[5].order == results[0].order
    assert results[0].order.status == pb.ORDER_STATUS_OPEN
    for i in (1, 2, 4, 6, 7):
        assert codes[i] != OK
        assert not results[i].HasField("order")
        # the same code and message as SubmitOrder gives the same order on its own
        assert (codes[i], results[i].message) == single_failure(alice, batch[i]), i
    assert codes[4] == grpc.StatusCode.ALREADY_EXISTS.value[0]
    assert codes[2] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "quantity_wh" in results[1].message
    placed = {o.client_order_id: o for o in alice.list_orders()}
    assert set(placed) == {"held", "b-1", "b-5"}
    assert placed["b-1"].quantity_wh == 101


def test_a_resent_batch_places_nothing_twice(engine: Engine, traders: list[TraderClient]) -> None:
    alice = traders[0]
    batch = [order(i) for i in range(20)]
    first = alice.submit_orders(batch)
    last_seq = engine.core.journal.last_seq
    again = alice.submit_orders(batch)
    assert [r.code for r in first] == [OK] * 20
    assert list(again) == list(first)
    assert engine.core.journal.last_seq == last_seq  # nothing journaled again
    assert len(alice.list_orders()) == 20


def test_a_batch_goes_to_the_journal_as_one_commit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = register(engine, 1)[0]
    journal = engine.core.journal
    queued: list[object] = []
    writer_queue = journal._queue

    class Spy:  # records what reaches the writer thread's queue
        def put(self, item: object) -> None:
            queued.append(item)
            writer_queue.put(item)

        def get(self) -> object:
            return writer_queue.get()

        def get_nowait(self) -> object:
            return writer_queue.get_nowait()

    monkeypatch.setattr(journal, "_queue", Spy())
    entries = [entry(order(i)) for i in range(50)]
    entries[7].quantity_wh = 0  # one rejected order does not split the commit
    accepted = submit_orders(engine, alice.address, entries, nonce="tag:nonce-123:1")
    accepted.result()
    assert len(queued) == 1  # one item for the writer, so one transaction
    group = queued[0]
    assert isinstance(group, journal_module._Group)
    assert [p.entry.kind for p in group.pendings] == ["order"] * 49
    assert {p.entry.nonce for p in group.pendings} == {"tag:nonce-123:1"}
    assert [r.code for r in accepted.value].count(OK) == 49
    assert journal.durable_seq == group.pendings[-1].entry.seq


def test_batch_size_limits(traders: list[TraderClient]) -> None:
    alice = traders[0]
    too_many = [order(i) for i in range(MAX_BATCH_ORDERS + 1)]
    code, text = failure(lambda: alice.submit_orders(too_many))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"orders: must hold 1 to {MAX_BATCH_ORDERS} orders, got {MAX_BATCH_ORDERS + 1}" in text
    code, text = failure(lambda: alice.submit_orders([]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "got 0" in text
    assert alice.list_orders() == []
    assert [r.code for r in alice.submit_orders(too_many[:MAX_BATCH_ORDERS])] == [OK] * 1000


def test_a_batch_is_for_the_signer_only(traders: list[TraderClient]) -> None:
    alice, bob = traders[0], traders[1]
    request = market_pb2.SubmitOrdersRequest(
        participant=bob.address, orders=[market_pb2.SubmitOrdersRequest.Entry(client_order_id="x")]
    )
    code, text = failure(
        lambda: alice.call(SUBMIT_ORDERS, request, market_pb2.SubmitOrdersResponse)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "may act only for itself" in text


def test_each_order_of_a_batch_costs_one_request_of_the_rate_limit(
    engine: Engine, traders: list[TraderClient]
) -> None:
    with (
        ServerThread(engine, ServerConfig(rate_limit_per_s=5)) as limited,  # burst: 10
        TraderClient(limited.address, traders[0].signer, retries=0, engine_id=ENGINE_ID) as alice,
    ):
        code, text = failure(lambda: alice.submit_orders([order(i) for i in range(11)]))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "send smaller batches" in text
        # 11 > burst took one token only: 9 of the burst are left, then the bucket is empty
        assert [r.code for r in alice.submit_orders([order(i) for i in range(8)])] == [OK] * 8
        code, _ = failure(lambda: alice.submit_orders([order(i) for i in range(8, 16)]))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(traders[0].list_orders()) == 8


def start(feeder: Feeder, path: Path, operator: Signer) -> Engine:
    engine = Engine(feeder, path, clock=SimClock(T0_MS), operators=[operator.address])
    engine.start()
    return engine


def test_a_batch_nonce_does_not_replay_after_a_restart(
    tmp_path: Path, engine_feeder: Feeder, operator_signer: Signer
) -> None:
    engine = start(engine_feeder, tmp_path / "engine.db", operator_signer)
    alice = register(engine, 1)[0]
    request = market_pb2.SubmitOrdersRequest(
        participant=alice.address,
        orders=[entry(order(1))],
    ).SerializeToString()
    metadata = tuple(alice.request_metadata(SUBMIT_ORDERS, request, engine_id=ENGINE_ID))

    def send(address: str) -> market_pb2.SubmitOrdersResponse:
        with grpc.insecure_channel(address) as channel:
            stub = channel.unary_unary(
                SUBMIT_ORDERS, None, market_pb2.SubmitOrdersResponse.FromString
            )
            response: market_pb2.SubmitOrdersResponse = stub(request, metadata=metadata, timeout=30)
            return response

    with ServerThread(engine) as server:
        assert [r.code for r in send(server.address).results] == [OK]
    engine.close()
    again = start(engine_feeder, tmp_path / "engine.db", operator_signer)
    try:
        with ServerThread(again) as server:
            code, text = failure(lambda: send(server.address))
    finally:
        again.close()
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "nonce reused" in text


def test_a_crash_after_the_journal_write_loses_no_order_and_duplicates_none(
    tmp_path: Path, engine_feeder: Feeder, operator_signer: Signer
) -> None:
    """The batch is on disk but its answer never left (the engine died): the client's
    retry after the restart gets every order back as placed, and nothing twice."""
    engine = start(engine_feeder, tmp_path / "engine.db", operator_signer)
    alice = register(engine, 1)[0]
    entries = [entry(order(i, side="sell")) for i in range(30)]
    first = submit_orders(engine, alice.address, entries, nonce=f"{alice.address}:n-00000001:1")
    first.durable.result(30)  # on disk; the answer is dropped with the "crashed" engine
    digest = engine.digest()
    engine.close()
    again = start(engine_feeder, tmp_path / "engine.db", operator_signer)
    try:
        assert again.digest() == digest
        with (
            ServerThread(again, ServerConfig(rate_limit_per_s=None)) as server,
            TraderClient(server.address, alice, retries=0, engine_id=ENGINE_ID) as client,
        ):
            retry = client.submit_orders(
                [order(i, side="sell") for i in range(30)]  # what the client sent before
            )
            assert [r.code for r in retry] == [OK] * 30
            assert [r.order for r in retry] == [r.order for r in first.value]
            assert len(client.list_orders()) == 30
        assert again.digest() == digest
    finally:
        again.close()
