"""Hypothesis strategies for the meter adapter's tests.

(The suite's shared strategies live in ``tests/strategies.py``; these stay
here because they are only about Modbus registers.)
"""

from __future__ import annotations

from hypothesis import strategies as st

from meter_adapter.datatypes import DataType, WordOrder

__all__ = ["data_types", "register", "register_lists", "sunspec_like_maps", "word_orders"]


def register() -> st.SearchStrategy[int]:
    """One 16-bit register, with the sentinel and edge values over-represented."""
    return st.one_of(
        st.sampled_from([0x0000, 0x0001, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF, 0x7FC0]),
        st.integers(0, 0xFFFF),
    )


def register_lists(*, min_size: int = 0, max_size: int = 130) -> st.SearchStrategy[list[int]]:
    """Arbitrary register contents."""
    return st.lists(register(), min_size=min_size, max_size=max_size)


def data_types() -> st.SearchStrategy[DataType]:
    return st.sampled_from(list(DataType))


def word_orders() -> st.SearchStrategy[WordOrder]:
    return st.sampled_from(list(WordOrder))


@st.composite
def sunspec_like_maps(draw: st.DrawFn) -> tuple[int, list[int]]:
    """``(base, registers)``: a SunS marker followed by a chain of plausible-looking or
    random model headers and random data, sometimes without an end marker."""
    base = draw(st.sampled_from([0, 40000, 50000]))
    registers = [0x5375, 0x6E53]
    for _ in range(draw(st.integers(0, 4))):
        model_id = draw(st.sampled_from([1, 101, 102, 103, 201, 202, 203, 204, 0xFFFF, 7]))
        length = draw(st.one_of(st.sampled_from([0, 1, 50, 65, 66, 105]), st.integers(0, 300)))
        registers += [model_id, length]
        registers += draw(st.lists(register(), min_size=0, max_size=min(length, 120)))
    if draw(st.booleans()):
        registers += [0xFFFF, 0]
    return base, registers
