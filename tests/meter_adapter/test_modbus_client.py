"""The read-only client without a network: backoff policy, argument checks, the write guard."""

from __future__ import annotations

import pytest
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)

from meter_adapter import modbus_client
from meter_adapter.errors import MeterConfigError, ReadOnlyViolationError
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
    "kwargs", [{"unit_id": 256}, {"port": 0}, {"port": 70000}, {"timeout_s": 0.0}]
)
def test_bad_client_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(MeterConfigError):
        ReadOnlyModbusClient("127.0.0.1", **kwargs)  # type: ignore[arg-type]


def test_client_has_no_way_to_write() -> None:
    public = {name for name in dir(ReadOnlyModbusClient) if not name.startswith("_")}
    assert public == {"close", "connect", "connected", "consecutive_failures", "read"}
    assert {3, 4} == READ_FUNCTION_CODES


@pytest.mark.parametrize(
    "pdu",
    [
        WriteSingleRegisterRequest(address=40000, registers=[1], dev_id=1),
        WriteMultipleRegistersRequest(address=40000, registers=[1, 2], dev_id=1),
    ],
)
def test_guard_refuses_every_write_pdu(pdu: ModbusPDU) -> None:
    with pytest.raises(ReadOnlyViolationError):
        modbus_client._guard_read_only(True, pdu)


def test_guard_lets_reads_and_answers_through() -> None:
    for pdu in (ReadHoldingRegistersRequest(address=0, count=1), ReadInputRegistersRequest()):
        assert modbus_client._guard_read_only(True, pdu) is pdu
    answer = WriteSingleRegisterRequest(address=0, registers=[1])
    assert modbus_client._guard_read_only(False, answer) is answer  # receiving is harmless
