"""Energy counters followed across polls: rollover, scale, going backwards."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_adapter.accumulator import CounterSample, CounterState
from meter_adapter.errors import DecodeError, InconsistentReadingError

ONE = Fraction(1)


def acc32(raw: int, wh_per_unit: Fraction = ONE) -> CounterSample:
    return CounterSample(raw=raw, wh_per_unit=wh_per_unit, bits=32)


def test_rollover_of_a_32_bit_accumulator_is_a_small_step() -> None:
    state = CounterState.start(acc32(2**32 - 100))
    state = state.advance(acc32(2**32 - 1))
    state = state.advance(acc32(50))  # wrapped: 1 + 50 further
    assert state.energy_wh == 2**32 + 50
    state = state.advance(acc32(2**32 - 10))  # still a forward step modulo 2^32
    assert state.energy_wh == 2 * 2**32 - 10


def test_scale_factor_applies_to_the_extended_total() -> None:
    # TotWh_SF = -1: 0.1 Wh per count; 2^32 - 1 -> 1 wraps by 2 counts = 0.2 Wh
    tenth = Fraction(1, 10)
    state = CounterState.start(acc32(2**32 - 1, tenth))
    assert state.energy_wh == (2**32 - 1) // 10
    state = state.advance(acc32(1, tenth))
    assert state.total_raw == 2**32 + 1
    assert state.energy_wh == (2**32 + 1) // 10


def test_changed_scale_is_inconsistent() -> None:
    state = CounterState.start(acc32(1000))
    with pytest.raises(InconsistentReadingError):
        state.advance(acc32(1000, Fraction(10)))


def test_float_counter_must_not_decrease() -> None:
    state = CounterState.start(CounterSample(raw=12.5, wh_per_unit=Fraction(1000)))
    assert state.energy_wh == 12500
    assert state.advance(CounterSample(raw=12.75, wh_per_unit=Fraction(1000))).energy_wh == 12750
    with pytest.raises(InconsistentReadingError):
        state.advance(CounterSample(raw=12.0, wh_per_unit=Fraction(1000)))


@pytest.mark.parametrize(
    ("raw", "bits"),
    [(-1, None), (float("nan"), None), (float("inf"), None), (2**32, 32), (1.5, 32)],
)
def test_invalid_samples(raw: float, bits: int | None) -> None:
    with pytest.raises(DecodeError):
        CounterSample(raw=raw, wh_per_unit=ONE, bits=bits)


@given(
    start=st.integers(0, 2**32 - 1),
    steps=st.lists(st.integers(0, 2**31), min_size=1, max_size=20),
)
def test_extended_total_is_the_sum_of_steps(start: int, steps: list[int]) -> None:
    state = CounterState.start(acc32(start))
    true_total = start
    for step in steps:
        true_total += step
        state = state.advance(acc32(true_total % 2**32))
    assert state.total_raw == true_total
    assert state.energy_wh == true_total
