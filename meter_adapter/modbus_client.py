"""A read-only Modbus TCP client that survives misbehaving and hostile devices.

Read-only by construction: the client exposes no write method and frames
requests only through :class:`~meter_adapter.mbap.ReadRequest`, which refuses
any function code but 3 (read holding registers) and 4 (read input
registers) with :class:`~meter_adapter.errors.ReadOnlyViolationError`.

Strict framing: the transport is a plain asyncio protocol and every answer
goes through :mod:`meter_adapter.mbap` — transaction id, protocol id, unit
id, function code, MBAP length and byte count must match the request
exactly, and no byte may follow the frame. (pymodbus's client framer
accepts transaction id 0 for any request and resynchronises past junk, which
reads registers shifted; it is not used here.)

Robustness: every attempt has a timeout; a framing error, a timeout or a
dropped connection closes the connection (a desynchronised stream is never
reused) and the read is retried on a fresh connection up to ``retries``
times, so one read never takes longer than ``(1 + retries)`` attempts of
``timeout_s`` each (plus the backoff before the first). Across reads, the
next connection waits an exponential backoff that grows with consecutive
failures and resets on the first success. A clean Modbus exception answer
keeps the connection. Failures are logged once per episode (the first
failure at WARNING, the recovery at INFO with the count), never per frame.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from meter_adapter.errors import (
    DecodeError,
    DeviceError,
    DeviceTimeoutError,
    MeterConfigError,
    ModbusExceptionError,
)
from meter_adapter.mbap import (
    HEADER_SIZE,
    READ_FUNCTION_CODES,
    FramingError,
    ReadRequest,
    check_header,
    decode_body,
)
from meter_adapter.registers import MAX_REGISTERS_PER_READ, RegisterType, check_span

__all__ = ["READ_FUNCTION_CODES", "Episode", "ReadOnlyModbusClient", "ReconnectPolicy"]

logger = logging.getLogger(__name__)

_MAX_BUFFERED = 4096  # bytes a device may send before we stop listening: a flood, not an answer


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


class Episode:
    """Logs a run of failures once: the first at WARNING, the recovery at INFO.

    Args:
        log: The logger to write to.
        subject: Names the device or meter in every line.
    """

    def __init__(self, log: logging.Logger, subject: str) -> None:
        self._log = log
        self._subject = subject
        self.failures = 0
        """Failures in the current episode (0: none running)."""

    def failed(self, what: str, error: BaseException) -> None:
        """Count a failure; log it only if it starts an episode."""
        self.failures += 1
        if self.failures == 1:
            self._log.warning("%s: %s: %s (further failures logged at DEBUG)",
                              self._subject, what, error)  # fmt: skip
        else:
            self._log.debug("%s: %s (failure %d): %s", self._subject, what, self.failures, error)

    def recovered(self) -> None:
        """End the episode, if one is running, with one line."""
        if self.failures:
            self._log.info("%s: working again after %d failures", self._subject, self.failures)
            self.failures = 0


class _Connection(asyncio.Protocol):
    """A TCP connection that buffers what the device sends until a read asks for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.lost: BaseException | None = None
        self.closed = False
        self._wake = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _MAX_BUFFERED and self.transport is not None:
            self.transport.pause_reading()  # the read in progress will refuse it
        self._wake.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self._wake.set()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # no lingering half-read frames
        self.closed = True

    async def take(self, size: int) -> bytes:
        """The next ``size`` bytes (wrap in a timeout).

        Raises:
            DeviceError: The device closed the connection first.
            FramingError: The device floods more than any answer can hold.
        """
        while len(self.buffer) < size:
            if len(self.buffer) > _MAX_BUFFERED:
                raise FramingError("length", f"device sent more than {_MAX_BUFFERED} bytes")
            if self.closed:
                got = len(self.buffer)
                raise DeviceError(f"connection closed after {got} of {size} bytes of an answer")
            self._wake.clear()
            await self._wake.wait()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


class ReadOnlyModbusClient:
    """Reads registers from one unit of a Modbus TCP device.

    Implements :class:`~meter_adapter.registers.RegisterReader`. Connects
    lazily on the first read; use it as an async context manager or call
    :meth:`close`.

    Args:
        host: Device host name or address.
        port: Device TCP port.
        unit_id: Modbus unit (slave) id, 0..255.
        timeout_s: Time allowed to connect, and for each answer, s.
        retries: Further attempts of a read, each on a fresh connection,
            after a framing error, a time-out or a dropped connection.
        reconnect: Backoff between connection attempts across reads.
        sleep: Awaitable sleep used for the backoff (a test can record it).
    """

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        unit_id: int = 1,
        timeout_s: float = 2.0,
        retries: int = 1,
        reconnect: ReconnectPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 <= unit_id <= 255:
            raise MeterConfigError(f"unit id {unit_id} is outside 0..255")
        if not 0 < port <= 0xFFFF:
            raise MeterConfigError(f"port {port} is outside 1..65535")
        if timeout_s <= 0:
            raise MeterConfigError("timeout_s must be positive")
        if not 0 <= retries <= 10:
            raise MeterConfigError("retries must be in 0..10")
        self.host = host
        self.port = port
        self.unit_id = unit_id
        self.timeout_s = timeout_s
        self.retries = retries
        self.reconnect = reconnect or ReconnectPolicy()
        self._sleep = sleep
        self._connection: _Connection | None = None
        self._failures = 0
        self._transaction_ids = itertools.cycle(range(1, 0x10000))
        self._episode = Episode(logger, repr(self))
        self.framing_errors = 0
        """Answers refused for their framing since the client was made."""

    def __repr__(self) -> str:
        return f"ReadOnlyModbusClient({self.host}:{self.port}, unit {self.unit_id})"

    @property
    def connected(self) -> bool:
        """Whether a connection is currently open."""
        return self._connection is not None and not self._connection.closed

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
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

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
            logger.debug("%r: reconnecting in %.2f s", self, delay_s)
            await self._sleep(delay_s)
        try:
            await self._open()
        except DeviceError as exc:
            self._failed(exc)
            raise

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port), timeout=self.timeout_s
            )
        except (TimeoutError, OSError) as exc:
            raise DeviceError(f"cannot connect to {self.host}:{self.port}: {exc!r}") from exc
        self._connection = connection
        logger.debug("%r: connected", self)

    def _failed(self, error: BaseException) -> None:
        self._failures += 1
        self._episode.failed("read failed", error)

    async def read(self, register_type: RegisterType, address: int, count: int) -> list[int]:
        """Read ``count`` registers from ``address``.

        Returns:
            Exactly ``count`` values, each 0..65535, from an answer framed exactly.

        Raises:
            MeterConfigError: The span is not a valid single request.
            ModbusExceptionError: The device answered with an exception code
                (the connection stays open).
            DeviceTimeoutError: No answer in time on the last attempt.
            DeviceError: Connection refused, or lost on the last attempt.
            FramingError: The last attempt's answer broke the framing rules
                (a :class:`~meter_adapter.errors.DecodeError`).
        """
        check_span(address, count, max_count=MAX_REGISTERS_PER_READ)
        await self.connect()  # a refused connection is not retried within the read
        for attempt in range(self.retries + 1):
            try:
                if not self.connected:
                    await self._open()  # a retry within this read: no backoff wait
                registers = await self._exchange(register_type, address, count)
            except ModbusExceptionError:
                self._failures = 0  # the device is alive and framing its answers correctly
                self._episode.recovered()
                raise
            except (DeviceError, DecodeError) as exc:
                if isinstance(exc, FramingError):
                    self.framing_errors += 1
                await self.close()
                if attempt == self.retries:
                    self._failed(exc)
                    raise
                logger.debug("%r: %s; connection reset, retrying", self, exc)
                continue
            self._failures = 0
            self._episode.recovered()
            return registers
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, register_type: RegisterType, address: int, count: int) -> list[int]:
        connection = self._connection
        if connection is None or connection.transport is None:  # pragma: no cover - by _open
            raise DeviceError(f"{self!r}: not connected")
        if connection.buffer:
            raise FramingError("trailing_bytes", f"{len(connection.buffer)} unrequested bytes "
                               "arrived before the request")  # fmt: skip
        request = ReadRequest(
            transaction_id=next(self._transaction_ids),
            unit_id=self.unit_id,
            function_code=register_type.function_code,
            address=address,
            count=count,
        )
        connection.transport.write(request.encode())
        try:
            async with asyncio.timeout(self.timeout_s):
                header = await connection.take(HEADER_SIZE)
                body = await connection.take(check_header(request, header))
        except TimeoutError as exc:
            raise DeviceTimeoutError(
                f"{self!r}: no complete answer in {self.timeout_s:g} s"
            ) from exc
        registers = decode_body(request, body)
        if connection.buffer:
            raise FramingError("trailing_bytes", f"{len(connection.buffer)} bytes after the answer")
        return registers
