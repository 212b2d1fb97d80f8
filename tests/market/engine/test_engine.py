"""The engine in process: order entry rules, the interval lifecycle, settlement and replay."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import pytest
from gridex.v1 import meter_pb2
from gridex.v1 import types_pb2 as pb

from grid import Feeder
from market.config import MarketConfig
from market.engine.clearing import ClearingSummary, MarketClearing
from market.engine.engine import Engine, EngineConfig
from market.engine.ingest import ingest_batch
from market.engine.settler import RecordingSettler
from market.engine.signing import Signer
from market.errors import (
    DuplicateOrderError,
    EngineStateError,
    InfeasibleClearingError,
    IntervalClosedError,
    NotFoundError,
    OrderValidationError,
    RequestError,
)
from market.orders import Order, Participant, Side
from market.settlement import IntervalSettlement
from market.validation import OrderProblem

from .conftest import FIRST, T0_MS, register

INTERVAL_MS = 900_000


def end_of(interval: int) -> int:
    return (interval + 1) * INTERVAL_MS


def book(signers: Sequence[Signer], interval: int = FIRST) -> list[Order]:
    """Two buyers and two sellers that cross."""
    return [
        Order("b1", signers[0].address, Side.BUY, interval, 2000, 250_000),
        Order("s1", signers[1].address, Side.SELL, interval, 1500, 100_000),
        Order("b2", signers[2].address, Side.BUY, interval, 1000, 200_000),
        Order("s2", signers[3].address, Side.SELL, interval, 3000, 150_000),
    ]


def meter_batch(gateway: Signer, meter_id: str, start_seq: int, start_ms: int, n: int) -> bytes:
    readings = [
        meter_pb2.Reading(
            seq=start_seq + i,
            timestamp_ms=start_ms + i * 60_000,
            energy_import_wh=100 + 10 * i,
            energy_export_wh=0,
            power_w=-600,
        )
        for i in range(n)
    ]
    return meter_pb2.ReadingBatch(
        gateway=gateway.address, meter_id=meter_id, batch_id=start_seq, readings=readings
    ).SerializeToString()


def test_a_day_moves_through_every_phase_and_settles_balanced(
    make_engine: Callable[..., Engine],
) -> None:
    settler = RecordingSettler()
    engine = make_engine(settler=settler, config=EngineConfig(reading_skew_s=3600))
    signers = register(engine, 4)
    gateway = Signer("0x" + "33" * 32)
    engine.register_gateway(gateway.address, "m-0", signers[0].address).result()
    for order in book(signers):
        engine.submit_order(order).result()
    # readings of the buyer's meter across the whole interval, 1 per minute
    start = FIRST * INTERVAL_MS - 60_000
    engine.advance_to(start + 5 * 60_000)
    batch = meter_batch(gateway, "m-0", 1, start, 18)
    ack = ingest_batch(
        engine, batch, gateway.sign_batch(batch, engine_id=engine.engine_id)
    ).result()
    assert (ack.code, ack.applied, ack.ack_seq) == (0, 18, 18)

    engine.advance_to(end_of(FIRST) + 60_000)

    s = engine.state.intervals[FIRST]
    assert s.phase == pb.INTERVAL_PHASE_SETTLED
    assert s.clearing is not None
    assert s.clearing.ok
    statuses = {r.order.order_id: r.status for r in s.orders}
    assert set(statuses.values()) <= {
        pb.ORDER_STATUS_FILLED,
        pb.ORDER_STATUS_PARTIALLY_FILLED,
        pb.ORDER_STATUS_UNFILLED,
    }
    assert statuses["b1"] == pb.ORDER_STATUS_FILLED  # the highest bid clears
    assert s.metered is not None
    assert s.metered["m-0"][0] > 0
    [settlement] = [x for x in settler.settlements if x.interval == FIRST]
    assert sum(settlement.deltas.values()) + settlement.fee == 0
    assert s.settlement is not None
    assert dict(s.settlement.deltas) == dict(settlement.deltas)
    # what goes on chain is the posting manifest's hash, which names the clearing's
    assert settlement.result_hash == s.settlement.result_hash != s.clearing.result_hash
    # the events tell the same story, numbered densely
    events = engine.state.events
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    kinds = [e.WhichOneof("event") for e in events if e.interval == FIRST]
    assert kinds == [
        *["order_accepted"] * 4,
        "gate_closed",
        "interval_cleared",
        "interval_delivered",
        "interval_metered",
        "interval_settled",
    ]
    # later intervals run through the lifecycle too, with empty books
    assert engine.state.intervals[FIRST + 1].phase == pb.INTERVAL_PHASE_CLEARED


def test_retry_returns_the_original_answer_and_other_content_is_refused(engine: Engine) -> None:
    signers = register(engine, 1)
    order = Order("o-1", signers[0].address, Side.SELL, FIRST, 1000, 120_000)
    first = engine.submit_order(order).result()
    entries = engine.core.journal.last_seq
    assert engine.submit_order(order).result() == first
    assert engine.core.journal.last_seq == entries  # nothing journaled twice
    other = Order("o-1", signers[0].address, Side.SELL, FIRST, 1001, 120_000)
    with pytest.raises(DuplicateOrderError, match=r"client_order_id: 'o-1'.*quantity_wh differ"):
        engine.submit_order(other)


def test_orders_outside_the_open_window_are_refused(engine: Engine) -> None:
    signers = register(engine, 1)
    who = signers[0].address
    with pytest.raises(IntervalClosedError, match="interval: the gate of interval 1944000"):
        engine.submit_order(Order("early", who, Side.BUY, FIRST - 1, 100, 100_000))
    with pytest.raises(IntervalClosedError, match="beyond the order horizon"):
        engine.submit_order(Order("far", who, Side.BUY, FIRST + 500, 100, 100_000))
    engine.submit_order(Order("ok", who, Side.BUY, FIRST, 100, 100_000)).result()
    engine.advance_to(FIRST * INTERVAL_MS - 300_000)  # gate closure of FIRST
    with pytest.raises(IntervalClosedError):
        engine.submit_order(Order("late", who, Side.BUY, FIRST, 100, 100_000))
    with pytest.raises(IntervalClosedError, match="can no longer be cancelled"):
        engine.cancel_order(who, "ok")


def test_every_validation_problem_is_reported(engine: Engine) -> None:
    register(engine, 1)
    stranger = Signer.generate().address
    with pytest.raises(OrderValidationError) as info:
        engine.submit_order(Order("", stranger, Side.BUY, FIRST, 0, -5))
    fields = sorted(p.field for p in info.value.problems if isinstance(p, OrderProblem))
    assert fields == ["limit_price", "order_id", "participant", "quantity_wh"]


def test_cancelled_orders_do_not_trade(engine: Engine) -> None:
    signers = register(engine, 4)
    for order in book(signers):
        engine.submit_order(order).result()
    cancelled = engine.cancel_order(signers[0].address, "b1").result()
    assert cancelled.status == pb.ORDER_STATUS_CANCELLED
    assert engine.cancel_order(signers[0].address, "b1").result() == cancelled
    with pytest.raises(NotFoundError, match="client_order_id"):
        engine.cancel_order(signers[0].address, "nope")
    engine.advance_to(end_of(FIRST))
    record = engine.clearing_record(FIRST)
    assert record is not None
    assert record.summary is not None
    assert "b1" not in {f.order_id for f in record.summary.fills}
    assert engine.get_order(signers[0].address, "b1").status == pb.ORDER_STATUS_CANCELLED


def test_replay_reaches_the_same_state_and_the_same_clearing_bytes(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    signers = register(engine, 4)
    for order in book(signers):
        engine.submit_order(order).result()
    for order in book(signers, FIRST + 1):
        engine.submit_order(replace(order, order_id="next-" + order.order_id)).result()
    engine.advance_to(end_of(FIRST) + 120_000)
    digest = engine.digest()
    result = engine.clearing_record(FIRST)
    events = [e.SerializeToString() for e in engine.state.events]
    engine.close()

    replayed = make_engine()  # verify_replay: clears every interval again and compares bytes
    assert replayed.digest() == digest
    again = replayed.clearing_record(FIRST)
    assert result is not None
    assert again is not None
    assert again.result_json == result.result_json
    assert [e.SerializeToString() for e in replayed.state.events] == events
    assert replayed.clock.now_ms() == end_of(FIRST) + 120_000


class FailingClearing(MarketClearing):
    def clear(
        self,
        feeder: Feeder,
        orders: Sequence[Order],
        participants: Mapping[str, Participant],
        config: MarketConfig,
        *,
        interval: int,
        mechanism: str,
    ) -> bytes:
        raise InfeasibleClearingError("base case already breaks a line limit")

    def decode(self, result_json: bytes) -> ClearingSummary:
        raise AssertionError("nothing to decode")


def test_a_failed_clearing_is_recorded_and_the_interval_still_settles(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(clearing=FailingClearing(), config=EngineConfig())
    signers = register(engine, 4)
    for order in book(signers):
        engine.submit_order(order).result()
    engine.advance_to(end_of(FIRST) + 60_000)
    s = engine.state.intervals[FIRST]
    assert s.clearing is not None
    assert not s.clearing.ok
    assert "line limit" in s.clearing.error
    assert {r.status for r in s.orders} == {pb.ORDER_STATUS_UNFILLED}
    assert s.phase == pb.INTERVAL_PHASE_SETTLED


def test_operator_clears_early_and_reruns(engine: Engine) -> None:
    signers = register(engine, 4)
    for order in book(signers):
        engine.submit_order(order).result()
    with pytest.raises(EngineStateError, match="only the next interval"):
        engine.trigger_clearing(FIRST + 3)
    first = engine.trigger_clearing(FIRST)
    assert first.ok
    assert first.mechanism == "nodal"
    with pytest.raises(EngineStateError, match="rerun"):
        engine.trigger_clearing(FIRST)
    uniform = engine.trigger_clearing(FIRST, mechanism="uniform", rerun=True)
    assert uniform.ok
    assert uniform.mechanism == "uniform"
    assert engine.clearing_record(FIRST) == uniform
    with pytest.raises(RequestError, match="mechanism"):
        engine.trigger_clearing(FIRST, mechanism="pay-as-bid", rerun=True)


class FlakySettler(RecordingSettler):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1
        self.attempts = 0

    def settle(self, settlement: IntervalSettlement) -> str:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("chain unavailable")
        return super().settle(settlement)


def test_a_failed_settlement_is_retried(make_engine: Callable[..., Engine]) -> None:
    settler = FlakySettler()
    engine = make_engine(settler=settler, config=EngineConfig(settle_retry_s=0))
    engine.advance_to(end_of(FIRST) + 61_000)
    assert engine.state.intervals[FIRST].phase == pb.INTERVAL_PHASE_SETTLED
    assert [s.interval for s in settler.settlements] == [FIRST]
    assert settler.attempts == 2


def test_registration_rules(engine: Engine, operator_signer: Signer) -> None:
    who = Signer.generate().address
    with pytest.raises(RequestError, match=r"bus: feeder .* has no bus 99999"):
        engine.register_participant(who, 99999)
    not_connectable = next(b.index for b in engine.feeder.buses if not b.connectable)
    with pytest.raises(RequestError, match="may not connect"):
        engine.register_participant(who, not_connectable)
    with pytest.raises(RequestError, match="settlement account"):
        engine.register_participant(operator_signer.address, 2)
    with pytest.raises(NotFoundError, match="participant"):
        engine.register_gateway(who, "m-9", who)
    assert engine.lifecycle.gate_ms(FIRST) > T0_MS
