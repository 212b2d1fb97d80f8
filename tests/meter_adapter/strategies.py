"""Hypothesis strategies for the meter adapter's tests.

(The suite's shared strategies live in ``tests/strategies.py``; these stay
here because they are only about Modbus registers.)
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from meter_adapter.datatypes import DataType, WordOrder
from meter_adapter.mbap import ReadRequest

__all__ = [
    "answered_requests",
    "data_types",
    "honest_frame",
    "read_requests",
    "register",
    "register_lists",
    "sunspec_like_maps",
    "word_orders",
]


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


@st.composite
def read_requests(draw: st.DrawFn) -> ReadRequest:
    """A register read the client could send."""
    count = draw(st.integers(1, 125))
    return ReadRequest(
        transaction_id=draw(st.integers(1, 0xFFFF)),
        unit_id=draw(st.integers(0, 255)),
        function_code=draw(st.sampled_from([3, 4])),
        address=draw(st.integers(0, 0x10000 - count)),
        count=count,
    )


def honest_frame(request: ReadRequest, values: list[int]) -> bytes:
    """The one frame that answers ``request`` with ``values``."""
    pdu = bytes([request.function_code, 2 * len(values)]) + struct.pack(f">{len(values)}H", *values)
    return struct.pack(">HHHB", request.transaction_id, 0, len(pdu) + 1, request.unit_id) + pdu


@st.composite
def answered_requests(draw: st.DrawFn) -> tuple[ReadRequest, list[int], bytes]:
    """``(request, values, frame)``: a request and its honest answer."""
    request = draw(read_requests())
    values = draw(st.lists(register(), min_size=request.count, max_size=request.count))
    return request, values, honest_frame(request, values)
