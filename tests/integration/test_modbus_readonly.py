"""Read-only by construction: a recording server sees nothing but function codes 3 and 4."""

from __future__ import annotations

import asyncio

import pytest

from meter_adapter.errors import ReadOnlyViolationError
from meter_adapter.maps import builtin_map_names, load_map
from meter_adapter.mbap import ReadRequest
from meter_adapter.modbus_client import ReadOnlyModbusClient, ReconnectPolicy
from meter_adapter.reader import MeterReader
from tests.meter_adapter import dumps
from tests.meter_adapter.fake_modbus import FakeModbusServer

pytestmark = pytest.mark.integration

SUNSPEC = {40000 + i: v for i, v in enumerate(dumps.INVERTER_AND_METER_AT_40000)}
PLAIN_METER = dict.fromkeys(range(256), 0)  # every shipped map reads zeros here


async def exercise_everything() -> tuple[list[int], int]:
    """Discovery, polls, every shipped map, reconnects; then an attempted write."""
    async with FakeModbusServer({**SUNSPEC, **PLAIN_METER}) as server:
        client = ReadOnlyModbusClient(
            "127.0.0.1", server.port, timeout_s=2.0, reconnect=ReconnectPolicy(initial_delay_s=0)
        )
        async with client:
            reader = MeterReader(client, meter_id="sunspec")
            for _ in range(3):
                assert await reader.poll() is not None
            for name in builtin_map_names():
                map_reader = MeterReader(client, meter_id=name, register_map=load_map(name))
                assert await map_reader.poll() is not None
            await client.close()
            assert await reader.poll() is not None  # after a reconnect too
            seen_before_write = len(server.requests)
            # the only framing the client has refuses anything but a read
            for code in (5, 6, 15, 16):
                with pytest.raises(ReadOnlyViolationError):
                    ReadRequest(
                        transaction_id=1, unit_id=1, function_code=code, address=40000, count=1
                    )
            await asyncio.sleep(0.05)
            assert len(server.requests) == seen_before_write
        return [r.function_code for r in server.requests], server.connections


def test_only_read_function_codes_reach_the_device() -> None:
    codes, connections = asyncio.run(exercise_everything())
    assert set(codes) == {3, 4}  # holding for SunSpec and EM24, input for the Eastron maps
    assert connections == 2
    assert len(codes) > 20
