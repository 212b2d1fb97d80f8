"""The read-only client without a network: backoff policy, argument checks, reads only."""

from __future__ import annotations

import pytest

from meter_adapter.errors import MeterConfigError, ReadOnlyViolationError
from meter_adapter.mbap import ReadRequest
from meter_adapter.modbus_client import READ_FUNCTION_CODES, ReadOnlyModbusClient, ReconnectPolicy


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = ReconnectPolicy(initial_delay_s=0.5, max_delay_s=30.0)
    assert [policy.delay_s(n) for n in range(9)] == [0, 0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.delay_s(10_000) == 30.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay_s": -1.0},
        {"initial_delay_s": 5.0, "max_delay_s": 1.0},
        {"multiplier": 0.5},
    ],
)
def test_bad_backoff(kwargs: dict[str, float]) -> None:
    with pytest.raises(MeterConfigError):
        ReconnectPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"unit_id": 256}, {"port": 0}, {"port": 70000}, {"timeout_s": 0.0}, {"retries": -1}],
)
def test_bad_client_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(MeterConfigError):
        ReadOnlyModbusClient("127.0.0.1", **kwargs)  # type: ignore[arg-type]


def test_client_has_no_way_to_write() -> None:
    public = {name for name in dir(ReadOnlyModbusClient) if not name.startswith("_")}
    assert public == {"close", "connect", "connected", "consecutive_failures", "read"}
    assert {3, 4} == READ_FUNCTION_CODES


@pytest.mark.parametrize("function_code", [1, 2, 5, 6, 15, 16, 0x17, 0x2B, 0x83])
def test_only_reads_can_be_framed(function_code: int) -> None:
    with pytest.raises(ReadOnlyViolationError):
        ReadRequest(transaction_id=1, unit_id=1, function_code=function_code, address=0, count=1)


def test_reads_are_framed_as_modbus_tcp() -> None:
    request = ReadRequest(transaction_id=0x1234, unit_id=7, function_code=4, address=40000, count=3)
    assert request.encode() == bytes.fromhex("1234 0000 0006 07 04 9c40 0003")
