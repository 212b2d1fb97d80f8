"""Domain values of the meter ledger (re-exported by :mod:`market.metering`)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from market.errors import ReadingValueError

__all__ = ["BatchOutcome", "LedgerSnapshot", "MeterLog", "MeteredEnergy", "Reading", "SeqGap"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _check_int(name: str, value: object, low: int, meter_id: str) -> None:
    if type(value) is not int:  # bool and int subclasses are refused too
        raise ReadingValueError(
            name, f"must be an integer, got {value!r}", meter_id=meter_id or None
        )
    if not low <= value <= _INT64_MAX:
        raise ReadingValueError(
            name, f"must be in {low}..2**63-1, got {value}", meter_id=meter_id or None
        )


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of a meter's cumulative counters.

    Attributes:
        meter_id: the meter's registered id (non-empty).
        seq: per-meter sequence number, ``>= 0``, increasing by 1 per reading.
        timestamp_ms: time of the reading, Unix milliseconds, ``>= 0``.
        energy_import_wh: cumulative energy taken from the grid, Wh, ``>= 0``.
        energy_export_wh: cumulative energy fed into the grid, Wh, ``>= 0``.
        power_w: instantaneous power, W, positive = export (injection).

    Raises:
        ReadingValueError: a field has the wrong type or lies outside its
            range (all integers must fit in a signed 64-bit integer).
    """

    meter_id: str
    seq: int
    timestamp_ms: int
    energy_import_wh: int
    energy_export_wh: int
    power_w: int

    def __post_init__(self) -> None:
        meter_id = self.meter_id
        if not isinstance(meter_id, str) or not meter_id:
            raise ReadingValueError("meter_id", f"must be a non-empty string, got {meter_id!r}")
        _check_int("seq", self.seq, 0, meter_id)
        _check_int("timestamp_ms", self.timestamp_ms, 0, meter_id)
        _check_int("energy_import_wh", self.energy_import_wh, 0, meter_id)
        _check_int("energy_export_wh", self.energy_export_wh, 0, meter_id)
        _check_int("power_w", self.power_w, _INT64_MIN, meter_id)


@dataclass(frozen=True, slots=True, order=True)
class SeqGap:
    """Sequence numbers ``first..last`` (inclusive) that a meter never delivered."""

    first: int
    last: int

    @property
    def count(self) -> int:
        """Number of missing readings."""
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What :meth:`MeterLedger.apply` did with one batch.

    Attributes:
        meter_id: the meter.
        ack_seq: highest seq now applied for the meter (the gateway may drop
            every buffered reading up to it), None if none ever was.
        applied: readings applied by this batch.
        duplicates: readings already applied, acknowledged and ignored.
        gaps: gaps in seq first detected by this batch.
    """

    meter_id: str
    ack_seq: int | None
    applied: int
    duplicates: int
    gaps: tuple[SeqGap, ...] = ()


@dataclass(frozen=True, slots=True)
class MeteredEnergy:
    """Energy through a meter (or a participant's meters) in one interval.

    Attributes:
        import_wh: energy taken from the grid, Wh, ``>= 0``.
        export_wh: energy fed into the grid, Wh, ``>= 0``.
        complete: every meter concerned has a reading at or after the
            interval's end, so the figures will not change any more.
    """

    import_wh: int
    export_wh: int
    complete: bool

    @property
    def net_export_wh(self) -> int:
        """``export_wh − import_wh``: positive when the meter injected on balance."""
        return self.export_wh - self.import_wh


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """The complete state of a ledger as plain, comparable values.

    Attributes:
        interval_s: interval length, s.
        skew_ms: skew window, ms.
        meters: per meter in registration order: (meter_id, participant,
            readings as (seq, timestamp_ms, import_wh, export_wh, power_w),
            gaps).
        application_order: (meter_id, number of readings) per applied run of
            readings, in application order (the archive's row order).
    """

    interval_s: int
    skew_ms: int
    meters: tuple[
        tuple[str, str, tuple[tuple[int, int, int, int, int], ...], tuple[SeqGap, ...]], ...
    ]
    application_order: tuple[tuple[str, int], ...]


@dataclass(slots=True, eq=False)
class MeterLog:
    """Applied readings of one meter, as int64 columns in seq order."""

    meter_id: str
    participant: str
    index: int
    seq: array[int] = field(default_factory=lambda: array("q"))
    ts: array[int] = field(default_factory=lambda: array("q"))
    imp: array[int] = field(default_factory=lambda: array("q"))
    exp: array[int] = field(default_factory=lambda: array("q"))
    pw: array[int] = field(default_factory=lambda: array("q"))
    gaps: list[SeqGap] = field(default_factory=list)

    def columns(self) -> tuple[array[int], ...]:
        return (self.seq, self.ts, self.imp, self.exp, self.pw)
