"""The meter ledger: validated cumulative readings and metered energy per interval.

Sign convention: ``energy_import_wh`` counts energy taken from the grid,
``energy_export_wh`` energy fed into it; both are cumulative counters that
never decrease. ``power_w`` is positive when the meter injects into the grid.

How it works: :meth:`MeterLedger.apply` validates a batch in plain Python
against the meter's last applied reading and appends it to per-meter
``array('q')`` columns, all or nothing. Polars only runs when someone asks
for a frame: metered energy per interval (:meth:`MeterLedger.metered`),
:meth:`MeterLedger.readings_frame` and the parquet archive
(:meth:`MeterLedger.archive`).

Interval ``k`` covers Unix time ``[k·interval_s, (k+1)·interval_s)``, as in
:class:`market.config.MarketConfig`. The ledger's state depends only on the
batches applied and their order, so replaying a journal rebuilds it exactly
(:meth:`MeterLedger.snapshot` compares two ledgers).
"""

from __future__ import annotations

import bisect
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import polars as pl

from market import _metering_frames as frames
from market._metering_estimate import settlement_energy
from market._metering_rules import check_duplicate, reject_new
from market._metering_values import (
    BatchOutcome,
    LedgerSnapshot,
    MeteredEnergy,
    MeterLog,
    Reading,
    SeqGap,
)
from market.errors import (
    ConfigError,
    MeterRegistrationError,
    ReadingValueError,
    UnknownMeterError,
)
from market.orders import normalise_address

__all__ = [
    "BatchOutcome",
    "LedgerSnapshot",
    "MeterLedger",
    "MeteredEnergy",
    "Reading",
    "SeqGap",
    "read_archive",
]

read_archive = frames.read_archive


class MeterLedger:
    """Readings of every meter on a feeder, validated, gap-aware and replayable.

    Args:
        interval_s: market interval length, s (positive).
        skew_s: how far, s, a new reading's timestamp may lie ahead of the
            caller's ``now_ms`` (the gateway's clock running fast; ``>= 0``).
        max_age_s: how far, s, it may lie behind ``now_ms``. Deliberately
            long (a week by default): a gateway buffers readings through an
            outage of any length and sends them late, and those readings
            must still be accepted (``>= skew_s``; default: a week, or
            ``skew_s`` if that is longer).

    Raises:
        ConfigError: ``interval_s``, ``skew_s`` or ``max_age_s`` is out of range.
    """

    def __init__(
        self, interval_s: int, *, skew_s: float = 300.0, max_age_s: float | None = None
    ) -> None:
        if type(interval_s) is not int or interval_s <= 0:
            raise ConfigError(f"interval_s: must be a positive integer, got {interval_s!r}")
        if not skew_s >= 0:
            raise ConfigError(f"skew_s: must be >= 0, got {skew_s!r}")
        if max_age_s is None:
            max_age_s = max(7 * 86_400.0, skew_s)
        if not max_age_s >= skew_s:
            raise ConfigError(f"max_age_s: must be >= skew_s ({skew_s}), got {max_age_s!r}")
        self._max_age_ms = round(max_age_s * 1000)
        self._interval_s = interval_s
        self._skew_ms = round(skew_s * 1000)
        self._meters: dict[str, MeterLog] = {}
        # Application order as runs of (meter index, first position, end position).
        self._runs: list[tuple[int, int, int]] = []
        self._run_starts: list[int] = []  # global row number of each run's first row
        self._rows = 0
        self._frame: pl.DataFrame | None = None

    @property
    def interval_s(self) -> int:
        """Interval length, s."""
        return self._interval_s

    @property
    def meters(self) -> Mapping[str, str]:
        """Registered meter ids and their participants, in registration order."""
        return {m: log.participant for m, log in self._meters.items()}

    def register_meter(self, meter_id: str, participant: str) -> None:
        """Register ``meter_id`` as belonging to ``participant`` (an address).

        Registering the same pair again does nothing.

        Raises:
            MeterRegistrationError: the meter id is empty or not a string, the
                address is malformed, or the meter already belongs to another
                participant.
        """
        if not isinstance(meter_id, str) or not meter_id:
            raise MeterRegistrationError(
                "meter_id", f"must be a non-empty string, got {meter_id!r}"
            )
        try:
            address = normalise_address(participant)
        except ValueError as exc:
            raise MeterRegistrationError("participant", str(exc), meter_id=meter_id) from exc
        log = self._meters.get(meter_id)
        if log is None:
            self._meters[meter_id] = MeterLog(meter_id, address, len(self._meters))
        elif log.participant != address:
            raise MeterRegistrationError(
                "participant",
                f"meter already registered to {log.participant}, got {address}",
                meter_id=meter_id,
            )

    def _log(self, meter_id: str) -> MeterLog:
        log = self._meters.get(meter_id)
        if log is None:
            raise UnknownMeterError("meter_id", "is not registered", meter_id=meter_id)
        return log

    def apply(self, meter_id: str, readings: Sequence[Reading], *, now_ms: int) -> BatchOutcome:
        """Validate a batch of one meter's readings and apply it, all or nothing.

        Each reading is checked against the meter's last applied reading (or
        the previous one in the batch): the batch's meter id; seq above the
        last applied (a seq already applied is a duplicate, acknowledged and
        not applied again); timestamp above the previous one, at most
        ``skew_s`` ahead of ``now_ms`` and at most ``max_age_s`` behind it;
        counters not below the previous ones. A jump in seq is recorded as a
        gap, not refused. The first reading of a meter
        may start at any seq.

        Args:
            meter_id: the registered meter the batch belongs to.
            readings: the readings, in seq order.
            now_ms: the caller's clock, Unix ms (simulated time under a
                simulated clock).

        Returns:
            The outcome: ack_seq, applied and duplicate counts, new gaps.

        Raises:
            UnknownMeterError: the meter is not registered.
            ReadingValueError: a reading names another meter.
            ReadingOrderError: a timestamp does not increase with seq, or a
                seq below the last applied one was never applied (late).
            ClockSkewError: a new reading's timestamp is outside the window.
            CounterDecreaseError: a counter is below the previous reading's.
            DuplicateReadingError: a seq already applied arrives with
                different content.
        """
        log = self._log(meter_id)
        if type(now_ms) is not int:
            raise TypeError(f"now_ms: must be an integer, got {now_ms!r}")
        if log.seq:
            last_seq, last_ts, last_imp, last_exp = (
                log.seq[-1],
                log.ts[-1],
                log.imp[-1],
                log.exp[-1],
            )
        else:
            last_seq = last_ts = -1
            last_imp = last_exp = 0
        lo, hi = now_ms - self._max_age_ms, now_ms + self._skew_ms
        n_seq: list[int] = []
        n_ts: list[int] = []
        n_imp: list[int] = []
        n_exp: list[int] = []
        n_pw: list[int] = []
        gaps: list[SeqGap] = []
        duplicates = 0
        for r in readings:
            seq = r.seq
            if r.meter_id != meter_id:
                raise ReadingValueError(
                    "meter_id",
                    f"must be the batch's meter, got {r.meter_id!r}",
                    meter_id=meter_id,
                    seq=seq,
                )
            if seq <= last_seq:
                check_duplicate(log, r, (n_seq, n_ts, n_imp, n_exp, n_pw), last_seq)
                duplicates += 1
                continue
            ts, imp, exp = r.timestamp_ms, r.energy_import_wh, r.energy_export_wh
            if ts <= last_ts or ts < lo or ts > hi or imp < last_imp or exp < last_exp:
                reject_new(r, (last_ts, last_imp, last_exp), (lo, hi), now_ms)
            if seq != last_seq + 1 and last_seq >= 0:
                gaps.append(SeqGap(last_seq + 1, seq - 1))
            n_seq.append(seq)
            n_ts.append(ts)
            n_imp.append(imp)
            n_exp.append(exp)
            n_pw.append(r.power_w)
            last_seq, last_ts, last_imp, last_exp = seq, ts, imp, exp
        if n_seq:  # commit: nothing below can fail
            start = len(log.seq)
            log.seq.extend(n_seq)
            log.ts.extend(n_ts)
            log.imp.extend(n_imp)
            log.exp.extend(n_exp)
            log.pw.extend(n_pw)
            log.gaps.extend(gaps)
            self._record_run(log.index, start, len(log.seq))
            self._frame = None
        return BatchOutcome(
            meter_id, last_seq if last_seq >= 0 else None, len(n_seq), duplicates, tuple(gaps)
        )

    def _record_run(self, meter_index: int, start: int, end: int) -> None:
        if self._runs:
            m, s, e = self._runs[-1]
            if m == meter_index and e == start:  # extend the previous run of this meter
                self._runs[-1] = (m, s, end)
                self._rows += end - start
                return
        self._runs.append((meter_index, start, end))
        self._run_starts.append(self._rows)
        self._rows += end - start

    def ack_seq(self, meter_id: str) -> int | None:
        """Highest seq applied for ``meter_id``, None if none yet.

        Raises:
            UnknownMeterError: the meter is not registered.
        """
        log = self._log(meter_id)
        return log.seq[-1] if log.seq else None

    def gaps(self, meter_id: str) -> tuple[SeqGap, ...]:
        """Every gap in seq recorded for ``meter_id``, in order.

        Raises:
            UnknownMeterError: the meter is not registered.
        """
        return tuple(self._log(meter_id).gaps)

    @property
    def reading_count(self) -> int:
        """Number of readings applied, all meters."""
        return self._rows

    def readings_frame(self) -> pl.DataFrame:
        """Every applied reading, sorted by meter id then seq.

        Returns:
            Columns meter_id (String), seq, timestamp_ms, energy_import_wh,
            energy_export_wh, power_w (Int64).
        """
        return self._readings().clone()

    def _readings(self) -> pl.DataFrame:
        """The cached readings frame, rebuilt after a batch was applied."""
        if self._frame is None:
            logs = sorted(self._meters.values(), key=lambda log: log.meter_id)
            self._frame = frames.build_frame(
                [log.meter_id for log in logs], [log.columns() for log in logs]
            )
        return self._frame

    def metered_frame(self, first: int, last: int | None = None) -> pl.DataFrame:
        """Metered energy of every registered meter in intervals ``first..last``.

        Each interval's energy is the counter at its end minus the counter at
        its start. A boundary's counter is interpolated linearly between the
        readings around it and rounded once, half up, to an integer Wh; before
        a meter's first reading it is the first reading's counter and after
        its last reading the last one. So the energies of consecutive
        intervals add up exactly to the counter difference across them.

        Args:
            first: first interval id.
            last: last interval id (inclusive), default ``first``.

        Returns:
            Columns meter_id, interval, import_wh, export_wh (Int64, Wh) and
            complete (Boolean: a reading at or after the interval's end),
            sorted by meter_id then interval.
        """
        last = first if last is None else last
        if last < first:
            raise ValueError(f"last: must be >= first ({first}), got {last}")
        return frames.metered_frame(
            self._readings(), list(self._meters), first, last, self._interval_s * 1000
        )

    def metered(self, interval: int) -> dict[str, MeteredEnergy]:
        """Metered energy of every registered meter in ``interval``, by meter id.

        See :meth:`metered_frame` for the rule. A meter without readings
        reports zero energy, incomplete.
        """
        out: dict[str, MeteredEnergy] = {}
        for meter_id, imp, exp, complete in (
            self.metered_frame(interval)
            .select("meter_id", "import_wh", "export_wh", "complete")
            .iter_rows()
        ):
            out[meter_id] = MeteredEnergy(imp, exp, complete)
        return out

    def last_timestamp(self, meter_id: str) -> int | None:
        """Timestamp of ``meter_id``'s latest applied reading, Unix ms (None: none yet).

        Raises:
            UnknownMeterError: the meter is not registered.
        """
        log = self._log(meter_id)
        return log.ts[-1] if log.ts else None

    def complete(self, interval: int) -> bool:
        """Whether every registered meter has a reading at or after ``interval``'s end."""
        end = (interval + 1) * self._interval_s * 1000
        return all(log.ts and log.ts[-1] >= end for log in self._meters.values())

    def settlement_energy(self, interval: int) -> dict[str, tuple[int, int, bool, bool]]:
        """What a settlement of ``interval`` uses per meter id, missing data substituted.

        Each value is ``(import_wh, export_wh, complete, estimated)``: the
        metered energy of a complete meter, or for an incomplete one its
        metered part plus an estimate of the rest by the rule of
        :mod:`market._metering_estimate` (the meter's last power held until
        the interval's end), flagged ``estimated``.
        """
        start = interval * self._interval_s * 1000
        end = start + self._interval_s * 1000
        out: dict[str, tuple[int, int, bool, bool]] = {}
        for meter_id, measured in self.metered(interval).items():
            imp, exp, complete, estimated, _ = settlement_energy(
                self._meters[meter_id], measured, start, end
            )
            out[meter_id] = (imp, exp, complete, estimated)
        return out

    def metered_by_participant(self, interval: int) -> dict[str, MeteredEnergy]:
        """Metered energy summed over each participant's meters in ``interval``.

        ``complete`` holds when it holds for every one of the participant's meters.
        """
        out: dict[str, MeteredEnergy] = {}
        for meter_id, energy in self.metered(interval).items():
            participant = self._meters[meter_id].participant
            prev = out.get(participant)
            out[participant] = (
                energy
                if prev is None
                else MeteredEnergy(
                    prev.import_wh + energy.import_wh,
                    prev.export_wh + energy.export_wh,
                    prev.complete and energy.complete,
                )
            )
        return dict(sorted(out.items()))

    def _rows_from(self, start: int) -> Iterator[tuple[str, tuple[array[int], ...]]]:
        """Column slices of the applied rows from global row ``start`` on, in order."""
        logs = list(self._meters.values())
        i = max(bisect.bisect_right(self._run_starts, start) - 1, 0)
        for k in range(i, len(self._runs)):
            m, s, e = self._runs[k]
            s += max(start - self._run_starts[k], 0)
            log = logs[m]
            yield log.meter_id, tuple(col[s:e] for col in log.columns())

    def archive(self, directory: str | os.PathLike[str]) -> Path | None:
        """Append the readings not yet archived to ``directory`` as one parquet file.

        Files are named ``readings-<first row>-<end row>.parquet`` (rows
        numbered from 0 in application order, end exclusive, 12 digits), hold
        the columns of :meth:`readings_frame` in application order, and are
        written under a temporary name then renamed, never rewritten. The
        ledger starts after the last row already in the directory (so use one
        directory per ledger), so after a restart and journal replay it
        continues the archive without duplicating rows. :func:`read_archive`
        reads the whole directory back.

        Returns:
            The file written, or None if there was nothing new.
        """
        folder = Path(directory)
        start = frames.archive_end(folder)
        if start >= self._rows:
            return None
        parts = list(self._rows_from(start))
        frame = frames.build_frame([p[0] for p in parts], [p[1] for p in parts])
        return frames.write_archive(folder, frame, start)

    def snapshot(self) -> LedgerSnapshot:
        """The ledger's state as plain values; equal for equal histories."""
        logs = list(self._meters.values())
        meters = tuple(
            (
                log.meter_id,
                log.participant,
                tuple(zip(log.seq, log.ts, log.imp, log.exp, log.pw, strict=True)),
                tuple(log.gaps),
            )
            for log in logs
        )
        order = tuple((logs[m].meter_id, e - s) for m, s, e in self._runs)
        return LedgerSnapshot(self._interval_s, self._skew_ms, meters, order)
