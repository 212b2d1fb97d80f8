"""A read-only Modbus TCP client that survives misbehaving devices.

This is the adapter's single boundary with pymodbus on the client side:
pymodbus exceptions are mapped to :mod:`meter_adapter.errors` here and
nowhere else.

Read-only by construction: the client exposes no write method, builds only
read-holding-registers (3) and read-input-registers (4) requests, and every
PDU pymodbus is about to put on the wire passes a guard that raises
:class:`~meter_adapter.errors.ReadOnlyViolationError` for any other function
code.

Robustness: every request has a timeout; any failure other than a clean
Modbus exception response closes the connection (a desynchronised stream is
never reused), and the next read reconnects after an exponential backoff
that grows with consecutive failures and resets on the first success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
)

from meter_adapter.errors import (
    DecodeError,
    DeviceError,
    DeviceTimeoutError,
    MeterConfigError,
    ModbusExceptionError,
    ReadOnlyViolationError,
)
from meter_adapter.registers import MAX_REGISTERS_PER_READ, RegisterType, check_span

__all__ = ["READ_FUNCTION_CODES", "ReadOnlyModbusClient", "ReconnectPolicy"]

logger = logging.getLogger(__name__)

READ_FUNCTION_CODES = frozenset({3, 4})
"""The only function codes the adapter ever sends: read holding / input registers."""

_EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x06: "server device busy",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond (wrong unit id?)",
}

_REQUESTS: dict[RegisterType, type[ModbusPDU]] = {
    RegisterType.HOLDING: ReadHoldingRegistersRequest,
    RegisterType.INPUT: ReadInputRegistersRequest,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """Exponential backoff between connection attempts.

    Attributes:
        initial_delay_s: Wait before reconnecting after the first failure, s.
        max_delay_s: Upper bound of the wait, s.
        multiplier: Growth of the wait per further consecutive failure.
    """

    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.initial_delay_s < 0 or self.max_delay_s < self.initial_delay_s:
            raise MeterConfigError("need 0 <= initial_delay_s <= max_delay_s")
        if self.multiplier < 1:
            raise MeterConfigError("backoff multiplier must be at least 1")

    def delay_s(self, consecutive_failures: int) -> float:
        """Wait before the next attempt after ``consecutive_failures`` failures, s."""
        if consecutive_failures <= 0:
            return 0.0
        exponent = min(consecutive_failures - 1, 64)  # caps the float, not the delay
        return min(self.initial_delay_s * self.multiplier**exponent, self.max_delay_s)


class ReadOnlyModbusClient:
    """Reads registers from one unit of a Modbus TCP device.

    Implements :class:`~meter_adapter.registers.RegisterReader`. Connects
    lazily on the first read; use it as an async context manager or call
    :meth:`close`.

    Args:
        host: Device host name or address.
        port: Device TCP port.
        unit_id: Modbus unit (slave) id, 0..255.
        timeout_s: Time allowed to connect and for each response, s.
        reconnect: Backoff between connection attempts.
        sleep: Awaitable sleep used for the backoff (a test can record it).
    """

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        unit_id: int = 1,
        timeout_s: float = 2.0,
        reconnect: ReconnectPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 <= unit_id <= 255:
            raise MeterConfigError(f"unit id {unit_id} is outside 0..255")
        if not 0 < port <= 0xFFFF:
            raise MeterConfigError(f"port {port} is outside 1..65535")
        if timeout_s <= 0:
            raise MeterConfigError("timeout_s must be positive")
        self.host = host
        self.port = port
        self.unit_id = unit_id
        self.timeout_s = timeout_s
        self.reconnect = reconnect or ReconnectPolicy()
        self._sleep = sleep
        self._client: AsyncModbusTcpClient | None = None
        self._failures = 0

    def __repr__(self) -> str:
        return f"ReadOnlyModbusClient({self.host}:{self.port}, unit {self.unit_id})"

    @property
    def connected(self) -> bool:
        """Whether a connection is currently open."""
        return self._client is not None and self._client.connected

    @property
    def consecutive_failures(self) -> int:
        """Failed connects or requests since the last successful read."""
        return self._failures

    async def __aenter__(self) -> ReadOnlyModbusClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection, if any; the next read reconnects."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def connect(self) -> None:
        """Open the connection now, after the backoff the failure count calls for.

        Raises:
            DeviceError: The device refused or did not accept the connection.
        """
        if self.connected:
            return
        await self.close()
        delay_s = self.reconnect.delay_s(self._failures)
        if delay_s > 0:
            logger.info("%r: reconnecting in %.2f s", self, delay_s)
            await self._sleep(delay_s)
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # reconnecting is ours to do, with our backoff
            trace_pdu=_guard_read_only,
        )
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=2 * self.timeout_s)
        except (TimeoutError, OSError, ModbusException) as exc:
            ok = False
            logger.debug("%r: connect raised %r", self, exc)
        if not ok:
            client.close()
            self._failures += 1
            raise DeviceError(f"cannot connect to {self.host}:{self.port}")
        self._client = client
        logger.debug("%r: connected", self)

    async def read(self, register_type: RegisterType, address: int, count: int) -> list[int]:
        """Read ``count`` registers from ``address``.

        Returns:
            Exactly ``count`` values, each 0..65535.

        Raises:
            MeterConfigError: The span is not a valid single request.
            ModbusExceptionError: The device answered with an exception code
                (the connection stays open).
            DeviceTimeoutError: No valid answer in time (connection closed).
            DeviceError: Connection refused or lost (connection closed).
            DecodeError: The answer does not match the request (connection closed).
            ReadOnlyViolationError: Never in practice: the guard against writes.
        """
        check_span(address, count, max_count=MAX_REGISTERS_PER_READ)
        request = _REQUESTS[register_type](address=address, count=count, dev_id=self.unit_id)
        if request.function_code not in READ_FUNCTION_CODES:  # pragma: no cover - by construction
            raise ReadOnlyViolationError(f"refusing to send function code {request.function_code}")
        await self.connect()
        client = self._client
        if client is None:  # pragma: no cover - connect() either sets it or raises
            raise DeviceError(f"not connected to {self.host}:{self.port}")
        try:
            response = await asyncio.wait_for(
                client.execute(False, request), timeout=2 * self.timeout_s + 0.5
            )
        except TimeoutError as exc:
            raise await self._fail(DeviceTimeoutError(f"{self!r}: no response in time")) from exc
        except ModbusException as exc:
            text = str(exc)
            error: DeviceError = (
                DeviceTimeoutError(f"{self!r}: {text}")
                if "No response" in text
                else DeviceError(f"{self!r}: {text}")
            )
            raise await self._fail(error) from exc
        except OSError as exc:
            raise await self._fail(DeviceError(f"{self!r}: {exc}")) from exc
        return await self._check_response(request, response)

    async def _check_response(self, request: ModbusPDU, response: ModbusPDU | None) -> list[int]:
        if response is None:
            raise await self._fail(DeviceTimeoutError(f"{self!r}: no response"))
        if response.isError():
            if response.function_code & 0x7F != request.function_code:
                raise await self._fail(DecodeError(f"{self!r}: exception for another function"))
            self._failures = 0  # the device is alive and talking sense
            code = response.exception_code
            raise ModbusExceptionError(
                f"{self!r}: exception {code} ({_EXCEPTION_NAMES.get(code, 'unknown')}) "
                f"reading {request.count} registers at {request.address}",
                function_code=request.function_code,
                exception_code=code,
            )
        if response.function_code != request.function_code:
            raise await self._fail(
                DecodeError(f"{self!r}: answer has function code {response.function_code}")
            )
        registers = list(response.registers)
        if len(registers) != request.count:
            raise await self._fail(
                DecodeError(f"{self!r}: asked for {request.count} registers, got {len(registers)}")
            )
        if any(not 0 <= value <= 0xFFFF for value in registers):  # pragma: no cover - framing
            raise await self._fail(DecodeError(f"{self!r}: register value out of range"))
        self._failures = 0
        return registers

    async def _fail(self, error: DeviceError | DecodeError) -> DeviceError | DecodeError:
        """Count the failure, drop the connection, and hand back ``error`` to raise."""
        self._failures += 1
        logger.warning("%s (failure %d, reconnecting)", error, self._failures)
        await self.close()
        return error


def _guard_read_only(sending: bool, pdu: ModbusPDU) -> ModbusPDU:
    """pymodbus ``trace_pdu`` hook: the last check before a PDU is framed and sent."""
    if sending and pdu.function_code not in READ_FUNCTION_CODES:
        raise ReadOnlyViolationError(f"refusing to send function code {pdu.function_code}")
    return pdu
