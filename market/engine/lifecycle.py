"""The interval lifecycle: ``open → gate closed → cleared → delivered → metered → settled``.

Times for interval ``k`` (``I`` = interval length, ``G`` = gate closure lead,
``D`` = metering delay, all ms)::

    gate closes   k·I − G        (then clearing runs in the clearing thread)
    delivered     (k+1)·I        (once cleared)
    metered       (k+1)·I + D    or earlier, once every meter's data covers the interval
                                 (then settlement runs in the settlement thread; see
                                 :mod:`market.engine.settling` for reconciliation and
                                 finality)

Every interval from the engine's first one onward goes through all phases,
with or without orders: imbalance against metered energy is settled either
way. Transitions are journaled with their scheduled time, so a replay gives
the same events with the same times. Clearing and settlement never run on a
gRPC thread and never hold the engine lock while they work, so order entry
for other intervals goes on meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gridex.v1 import types_pb2 as pb

from grid import Feeder
from market.config import MarketConfig
from market.engine import rolling
from market.engine._core import Core, EngineConfig
from market.engine.clearing import ClearingBackend
from market.engine.settler import Settler
from market.engine.settling import Settling
from market.engine.state import ClearingRecord, IntervalState
from market.errors import ClearingError, EngineStateError, MarketError, RequestError
from market.orders import Order, Participant

if TYPE_CHECKING:
    from market.forecast import BaseInterval, ViewCache

__all__ = ["Lifecycle"]

logger = logging.getLogger(__name__)

#: Longest single advance of a simulated clock (every interval on the way is run), ms.
_MAX_ADVANCE_MS = 7 * 86_400_000
#: Longest wait between two tries of a failing settlement posting, s.


@dataclass(frozen=True, slots=True)
class _ClearingJob:
    interval: int
    orders: tuple[Order, ...]
    participants: dict[str, Participant]
    mechanism: str
    rerun: bool


class Lifecycle(Settling):
    """Moves intervals through their phases as the clock passes their times."""

    def __init__(
        self,
        core: Core,
        *,
        feeder: Feeder,
        market: MarketConfig,
        config: EngineConfig,
        clearing: ClearingBackend,
        settler: Settler,
        operator_account: str,
        base: ViewCache | None = None,
    ) -> None:
        self._core = core
        self._feeder = feeder
        self._base = base
        self._roll_length = rolling.horizon_length(config.flex_horizon_intervals, market.interval_s)
        self._roll_views = None
        if base is not None:  # a roll needs every view of its horizon at once
            from market.forecast import ViewCache

            self._roll_views = ViewCache(base.feeder, base.forecast, keep=self._roll_length + 8)
        self._journaled_views: Any = None  # BaseViews of replayed rolls, made on first use
        self._market = market
        self._config = config
        self._clearing = clearing
        self._settler = settler
        self._operator = operator_account
        self._clear_pool = ThreadPoolExecutor(1, thread_name_prefix="gridex-clearing")
        self._settle_pool = ThreadPoolExecutor(1, thread_name_prefix="gridex-settlement")
        self._busy: dict[tuple[str, int], Future[object]] = {}
        self._retry_at: dict[int, float] = {}  # interval -> monotonic time of the next try
        self._idle = threading.Condition()
        self._advance_lock = threading.Lock()
        self._closed = False
        self.next_gate = 0
        self._init_settling()

    # -- times -----------------------------------------------------------------------

    def gate_ms(self, interval: int) -> int:
        """When the gate of ``interval`` closes, Unix ms."""
        return interval * self._core.interval_ms - self._config.gate_closure_s * 1000

    def end_ms(self, interval: int) -> int:
        """When the delivery of ``interval`` ends, Unix ms."""
        return (interval + 1) * self._core.interval_ms

    def metering_ms(self, interval: int) -> int:
        """When ``interval`` is metered, Unix ms."""
        return self.end_ms(interval) + self._config.metering_delay_s * 1000

    def first_open_interval(self, now_ms: int) -> int:
        """The first interval whose gate is still open at ``now_ms``."""
        return (now_ms + self._config.gate_closure_s * 1000) // self._core.interval_ms + 1

    def resume(self) -> None:
        """Pick up after a replay: the first interval whose gate is still open."""
        state = self._core.state
        first = state.first_interval if state.first_interval is not None else 0
        closed = [k for k, s in state.intervals.items() if s.phase != pb.INTERVAL_PHASE_OPEN]
        self.next_gate = max([first, *(k + 1 for k in closed)])

    # -- transitions -----------------------------------------------------------------

    def process_due(self, now_ms: int) -> None:
        """Run every transition due at ``now_ms`` and start the work it needs."""
        if self._closed:
            return
        core = self._core
        with core.lock:
            while self.gate_ms(self.next_gate) <= now_ms:
                k = self.next_gate
                at = self.gate_ms(k)
                if core.state.phase(k) == pb.INTERVAL_PHASE_OPEN:
                    core.record("gate", at, {"interval": k})
                self.next_gate = k + 1
            for k in sorted(self._unsettled()):
                self._step(core.state.interval(k), now_ms)
            self._announce(now_ms)

    def _unsettled(self) -> list[int]:
        """Intervals past their gate that are not final yet."""
        return [
            k
            for k, s in self._core.state.intervals.items()
            if s.phase >= pb.INTERVAL_PHASE_GATE_CLOSED and not s.final
        ]

    def _step(self, s: IntervalState, now_ms: int) -> None:
        core, k = self._core, s.interval
        if s.phase == pb.INTERVAL_PHASE_GATE_CLOSED and ("clear", k) not in self._busy:
            self._start_clearing(k, self._config.mechanism, rerun=False)
        if s.phase == pb.INTERVAL_PHASE_CLEARED and self.end_ms(k) <= now_ms:
            core.record("delivered", self.end_ms(k), {"interval": k})
        if s.phase >= pb.INTERVAL_PHASE_DELIVERED:
            self._settlement_step(s, now_ms)

    def next_due_ms(self) -> int:
        """The earliest time at which a transition is due (ignoring running work)."""
        times = [self.gate_ms(self.next_gate)]
        for k in self._unsettled():
            phase = self._core.state.phase(k)
            if phase == pb.INTERVAL_PHASE_CLEARED:
                times.append(self.end_ms(k))
            elif phase == pb.INTERVAL_PHASE_DELIVERED:
                times.append(self.metering_ms(k))
            elif phase >= pb.INTERVAL_PHASE_METERED:
                times.append(self.final_ms(k))
        return min(times)

    # -- clearing --------------------------------------------------------------------

    def trigger_clearing(self, interval: int, mechanism: str, *, rerun: bool) -> Future[object]:
        """Clear ``interval`` now (closing its gate early) or again (``rerun``).

        Returns:
            A future of the new :class:`ClearingRecord`.

        Raises:
            RequestError: unknown mechanism.
            EngineStateError: the interval is not clearable in its phase.
        """
        if mechanism not in ("nodal", "uniform"):
            raise RequestError(f"mechanism: expected 'nodal' or 'uniform', got {mechanism!r}")
        core = self._core
        with core.lock:
            first = core.state.first_interval or 0
            if interval < first:
                raise EngineStateError(
                    f"interval: {interval} is before the engine's first interval {first}"
                )
            phase = core.state.phase(interval)
            if phase == pb.INTERVAL_PHASE_OPEN:
                if interval != self.next_gate:
                    raise EngineStateError(
                        f"interval: only the next interval to close ({self.next_gate}) may be "
                        f"cleared early, not {interval}"
                    )
                core.record("gate", core.clock.now_ms(), {"interval": interval})
                self.next_gate = interval + 1
            elif phase == pb.INTERVAL_PHASE_CLEARED:
                if not rerun:
                    raise EngineStateError(
                        f"rerun: interval {interval} is already cleared; set rerun to clear again"
                    )
            elif phase != pb.INTERVAL_PHASE_GATE_CLOSED:
                raise EngineStateError(
                    f"interval: interval {interval} is past clearing (delivery has ended)"
                )
            busy = self._busy.get(("clear", interval))
            if busy is not None:
                return busy
            return self._start_clearing(interval, mechanism, rerun=phase != pb.INTERVAL_PHASE_OPEN)

    def _start_clearing(self, k: int, mechanism: str, *, rerun: bool) -> Future[object]:
        state = self._core.state
        if rerun and k in state.flex_rolls:
            raise EngineStateError(
                f"rerun: interval {k} was cleared in a flexibility roll (its firm fills moved "
                "the flexibility orders on); it cannot be cleared again"
            )
        if not rerun and mechanism == "nodal" and rolling.live_flex(state):
            return self._submit(self._clear_pool, ("clear", k), self._roll, k)
        s = state.interval(k)
        live = (pb.ORDER_STATUS_OPEN, pb.ORDER_STATUS_CANCELLED)
        orders = tuple(r.order for r in s.orders if r.status not in live)
        job = _ClearingJob(k, orders, dict(self._core.state.participants), mechanism, rerun)
        return self._submit(self._clear_pool, ("clear", k), self._clear, job)

    def run_clearing(
        self,
        interval: int,
        orders: tuple[Order, ...],
        participants: dict[str, Participant],
        mechanism: str,
        *,
        base: BaseInterval | None = None,
    ) -> tuple[bool, str, bytes, BaseInterval | None]:
        """Clear one book; return (ok, error, result JSON, base cleared against). Never raises.

        With a base forecast the book is cleared on the feeder's view at the
        forecast of ``interval`` (or at ``base``, a journaled base, when
        given); an interval the forecast does not cover fails to clear
        rather than being cleared against another base.
        """
        k = interval
        feeder = self._feeder
        try:
            if base is not None:
                feeder = base.view(self._feeder)
            elif self._base is not None:
                feeder, base = self._base.at(k)
            blob = self._clearing.clear(
                feeder,
                orders,
                participants,
                self._market,
                interval=interval,
                mechanism=mechanism,
            )
        except ClearingError as exc:
            logger.warning("interval %d: clearing failed: %s", k, exc)
            return False, str(exc), b"", base
        except MarketError as exc:  # the base forecast does not cover the interval
            logger.warning("interval %d: not cleared: %s", k, exc)
            return False, str(exc), b"", base
        except Exception as exc:  # a clearing bug must not stop the market
            logger.exception("interval %d: clearing raised", k)
            return False, f"internal clearing error: {type(exc).__name__}: {exc}", b"", base
        return True, "", blob, base

    def _clear(self, job: _ClearingJob) -> object:
        ok, error, blob, base = self.run_clearing(
            job.interval, job.orders, job.participants, job.mechanism
        )
        core = self._core
        with core.lock:
            phase = core.state.phase(job.interval)
            if phase not in (pb.INTERVAL_PHASE_GATE_CLOSED, pb.INTERVAL_PHASE_CLEARED):
                raise EngineStateError(f"interval: {job.interval} moved on while clearing")
            body: dict[str, object] = {
                "interval": job.interval,
                "mechanism": job.mechanism,
                "ok": ok,
                "error": error,
            }
            if base is not None:
                body["base"] = base.to_json()
            take_flows = getattr(self._clearing, "take_flows", None)  # optional in a backend
            flows = take_flows(job.interval) if ok and take_flows is not None else None
            if flows is not None:
                body["flows"] = flows  # the report reads them instead of a new power flow
            core.record("cleared", core.clock.now_ms(), body, blob=blob or None)
            record: ClearingRecord | None = core.state.interval(job.interval).clearing
        self._after_work()
        return record

    def _roll(self, k: int) -> object:
        """Clear the horizon from ``k`` (:mod:`market.engine.rolling`); journal it and ``k``."""
        core = self._core
        with core.lock:
            inputs = rolling.roll_inputs(core.state, k, self._roll_length)
        outcome = rolling.run_roll(
            self._feeder, self._roll_views, self._market, inputs, self._roll_options()
        )
        with core.lock:
            phase = core.state.phase(k)
            if phase != pb.INTERVAL_PHASE_GATE_CLOSED:
                raise EngineStateError(f"interval: {k} moved on while clearing")
            now = core.clock.now_ms()
            if outcome.ok:
                n = outcome.length
                inputs = replace(inputs, orders=inputs.orders[:n], bases=outcome.bases or None)
                roll = inputs.body(core.state.bases)
                core.record("flex_roll", now, roll, blob=outcome.horizon_json)
            body: dict[str, object] = {
                "interval": k,
                "mechanism": "nodal",
                "ok": outcome.ok,
                "error": outcome.error,
            }
            if outcome.base is not None:
                body["base"] = outcome.base.to_json()
            core.record("cleared", now, body, blob=outcome.firm_json or None)
            record: ClearingRecord | None = core.state.interval(k).clearing
        self._after_work()
        return record

    def _roll_options(self) -> Any:
        return getattr(self._clearing, "options", None)

    def replay_roll(self, body: Mapping[str, Any]) -> bytes:
        """Clear a journaled roll again on the inputs it names; its horizon JSON.

        Call with the state as it was when the roll was journaled.

        Raises:
            JournalError: the roll does not clear again.
        """
        from market.errors import JournalError

        try:
            inputs = rolling.journaled_inputs(self._core.state, body)
        except KeyError as exc:
            raise JournalError(
                f"flex_roll: names an order or a base the journal lacks: {exc}"
            ) from exc
        if self._journaled_views is None:
            from market.forecast import BaseViews

            self._journaled_views = BaseViews(self._feeder, keep=self._roll_length + 8)
        outcome = rolling.run_roll(
            self._feeder,
            self._roll_views,
            self._market,
            inputs,
            self._roll_options(),
            journaled=self._journaled_views,
        )
        if not outcome.ok:
            raise JournalError(
                f"flex_roll: interval {inputs.interval} does not clear again: {outcome.error}"
            )
        return outcome.horizon_json

    # -- work bookkeeping ------------------------------------------------------------

    def _submit(
        self, pool: ThreadPoolExecutor, key: tuple[str, int], fn: object, arg: object
    ) -> Future[object]:
        with self._idle:  # registered before the job can finish, so wait_idle sees it
            future: Future[object] = pool.submit(fn, arg)  # type: ignore[arg-type]
            self._busy[key] = future

        def done(_: Future[object]) -> None:
            with self._idle:
                if self._busy.get(key) is future:
                    del self._busy[key]
                self._idle.notify_all()

        future.add_done_callback(done)
        return future

    def _after_work(self) -> None:
        if self._core.clock.kind == "wall":
            self.process_due(self._core.clock.now_ms())

    def wait_idle(self, timeout_s: float, *, settlement: bool = True) -> bool:
        """Wait until no clearing (nor, with ``settlement``, any posting) runs; False on timeout."""
        with self._idle:
            return self._idle.wait_for(
                lambda: not any(settlement or kind == "clear" for kind, _ in self._busy),
                timeout_s,
            )

    def advance_to(self, to_ms: int) -> int:
        """Move a simulated clock to ``to_ms``, running every transition on the way.

        Returns:
            The clock afterwards, Unix ms.

        Raises:
            EngineStateError: the clock is not simulated, or work did not finish
                within ``wait_timeout_s``.
            RequestError: ``to_ms`` lies in the past.
        """
        core = self._core
        clock = core.clock
        if clock.kind != "sim":
            raise EngineStateError("clock: only a simulated clock can be advanced")
        if to_ms < clock.now_ms():
            raise RequestError(
                f"to_ms: must not lie in the past (now {clock.now_ms()}), got {to_ms}"
            )
        if to_ms - clock.now_ms() > _MAX_ADVANCE_MS:
            raise RequestError(
                f"to_ms: may advance at most {_MAX_ADVANCE_MS // 86_400_000} days at once, "
                f"got {(to_ms - clock.now_ms()) / 86_400_000:.1f}"
            )
        set_time = clock.set  # type: ignore[attr-defined]  # SimClock, checked above
        timeout = self._config.wait_timeout_s
        behind = self._config.settle_behind_clock
        with self._advance_lock:
            while True:
                if not self.wait_idle(timeout, settlement=not behind):
                    raise EngineStateError("clock: clearing or settlement did not finish in time")
                with core.lock:
                    due = self.next_due_ms()
                if due > to_ms:
                    break
                if behind and due <= clock.now_ms() and not self.wait_idle(timeout):
                    # what is due was processed and waits for a posting (finality): let it land
                    raise EngineStateError("clock: settlement did not finish in time")
                set_time(due)
                self.process_due(due)
            set_time(to_ms)
            with core.lock:
                core.record("clock", to_ms, {"to_ms": to_ms})
            self.process_due(to_ms)
            if not self.wait_idle(timeout, settlement=not behind):
                raise EngineStateError("clock: clearing or settlement did not finish in time")
        return clock.now_ms()

    def settle_pending(self) -> None:
        """Let every posting behind a simulated clock land, and run what they unblock.

        Raises:
            EngineStateError: the postings did not finish within ``wait_timeout_s``.
        """
        with self._advance_lock:
            while True:
                if not self.wait_idle(self._config.wait_timeout_s):
                    raise EngineStateError("clock: settlement did not finish in time")
                self.process_due(self._core.clock.now_ms())
                if self.wait_idle(0.0):
                    return

    def close(self) -> None:
        """Stop accepting work and wait for the running jobs."""
        self._closed = True
        self._clear_pool.shutdown(wait=True)
        self._settle_pool.shutdown(wait=True)
