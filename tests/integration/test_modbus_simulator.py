"""The SunSpec simulator served over real Modbus TCP on 127.0.0.1, read like a real device."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from meter_adapter.clock import SimulatedClock
from meter_adapter.errors import DeviceError, ModbusExceptionError
from meter_adapter.modbus_client import ReadOnlyModbusClient, ReconnectPolicy
from meter_adapter.reader import MeterReader
from meter_adapter.reading import Reading
from meter_adapter.registers import RegisterType
from meter_adapter.simulation import (
    HouseholdProfile,
    PvProfile,
    SimulatedMeter,
    SunSpecSimulator,
    start_simulator_server,
)

pytestmark = pytest.mark.integration

SUNRISE = datetime(2024, 6, 21, 3, 0, tzinfo=UTC)


def simulator(clock: SimulatedClock, **counters: int) -> SunSpecSimulator:
    meter = SimulatedMeter(
        household=HouseholdProfile(seed=5), pv=PvProfile(seed=5), start=clock(), **counters
    )
    return SunSpecSimulator(meter, clock)


def test_a_simulated_day_read_over_tcp() -> None:
    """Poll every 15 simulated minutes for a day; readings follow the simulated home exactly."""
    clock = SimulatedClock(SUNRISE)
    sim = simulator(clock, initial_import_wh=2**32 - 2000)  # import counter rolls over overnight

    async def run() -> tuple[dict[str, Any], list[Reading]]:
        server = await start_simulator_server(sim)
        async with server, ReadOnlyModbusClient(server.host, server.port) as client:
            reader = MeterReader(client, meter_id="sim", clock=clock)
            description = await reader.describe()
            readings = []
            for _ in range(96):
                reading = await reader.poll()
                assert reading is not None
                state = sim.meter.state
                assert reading.power_w == state.net_power_w
                assert reading.production_w == state.production_w
                assert reading.energy_export_wh == state.export_wh
                assert reading.energy_import_wh == state.import_wh
                assert reading.production_wh == state.production_wh
                readings.append(reading)
                clock.advance(timedelta(minutes=15))
            assert server.requests > 96
        return description, readings

    description, readings = asyncio.run(run())
    assert [m["id"] for m in description["models"]] == [1, 103, 203]
    assert [r.sequence for r in readings] == list(range(1, 97))
    for before, after in itertools.pairwise(readings):
        assert after.energy_import_wh >= before.energy_import_wh
        assert after.energy_export_wh >= before.energy_export_wh
    assert readings[-1].energy_import_wh > 2**32  # rolled over on the wire, not in the reading
    assert max(r.production_w or 0 for r in readings) > 1000
    assert readings[-1].energy_export_wh > 5000


def test_simulator_refuses_writes_and_other_units() -> None:
    clock = SimulatedClock(SUNRISE)

    async def run() -> None:
        server = await start_simulator_server(simulator(clock))
        async with server:
            raw = AsyncModbusTcpClient(server.host, port=server.port, timeout=2, retries=0)
            await raw.connect()
            answer = await raw.write_register(40002, 7, device_id=1)
            assert answer.isError()
            before = await raw.read_holding_registers(40002, count=2, device_id=1)
            assert before.registers == [1, 66]
            raw.close()
            async with ReadOnlyModbusClient(server.host, server.port, unit_id=9) as wrong_unit:
                with pytest.raises(ModbusExceptionError, match="wrong unit id") as caught:
                    await wrong_unit.read(RegisterType.HOLDING, 40000, 2)
                assert caught.value.exception_code == 0x0B

    asyncio.run(run())


def test_reconnects_with_backoff_after_the_device_restarts() -> None:
    clock = SimulatedClock(SUNRISE)
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> list[Reading | None]:
        sim = simulator(clock)
        server = await start_simulator_server(sim)
        port = server.port
        client = ReadOnlyModbusClient(
            server.host,
            port,
            timeout_s=1.0,
            reconnect=ReconnectPolicy(initial_delay_s=0.5, max_delay_s=4.0),
            sleep=fake_sleep,
        )
        reader = MeterReader(client, meter_id="sim", clock=clock)
        results = [await reader.poll()]
        await server.stop()
        for _ in range(5):  # the device is gone: skipped polls, growing backoff
            clock.advance(60)
            results.append(await reader.poll())
        server = await start_simulator_server(sim, port=port)
        clock.advance(60)
        results.append(await reader.poll())
        assert client.consecutive_failures == 0
        await client.close()
        await server.stop()
        return results

    results = asyncio.run(run())
    assert results[0] is not None
    assert results[1:6] == [None] * 5
    assert results[6] is not None
    assert results[6].sequence == 2
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_unreachable_device() -> None:
    async def run() -> None:
        async with ReadOnlyModbusClient("127.0.0.1", 1, timeout_s=1.0) as client:
            with pytest.raises(DeviceError, match="cannot connect"):
                await client.read(RegisterType.HOLDING, 40000, 2)

    asyncio.run(run())
