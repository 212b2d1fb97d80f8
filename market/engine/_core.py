"""What the engine's parts share: the lock, the state, the journal and the event hub.

:meth:`Core.record` is the only way the live engine changes its state: apply
the entry (which validates first), journal it, and tell the event hub which
events wait for that entry's commit. It must be called with :attr:`Core.lock`
held, so that apply order and journal order are the same.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gridex.v1 import market_pb2

from market.engine.clock import Clock
from market.engine.events import EventHub
from market.engine.journal import Journal
from market.engine.state import MarketState

__all__ = ["Core", "EngineConfig"]

_ENGINE_ID = re.compile(r"[0-9A-Za-z._:-]{1,64}")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine runs one market.

    Attributes:
        mechanism: default clearing mechanism, ``nodal`` or ``uniform``.
        gate_closure_s: the gate of interval k closes this many seconds before
            its delivery starts (``>= 0``).
        horizon_intervals: orders are accepted for at most this many
            intervals after the current one.
        metering_delay_s: the metering window: an interval is metered (and
            settled provisionally) as soon as every meter has a reading at or
            after its end, or this many seconds after its delivery ends,
            whichever comes first; meters still incomplete then are estimated
            (see :mod:`market._metering_estimate`) and flagged.
        reconciliation_window_s: late readings that change an interval's
            metering within this many seconds after its delivery ends are
            settled by a reconciliation posting (the difference only); after
            it the interval is final on chain (``>= metering_delay_s``).
        settle_max_attempts: a posting that keeps failing is given up (and
            journaled as failed) after this many attempts; it never blocks
            other intervals.
        reading_skew_s: how far a reading's timestamp may lie ahead of the
            engine clock, s (readings up to a week old are accepted: a
            gateway's outage buffer must not be refused).
        max_batch_readings: most readings in one batch.
        synchronous: SQLite ``synchronous`` pragma of the journal.
        archive_dir: folder for the parquet archive of raw readings, written
            as each interval is metered (None: no archive).
        verify_replay: on restart, clear every journaled interval again and
            check that the result is byte-identical to the journaled one.
        operator_account: address that takes the grid's side in settlements
            (None: the first operator address, else the zero address).
        tick_s: how often a wall-clock engine checks for due transitions.
        settle_retry_s: wait before trying a failed settlement again, s.
        wait_timeout_s: longest a simulated-clock advance or a triggered
            clearing waits for the clearing and settlement threads.
        settle_behind_clock: a simulated-clock advance waits for clearings
            only; postings run behind it on the settlement thread, in order
            (the demo; call ``lifecycle.settle_pending`` to let them land).
        engine_id: the engine's id, published by ``GetMarketInfo``: 1 to 64
            characters of ``[0-9A-Za-z._:-]``; empty means the feeder's name
            (:class:`~market.engine.engine.Engine` fills it in, so
            ``engine.config.engine_id`` is never empty).
        flex_horizon_intervals: intervals a rolling-horizon clearing covers
            while flexibility orders are live (:mod:`market.engine.rolling`);
            0 means 24 h of intervals.
    """

    mechanism: str = "nodal"
    gate_closure_s: int = 300
    horizon_intervals: int = 192
    metering_delay_s: int = 60
    reconciliation_window_s: int = 86_400
    settle_max_attempts: int = 5
    reading_skew_s: float = 300.0
    max_batch_readings: int = 10_000
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    archive_dir: Path | None = None
    verify_replay: bool = False
    operator_account: str | None = None
    tick_s: float = 0.25
    settle_retry_s: float = 5.0
    wait_timeout_s: float = 600.0
    settle_behind_clock: bool = False
    engine_id: str = ""
    flex_horizon_intervals: int = 0

    def problems(self) -> list[str]:
        """Every rule the configuration breaks, each naming the field."""
        out: list[str] = []
        if self.mechanism not in ("nodal", "uniform"):
            out.append(f"mechanism: expected 'nodal' or 'uniform', got {self.mechanism!r}")
        if self.gate_closure_s < 0:
            out.append(f"gate_closure_s: must be >= 0, got {self.gate_closure_s}")
        if self.horizon_intervals < 1:
            out.append(f"horizon_intervals: must be >= 1, got {self.horizon_intervals}")
        if self.metering_delay_s < 0:
            out.append(f"metering_delay_s: must be >= 0, got {self.metering_delay_s}")
        if self.reconciliation_window_s < self.metering_delay_s:
            out.append(
                f"reconciliation_window_s: must be >= metering_delay_s ({self.metering_delay_s}), "
                f"got {self.reconciliation_window_s}"
            )
        if self.settle_max_attempts < 1:
            out.append(f"settle_max_attempts: must be >= 1, got {self.settle_max_attempts}")
        if not 1 <= self.max_batch_readings <= 100_000:
            out.append(f"max_batch_readings: must be in 1..100000, got {self.max_batch_readings}")
        if self.synchronous not in ("FULL", "NORMAL"):
            out.append(f"synchronous: expected 'FULL' or 'NORMAL', got {self.synchronous!r}")
        if self.flex_horizon_intervals < 0:
            out.append(
                f"flex_horizon_intervals: must be >= 0 (0: 24 h), got {self.flex_horizon_intervals}"
            )
        if self.tick_s <= 0:
            out.append(f"tick_s: must be positive, got {self.tick_s}")
        if self.engine_id and not _ENGINE_ID.fullmatch(self.engine_id):
            out.append(
                f"engine_id: must be 1 to 64 characters of [0-9A-Za-z._:-], got {self.engine_id!r}"
            )
        return out


@dataclass(slots=True, eq=False)
class Core:
    """The engine's shared parts."""

    state: MarketState
    journal: Journal
    clock: Clock
    interval_s: int
    lock: threading.RLock = field(default_factory=threading.RLock)
    hub: EventHub = field(init=False)

    def __post_init__(self) -> None:
        self.hub = EventHub(self.state.events)

    @property
    def interval_ms(self) -> int:
        """Interval length, ms."""
        return self.interval_s * 1000

    def record(
        self,
        kind: str,
        at_ms: int,
        body: Mapping[str, Any],
        *,
        blob: bytes | None = None,
        nonce: str | None = None,
    ) -> tuple[list[market_pb2.MarketEvent], Future[int]]:
        """Apply an entry, journal it and return its events and its durability future.

        Call with :attr:`lock` held.

        Raises:
            EngineError, MeteringError: the entry is not allowed (nothing changed).
            JournalError: the journal failed.
        """
        events = self.state.apply(kind, at_ms, body, blob)
        entry, future = self.journal.append(kind, at_ms, body, blob=blob, nonce=nonce)
        if events:
            self.hub.expect(entry.seq, events[-1].sequence)
        return events, future

    def settled_future(self) -> Future[int]:
        """Resolves once everything journaled so far is on disk."""
        return self.journal.when_durable(self.journal.last_seq)
