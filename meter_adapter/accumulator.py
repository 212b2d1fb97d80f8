"""Energy counters as devices report them, extended past their rollovers.

A meter's energy register is a hardware accumulator: a 32-bit ``acc32``
counts up in device units (10^sf Wh for SunSpec) and wraps to zero after
2^32 - 1. :class:`CounterState` follows such a counter across polls and keeps
an unbounded total, so a rollover shows up as an ordinary small step.

A forward step modulo 2^bits is all one poll can observe, so a counter that
ran *backwards* looks like an enormous forward step; telling the two apart is
the caller's plausibility check (see :class:`meter_adapter.reader.MeterReader`).
States are immutable: advancing returns a new state, so a reading that is
later rejected leaves the committed state untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from meter_adapter.errors import DecodeError, InconsistentReadingError

__all__ = ["CounterSample", "CounterState"]


@dataclass(frozen=True, slots=True)
class CounterSample:
    """One reading of an energy counter, in the device's own units.

    Attributes:
        raw: The register value: an ``int`` count, or a ``float`` for meters
            that report energy as floating point.
        wh_per_unit: Wh per count (``10**sf`` for SunSpec, ``1000 * scale``
            for a register map in kWh). Exact, so conversions never drift.
        bits: Width of a wrapping hardware accumulator (16, 32, 64), or
            ``None`` for a counter that never wraps.

    Raises:
        DecodeError: A negative or non-finite value, a count outside
            ``0 .. 2**bits - 1``, or a non-positive ``wh_per_unit``.
    """

    raw: int | float
    wh_per_unit: Fraction
    bits: int | None = None

    def __post_init__(self) -> None:
        if self.wh_per_unit <= 0:
            raise DecodeError(f"energy counter scale {self.wh_per_unit} Wh/unit is not positive")
        if isinstance(self.raw, float) and not math.isfinite(self.raw):
            raise DecodeError(f"energy counter value {self.raw} is not finite")
        if self.raw < 0:
            raise DecodeError(f"energy counter value {self.raw} is negative")
        if self.bits is not None:
            if not isinstance(self.raw, int):
                raise DecodeError("a wrapping accumulator must hold an integer count")
            if self.raw >= 1 << self.bits:
                raise DecodeError(f"count {self.raw} does not fit {self.bits} bits")

    @property
    def energy_wh(self) -> int:
        """The sample on its own, in whole Wh (rounded down)."""
        return math.floor(Fraction(self.raw) * self.wh_per_unit)


@dataclass(frozen=True, slots=True)
class CounterState:
    """A counter followed across polls: the last sample and the extended total.

    Attributes:
        last: The most recent accepted sample.
        total_raw: The count since the device started counting, rollovers
            included, in device units.
    """

    last: CounterSample
    total_raw: int | float

    @classmethod
    def start(cls, sample: CounterSample) -> CounterState:
        """Begin following a counter at ``sample`` (no earlier rollovers are known)."""
        return cls(last=sample, total_raw=sample.raw)

    @property
    def energy_wh(self) -> int:
        """The extended total in whole Wh (rounded down, so it never decreases)."""
        return math.floor(Fraction(self.total_raw) * self.last.wh_per_unit)

    def advance(self, sample: CounterSample) -> CounterState:
        """The state after observing ``sample``.

        A wrapping counter always steps forward modulo ``2**bits``; a counter
        that does not wrap must not decrease.

        Raises:
            InconsistentReadingError: The counter changed width or scale, or a
                non-wrapping counter went backwards.
        """
        if sample.bits != self.last.bits or sample.wh_per_unit != self.last.wh_per_unit:
            raise InconsistentReadingError(
                f"counter changed from {self.last.bits} bits at {self.last.wh_per_unit} Wh/unit "
                f"to {sample.bits} bits at {sample.wh_per_unit} Wh/unit"
            )
        if sample.bits is not None:
            step = (int(sample.raw) - int(self.last.raw)) % (1 << sample.bits)
            return CounterState(last=sample, total_raw=self.total_raw + step)
        if sample.raw < self.last.raw:
            raise InconsistentReadingError(
                f"counter went backwards from {self.last.raw} to {sample.raw}"
            )
        return CounterState(last=sample, total_raw=self.total_raw + (sample.raw - self.last.raw))
