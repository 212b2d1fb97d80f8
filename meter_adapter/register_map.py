"""Register maps as data: how to read a meter that does not speak SunSpec.

A map is a TOML file with a ``[device]`` table of defaults and one
``[registers.<quantity>]`` table per quantity the adapter needs::

    [device]
    name = "Eastron SDM630"
    register_type = "input"      # holding | input (default for the registers below)
    word_order = "big"           # big | little
    max_power_w = 75000          # optional: largest |power| the meter can measure, W

    [registers.power_w]
    address = 0x0034             # 0-based protocol address, as sent on the wire
    type = "float32"             # int16 uint16 int32 uint32 int64 uint64 float32 float64
    unit = "W"                   # W | kW for power, Wh | kWh for energy
    scale = -1.0                 # multiplies the raw value (here: flips the sign)

Quantities: ``power_w``, ``energy_import_wh`` and ``energy_export_wh`` are
required; ``production_w`` and ``production_wh`` are optional. Power must come
out positive into the grid (see :mod:`meter_adapter.reading`); meters that
count import as positive need ``scale`` negative. An energy register may set
``accumulator = true`` (unsigned integer types only) when the device wraps it
to zero after its maximum, so the rollover is tracked.

:func:`validate_register_map` returns every problem in a parsed file;
:func:`load_register_map` raises once with all of them.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from meter_adapter.accumulator import CounterSample
from meter_adapter.datatypes import DataType, WordOrder, decode, register_count, type_bits
from meter_adapter.errors import DecodeError, MeterConfigError
from meter_adapter.registers import MAX_REGISTERS_PER_READ, RegisterType

__all__ = [
    "ENERGY_QUANTITIES",
    "POWER_QUANTITIES",
    "REQUIRED_QUANTITIES",
    "ReadSpan",
    "RegisterMap",
    "RegisterSpec",
    "load_register_map",
    "parse_register_map",
    "validate_register_map",
]

POWER_QUANTITIES = frozenset({"power_w", "production_w"})
ENERGY_QUANTITIES = frozenset({"energy_import_wh", "energy_export_wh", "production_wh"})
REQUIRED_QUANTITIES = ("power_w", "energy_import_wh", "energy_export_wh")

_UNITS: dict[str, Fraction] = {"W": Fraction(1), "kW": Fraction(1000)}
_ENERGY_UNITS: dict[str, Fraction] = {"Wh": Fraction(1), "kWh": Fraction(1000)}
_MAP_TYPES = frozenset(
    {
        DataType.INT16,
        DataType.UINT16,
        DataType.INT32,
        DataType.UINT32,
        DataType.INT64,
        DataType.UINT64,
        DataType.FLOAT32,
        DataType.FLOAT64,
    }
)
_UNSIGNED = frozenset({DataType.UINT16, DataType.UINT32, DataType.UINT64})
_REGISTER_KEYS = frozenset(
    {"address", "type", "register_type", "word_order", "scale", "unit", "accumulator", "note"}
)


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """How to read one quantity.

    Attributes:
        quantity: ``power_w``, ``energy_import_wh``, ...
        address: First register (0-based protocol address).
        register_type: Holding or input registers.
        data_type: Layout of the value.
        word_order: Word order of a multi-register value.
        factor: Exact multiplier from the raw value to W or Wh (``scale`` × unit).
        accumulator: Whether the register wraps to zero (rollover is tracked).
    """

    quantity: str
    address: int
    register_type: RegisterType
    data_type: DataType
    word_order: WordOrder
    factor: Fraction
    accumulator: bool = False

    @property
    def count(self) -> int:
        """Number of registers the value occupies."""
        return register_count(self.data_type)

    def decode_power(self, registers: Sequence[int]) -> float:
        """The power in W (positive into the grid).

        Raises:
            DecodeError: Malformed registers or a non-finite float.
        """
        value = decode(registers, self.data_type, word_order=self.word_order)
        if value is None:  # pragma: no cover - no sentinels without SunSpec
            raise DecodeError(f"{self.quantity} is not available")
        return float(Fraction(value) * self.factor)

    def decode_counter(self, registers: Sequence[int]) -> CounterSample:
        """The energy counter as a sample (raw value, Wh per unit, wrap width).

        Raises:
            DecodeError: Malformed registers, a negative or non-finite value.
        """
        value = decode(registers, self.data_type, word_order=self.word_order)
        if value is None:  # pragma: no cover - no sentinels without SunSpec
            raise DecodeError(f"{self.quantity} is not available")
        if self.factor < 0:
            raise DecodeError(f"{self.quantity} has a negative scale")
        bits = type_bits(self.data_type) if self.accumulator else None
        return CounterSample(raw=value, wh_per_unit=self.factor, bits=bits)


@dataclass(frozen=True, slots=True)
class ReadSpan:
    """Registers fetched by one request and the quantities found in them."""

    register_type: RegisterType
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A validated register map.

    Attributes:
        name: Human-readable device name.
        registers: One spec per quantity.
        max_power_w: Largest |power| the device can measure, W (``None``: the
            gateway's configured bound); readings beyond it are quarantined.
    """

    name: str
    registers: Mapping[str, RegisterSpec]
    max_power_w: float | None = None

    def spans(self, *, max_gap: int = 0) -> tuple[ReadSpan, ...]:
        """Group the registers into as few read requests as possible.

        Registers of one type at most ``max_gap`` registers apart share a request
        (0: only adjacent ones, so no register outside the map is ever read),
        as long as it stays within 125 registers.
        """
        result: list[ReadSpan] = []
        for register_type in RegisterType:
            specs = sorted(
                (s for s in self.registers.values() if s.register_type is register_type),
                key=lambda s: s.address,
            )
            group: list[RegisterSpec] = []
            for spec in specs:
                if group:
                    start = group[0].address
                    end = max(g.address + g.count for g in group)
                    new_end = max(end, spec.address + spec.count)
                    if spec.address - end > max_gap or new_end - start > MAX_REGISTERS_PER_READ:
                        result.append(_span(register_type, group))
                        group = []
                group.append(spec)
            if group:
                result.append(_span(register_type, group))
        return tuple(result)


def _span(register_type: RegisterType, group: list[RegisterSpec]) -> ReadSpan:
    start = group[0].address
    end = max(spec.address + spec.count for spec in group)
    return ReadSpan(register_type, start, end - start, tuple(group))


def _enum(value: object, enum: type[Any], what: str, problems: list[str]) -> Any:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in enum)
        problems.append(f"{what}: {value!r} is not one of {choices}")
        return None


def _check_register(
    quantity: str, entry: Mapping[str, Any], defaults: Mapping[str, Any], problems: list[str]
) -> RegisterSpec | None:
    where = f"registers.{quantity}"
    before = len(problems)
    for key in sorted(set(entry) - _REGISTER_KEYS):
        problems.append(f"{where}: unknown key {key!r}")
    address = entry.get("address")
    if not isinstance(address, int) or isinstance(address, bool) or not 0 <= address <= 0xFFFF:
        problems.append(f"{where}.address: need an integer 0..65535, got {address!r}")
    data_type = _enum(entry.get("type"), DataType, f"{where}.type", problems)
    if data_type is not None and data_type not in _MAP_TYPES:
        problems.append(f"{where}.type: {data_type} is not usable in a register map")
    register_type = _enum(
        entry.get("register_type", defaults.get("register_type", "holding")),
        RegisterType,
        f"{where}.register_type",
        problems,
    )
    word_order = _enum(
        entry.get("word_order", defaults.get("word_order", "big")),
        WordOrder,
        f"{where}.word_order",
        problems,
    )
    scale = entry.get("scale", 1.0)
    if not isinstance(scale, int | float) or isinstance(scale, bool) or not math.isfinite(scale):
        problems.append(f"{where}.scale: need a finite number, got {scale!r}")
        scale = 1.0
    elif scale == 0:
        problems.append(f"{where}.scale: must not be zero")
    units = _UNITS if quantity in POWER_QUANTITIES else _ENERGY_UNITS
    unit = entry.get("unit")
    if unit not in units:
        problems.append(f"{where}.unit: {unit!r} is not one of {', '.join(units)}")
    if quantity in ENERGY_QUANTITIES and isinstance(scale, int | float) and scale < 0:
        problems.append(f"{where}.scale: an energy counter cannot have a negative scale")
    accumulator = entry.get("accumulator", False)
    if not isinstance(accumulator, bool):
        problems.append(f"{where}.accumulator: need true or false")
    elif accumulator and (quantity not in ENERGY_QUANTITIES or data_type not in _UNSIGNED):
        problems.append(f"{where}.accumulator: only for energy in an unsigned integer type")
    if (
        isinstance(address, int)
        and data_type in _MAP_TYPES
        and address + register_count(data_type) > 0x10000
    ):
        problems.append(f"{where}.address: value runs past register 65535")
    if len(problems) > before or not isinstance(address, int) or not isinstance(unit, str):
        return None
    return RegisterSpec(
        quantity=quantity,
        address=address,
        register_type=register_type,
        data_type=data_type,
        word_order=word_order,
        factor=Fraction(str(scale)) * units[unit],
        accumulator=accumulator,
    )


def _check_max_power(value: object, problems: list[str]) -> float | None:
    if value is None:
        return None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        problems.append(f"device.max_power_w: need a positive number of W, got {value!r}")
        return None
    return float(value)


def _check(document: Mapping[str, Any]) -> tuple[list[str], RegisterMap | None]:
    problems: list[str] = []
    for key in sorted(set(document) - {"device", "registers"}):
        problems.append(f"unknown top-level table {key!r}")
    device = document.get("device", {})
    if not isinstance(device, Mapping):
        problems.append("device: must be a table")
        device = {}
    name = device.get("name", "unnamed meter")
    if not isinstance(name, str) or not name:
        problems.append("device.name: need a non-empty string")
    for key in sorted(set(device) - {"name", "register_type", "word_order", "note", "max_power_w"}):
        problems.append(f"device: unknown key {key!r}")
    max_power_w = _check_max_power(device.get("max_power_w"), problems)
    registers = document.get("registers")
    if not isinstance(registers, Mapping):
        problems.append("registers: missing, or not a table")
        return problems, None
    specs: dict[str, RegisterSpec] = {}
    for quantity, entry in registers.items():
        if quantity not in POWER_QUANTITIES | ENERGY_QUANTITIES:
            problems.append(f"registers.{quantity}: unknown quantity")
        elif not isinstance(entry, Mapping):
            problems.append(f"registers.{quantity}: must be a table")
        elif (spec := _check_register(quantity, entry, device, problems)) is not None:
            specs[quantity] = spec
    for quantity in REQUIRED_QUANTITIES:
        if quantity not in registers:
            problems.append(f"registers.{quantity}: required")
    if problems:
        return problems, None
    return problems, RegisterMap(name=str(name), registers=specs, max_power_w=max_power_w)


def validate_register_map(document: Mapping[str, Any]) -> list[str]:
    """Every problem in a parsed register map document (empty when it is valid)."""
    problems, _ = _check(document)
    return problems


def parse_register_map(document: Mapping[str, Any]) -> RegisterMap:
    """Build a register map from a parsed TOML document.

    Raises:
        MeterConfigError: Listing every problem found.
    """
    problems, register_map = _check(document)
    if register_map is None:
        raise MeterConfigError("invalid register map:\n  " + "\n  ".join(problems))
    return register_map


def load_register_map(path: str | Path) -> RegisterMap:
    """Read and validate a register map TOML file.

    Raises:
        MeterConfigError: The file cannot be read, is not TOML, or is invalid.
    """
    try:
        with Path(path).open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise MeterConfigError(f"cannot read register map {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MeterConfigError(f"register map {path} is not valid TOML: {exc}") from exc
    try:
        return parse_register_map(document)
    except MeterConfigError as exc:
        raise MeterConfigError(f"{path}: {exc}") from None
