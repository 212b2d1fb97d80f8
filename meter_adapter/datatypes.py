"""Numbers packed into 16-bit Modbus registers, and back.

A register holds 16 bits, most significant byte first. A wider value spans
several consecutive registers; the *word order* says whether the most
significant register comes first (``big``, the Modbus and SunSpec convention)
or last (``little``, used by e.g. Carlo Gavazzi meters).

SunSpec reserves one bit pattern per type to mean "not implemented" (for
example ``0x8000`` for ``int16``, ``0xFFFF`` for ``uint16``, ``0x80000000``
for ``int32``, ``0`` for the ``acc`` accumulators, NaN for floats).
:func:`decode` maps it to ``None`` when asked to; note that for accumulators
the sentinel is indistinguishable from a genuine zero count, which is harmless
for an energy counter.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from meter_adapter.errors import DecodeError

__all__ = [
    "DataType",
    "WordOrder",
    "decode",
    "decode_string",
    "encode",
    "encode_string",
    "is_accumulator",
    "not_implemented",
    "register_count",
    "type_bits",
]


class DataType(StrEnum):
    """How a value is laid out in registers (names as in the SunSpec models)."""

    INT16 = "int16"
    UINT16 = "uint16"
    ACC16 = "acc16"
    ENUM16 = "enum16"
    BITFIELD16 = "bitfield16"
    SUNSSF = "sunssf"
    PAD = "pad"
    INT32 = "int32"
    UINT32 = "uint32"
    ACC32 = "acc32"
    ENUM32 = "enum32"
    BITFIELD32 = "bitfield32"
    INT64 = "int64"
    UINT64 = "uint64"
    ACC64 = "acc64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"


class WordOrder(StrEnum):
    """Order of the 16-bit words of a multi-register value."""

    BIG = "big"
    """Most significant word first (Modbus and SunSpec convention)."""
    LITTLE = "little"
    """Least significant word first."""


@dataclass(frozen=True, slots=True)
class _Layout:
    words: int
    signed: bool
    is_float: bool
    sentinel: int | None  # the "not implemented" bit pattern, as an unsigned integer


_LAYOUTS: dict[DataType, _Layout] = {
    DataType.INT16: _Layout(1, True, False, 0x8000),
    DataType.UINT16: _Layout(1, False, False, 0xFFFF),
    DataType.ACC16: _Layout(1, False, False, 0x0000),
    DataType.ENUM16: _Layout(1, False, False, 0xFFFF),
    DataType.BITFIELD16: _Layout(1, False, False, 0xFFFF),
    DataType.SUNSSF: _Layout(1, True, False, 0x8000),
    DataType.PAD: _Layout(1, False, False, None),
    DataType.INT32: _Layout(2, True, False, 0x8000_0000),
    DataType.UINT32: _Layout(2, False, False, 0xFFFF_FFFF),
    DataType.ACC32: _Layout(2, False, False, 0x0000_0000),
    DataType.ENUM32: _Layout(2, False, False, 0xFFFF_FFFF),
    DataType.BITFIELD32: _Layout(2, False, False, 0xFFFF_FFFF),
    DataType.INT64: _Layout(4, True, False, 0x8000_0000_0000_0000),
    DataType.UINT64: _Layout(4, False, False, 0xFFFF_FFFF_FFFF_FFFF),
    DataType.ACC64: _Layout(4, False, False, 0x0000_0000_0000_0000),
    DataType.FLOAT32: _Layout(2, True, True, 0x7FC0_0000),
    DataType.FLOAT64: _Layout(4, True, True, 0x7FF8_0000_0000_0000),
}

_ACCUMULATORS = frozenset({DataType.ACC16, DataType.ACC32, DataType.ACC64})


def register_count(data_type: DataType) -> int:
    """Number of 16-bit registers a value of ``data_type`` occupies."""
    return _LAYOUTS[data_type].words


def type_bits(data_type: DataType) -> int:
    """Width of ``data_type`` in bits (16, 32 or 64)."""
    return 16 * _LAYOUTS[data_type].words


def is_accumulator(data_type: DataType) -> bool:
    """Whether ``data_type`` is a SunSpec accumulator, which counts up and wraps."""
    return data_type in _ACCUMULATORS


def not_implemented(data_type: DataType, word_order: WordOrder = WordOrder.BIG) -> list[int]:
    """The registers SunSpec uses to say "not implemented" for ``data_type``."""
    sentinel = _LAYOUTS[data_type].sentinel
    return _to_words(0 if sentinel is None else sentinel, _LAYOUTS[data_type].words, word_order)


def _check_registers(registers: Sequence[int], words: int) -> None:
    if len(registers) != words:
        raise DecodeError(f"expected {words} register(s), got {len(registers)}")
    for value in registers:
        if not 0 <= value <= 0xFFFF:
            raise DecodeError(f"register value {value!r} is not a 16-bit word")


def _to_int(registers: Sequence[int], word_order: WordOrder) -> int:
    ordered = registers if word_order is WordOrder.BIG else list(reversed(registers))
    result = 0
    for word in ordered:
        result = (result << 16) | word
    return result


def _to_words(raw: int, words: int, word_order: WordOrder) -> list[int]:
    big = [(raw >> (16 * (words - 1 - i))) & 0xFFFF for i in range(words)]
    return big if word_order is WordOrder.BIG else list(reversed(big))


def decode(
    registers: Sequence[int],
    data_type: DataType,
    *,
    word_order: WordOrder = WordOrder.BIG,
    sunspec_sentinels: bool = False,
) -> int | float | None:
    """Decode one value from its registers.

    Args:
        registers: Exactly :func:`register_count` words, each 0..65535.
        data_type: The value's layout.
        word_order: Order of the words for multi-register values.
        sunspec_sentinels: Map SunSpec's "not implemented" pattern to ``None``.

    Returns:
        An ``int`` for integer types, a finite ``float`` for float types, or
        ``None`` for a sentinel (only with ``sunspec_sentinels``).

    Raises:
        DecodeError: Wrong number of registers, a register outside 0..65535, or
            a non-finite float that is not the sentinel.
    """
    layout = _LAYOUTS[data_type]
    _check_registers(registers, layout.words)
    raw = _to_int(registers, word_order)
    if layout.is_float:
        fmt = ">f" if layout.words == 2 else ">d"
        (value,) = struct.unpack(fmt, raw.to_bytes(2 * layout.words, "big"))
        if math.isnan(value):
            if sunspec_sentinels:
                return None
            raise DecodeError(f"{data_type} value is NaN")
        if math.isinf(value):
            raise DecodeError(f"{data_type} value is infinite")
        return float(value)
    if sunspec_sentinels and layout.sentinel is not None and raw == layout.sentinel:
        if data_type in _ACCUMULATORS:
            return 0  # an unimplemented accumulator never counted: zero is exact
        return None
    if layout.signed and raw >= 1 << (16 * layout.words - 1):
        raw -= 1 << (16 * layout.words)
    return raw


def encode(
    value: int | float,
    data_type: DataType,
    *,
    word_order: WordOrder = WordOrder.BIG,
) -> list[int]:
    """Encode one value into registers; the inverse of :func:`decode`.

    Integer types wrap modulo their width only for accumulators (that is how a
    counter rolls over); any other out-of-range integer is an error.

    Raises:
        ValueError: ``value`` does not fit ``data_type``.
    """
    layout = _LAYOUTS[data_type]
    bits = 16 * layout.words
    if layout.is_float:
        fmt = ">f" if layout.words == 2 else ">d"
        raw = int.from_bytes(struct.pack(fmt, float(value)), "big")
        return _to_words(raw, layout.words, word_order)
    if not isinstance(value, int):
        raise ValueError(f"{data_type} needs an int, got {value!r}")
    if data_type in _ACCUMULATORS:
        return _to_words(value % (1 << bits), layout.words, word_order)
    low, high = (
        (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if layout.signed else (0, (1 << bits) - 1)
    )
    if not low <= value <= high:
        raise ValueError(f"{value} does not fit {data_type}")
    return _to_words(value % (1 << bits), layout.words, word_order)


def decode_string(registers: Sequence[int]) -> str | None:
    """Decode a SunSpec string: two bytes per register, NUL-padded.

    Returns:
        The text without padding or surrounding blanks, ``None`` when it is
        empty (all-zero means "not implemented"). Bytes that are not UTF-8 are
        replaced, never raised.

    Raises:
        DecodeError: A register is outside 0..65535.
    """
    _check_registers(registers, len(registers))
    data = b"".join(value.to_bytes(2, "big") for value in registers)
    text = data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip()
    return text or None


def encode_string(text: str, size: int) -> list[int]:
    """Encode ``text`` into ``size`` registers, NUL-padded (the inverse of :func:`decode_string`).

    Raises:
        ValueError: ``text`` is longer than ``2 * size`` bytes in UTF-8.
    """
    data = text.encode("utf-8")
    if len(data) > 2 * size:
        raise ValueError(f"{text!r} does not fit {size} registers")
    data = data.ljust(2 * size, b"\x00")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * size, 2)]
