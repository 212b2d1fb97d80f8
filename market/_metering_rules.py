"""Reading rules of the meter ledger that only run when a batch is refused.

Private to :mod:`market.metering`: :meth:`MeterLedger.apply` tests the rules
with one combined comparison per reading and calls these only to find which
rule broke and raise its error, or to look a duplicate up.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NoReturn

from market._metering_values import MeterLog, Reading
from market.errors import (
    ClockSkewError,
    CounterDecreaseError,
    DuplicateReadingError,
    ReadingOrderError,
)

__all__ = ["check_duplicate", "reject_new"]


def reject_new(
    r: Reading, last: tuple[int, int, int], window: tuple[int, int], now_ms: int
) -> NoReturn:
    """Raise the error of the first rule a new reading breaks.

    Args:
        r: the reading.
        last: (timestamp_ms, energy_import_wh, energy_export_wh) of the previous reading.
        window: lowest and highest acceptable timestamp, Unix ms.
        now_ms: the caller's clock, Unix ms.
    """
    meter_id, seq = r.meter_id, r.seq
    last_ts, last_imp, last_exp = last
    ts = r.timestamp_ms
    if ts <= last_ts:
        raise ReadingOrderError(
            "timestamp_ms",
            f"must increase with seq: previous reading at {last_ts}, got {ts}",
            meter_id=meter_id,
            seq=seq,
        )
    if ts > window[1]:
        raise ClockSkewError(
            "timestamp_ms",
            f"must be at most {window[1] - now_ms} ms ahead of now ({now_ms}), got {ts}",
            meter_id=meter_id,
            seq=seq,
        )
    if ts < window[0]:
        raise ClockSkewError(
            "timestamp_ms",
            f"must be at most {now_ms - window[0]} ms behind now ({now_ms}), got {ts}",
            meter_id=meter_id,
            seq=seq,
        )
    for name, before, value in (
        ("energy_import_wh", last_imp, r.energy_import_wh),
        ("energy_export_wh", last_exp, r.energy_export_wh),
    ):
        if value < before:
            raise CounterDecreaseError(
                name,
                f"must not decrease: previous {before}, got {value}",
                meter_id=meter_id,
                seq=seq,
            )
    raise AssertionError("reject_new called for a valid reading")  # pragma: no cover


def check_duplicate(
    log: MeterLog, r: Reading, staged: Sequence[Sequence[int]], last_seq: int
) -> None:
    """Return if ``r`` equals the reading already applied or staged with its seq.

    Args:
        log: the meter's applied readings.
        r: a reading whose seq is at most ``last_seq``.
        staged: the batch's accepted columns so far (seq, timestamp_ms,
            import, export, power), in seq order.
        last_seq: the highest seq applied or staged.

    Raises:
        DuplicateReadingError: the seq was applied with other content.
        ReadingOrderError: the seq was never applied (it is late).
    """
    seq = r.seq
    for cols in (staged, log.columns()):
        i = bisect.bisect_left(cols[0], seq)
        if i < len(cols[0]) and cols[0][i] == seq:
            applied = (cols[1][i], cols[2][i], cols[3][i], cols[4][i])
            got = (r.timestamp_ms, r.energy_import_wh, r.energy_export_wh, r.power_w)
            if applied != got:
                raise DuplicateReadingError(
                    "seq",
                    "already applied with other content: (timestamp_ms, energy_import_wh, "
                    f"energy_export_wh, power_w) was {applied}, got {got}",
                    meter_id=log.meter_id,
                    seq=seq,
                )
            return
    raise ReadingOrderError(
        "seq",
        f"is below the highest seq applied or earlier in the batch ({last_seq}) but was "
        "never applied (a recorded gap, or before the first reading); late readings are refused",
        meter_id=log.meter_id,
        seq=seq,
    )
