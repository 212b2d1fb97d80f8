"""The uplink against a real gRPC server: ordered, signed, acknowledged, outage-proof delivery.

The server is :class:`FakeEngine` (tests/meter_adapter/uplink_fake_engine.py),
which keeps the engine's ingest rules; the same properties are checked against
the real engine in tests/integration/test_gateway_engine.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from gridex.signing import Signer

from meter_adapter.uplink import (
    MEMORY,
    BackoffPolicy,
    ReadingBuffer,
    Uplink,
    UplinkConfig,
    engine_channel,
)
from tests.meter_adapter.uplink_fake_engine import FAKE_ENGINE_ID, FakeEngine, wait_until

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
FAST = BackoffPolicy(initial_s=0.01, max_s=0.05)


@dataclass
class Rig:
    engine: FakeEngine
    channel: grpc.aio.Channel
    buffer: ReadingBuffer
    uplink: Uplink
    t: int = 1_700_000_000_000

    def add(self, n: int) -> None:
        for _ in range(n):
            self.t += 5000
            i = self.t // 5000
            self.buffer.append(self.t, i, 2 * i, 100, 3 * i if i % 2 else None)
            self.uplink.notify()


@asynccontextmanager
async def rig(
    path: str | Path = MEMORY,
    *,
    register: bool = True,
    engine_id: str | None = None,
    **config: object,
) -> AsyncIterator[Rig]:
    engine = FakeEngine()
    await engine.start()
    signer = Signer(KEY)
    if register:
        engine.ledger.registered["m1"] = signer.address
    channel = engine_channel(engine.target, max_reconnect_s=0.1)
    buffer = ReadingBuffer(path, meter_id="m1", first_seq=1)
    settings = {"max_batch_readings": 4, "backoff": FAST, **config}
    uplink = Uplink(
        channel,
        buffer,
        signer,
        engine_id=engine_id,
        config=UplinkConfig(**settings),  # type: ignore[arg-type]
    )
    try:
        yield Rig(engine, channel, buffer, uplink)
    finally:
        await uplink.close()
        await channel.close(None)
        await engine.stop()
        buffer.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_delivers_every_reading_once_in_order_in_signed_batches() -> None:
    async def scenario() -> None:
        async with rig() as r:
            r.add(10)
            assert await r.uplink.flush() == 0
            assert r.engine.ledger.seqs("m1") == list(range(1, 11))
            assert r.engine.ledger.batches == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
            applied = r.engine.ledger.applied["m1"]
            # the inverter's counter travels where the source had one, and only there
            assert [x.HasField("production_wh") for x in applied] == [
                x.energy_import_wh % 2 == 1 for x in applied
            ]
            assert all(
                x.production_wh == 3 * x.energy_import_wh for x in applied if x.production_wh
            )
            assert r.buffer.pending_count == 0
            assert r.uplink.stats.readings_acked == 10

    run(scenario)


def test_the_engine_id_is_asked_once_and_every_batch_is_signed_for_it() -> None:
    async def scenario() -> None:
        async with rig() as r:
            r.add(10)
            assert await r.uplink.flush() == 0
            # three batches, each verified by the fake engine against its own id
            assert len(r.engine.ledger.batches) == 3
            assert r.engine.market_info_calls == 1
            assert r.uplink.engine_id == FAKE_ENGINE_ID
        async with rig(engine_id="other-engine") as r:  # a given id is used as given
            r.add(2)
            assert await r.uplink.flush(timeout_s=0.5) == 2  # refused: signed for another engine
            assert r.engine.market_info_calls == 0
            assert r.engine.ledger.seqs("m1") == []  # refused, nothing applied

    run(scenario)


def test_engine_outage_loses_nothing_and_applies_nothing_twice() -> None:
    async def scenario() -> None:
        async with rig() as r:
            r.add(6)
            assert await r.uplink.flush() == 0
            await r.engine.stop()
            r.add(9)
            assert await r.uplink.flush(timeout_s=0.3) == 9  # engine down: all kept
            assert r.uplink.stats.connection_failures > 0
            await r.engine.start()
            r.add(3)
            assert await r.uplink.flush(timeout_s=20) == 0
            ledger = r.engine.ledger
            assert ledger.seqs("m1") == list(range(1, 19))
            assert ledger.duplicates == 0
            # resent in order: the first batch after the outage starts at the oldest pending
            assert ledger.batches[2][0] == 7

    run(scenario)


def test_lost_acks_are_resent_and_acknowledged_as_duplicates() -> None:
    async def scenario() -> None:
        async with rig() as r:
            r.engine.ledger.kill_before_ack = 2  # applied, but the ack never arrives
            r.add(10)
            assert await r.uplink.flush(timeout_s=20) == 0
            assert r.engine.ledger.seqs("m1") == list(range(1, 11))
            assert r.uplink.stats.duplicates > 0  # the engine said so in an ack

    run(scenario)


def test_running_uplink_survives_outage_while_readings_keep_coming() -> None:
    async def scenario() -> None:
        async with rig(max_delay_s=0.0) as r:
            task = asyncio.create_task(r.uplink.run())
            for step in range(30):
                r.add(1)
                if step == 10:
                    await r.engine.stop()
                if step == 20:
                    await r.engine.start()
                await asyncio.sleep(0.01)
            assert await r.uplink.flush(timeout_s=20) == 0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert r.engine.ledger.seqs("m1") == list(range(1, 31))

    run(scenario)


def test_poison_reading_is_isolated_and_quarantined_and_the_stream_moves_on() -> None:
    async def scenario() -> None:
        async with rig() as r:
            r.engine.ledger.poison = {7}
            r.add(12)
            assert await r.uplink.flush(timeout_s=20) == 0
            assert r.engine.ledger.seqs("m1") == [s for s in range(1, 13) if s != 7]
            (q,) = r.buffer.quarantined()
            assert q.reading.seq == 7
            assert q.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert "poisoned" in q.message
            assert r.uplink.stats.quarantined == 1
            # refused exactly quarantine_after times on its own before it was set aside
            assert r.engine.ledger.batches.count([7]) == 3
            r.add(4)
            assert await r.uplink.flush(timeout_s=20) == 0
            assert r.engine.ledger.seqs("m1")[-4:] == [13, 14, 15, 16]

    run(scenario)


@pytest.mark.parametrize("code", [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INTERNAL])
def test_gateway_wide_refusals_keep_everything_until_fixed(code: grpc.StatusCode) -> None:
    async def scenario() -> None:
        async with rig() as r:
            r.engine.ledger.refuse_code = code.value[0]
            r.add(5)
            assert await r.uplink.flush(timeout_s=0.3) == 5
            assert r.buffer.quarantined() == []
            r.engine.ledger.refuse_code = 0  # the operator fixed it
            assert await r.uplink.flush(timeout_s=20) == 0
            assert r.engine.ledger.seqs("m1") == [1, 2, 3, 4, 5]

    run(scenario)


def test_unregistered_key_is_refused_and_nothing_is_dropped() -> None:
    async def scenario() -> None:
        async with rig() as r:
            r.engine.ledger.registered["m1"] = Signer.generate().address
            r.add(3)
            assert await r.uplink.flush(timeout_s=0.3) == 3
            assert r.engine.ledger.seqs("m1") == []
            r.engine.ledger.registered["m1"] = Signer(KEY).address
            assert await r.uplink.flush(timeout_s=20) == 0

    run(scenario)


def test_batches_shrink_to_what_the_engine_accepts() -> None:
    async def scenario() -> None:
        async with rig(max_batch_readings=8) as r:
            r.engine.ledger.max_batch_readings = 3
            r.add(20)
            assert await r.uplink.flush(timeout_s=20) == 0
            assert r.engine.ledger.seqs("m1") == list(range(1, 21))
            assert r.buffer.quarantined() == []

    run(scenario)


def test_running_uplink_fills_batches_and_flush_cuts_the_wait_short() -> None:
    async def scenario() -> None:
        async with rig(max_batch_readings=5, max_delay_s=3600.0) as r:
            task = asyncio.create_task(r.uplink.run())
            r.add(5)  # a full batch goes at once
            await wait_until(lambda: r.buffer.pending_count == 0)
            r.add(2)  # would wait for three more readings, but flush sends them now
            assert await r.uplink.flush(timeout_s=20) == 0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert r.engine.ledger.batches == [[1, 2, 3, 4, 5], [6, 7]]

    run(scenario)


def test_buffer_file_survives_an_uplink_restart(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite"

    async def scenario() -> None:
        async with rig(path) as r:
            r.add(3)
            assert await r.uplink.flush() == 0
            await r.engine.stop()
            r.add(4)
            assert await r.uplink.flush(timeout_s=0.2) == 4
            engine = r.engine
        # a new gateway process on the same file, the engine back
        await engine.start()
        signer = Signer(KEY)
        channel = engine_channel(engine.target, max_reconnect_s=0.1)
        buffer = ReadingBuffer(path, meter_id="m1")
        uplink = Uplink(channel, buffer, signer, config=UplinkConfig(backoff=FAST))
        assert buffer.pending_count == 4
        assert await uplink.flush(timeout_s=20) == 0
        assert engine.ledger.seqs("m1") == [1, 2, 3, 4, 5, 6, 7]
        await uplink.close()
        await channel.close(None)
        await engine.stop()
        buffer.close()

    run(scenario)


def test_config_rules() -> None:
    assert UplinkConfig(max_batch_readings=0, max_delay_s=-1, quarantine_after=0).problems()
    assert UplinkConfig().problems() == []
