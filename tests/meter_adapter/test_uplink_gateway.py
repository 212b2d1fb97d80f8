"""The Gateway API for in-process fleets, and ``gridex-meter run`` argument parsing."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gridex.signing import Signer

from meter_adapter.agent import AgentConfig
from meter_adapter.cli import build_parser
from meter_adapter.commands.run import default_buffer_path
from meter_adapter.errors import MeterConfigError
from meter_adapter.reading import Reading
from meter_adapter.simulation import HouseholdProfile, PvProfile, SimulatedMeter
from meter_adapter.uplink import (
    MEMORY,
    BackoffPolicy,
    ReadingBuffer,
    SimulatedSource,
    UplinkConfig,
    clock_from_ms,
    engine_channel,
)
from meter_adapter.uplink.gateway import Gateway
from tests.meter_adapter.uplink_fake_engine import FAKE_ENGINE_ID, FakeEngine, wait_until

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
I_MS = 900_000
T0_MS = (1944000 + 40) * I_MS  # noon in Berlin
FAST = UplinkConfig(backoff=BackoffPolicy(initial_s=0.01, max_s=0.05))


class ScriptedSource:
    """Returns the readings it was given, then None."""

    def __init__(self, readings: list[Reading | None]) -> None:
        self.readings = readings

    async def poll(self) -> Reading | None:
        return self.readings.pop(0) if self.readings else None


def reading(t_s: int, imp: int, exp: int) -> Reading:
    when = datetime(2025, 6, 11, tzinfo=UTC) + timedelta(seconds=t_s)
    return Reading(
        meter_id="m1",
        sequence=99,  # ignored: the gateway numbers readings itself
        timestamp=when,
        energy_import_wh=imp,
        energy_export_wh=exp,
        power_w=0,
    )


def test_poll_once_buffers_what_can_follow_and_skips_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        source = ScriptedSource(
            [
                reading(0, 10, 10),
                reading(0, 10, 10),  # the clock has not moved
                None,  # the device did not answer
                reading(60, 9, 10),  # import went down
                reading(120, 9, 10),  # still down: not logged again
                reading(180, 11, 12),
            ]
        )
        channel = engine_channel("127.0.0.1:1")
        gw = Gateway(source, KEY, channel, meter_id="m1", buffer_path=MEMORY, first_seq=1)
        got = [await gw.poll_once() for _ in range(6)]
        assert [r.seq if r else None for r in got] == [1, None, None, None, None, 2]
        assert gw.skipped == 4
        assert gw.buffer.pending_count == 2
        await gw.close()
        await channel.close(None)

    with caplog.at_level(logging.WARNING, logger="meter_adapter.uplink.gateway"):
        asyncio.run(scenario())
    assert len([r for r in caplog.records if "counters went down" in r.message]) == 1


def test_construction_checks_key_and_buffer(tmp_path: Path) -> None:
    async def scenario() -> None:
        channel = engine_channel("127.0.0.1:1")
        source = ScriptedSource([])
        with pytest.raises(MeterConfigError, match="key"):
            Gateway(source, "0x12", channel, meter_id="m1", buffer_path=MEMORY)
        buffer = ReadingBuffer(tmp_path / "b.sqlite", meter_id="other")
        with pytest.raises(MeterConfigError, match="belongs to meter 'other'"):
            Gateway(source, KEY, channel, meter_id="m1", buffer_path=buffer)
        with pytest.raises(MeterConfigError, match="price limit"):
            Gateway(source, KEY, channel, meter_id="m1", buffer_path=MEMORY, agent=AgentConfig())
        await channel.close(None)

    asyncio.run(scenario())


def test_a_stepped_fleet_on_the_engines_clock_delivers_and_trades() -> None:
    async def scenario() -> None:
        engine = FakeEngine()
        await engine.start()
        now = [T0_MS]
        clock = clock_from_ms(lambda: now[0])
        channel = engine_channel(engine.target, max_reconnect_s=0.1)
        fleet = []
        for i in range(3):
            signer = Signer(f"0x{i + 1:064x}")
            engine.ledger.registered[f"home-{i}"] = signer.address
            meter = SimulatedMeter(
                household=HouseholdProfile(seed=i),
                pv=PvProfile(seed=i) if i else None,  # home-0 has no PV: it buys
                start=clock(),
            )
            fleet.append(
                Gateway(
                    SimulatedSource(meter, clock, meter_id=f"home-{i}"),
                    signer,
                    channel,
                    meter_id=f"home-{i}",
                    buffer_path=MEMORY,
                    clock=clock,
                    agent=AgentConfig(
                        sell_min_price=80_000,
                        buy_max_price=300_000,
                        gate_closure_s=300,
                        engine_id=FAKE_ENGINE_ID,
                    ),
                    uplink=FAST,
                    first_seq=1,
                )
            )
        for _ in range(3 * 15):  # three intervals, a reading a minute
            now[0] += 60_000
            await asyncio.gather(*(gw.poll_once() for gw in fleet))
            assert await asyncio.gather(*(gw.flush() for gw in fleet)) == [0, 0, 0]
            await asyncio.gather(*(gw.trade_once() for gw in fleet))
        for i in range(3):
            assert engine.ledger.seqs(f"home-{i}") == list(range(1, 46))
        sides = {(o.participant, o.interval): o.side for o in engine.market.orders.values()}
        buyers = {p for (p, _), side in sides.items() if side == 1}
        assert Signer(f"0x{1:064x}").address.lower() in buyers
        assert len({k for _, k in sides}) >= 2  # orders for more than one interval
        for gw in fleet:
            await gw.close()
        await channel.close(None)
        await engine.stop()

    asyncio.run(scenario())


def test_run_polls_delivers_and_stops_cleanly(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = FakeEngine()
        await engine.start()
        engine.ledger.registered["m1"] = Signer(KEY).address
        t = [0]

        def step() -> Reading:
            t[0] += 60
            return reading(t[0], t[0], 2 * t[0])

        class Counting:
            async def poll(self) -> Reading | None:
                return step()

        channel = engine_channel(engine.target, max_reconnect_s=0.1)
        gw = Gateway(
            Counting(),
            KEY,
            channel,
            meter_id="m1",
            buffer_path=tmp_path / "gw.sqlite",
            uplink=UplinkConfig(max_delay_s=0.0, backoff=BackoffPolicy(initial_s=0.01)),
            first_seq=1,
        )
        task = asyncio.create_task(gw.run(poll_interval_s=0.01))
        await wait_until(lambda: len(engine.ledger.seqs("m1")) >= 20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await gw.flush(timeout_s=20) == 0
        seqs = engine.ledger.seqs("m1")
        assert seqs == list(range(1, len(seqs) + 1))
        await gw.close()
        await channel.close(None)
        await engine.stop()

    asyncio.run(scenario())


def test_run_command_arguments() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "run",
            "--simulate",
            "--engine",
            "h:50051",
            "--key",
            "k",
            "--agent",
            "--buy-max-price",
            "9",
        ]
    )
    assert (args.simulate, args.engine, args.agent, args.buy_max_price) == (
        True,
        ("h", 50051),
        True,
        9,
    )
    assert args.clock == "wall"
    for bad in (
        ["run", "--engine", "h:1", "--key", "k"],  # no meter
        ["run", "--simulate", "--modbus", "m:502", "--engine", "h:1", "--key", "k"],  # two
        ["run", "--simulate", "--engine", "h", "--key", "k"],  # no engine port
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_default_buffer_path_is_per_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    assert default_buffer_path("modbus://10.0.0.5:502/1") == Path(
        "/state/gridex-meter/modbus___10.0.0.5_502_1.sqlite"
    )
