"""The settlement half of the interval lifecycle: provisional, reconciled, final.

For interval ``k`` (``E`` = end of delivery, ``W`` = metering window
``metering_delay_s``, ``R`` = ``reconciliation_window_s``)::

    metered      as soon as every meter has a reading at or after E, else at E + W;
                 meters still incomplete are estimated (flagged)     → "metered"
    provisional  the settlement of that metering, posted once         → "settled" (v0)
    reconciled   late readings change the metering before E + R:      → "remetered" (vN)
                 the difference to the postings so far, posted once   → "corrected" (vN)
    final        at E + R, with nothing pending                       → "final"

Each posting's intent is journaled before it is sent ("metered",
"remetered") and its landing after ("settled", "corrected"), so an engine
killed in between posts the same thing again on restart, and the settler
(idempotent per posting) finds it on chain: each posting lands once. A
posting that fails is retried, the wait doubling from ``settle_retry_s``
(at most :data:`_MAX_SETTLE_RETRY_S`), at most ``settle_max_attempts`` times,
then journaled as failed ("settle_failed"); a restarted engine gives a
provisional posting given up before one more round. One episode logs one
warning and, if given up, one error; no interval waits for another. After
finality changes and at each gate closure the settler is told the
watermarks (intervals below ``final_before`` final, orders taken up to
``open_through``) that time-locked withdrawals wait for.

The sum of an interval's postings is the settlement of its last metering:
each correction is ``settle(new metering) − settle(previous metering)``,
computed by the same function from the same clearing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gridex.v1 import types_pb2 as pb

from market.config import MarketConfig
from market.engine._core import Core, EngineConfig
from market.engine.settler import Correction, Settler, receipt_gas, receipt_text
from market.engine.state import IntervalState
from market.errors import EngineStateError, MarketError
from market.manifest import (
    RollRows,
    book_rows,
    feeder_digest,
    interval_inputs,
    manifest_hash,
    metering_rows,
    posting_manifest,
    roll_rows,
)
from market.settlement import IntervalSettlement, settle_interval, settlement_difference

__all__ = ["Settling"]

logger = logging.getLogger(__name__)

Meters = dict[str, tuple[int, int, bool]]

#: Longest wait between two attempts at a failing posting, s.
_MAX_SETTLE_RETRY_S = 600.0


class Settling:
    """Settlement steps of :class:`market.engine.lifecycle.Lifecycle` (its base class)."""

    _core: Core
    _market: MarketConfig
    _config: EngineConfig
    _settler: Settler
    _operator: str
    _feeder: Any
    _clearing: Any
    _settle_pool: ThreadPoolExecutor
    _busy: dict[tuple[str, int], Future[object]]
    _retry_at: dict[int, float]

    def _init_settling(self) -> None:
        self._attempts: dict[tuple[int, int], int] = {}
        self._seen: dict[int, tuple[int | None, ...]] = {}  # last timestamps of incomplete meters
        self._watermarks: tuple[int, int] | None = None
        self._feeder_sha256: str | None = None
        self._rolls: dict[int, RollRows | None] = {}  # a roll never changes once journaled
        # intervals whose provisional posting this process gave up (after a restart
        # a journaled settle_failed gets one more round of attempts)
        self._given_up: set[int] = set()
        self._advance_failures = 0
        self._advance_at = 0.0

    def end_ms(self, interval: int) -> int:  # pragma: no cover - Lifecycle defines it
        raise NotImplementedError

    def metering_ms(self, interval: int) -> int:  # pragma: no cover - Lifecycle defines it
        raise NotImplementedError

    def _submit(
        self, pool: ThreadPoolExecutor, key: tuple[str, int], fn: object, arg: object
    ) -> Future[object]:  # pragma: no cover - Lifecycle defines it
        raise NotImplementedError

    def _after_work(self) -> None:  # pragma: no cover - Lifecycle defines it
        raise NotImplementedError

    def final_ms(self, interval: int) -> int:
        """When ``interval`` becomes final (its reconciliation window closes), Unix ms."""
        return self.end_ms(interval) + self._config.reconciliation_window_s * 1000

    # -- metering --------------------------------------------------------------------

    def _metering(self, k: int) -> tuple[Meters, list[str]]:
        energies = self._core.state.ledger.settlement_energy(k)
        meters = {m: (v[0], v[1], v[2]) for m, v in sorted(energies.items())}
        return meters, [m for m, v in sorted(energies.items()) if v[3]]

    def _meter(self, s: IntervalState, now_ms: int) -> None:
        """Record the provisional metering of a delivered interval once it is due."""
        k = s.interval
        due = self.metering_ms(k) <= now_ms
        if not due and not (self.end_ms(k) <= now_ms and self._core.state.ledger.complete(k)):
            return
        meters, estimated = self._metering(k)
        body = {
            "interval": k,
            "meters": {m: list(v) for m, v in meters.items()},
            "estimated": estimated,
        }
        if estimated:
            logger.info("interval %d: metering estimated for %s", k, ", ".join(estimated))
        self._core.record("metered", self.metering_ms(k) if due else now_ms, body)
        if self._config.archive_dir is not None:
            self._core.state.ledger.archive(self._config.archive_dir)

    def _incomplete_marks(self, s: IntervalState) -> tuple[int | None, ...]:
        ledger = self._core.state.ledger
        incomplete = [m for m, v in (s.metered or {}).items() if not v[2]]
        missing = [m for m in ledger.meters if m not in (s.metered or {})]
        return tuple(ledger.last_timestamp(m) for m in [*incomplete, *missing])

    def _reconcile(self, s: IntervalState, now_ms: int) -> None:
        """A settled interval: make it final when due, or start a reconciliation."""
        k = s.interval
        if s.pending is not None or ("settle", k) in self._busy:
            return
        if self.final_ms(k) <= now_ms:
            self._core.record("final", self.final_ms(k), {"interval": k})
            self._seen.pop(k, None)
            return
        marks = self._incomplete_marks(s)
        if not marks or self._seen.get(k) == marks:
            return  # every meter was complete, or nothing new arrived since the last look
        self._seen[k] = marks
        meters, estimated = self._metering(k)
        if meters == s.metered and tuple(estimated) == s.estimated:
            return
        body = {
            "interval": k,
            "version": s.version + 1,
            "meters": {m: list(v) for m, v in meters.items()},
            "estimated": estimated,
        }
        self._core.record("remetered", now_ms, body)

    def _finalize_unsettled(self, s: IntervalState, now_ms: int) -> None:
        """A metered interval whose provisional posting was given up becomes final in time."""
        if s.failure and self.final_ms(s.interval) <= now_ms:
            self._core.record("final", self.final_ms(s.interval), {"interval": s.interval})

    # -- settlements -----------------------------------------------------------------

    def settlement_of(self, s: IntervalState, metered: Meters | None = None) -> IntervalSettlement:
        """The settlement of a metered interval, from its clearing and metered energy.

        ``metered`` defaults to the interval's latest posted metering. A
        clearing that failed (or was not cleared, e.g. AC-infeasible) settles
        as "no local trades": everyone's metered energy at the tariffs.
        """
        state = self._core.state
        by_owner: dict[str, int] = {}
        for meter_id, (imp, exp, _) in ((s.metered or {}) if metered is None else metered).items():
            owner = state.meters[meter_id][1]
            by_owner[owner] = by_owner.get(owner, 0) + exp - imp
        clearing = s.clearing
        if clearing is None:
            raise EngineStateError(f"interval: {s.interval} is metered but was never cleared")
        summary = clearing.summary
        surplus = 0 if summary is None else summary.operator_surplus
        if surplus < 0:
            # Negative loss rents can leave the clearing's surplus below zero; the
            # on-chain fee cannot be negative, so the operator's own delta carries it.
            logger.info(
                "interval %d: operator surplus %d < 0 settled through the operator's account",
                s.interval,
                surplus,
            )
            surplus = 0
        return settle_interval(
            s.interval,
            traded_wh={} if summary is None else dict(summary.traded_wh),
            payments={} if summary is None else dict(summary.payments),
            operator_surplus=surplus,
            metered_wh=by_owner,
            config=self._market,
            operator=self._operator,
            result_hash=clearing.result_hash,
        )

    def commitment(
        self,
        s: IntervalState,
        version: int,
        *,
        previous_hash: bytes,
        meters: Meters,
        estimated: Iterable[str],
        deltas: Mapping[str, int],
        fee: int,
    ) -> bytes:
        """The hash a posting carries on chain: its manifest's (:mod:`market.manifest`).

        Built from the engine state alone (the interval's orders, clearing and
        the posting's metering), so a restarted engine computes the same hash,
        and so does anyone who rebuilds it from the published bundle.
        """
        clearing = s.clearing
        if clearing is None:
            raise EngineStateError(f"interval: {s.interval} is metered but was never cleared")
        if self._feeder_sha256 is None:
            self._feeder_sha256 = feeder_digest(self._feeder)
        orders, participants = book_rows(self._core.state, s)
        if s.interval not in self._rolls:
            self._rolls[s.interval] = roll_rows(self._core.state, s.interval)
        inputs = interval_inputs(
            feeder_name=self._feeder.name,
            feeder_sha256=self._feeder_sha256,
            base=clearing.base,
            market=self._market,
            mechanism=clearing.mechanism,
            options=getattr(self._clearing, "options", None),
            operator=self._operator,
            orders=orders,
            participants=participants,
            roll=self._rolls[s.interval],
        )
        manifest = posting_manifest(
            inputs,
            interval=s.interval,
            version=version,
            previous_hash=previous_hash,
            metering=metering_rows(self._core.state, meters, estimated),
            clearing_ok=clearing.ok,
            clearing_hash=clearing.result_hash,
            deltas=deltas,
            fee=fee,
        )
        return manifest_hash(manifest)

    def _may_try(self, k: int) -> bool:
        return ("settle", k) not in self._busy and self._retry_at.get(k, 0.0) <= time.monotonic()

    def _failed(self, k: int, version: int, error: str, exc: BaseException | None = None) -> None:
        """Count a failed attempt at posting ``version`` of ``k``; retry later, backing
        off, and give the posting up after the last attempt.

        The wait doubles from ``settle_retry_s`` up to :data:`_MAX_SETTLE_RETRY_S`.
        One episode logs one WARNING line (the first failure), DEBUG lines for the
        attempts after it, and one ERROR line when the posting is given up
        (journaled ``settle_failed``). A traceback is logged only for what is not a
        chain error (a bug): a revert or an unreachable node is expected.
        """
        from contracts.errors import ChainError

        attempts = self._attempts.get((k, version), 0) + 1
        self._attempts[(k, version)] = attempts
        limit = self._config.settle_max_attempts
        wait_s = min(self._config.settle_retry_s * 2 ** (attempts - 1), _MAX_SETTLE_RETRY_S)
        if attempts < limit:
            self._retry_at[k] = time.monotonic() + wait_s
            if attempts == 1:
                logger.warning(
                    "interval %d: posting v%d failed: %s; trying again, backing off, "
                    "up to %d attempts",
                    k,
                    version,
                    error,
                    limit,
                    exc_info=exc if exc is not None and not isinstance(exc, ChainError) else None,
                )
            else:
                logger.debug(
                    "interval %d: posting v%d attempt %d of %d failed: %s; next in %.0f s",
                    k,
                    version,
                    attempts,
                    limit,
                    error,
                    wait_s,
                )
            return
        self._attempts.pop((k, version), None)
        self._retry_at.pop(k, None)
        self._given_up.add(k)
        logger.error(
            "interval %d: posting v%d given up after %d attempts: %s (journaled settle_failed; "
            "fix the cause and restart the engine to try again, see docs/settlement.md)",
            k,
            version,
            attempts,
            error,
        )
        with self._core.lock:
            body = {"interval": k, "version": version, "error": error}
            self._core.record("settle_failed", self._core.clock.now_ms(), body)

    def _succeeded(self, k: int, version: int) -> None:
        attempts = self._attempts.pop((k, version), 0)
        self._retry_at.pop(k, None)
        if attempts:
            logger.info(
                "interval %d: posting v%d landed after %d failed attempts", k, version, attempts
            )

    def _start_settlement(self, s: IntervalState) -> None:
        try:
            settlement = self.settlement_of(s)
            committed = self.commitment(
                s,
                0,
                previous_hash=b"",
                meters=s.metered or {},
                estimated=s.estimated,
                deltas=settlement.deltas,
                fee=settlement.fee,
            )
            settlement = dataclasses.replace(settlement, result_hash=committed)
        except MarketError as exc:
            self._failed(s.interval, 0, f"cannot compute the settlement: {exc}")
            return
        self._submit(self._settle_pool, ("settle", s.interval), self._settle, settlement)

    def _start_correction(self, s: IntervalState) -> None:
        assert s.pending is not None
        version, meters, estimated = s.pending
        try:
            posted = self.settlement_of(s)
            wanted = self.settlement_of(s, meters)
            deltas, fee = settlement_difference(posted, wanted)
            previous = s.last_hash
            result_hash = self.commitment(
                s,
                version,
                previous_hash=previous,
                meters=meters,
                estimated=estimated,
                deltas=deltas,
                fee=fee,
            )
        except MarketError as exc:
            self._failed(s.interval, version, f"cannot compute the reconciliation: {exc}")
            return
        correction = Correction(s.interval, version, previous, deltas, fee, result_hash, wanted)
        self._submit(self._settle_pool, ("settle", s.interval), self._correct, correction)

    def _post(self, k: int, version: int, send: Callable[[], object]) -> tuple[object, str] | None:
        try:
            posted = send()
            return posted, receipt_text(posted)
        except Exception as exc:
            self._failed(k, version, f"{type(exc).__name__}: {exc}", exc)
            return None

    def _settle(self, settlement: IntervalSettlement) -> object:
        k = settlement.interval
        done = self._post(k, 0, lambda: self._settler.settle(settlement))
        if done is None:
            return None
        posted, receipt = done
        self._succeeded(k, 0)
        body = {
            "interval": k,
            "deltas": dict(settlement.deltas),
            "fee": settlement.fee,
            "imbalance_wh": dict(settlement.imbalance_wh),
            "result_hash": settlement.result_hash.hex(),
            "receipt": receipt,
            "gas_used": receipt_gas(posted),
        }
        with self._core.lock:
            self._core.record("settled", self._core.clock.now_ms(), body)
        self._after_work()
        return receipt

    def _correct(self, correction: Correction) -> object:
        k, version = correction.interval, correction.version
        done = self._post(k, version, lambda: self._settler.correct(correction))
        if done is None:
            return None
        posted, receipt = done
        self._succeeded(k, version)
        body = {
            "interval": k,
            "version": version,
            "deltas": correction.deltas,
            "fee": correction.fee,
            "imbalance_wh": dict(correction.settlement.imbalance_wh),
            "result_hash": correction.result_hash.hex(),
            "previous_hash": correction.previous_hash.hex(),
            "receipt": receipt,
            "gas_used": receipt_gas(posted),
        }
        with self._core.lock:
            self._core.record("corrected", self._core.clock.now_ms(), body)
        self._after_work()
        return receipt

    # -- watermarks ------------------------------------------------------------------

    def watermarks(self, now_ms: int) -> tuple[int, int]:
        """``(final_before, open_through)``: every interval below the first is final;
        orders are taken up to the second."""
        state = self._core.state
        first = state.first_interval or 0
        final_before = first
        while state.intervals.get(final_before) is not None and state.intervals[final_before].final:
            final_before += 1
        current = now_ms // self._core.interval_ms
        return final_before, current + self._config.horizon_intervals + 1

    def _announce(self, now_ms: int) -> None:
        marks = self.watermarks(now_ms)
        if marks == self._watermarks or ("advance", -1) in self._busy:
            return
        if self._advance_at > time.monotonic():
            return
        self._submit(self._settle_pool, ("advance", -1), self._advance, marks)

    def _advance(self, marks: tuple[int, int]) -> object:
        """Post the watermarks; a failure is tried again (backing off, without end:
        withdrawals wait for it) and logged once until it succeeds."""
        from contracts.errors import ChainError

        try:
            self._settler.advance(*marks)
        except Exception as exc:
            self._advance_failures += 1
            wait_s = self._config.settle_retry_s * 2 ** (self._advance_failures - 1)
            self._advance_at = time.monotonic() + min(wait_s, _MAX_SETTLE_RETRY_S)
            log = logger.warning if self._advance_failures == 1 else logger.debug
            log(
                "watermarks %s not posted (attempt %d): %s: %s; trying again, backing off",
                marks,
                self._advance_failures,
                type(exc).__name__,
                exc,
                exc_info=exc if not isinstance(exc, ChainError) and log is logger.warning else None,
            )
            return None
        if self._advance_failures:
            logger.info("watermarks %s posted after %d failures", marks, self._advance_failures)
        self._advance_failures = 0
        self._watermarks = marks
        return marks

    def _settlement_step(self, s: IntervalState, now_ms: int) -> None:
        """Everything due for ``s`` from delivery on (called with the engine lock held)."""
        if s.final:
            return
        if s.phase == pb.INTERVAL_PHASE_DELIVERED:
            self._meter(s, now_ms)
        if s.phase == pb.INTERVAL_PHASE_METERED:
            if s.failure:
                self._finalize_unsettled(s, now_ms)
            retry = not s.failure or s.interval not in self._given_up
            if not s.final and retry and self._may_try(s.interval):
                self._start_settlement(s)
        elif s.phase == pb.INTERVAL_PHASE_SETTLED:
            self._reconcile(s, now_ms)
            if s.pending is not None and self._may_try(s.interval):
                self._start_correction(s)
