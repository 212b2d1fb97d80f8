"""Register data types: hand-computed decodings, SunSpec sentinels, word order."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_adapter.datatypes import (
    DataType,
    WordOrder,
    decode,
    decode_string,
    encode,
    encode_string,
    not_implemented,
    register_count,
)
from meter_adapter.errors import DecodeError
from tests.meter_adapter.strategies import data_types, register_lists, word_orders


@pytest.mark.parametrize(
    ("registers", "data_type", "word_order", "expected"),
    [
        pytest.param([0xFB2E], DataType.INT16, WordOrder.BIG, -1234, id="int16-negative"),
        pytest.param([0x7FFF], DataType.INT16, WordOrder.BIG, 32767, id="int16-max"),
        pytest.param([0xFFFE], DataType.UINT16, WordOrder.BIG, 65534, id="uint16"),
        pytest.param([0x0012, 0xD687], DataType.UINT32, WordOrder.BIG, 1234567, id="uint32-big"),
        pytest.param([0xD687, 0x0012], DataType.UINT32, WordOrder.LITTLE, 1234567, id="u32-little"),
        pytest.param([0xFFFF, 0xFFFE], DataType.INT32, WordOrder.BIG, -2, id="int32-negative"),
        pytest.param([0xFFFE, 0xFFFF], DataType.INT32, WordOrder.LITTLE, -2, id="int32-little"),
        pytest.param([0x4374, 0x0000], DataType.FLOAT32, WordOrder.BIG, 244.0, id="float32"),
        pytest.param([0x0000, 0x4374], DataType.FLOAT32, WordOrder.LITTLE, 244.0, id="f32-little"),
        pytest.param([0, 0, 0x0001, 0x0000], DataType.UINT64, WordOrder.BIG, 65536, id="uint64"),
        pytest.param([0xFFFF, 0xFFFF], DataType.ACC32, WordOrder.BIG, 2**32 - 1, id="acc32-max"),
        pytest.param([0x3FF0, 0, 0, 0], DataType.FLOAT64, WordOrder.BIG, 1.0, id="float64-one"),
    ],
)
def test_decode_by_hand(
    registers: list[int], data_type: DataType, word_order: WordOrder, expected: float
) -> None:
    assert decode(registers, data_type, word_order=word_order) == expected


@pytest.mark.parametrize(
    ("registers", "data_type"),
    [
        ([0x8000], DataType.INT16),
        ([0xFFFF], DataType.UINT16),
        ([0xFFFF], DataType.ENUM16),
        ([0x8000], DataType.SUNSSF),
        ([0x8000, 0x0000], DataType.INT32),
        ([0xFFFF, 0xFFFF], DataType.UINT32),
        ([0x8000, 0, 0, 0], DataType.INT64),
        ([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], DataType.UINT64),
        ([0x7FC0, 0x0000], DataType.FLOAT32),
    ],
)
def test_sunspec_sentinels_mean_not_implemented(registers: list[int], data_type: DataType) -> None:
    assert decode(registers, data_type, sunspec_sentinels=True) is None
    assert not_implemented(data_type) == registers


def test_sentinels_are_ordinary_values_outside_sunspec() -> None:
    assert decode([0x8000], DataType.INT16) == -32768
    assert decode([0xFFFF, 0xFFFF], DataType.UINT32) == 2**32 - 1


def test_unimplemented_accumulator_reads_as_zero() -> None:
    # SunSpec's acc32 sentinel is 0: a counter that never counted
    assert decode([0, 0], DataType.ACC32, sunspec_sentinels=True) == 0


def test_infinite_float_is_rejected() -> None:
    with pytest.raises(DecodeError):
        decode([0x7F80, 0x0000], DataType.FLOAT32)
    with pytest.raises(DecodeError):
        decode([0x7FC0, 0x0000], DataType.FLOAT32)  # NaN outside SunSpec


@pytest.mark.parametrize("registers", [[], [1, 2, 3], [0x10000, 0], [-1, 0]])
def test_wrong_registers_raise_decode_error(registers: list[int]) -> None:
    with pytest.raises(DecodeError):
        decode(registers, DataType.UINT32)


def test_strings() -> None:
    assert decode_string([0x4672, 0x6F6E, 0x6975, 0x7300, 0, 0]) == "Fronius"
    assert decode_string([0, 0, 0]) is None
    assert decode_string([0xFFFE, 0x4100]) is not None  # not UTF-8: replaced, not raised
    assert encode_string("Fronius", 6) == [0x4672, 0x6F6E, 0x6975, 0x7300, 0, 0]
    with pytest.raises(ValueError, match="does not fit"):
        encode_string("x" * 5, 2)


def test_accumulators_wrap_when_encoded() -> None:
    assert encode(2**32 + 5, DataType.ACC32) == [0, 5]
    with pytest.raises(ValueError, match="does not fit"):
        encode(2**32, DataType.UINT32)


@given(data_types(), word_orders(), register_lists(max_size=5), st.booleans())
def test_decode_never_raises_anything_but_decode_error(
    data_type: DataType, word_order: WordOrder, registers: list[int], sentinels: bool
) -> None:
    try:
        value = decode(registers, data_type, word_order=word_order, sunspec_sentinels=sentinels)
    except DecodeError:
        return
    assert value is None or isinstance(value, int | float)
    if isinstance(value, float):
        assert math.isfinite(value)


@given(data_types(), word_orders(), st.data())
def test_encode_then_decode_is_identity(
    data_type: DataType, word_order: WordOrder, data: st.DataObject
) -> None:
    registers = data.draw(register_lists(min_size=register_count(data_type), max_size=4))
    registers = registers[: register_count(data_type)]
    try:
        value = decode(registers, data_type, word_order=word_order)
    except DecodeError:
        return
    assert value is not None
    if data_type in {DataType.FLOAT32, DataType.FLOAT64} and value == 0:
        return  # -0.0 and 0.0 decode equal but encode differently
    assert encode(value, data_type, word_order=word_order) == registers
