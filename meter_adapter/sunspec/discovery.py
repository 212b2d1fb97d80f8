"""Finding a SunSpec device's models: the ``SunS`` marker, then the chain of model headers.

A SunSpec device keeps its models in holding registers: the two registers
``SunS`` at a base address (40000, 0 or 50000), then models back to back,
each a header ``(ID, L)`` followed by ``L`` data registers, and finally the
end marker ``ID = 0xFFFF``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from meter_adapter.errors import DecodeError, ModbusExceptionError, SunSpecNotFoundError
from meter_adapter.registers import RegisterReader, RegisterType, read_span
from meter_adapter.sunspec.models import BASE_ADDRESSES, END_MODEL_ID, SUNS_MARKER

__all__ = ["MAX_MODELS", "ModelHeader", "SunSpecMap", "discover", "read_model"]

logger = logging.getLogger(__name__)

MAX_MODELS = 64
"""A chain longer than this is taken to be garbage rather than a device."""


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


async def _has_marker(reader: RegisterReader, base_address: int) -> bool:
    try:
        marker = await reader.read(RegisterType.HOLDING, base_address, 2)
    except ModbusExceptionError as exc:
        if exc.exception_code not in _NOT_HERE:
            raise  # e.g. gateway errors for a wrong unit id: say so, not "no SunSpec"
        logger.debug("no SunSpec marker at %d: exception code %d", base_address, exc.exception_code)
        return False
    return tuple(marker) == SUNS_MARKER


async def discover(
    reader: RegisterReader, *, base_addresses: Iterable[int] = BASE_ADDRESSES
) -> SunSpecMap:
    """Find the ``SunS`` marker and walk the model headers to the end marker.

    Args:
        reader: The device.
        base_addresses: Where to look for the marker, in order.

    Returns:
        The models found (possibly none).

    Raises:
        SunSpecNotFoundError: No marker at any base address.
        DecodeError: The chain is malformed (runs past the address space,
            a zero-length model, more than :data:`MAX_MODELS` models).
        DeviceError: The device could not be read (timeouts propagate; an
            "illegal address" or "illegal function" exception at a base
            address just means "not here").
    """
    tried = []
    for base in base_addresses:
        tried.append(base)
        if await _has_marker(reader, base):
            return SunSpecMap(base, await _walk(reader, base + 2))
    raise SunSpecNotFoundError(f"no SunS marker at base address {', '.join(map(str, tried))}")


async def _walk(reader: RegisterReader, address: int) -> tuple[ModelHeader, ...]:
    models: list[ModelHeader] = []
    while True:
        if address + 2 > 0x10000:
            raise DecodeError(f"SunSpec model chain runs past address 65535 at {address}")
        try:
            model_id, length = await reader.read(RegisterType.HOLDING, address, 2)
        except ModbusExceptionError:
            if not models:
                raise
            logger.warning("SunSpec chain ends without end marker at %d", address)
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
    return tuple(models)


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
