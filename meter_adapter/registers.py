"""Where registers come from: the read-only interface every decoder in the adapter uses.

:class:`RegisterReader` is what SunSpec discovery, the register-map reader and
:class:`~meter_adapter.reader.MeterReader` need from a device: reading
holding or input registers, nothing else. The Modbus TCP client implements
it; :class:`RegisterImage` is an in-process fake holding a register dump, so
decoding can be tested without a network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Protocol

from meter_adapter.errors import MeterConfigError, ModbusExceptionError

__all__ = [
    "ILLEGAL_DATA_ADDRESS",
    "MAX_REGISTERS_PER_READ",
    "RegisterImage",
    "RegisterReader",
    "RegisterType",
    "check_span",
    "read_span",
]

MAX_REGISTERS_PER_READ = 125
"""The most registers one Modbus read request may ask for."""

ILLEGAL_DATA_ADDRESS = 0x02
"""Modbus exception code for a read outside the device's register map."""


class RegisterType(StrEnum):
    """The two readable 16-bit register tables of a Modbus device."""

    HOLDING = "holding"
    """Read with function code 3; where SunSpec devices keep their models."""
    INPUT = "input"
    """Read with function code 4; used by many plain energy meters."""

    @property
    def function_code(self) -> int:
        """The Modbus function code that reads this table."""
        return 3 if self is RegisterType.HOLDING else 4


class RegisterReader(Protocol):
    """Anything registers can be read from."""

    async def read(self, register_type: RegisterType, address: int, count: int) -> list[int]:
        """Read ``count`` consecutive registers starting at ``address``.

        Returns exactly ``count`` values in 0..65535, or raises a
        :class:`~meter_adapter.errors.MeterError`.
        """
        ...


def check_span(address: int, count: int, *, max_count: int = 65536) -> None:
    """Check that ``count`` registers from ``address`` lie in the 16-bit address space.

    Raises:
        MeterConfigError: The span is empty, too long or runs past 65535.
    """
    if not 0 <= address <= 0xFFFF:
        raise MeterConfigError(f"register address {address} is outside 0..65535")
    if not 1 <= count <= max_count:
        raise MeterConfigError(f"register count {count} is outside 1..{max_count}")
    if address + count > 0x10000:
        raise MeterConfigError(f"{count} registers from {address} run past address 65535")


async def read_span(
    reader: RegisterReader, register_type: RegisterType, address: int, count: int
) -> list[int]:
    """Read any number of registers, split into requests of at most 125.

    Raises:
        MeterConfigError: The span does not fit the address space.
        MeterError: Whatever ``reader`` raises for one of the requests.
    """
    check_span(address, count)
    values: list[int] = []
    offset = 0
    while offset < count:
        chunk = min(MAX_REGISTERS_PER_READ, count - offset)
        values.extend(await reader.read(register_type, address + offset, chunk))
        offset += chunk
    return values


class RegisterImage:
    """An in-memory, read-only register map that answers like a device.

    Holding and input registers share one table unless ``input_registers`` is
    given. Reading an address that holds no value raises
    :class:`~meter_adapter.errors.ModbusExceptionError` with exception code 2,
    as a real device does.

    Attributes:
        requests: Every read served, as ``(register_type, address, count)``.
    """

    def __init__(
        self,
        holding_registers: Mapping[int, int],
        input_registers: Mapping[int, int] | None = None,
    ) -> None:
        self._tables = {
            RegisterType.HOLDING: dict(holding_registers),
            RegisterType.INPUT: dict(
                holding_registers if input_registers is None else input_registers
            ),
        }
        self.requests: list[tuple[RegisterType, int, int]] = []

    @classmethod
    def from_blocks(cls, blocks: Iterable[tuple[int, list[int]]]) -> RegisterImage:
        """An image from ``(start_address, values)`` blocks, shared by both tables."""
        table: dict[int, int] = {}
        for start, values in blocks:
            for offset, value in enumerate(values):
                table[start + offset] = value
        return cls(table)

    def set(
        self, address: int, values: list[int], *, register_type: RegisterType | None = None
    ) -> None:
        """Overwrite registers from ``address`` (in both tables unless one is named)."""
        for kind in (register_type,) if register_type else tuple(RegisterType):
            for offset, value in enumerate(values):
                self._tables[kind][address + offset] = value

    async def read(self, register_type: RegisterType, address: int, count: int) -> list[int]:
        """Read like a device: exactly ``count`` registers or exception code 2."""
        check_span(address, count, max_count=MAX_REGISTERS_PER_READ)
        self.requests.append((register_type, address, count))
        table = self._tables[register_type]
        try:
            return [table[address + offset] for offset in range(count)]
        except KeyError:
            raise ModbusExceptionError(
                f"no {register_type} register in {address}..{address + count - 1}",
                function_code=register_type.function_code,
                exception_code=ILLEGAL_DATA_ADDRESS,
            ) from None
