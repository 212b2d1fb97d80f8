"""The agent's storage order from the measured SoC, against a fake client that records calls.

Every order built is checked with the engine's own validator
(``market.flex.validate_flex_order``), the independent reference for what a
valid storage order is.
"""

from __future__ import annotations

import asyncio
import dataclasses
from fractions import Fraction
from pathlib import Path

import grpc
import pytest
from gridex.signing import Signer
from hypothesis import given
from hypothesis import strategies as st

import market.flex
from market.config import MarketConfig
from market.orders import Participant
from meter_adapter.agent import (
    AgentConfig,
    ProsumerAgent,
    StorageAgent,
    StorageConfig,
    StorageOrder,
    build_storage_order,
)
from meter_adapter.agent.market import MarketClient
from meter_adapter.agent.storage import storage_order_id
from meter_adapter.reader import MeterReader
from meter_adapter.sunspec.battery import BatteryValues, decode_battery
from meter_adapter.uplink import ReadingBuffer, engine_channel
from meter_adapter.uplink.gateway import Gateway
from tests.market.clearing.nets import feeder
from tests.meter_adapter import dumps
from tests.meter_adapter.test_battery import T0, device, with_points

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = Signer(KEY).address
HAND = decode_battery(802, dumps.BATTERY_802[2:])  # 13 500 Wh, 9004 Wh, band 2025..12825
CONFIG = StorageConfig(cycling_price=20_000, reserve_percent=20.0, drift_wh=300)
T0_MS = int(T0.timestamp() * 1000)


class FakeFlexClient:
    """Records what the agent submits; fails with ``fail`` (a status code) while it is set."""

    def __init__(self) -> None:
        self.orders: list[StorageOrder] = []
        self.fail: grpc.StatusCode | None = None

    async def submit_flex_order(self, order: StorageOrder) -> object:
        if self.fail is not None:
            meta = grpc.aio.Metadata()
            raise grpc.aio.AioRpcError(self.fail, meta, meta, details="said no")
        self.orders.append(order)
        return object()


def engine_problems(order: StorageOrder) -> list[str]:
    """What the engine's validator says of ``order``."""
    theirs = market.flex.StorageOrder(**dataclasses.asdict(order))
    found = market.flex.validate_flex_order(
        theirs,
        config=MarketConfig(),
        participants={ADDRESS: Participant(ADDRESS, 3)},
        feeder=feeder("radial"),
    )
    return [f"{p.field}: {p.rule}" for p in found]


def battery(soc_percent: Fraction | int, **changes: object) -> BatteryValues:
    return dataclasses.replace(HAND, soc_percent=Fraction(soc_percent), **changes)  # type: ignore[arg-type]


def agent(client: FakeFlexClient, store: ReadingBuffer | None = None, **kw: object) -> StorageAgent:
    return StorageAgent(
        client,
        participant=ADDRESS,
        meter_id="home",
        config=kw.pop("config", CONFIG),  # type: ignore[arg-type]
        store=store,
        **kw,  # type: ignore[arg-type]
    )


# -- the order ----------------------------------------------------------------------------


def test_the_gateway_order_has_the_engine_orders_fields() -> None:
    ours = [(f.name, f.type) for f in dataclasses.fields(StorageOrder)]
    theirs = [(f.name, f.type) for f in dataclasses.fields(market.flex.StorageOrder)]
    assert ours == theirs


def test_the_order_from_the_hand_dump_by_hand() -> None:
    order = build_storage_order(CONFIG, order_id="s", participant=ADDRESS.upper(), battery=HAND)
    assert order == StorageOrder(
        order_id="s",
        participant=ADDRESS,
        capacity_wh=13_500,
        soc_wh=9_004,
        min_soc_wh=2_700,  # the 20 % reserve is above the battery's own 15 %
        max_soc_wh=12_825,
        max_charge_w=5_000,
        max_discharge_w=4_600,
        charge_efficiency=0.95,
        discharge_efficiency=0.95,
        end_soc_wh=2_700,  # default: the lowest allowed
        cycling_price=20_000,
    )
    assert engine_problems(order) == []


def test_a_soc_below_the_reserve_widens_the_band_to_it() -> None:
    low = battery(10)  # 1350 Wh, under the 2700 Wh reserve
    order = build_storage_order(CONFIG, order_id="s", participant=ADDRESS, battery=low)
    assert (order.soc_wh, order.min_soc_wh, order.end_soc_wh) == (1_350, 1_350, 1_350)
    end = dataclasses.replace(CONFIG, end_soc_percent=50.0)
    order = build_storage_order(end, order_id="s", participant=ADDRESS, battery=low)
    assert order.end_soc_wh == 6_750
    assert engine_problems(order) == []


@given(
    capacity=st.integers(1, 2_000_000),
    soc=st.fractions(0, 100),
    low=st.fractions(0, 100),
    high=st.fractions(0, 100),
    charge=st.integers(0, 100_000),
    discharge=st.integers(0, 100_000),
    reserve=st.floats(0, 100),
    end=st.none() | st.floats(0, 100),
    efficiency=st.floats(0.01, 1.0),
    price=st.integers(0, 1_000_000),
)
def test_every_order_built_passes_the_engines_validator(  # noqa: PLR0917 - one draw each
    capacity: int,
    soc: Fraction,
    low: Fraction,
    high: Fraction,
    charge: int,
    discharge: int,
    reserve: float,
    end: float | None,
    efficiency: float,
    price: int,
) -> None:
    low, high = min(low, high), max(low, high)
    values = BatteryValues(
        capacity_wh=capacity,
        soc_percent=soc,
        min_soc_percent=low,
        max_soc_percent=high,
        max_charge_w=charge,
        max_discharge_w=discharge,
    )
    config = StorageConfig(
        cycling_price=price,
        reserve_percent=reserve,
        end_soc_percent=end,
        charge_efficiency=efficiency,
        discharge_efficiency=efficiency,
    )
    order = build_storage_order(config, order_id="s", participant=ADDRESS, battery=values)
    assert engine_problems(order) == []
    assert order.soc_wh == values.soc_wh  # the measured SoC, never moved to fit


def test_bad_settings_are_named() -> None:
    bad = StorageConfig(cycling_price=-1, reserve_percent=120, charge_efficiency=0, drift_wh=0)
    problems = "; ".join(bad.problems())
    for name in ("cycling_price", "reserve_percent", "charge_efficiency", "drift_wh"):
        assert f"storage.{name}" in problems


# -- when it posts ----------------------------------------------------------------------


def test_posts_once_then_amends_only_on_drift_beyond_the_threshold() -> None:
    client = FakeFlexClient()
    a = agent(client)

    async def scenario() -> None:
        assert await a.post_once(T0_MS) is None  # no battery reading yet
        a.observe(HAND, T0_MS)
        first = await a.post_once(T0_MS)
        assert first is not None
        assert first.status == "posted"
        assert await a.post_once(T0_MS + 1_000) is None  # nothing changed: not sent again
        # 9004 -> 9301 Wh (2.2 % of 13.5 kWh = 297 Wh): within 300 Wh
        a.observe(battery(Fraction(689, 10)), T0_MS + 60_000)
        assert await a.post_once(T0_MS + 60_000) is None
        # 9004 -> 9315 Wh: 311 Wh off, beyond 300 Wh
        a.observe(battery(Fraction(690, 10)), T0_MS + 120_000)
        amended = await a.post_once(T0_MS + 120_000)
        assert amended is not None
        assert amended.status == "amended"

    asyncio.run(scenario())
    assert [o.soc_wh for o in client.orders] == [9_004, 9_315]
    assert {o.order_id for o in client.orders} == {storage_order_id("home")}  # amended, not stacked


def test_drift_is_measured_against_the_schedule_when_known() -> None:
    client = FakeFlexClient()
    expected = {T0_MS: 9_004, T0_MS + 900_000: 10_004}
    a = agent(client, expected_soc_wh=expected.get)

    async def scenario() -> None:
        a.observe(HAND, T0_MS)
        await a.post_once(T0_MS)
        # the schedule charged 1000 Wh; the battery did (10 003 Wh): no drift
        a.observe(battery(Fraction(741, 10)), T0_MS + 900_000)
        assert a.battery is not None
        assert a.battery.soc_wh == 10_003
        assert await a.post_once(T0_MS + 900_000) is None
        # it stayed at 9004 Wh while the schedule expected 10 004: amended
        a.observe(HAND, T0_MS + 900_000)
        post = await a.post_once(T0_MS + 900_000)
        assert post is not None
        assert post.status == "amended"

    asyncio.run(scenario())
    assert [o.soc_wh for o in client.orders] == [9_004, 9_004]


def test_a_changed_limit_is_amended_without_drift() -> None:
    client = FakeFlexClient()
    a = agent(client)

    async def scenario() -> None:
        a.observe(HAND, T0_MS)
        await a.post_once(T0_MS)
        a.observe(battery(HAND.soc_percent, max_discharge_w=2_000), T0_MS + 1_000)
        await a.post_once(T0_MS + 1_000)

    asyncio.run(scenario())
    assert [o.max_discharge_w for o in client.orders] == [4_600, 2_000]


def test_never_posts_from_a_quarantined_or_stale_reading() -> None:
    client = FakeFlexClient()
    a = agent(client)

    async def scenario() -> None:
        a.observe(None, T0_MS)  # the reader quarantined the battery
        assert await a.post_once(T0_MS) is None
        a.observe(HAND, T0_MS)
        assert await a.post_once(T0_MS + 121_000) is None  # older than max_age_s = 120 s
        await a.post_once(T0_MS + 1_000)
        a.observe(battery(90), T0_MS + 50_000)  # drifted by 3146 Wh ...
        a.observe(None, T0_MS + 60_000)  # ... but the latest reading is quarantined
        assert await a.post_once(T0_MS + 60_000) is None

    asyncio.run(scenario())
    assert [o.soc_wh for o in client.orders] == [9_004]


def test_a_refusal_is_not_resent_and_an_outage_is_retried() -> None:
    client = FakeFlexClient()
    a = agent(client)

    async def scenario() -> None:
        a.observe(HAND, T0_MS)
        client.fail = grpc.StatusCode.UNAVAILABLE
        failed = await a.post_once(T0_MS)
        assert failed is not None
        assert failed.status == "failed"
        client.fail = grpc.StatusCode.INVALID_ARGUMENT
        refused = await a.post_once(T0_MS)
        assert refused is not None
        assert refused.status == "refused"
        assert "INVALID_ARGUMENT" in refused.detail
        client.fail = None
        assert await a.post_once(T0_MS + 1_000) is None  # that exact order: not again
        a.observe(battery(80), T0_MS + 2_000)
        posted = await a.post_once(T0_MS + 2_000)  # another SoC: sent
        assert posted is not None
        assert posted.status == "posted"

    asyncio.run(scenario())
    assert [o.soc_wh for o in client.orders] == [10_800]


def test_a_restart_neither_reposts_nor_forgets(tmp_path: Path) -> None:
    client = FakeFlexClient()

    async def scenario() -> None:
        store = ReadingBuffer(tmp_path / "gw.sqlite", meter_id="home", first_seq=1)
        a = agent(client, store)
        a.observe(HAND, T0_MS)
        await a.post_once(T0_MS)
        store.close()
        store = ReadingBuffer(tmp_path / "gw.sqlite", meter_id="home", first_seq=1)
        again = agent(client, store)
        assert again.posted == client.orders[0]
        again.observe(HAND, T0_MS + 5_000)
        assert await again.post_once(T0_MS + 5_000) is None
        again.observe(battery(90), T0_MS + 10_000)
        post = await again.post_once(T0_MS + 10_000)
        assert post is not None
        assert post.status == "amended"
        store.close()

    asyncio.run(scenario())
    assert [o.soc_wh for o in client.orders] == [9_004, 12_150]


# -- in the prosumer agent and the gateway --------------------------------------------


def test_the_prosumer_agent_sends_storage_orders_over_its_own_grpc_client(
    tmp_path: Path,
) -> None:
    """Without a client given, storage orders go through the agent's MarketClient
    (tests/market/engine/test_gateway_flex.py runs that client against a real engine)."""

    async def scenario() -> None:
        channel = engine_channel("127.0.0.1:1")
        store = ReadingBuffer(tmp_path / "gw.sqlite", meter_id="home", first_seq=1)
        try:
            prosumer = ProsumerAgent(
                channel,
                Signer(KEY),
                meter_id="home",
                config=AgentConfig(storage=CONFIG, gate_closure_s=300),
                store=store,
                clock=lambda: T0,
            )
            assert prosumer.storage is not None
            assert isinstance(prosumer.storage._client, MarketClient)
        finally:
            store.close()
            await channel.close(None)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("battery_points", "posted"),
    [
        pytest.param({}, [9_004], id="plausible"),
        pytest.param({"SoC": 1001}, [], id="quarantined-soc"),
        pytest.param({"W": 30_000}, [], id="quarantined-power"),
    ],
)
def test_a_gateway_posts_the_battery_it_reads_over_modbus(
    tmp_path: Path, battery_points: dict[str, int], posted: list[int]
) -> None:
    client = FakeFlexClient()

    async def scenario() -> None:
        channel = engine_channel("127.0.0.1:1")  # nothing listens: readings stay buffered
        reader = MeterReader(
            device(with_points(**battery_points)), meter_id="home", clock=lambda: T0
        )
        gateway = Gateway(
            reader,
            Signer(KEY),
            channel,
            meter_id="home",
            buffer_path=tmp_path / "gw.sqlite",
            agent=AgentConfig(storage=CONFIG, gate_closure_s=300, engine_id="e"),
            clock=lambda: T0,
            first_seq=1,
            flex_client=client,
        )
        try:
            assert await gateway.poll_once() is not None  # the meter's reading goes either way
            assert await gateway.trade_once() is None  # storage only: no energy order
        finally:
            await gateway.close()
            await channel.close(None)

    asyncio.run(scenario())
    assert [o.soc_wh for o in client.orders] == posted
    assert all(engine_problems(o) == [] for o in client.orders)
