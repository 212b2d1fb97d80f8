"""Flexibility orders in the engine: rolls at each gate, SoC across rolls, replay, the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import grpc
import pytest
from gridex.v1 import market_pb2

from market.client import TraderClient
from market.engine.engine import Engine, EngineConfig
from market.engine.events import redacted
from market.errors import (
    AlreadyExistsError,
    EngineStateError,
    IntervalClosedError,
    NotFoundError,
    OrderValidationError,
)
from market.flex import EvOrder, StorageOrder
from market.orders import Order, Side
from market.report.plots_flex import battery_day
from tests.market.engine.conftest import FIRST, register

INTERVAL_MS = 900_000
FLEX = EngineConfig(verify_replay=True, flex_horizon_intervals=4)


def start_of(interval: int) -> int:
    return interval * INTERVAL_MS


def battery(owner: str, **changes: object) -> StorageOrder:
    """10 kWh, empty, 4 kW (1000 Wh per 15 min), 90 % each way, wear 1000 per kWh."""
    order = StorageOrder("bat", owner, 10_000, 0, 0, 10_000, 4000, 4000, 0.9, 0.9, 0, 1000)
    return replace(order, **changes)  # type: ignore[arg-type]


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(config=FLEX)


def fill(engine: Engine, interval: int, order_id: str) -> tuple[int, int]:
    record = engine.clearing_record(interval)
    assert record is not None
    assert record.summary is not None
    by_id = {f.order_id: f for f in record.summary.fills}
    return by_id[order_id].filled_wh, by_id[order_id].amount


def test_a_battery_buys_cheap_sells_dear_and_its_soc_carries_across_rolls(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(config=FLEX)
    owner, seller, buyer = register(engine, 3)
    engine.submit_flex_order(battery(owner.address)).result()
    # cheap surplus in FIRST (exported at feed-in), a dear buyer in FIRST + 1
    engine.submit_order(Order("s", seller.address, Side.SELL, FIRST, 5000, 10_000)).result()
    engine.submit_order(Order("b", buyer.address, Side.BUY, FIRST + 1, 5000, 290_000)).result()

    engine.advance_to(start_of(FIRST + 1))  # roll of FIRST, and the gate of FIRST + 1
    charged, paid = fill(engine, FIRST, "bat/in")
    # by hand: a full interval at the power limit, 4000 W x 900 s = 1000 Wh
    assert charged == 1000
    assert paid < 0  # the firm fill is a trade the battery pays for
    assert fill(engine, FIRST, "bat/out")[0] == 0

    engine.advance_to(start_of(FIRST + 2))
    sold, received = fill(engine, FIRST + 1, "bat/out")
    # by hand: 1000 Wh metered stores floor(0.9 x 1000) = 900 Wh; the most that can leave
    # is d with ceil(d / 0.9) <= 900, d = 810
    assert sold == 810
    assert received > 0
    state, schedule = engine.flex_schedule(owner.address, "bat")
    assert state.order.storage.soc_wh == 900 - 900  # the integer rule, no drift
    assert state.status == market_pb2.FLEX_ORDER_STATUS_LIVE
    assert schedule is not None
    assert schedule.first_interval == FIRST + 2
    assert [iv.firm for iv in schedule.intervals] == [True, False, False, False]

    digest = engine.digest()
    events = [e.SerializeToString() for e in engine.state.events]
    rolls = dict(engine.state.flex_rolls)
    assert set(rolls) == {FIRST, FIRST + 1, FIRST + 2}
    engine.close()
    day = battery_day(engine.journal_path)  # what the report's plot reads
    assert day is not None
    assert day.intervals == (FIRST, FIRST + 1, FIRST + 2)
    assert (day.charge_wh, day.discharge_wh, day.soc_wh) == ((1000, 0, 0), (0, 810, 0), (900, 0, 0))
    replayed = make_engine(config=FLEX)  # verify_replay: every roll cleared again, compared
    assert replayed.digest() == digest
    assert replayed.state.flex_rolls == rolls
    assert [e.SerializeToString() for e in replayed.state.events] == events


def test_flex_order_rules_name_the_field(engine: Engine) -> None:
    owner, other = register(engine, 2)
    with pytest.raises(OrderValidationError, match="soc_wh") as info:
        engine.submit_flex_order(battery(owner.address, soc_wh=20_000, max_soc_wh=12_000))
    assert "max_soc_wh" in str(info.value)  # every problem at once
    first = engine.submit_flex_order(battery(owner.address)).result()
    assert engine.submit_flex_order(battery(owner.address)).result() == first  # a retry
    with pytest.raises(AlreadyExistsError, match="AmendFlexOrder"):
        engine.submit_flex_order(battery(owner.address, soc_wh=500))
    with pytest.raises(NotFoundError, match="client_order_id"):
        engine.amend_flex_order(battery(owner.address, order_id="nope"))
    ev = EvOrder("bat", owner.address, 5000, 7400, FIRST, FIRST + 8, 200_000)
    with pytest.raises(EngineStateError, match="kind"):
        engine.amend_flex_order(ev)
    amended = engine.amend_flex_order(battery(owner.address, soc_wh=500)).result()
    assert amended.version == 2
    assert amended.order.storage.soc_wh == 500
    late = EvOrder("ev", other.address, 1000, 7400, FIRST - 8, FIRST, 200_000)
    with pytest.raises(IntervalClosedError, match="departure_interval"):
        engine.submit_flex_order(late)
    cancelled = engine.cancel_flex_order(owner.address, "bat").result()
    assert cancelled.status == market_pb2.FLEX_ORDER_STATUS_CANCELLED
    assert engine.cancel_flex_order(owner.address, "bat").result() == cancelled
    with pytest.raises(EngineStateError, match="cancelled"):
        engine.amend_flex_order(battery(owner.address))
    engine.advance_to(start_of(FIRST + 1))
    assert engine.state.flex_rolls == {}  # nothing live: the plain single-interval clearing
    assert engine.clearing_record(FIRST) is not None


def test_the_api_carries_flex_orders_and_schedules_privately(
    engine: Engine, traders: list[TraderClient]
) -> None:
    owner, other = traders[0], traders[1]
    with pytest.raises(grpc.RpcError) as info:
        owner.submit_flex_order(battery(owner.address, min_soc_wh=-1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "min_soc_wh" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        owner.flex_schedule("nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    # participant in the order is ignored: the signer places it for itself
    state = owner.submit_flex_order(battery(other.address))
    assert state.participant == owner.address
    assert state.status == market_pb2.FLEX_ORDER_STATUS_LIVE
    answer = owner.flex_schedule("bat")
    assert not answer.HasField("schedule")
    engine.advance_to(start_of(FIRST))  # the gate of FIRST only
    answer = owner.flex_schedule("bat")
    assert answer.schedule.first_interval == FIRST
    assert len(answer.schedule.intervals) == 4
    assert answer.schedule.intervals[0].firm

    updates = [e for e in engine.state.events if e.HasField("flex_schedule_updated")]
    assert [e.interval for e in updates] == [FIRST]
    mine = redacted(updates[0], owner.address).flex_schedule_updated.schedule
    theirs = redacted(updates[0], other.address).flex_schedule_updated.schedule
    assert mine.client_order_id == "bat"
    assert theirs.participant == ""
    assert theirs.client_order_id == ""
    assert list(theirs.intervals) == list(mine.intervals)

    amended = owner.amend_flex_order(battery(owner.address, soc_wh=2000))
    assert amended.version == 2
    assert owner.cancel_flex_order("bat").status == market_pb2.FLEX_ORDER_STATUS_CANCELLED
    with pytest.raises(grpc.RpcError) as info:
        owner.amend_flex_order(battery(owner.address))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cancelled" in info.value.details()
    assert owner.flex_schedule("bat").order.status == market_pb2.FLEX_ORDER_STATUS_CANCELLED


def test_the_demo_fleet_is_valid_and_seeded(engine: Engine) -> None:
    from market.demo.fleet import plan_homes
    from market.demo.flex import plan_flex
    from market.flex import validate_flex_order

    homes = plan_homes(
        engine.feeder,
        count=30,
        modbus=0,
        seed=7,
        pv_share=0.6,
        feed_in_price=80_000,
        retail_price=300_000,
    )
    for h in homes:
        engine.register_participant(h.address, h.bus).result()
    fleet = plan_flex(homes, seed=7, first_interval=FIRST, interval_s=900)
    kinds = {type(f.order).__name__ for f in fleet}
    assert kinds == {"StorageOrder", "EvOrder"}
    for f in fleet:
        assert f.order.participant == f.home.address
        problems = validate_flex_order(
            f.order,
            config=engine.market,
            participants=engine.state.participants,
            feeder=engine.feeder,
        )
        assert problems == []
    again = plan_flex(homes, seed=7, first_interval=FIRST, interval_s=900)
    assert [f.order for f in again] == [f.order for f in fleet]
