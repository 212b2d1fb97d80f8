"""Finding a SunSpec device's models: the ``SunS`` marker, then the chain of model headers.

A SunSpec device keeps its models in holding registers: the two registers
``SunS`` at a base address (40000, 0 or 50000), then models back to back,
each a header ``(ID, L)`` followed by ``L`` data registers, and finally the
end marker ``ID = 0xFFFF``.

Discovery survives a busy device: an exception "acknowledge" (5) or "server
device busy" (6), a time-out or a dropped connection while reading a marker
or a header is retried with exponential back-off (:class:`DiscoveryRetry`)
instead of ending the chain, and if the retries run out discovery fails (the
reader tries again at its next poll) rather than returning a shortened map.
Only "illegal function" (1) and "illegal data address" (2) end a chain
without its end marker, and even then a model found by an earlier discovery
(``known``) after that point is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from meter_adapter.errors import (
    DecodeError,
    DeviceError,
    ModbusExceptionError,
    SunSpecNotFoundError,
)
from meter_adapter.registers import RegisterReader, RegisterType, read_span
from meter_adapter.sunspec.models import BASE_ADDRESSES, END_MODEL_ID, SUNS_MARKER

__all__ = ["MAX_MODELS", "TRANSIENT_CODES", "DiscoveryRetry", "ModelHeader", "SunSpecMap",
           "discover", "read_model"]  # fmt: skip

logger = logging.getLogger(__name__)

MAX_MODELS = 64
"""A chain longer than this is taken to be garbage rather than a device."""

TRANSIENT_CODES = frozenset({0x05, 0x06})
"""Exception codes that mean "ask again later": acknowledge, server device busy."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryRetry:
    """Back-off for transient failures while discovering.

    Attributes:
        attempts: Tries of one read in all (at least 1).
        initial_delay_s: Wait after the first failure, s; doubled after each further one.
        max_delay_s: Upper bound of one wait, s.
        sleep: The awaitable sleep (a test can record it).
    """

    attempts: int = 5
    initial_delay_s: float = 0.2
    max_delay_s: float = 5.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def delay_s(self, failures: int) -> float:
        """Wait after ``failures`` consecutive failures, s."""
        return float(min(self.initial_delay_s * 2 ** min(failures - 1, 32), self.max_delay_s))


def _transient(exc: DeviceError) -> bool:
    if isinstance(exc, ModbusExceptionError):
        return exc.exception_code in TRANSIENT_CODES
    return True  # time-outs, dropped or refused connections


async def _read(
    reader: RegisterReader, address: int, count: int, retry: DiscoveryRetry
) -> list[int]:
    """Read registers, retrying transient failures with back-off."""
    for failures in range(1, retry.attempts + 1):
        try:
            return await reader.read(RegisterType.HOLDING, address, count)
        except DeviceError as exc:
            if not _transient(exc) or failures == retry.attempts:
                raise
            delay = retry.delay_s(failures)
            logger.debug("SunSpec discovery: %s at %d; retrying in %.2f s", exc, address, delay)
            await retry.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class ModelHeader:
    """Where one model sits in the register map.

    Attributes:
        model_id: SunSpec model id (1, 103, 203, ...).
        address: Register address of the model's ``ID`` register.
        length: ``L``: number of data registers after the header.
    """

    model_id: int
    address: int
    length: int

    @property
    def data_address(self) -> int:
        """Address of the first data register (after ``ID`` and ``L``)."""
        return self.address + 2


@dataclass(frozen=True, slots=True)
class SunSpecMap:
    """The models a device announced, in register order."""

    base_address: int
    models: tuple[ModelHeader, ...]

    @property
    def model_ids(self) -> tuple[int, ...]:
        """The model ids in register order."""
        return tuple(model.model_id for model in self.models)

    def first(self, model_ids: Iterable[int]) -> ModelHeader | None:
        """The first model whose id is in ``model_ids``, or ``None``."""
        wanted = frozenset(model_ids)
        return next((model for model in self.models if model.model_id in wanted), None)


_NOT_HERE = frozenset({0x01, 0x02})  # illegal function / illegal data address


async def _has_marker(reader: RegisterReader, base_address: int, retry: DiscoveryRetry) -> bool:
    try:
        marker = await _read(reader, base_address, 2, retry)
    except ModbusExceptionError as exc:
        if exc.exception_code not in _NOT_HERE:
            raise  # e.g. gateway errors for a wrong unit id: say so, not "no SunSpec"
        logger.debug("no SunSpec marker at %d: exception code %d", base_address, exc.exception_code)
        return False
    return tuple(marker) == SUNS_MARKER


async def discover(
    reader: RegisterReader,
    *,
    base_addresses: Iterable[int] = BASE_ADDRESSES,
    known: SunSpecMap | None = None,
    retry: DiscoveryRetry | None = None,
) -> SunSpecMap:
    """Find the ``SunS`` marker and walk the model headers to the end marker.

    Args:
        reader: The device.
        base_addresses: Where to look for the marker, in order.
        known: The map an earlier discovery found: where the new walk ends
            early (exception 1 or 2) at a point ``known`` went past, with the
            same models up to there, ``known`` is returned.
        retry: Back-off for busy answers and time-outs (default :class:`DiscoveryRetry`).

    Returns:
        The models found (possibly none).

    Raises:
        SunSpecNotFoundError: No marker at any base address.
        DecodeError: The chain is malformed (runs past the address space,
            a zero-length model, more than :data:`MAX_MODELS` models).
        DeviceError: The device could not be read, after the retries for
            transient failures (an "illegal address" or "illegal function"
            exception at a base address just means "not here").
    """
    retry = retry or DiscoveryRetry()
    tried = []
    for base in base_addresses:
        tried.append(base)
        if await _has_marker(reader, base, retry):
            models, complete = await _walk(reader, base + 2, retry)
            found = SunSpecMap(base, models)
            if not complete and _extends(known, found):
                assert known is not None
                logger.warning(
                    "SunSpec chain ended early at model %d; keeping the %d models found before",
                    len(models),
                    len(known.models),
                )
                return known
            return found
    raise SunSpecNotFoundError(f"no SunS marker at base address {', '.join(map(str, tried))}")


def _extends(known: SunSpecMap | None, found: SunSpecMap) -> bool:
    """Whether ``known`` is ``found`` followed by more models."""
    if known is None or known.base_address != found.base_address:
        return False
    count = len(found.models)
    return len(known.models) > count and known.models[:count] == found.models


async def _walk(
    reader: RegisterReader, address: int, retry: DiscoveryRetry
) -> tuple[tuple[ModelHeader, ...], bool]:
    """The models from ``address`` on, and whether the end marker was reached."""
    models: list[ModelHeader] = []
    complete = True
    while True:
        if address + 2 > 0x10000:
            raise DecodeError(f"SunSpec model chain runs past address 65535 at {address}")
        try:
            model_id, length = await _read(reader, address, 2, retry)
        except ModbusExceptionError as exc:
            if not models or exc.exception_code not in _NOT_HERE:
                raise
            logger.warning("SunSpec chain ends without end marker at %d", address)
            complete = False
            break
        if model_id == END_MODEL_ID:
            break
        if length == 0 or address + 2 + length > 0x10000:
            raise DecodeError(f"SunSpec model {model_id} at {address} has bad length {length}")
        if len(models) >= MAX_MODELS:
            raise DecodeError(f"more than {MAX_MODELS} SunSpec models: not a sane device")
        models.append(ModelHeader(model_id, address, length))
        address += 2 + length
    if models and models[0].model_id != 1:
        logger.warning("SunSpec map starts with model %d, not common model 1", models[0].model_id)
    return tuple(models), complete


async def read_model(reader: RegisterReader, model: ModelHeader) -> list[int]:
    """Read a model's data registers, checking its header still says what discovery saw.

    Raises:
        DecodeError: The header changed (the device's map is not what it was).
        DeviceError: The device could not be read.
    """
    registers = await read_span(reader, RegisterType.HOLDING, model.address, model.length + 2)
    if registers[0] != model.model_id or registers[1] != model.length:
        raise DecodeError(
            f"model header at {model.address} is now ({registers[0]}, {registers[1]}), "
            f"was ({model.model_id}, {model.length})"
        )
    return registers[2:]
