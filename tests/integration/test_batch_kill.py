"""SIGKILL ``gridex serve`` while SubmitOrders batches are in flight; restart; resend.

A batch is journaled in one transaction, so after any kill — before the
commit, between the commit and the answer, or after the answer — each batch
is on disk completely or not at all, every acknowledged batch is there, and
the client's resend of each batch (what a client does after a lost answer)
gets every order accepted exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import grpc
import pytest
from test_engine_kill import ENGINE_ID, FIRST, OPERATOR, TRADERS, EngineProcess

from market.client import BatchOrder, OperatorClient, TraderClient

pytestmark = pytest.mark.integration

BATCH = 200
ROUNDS = 3


def batch(round_: int, b: int) -> list[BatchOrder]:
    return [
        BatchOrder(f"r{round_}-b{b}-{i}", "buy", FIRST + i % 3, 100 + i, 150_000)
        for i in range(BATCH)
    ]


def test_a_killed_engine_keeps_each_batch_whole(tmp_path: Path) -> None:
    rnd = random.Random(15)
    engine = EngineProcess(tmp_path / "engine.db", tmp_path / "engine.log")
    engine.start()
    try:
        with OperatorClient(engine.address, OPERATOR, engine_id=ENGINE_ID) as op:
            op.register_participant(TRADERS[0].address, 2)
        sent: list[list[BatchOrder]] = []
        acked: list[int] = []  # indexes into sent
        for round_ in range(ROUNDS):
            stop = threading.Event()

            def submit(round_: int = round_, stop: threading.Event = stop) -> None:
                with TraderClient(
                    engine.address, TRADERS[0], retries=0, timeout_s=10, engine_id=ENGINE_ID
                ) as client:
                    b = 0
                    while not stop.is_set():
                        orders = batch(round_, b)
                        sent.append(orders)
                        try:
                            results = client.submit_orders(orders)
                        except grpc.RpcError:
                            return  # the engine is gone
                        assert [r.code for r in results] == [0] * BATCH
                        acked.append(len(sent) - 1)
                        b += 1

            thread = threading.Thread(target=submit)
            thread.start()
            time.sleep(rnd.uniform(0.3, 1.5))
            engine.kill()
            stop.set()
            thread.join(60)
            engine.start()
            with TraderClient(engine.address, TRADERS[0], engine_id=ENGINE_ID) as client:
                held = {o.client_order_id for o in client.list_orders()}
                for i, orders in enumerate(sent):
                    ids = {o.client_order_id for o in orders}
                    assert ids <= held or not ids & held, f"batch {i} is on disk in part"
                    if i in acked:
                        assert ids <= held, f"acknowledged batch {i} was lost"
                for orders in sent:  # the resend after a lost answer
                    assert [r.code for r in client.submit_orders(orders)] == [0] * BATCH
                placed = client.list_orders()
            assert len(placed) == len({o.client_order_id for o in placed}) == BATCH * len(sent)
        assert acked, "no batch was acknowledged before a kill: the test proved nothing"
    finally:
        engine.stop()
