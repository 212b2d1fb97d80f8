"""The substitution rule for missing meter data, used when a metering window closes.

Private to :mod:`market.metering` (:meth:`MeterLedger.settlement_energy`).

Rule (documented in docs/settlement.md). For interval ``k`` covering
``[start, end)`` ms, a meter is *complete* when it has a reading at or after
``end``; its energy is then the ledger's metered energy (counter at ``end``
minus counter at ``start``, boundaries interpolated). Otherwise the metered
part (up to its last reading) is kept and the rest of the interval, from
``max(last reading, start)`` to ``end``, is *estimated* at the meter's last
reported power held constant: ``|power_w| × missing_ms / 3,600,000`` Wh,
rounded half up, added to export when that power is positive (injection)
and to import otherwise. A meter with no reading before ``end`` at all is
estimated at zero. Every estimate is flagged, never silent; a later
reconciliation replaces it with what the meter actually recorded.
"""

from __future__ import annotations

import bisect

from market._metering_values import MeteredEnergy, MeterLog

__all__ = ["settlement_energy"]

_MS_PER_HOUR = 3_600_000


def settlement_energy(
    log: MeterLog, measured: MeteredEnergy, start_ms: int, end_ms: int
) -> tuple[int, int, bool, bool, int]:
    """Energy of ``log``'s meter in ``[start_ms, end_ms)`` with missing data substituted.

    Args:
        log: the meter's applied readings.
        measured: the ledger's metered energy of the interval (the part covered).
        start_ms: interval start, Unix ms.
        end_ms: interval end, Unix ms.

    Returns:
        ``(import_wh, export_wh, complete, estimated, estimated_wh)``.
    """
    i = bisect.bisect_left(log.ts, end_ms)
    if i < len(log.ts):
        return measured.import_wh, measured.export_wh, True, False, 0
    if i == 0:
        return 0, 0, False, True, 0
    last = i - 1
    missing_ms = end_ms - max(log.ts[last], start_ms)
    power_w = log.pw[last]
    wh = (2 * abs(power_w) * missing_ms + _MS_PER_HOUR) // (2 * _MS_PER_HOUR)
    if power_w > 0:
        return measured.import_wh, measured.export_wh + wh, False, True, wh
    return measured.import_wh + wh, measured.export_wh, False, True, wh
