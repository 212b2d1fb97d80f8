"""``settle_behind_clock``: a simulated clock does not wait for the chain.

The settler here holds every posting until the test releases it. With
``settle_behind_clock`` the clock must go on past the metering of the traded
interval (and later ones) while the first posting is held; once released,
``settle_pending`` lets every posting land, one after another, in the order
the engine made them. Wrong implementations caught: an advance that still
waits for postings (it would time out on the held settler), postings run
out of order or more than once, and a ``settle_pending`` that returns
before the queue has drained.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gridex.v1 import types_pb2 as pb

from market.engine.engine import Engine, EngineConfig
from market.engine.settler import RecordingSettler
from market.settlement import IntervalSettlement

from . import outage

#: Long enough for a clearing under load, short enough to fail a waiting clock in time.
WAIT_S = 120.0


class HeldSettler(RecordingSettler):
    """Records postings like :class:`RecordingSettler`, each only once released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.held = threading.Event()  # a posting is waiting for the release
        self.order: list[str] = []

    def _hold(self) -> None:
        self.held.set()
        assert self.release.wait(WAIT_S), "the test never released the settler"

    def settle(self, settlement: IntervalSettlement) -> str:
        self._hold()
        self.order.append(f"settle {settlement.interval}")
        return super().settle(settlement)

    def advance(self, final_before: int, open_through: int) -> str:
        self._hold()
        self.order.append(f"advance {final_before} {open_through}")
        return super().advance(final_before, open_through)


def test_the_clock_goes_on_while_postings_wait_and_they_land_in_order(
    make_engine: Callable[..., Engine],
) -> None:
    settler = HeldSettler()
    config = EngineConfig(settle_behind_clock=True, wait_timeout_s=WAIT_S)
    market = outage.start(make_engine, settler=settler, config=config)
    outage.run(market, outage_minute=None, upload_at_ms=None)
    engine = market.engine
    later = outage.END_MS + 3 * outage.INTERVAL_MS
    engine.advance_to(later)  # three more intervals delivered and metered
    assert settler.held.is_set()
    assert settler.settlements == []  # nothing has landed: the clock did not wait
    s = engine.state.intervals[outage.FIRST]
    assert s.phase == pb.INTERVAL_PHASE_METERED
    assert engine.clock.now_ms() == later

    settler.release.set()
    engine.lifecycle.settle_pending()
    assert s.phase == pb.INTERVAL_PHASE_SETTLED
    settled = [p.interval for p in settler.settlements]
    metered = sorted(
        k for k, st in engine.state.intervals.items() if st.metered is not None and not st.failure
    )
    assert settled == metered  # each metered interval once, in interval order
    assert outage.FIRST in settled
    for k in metered:
        assert engine.state.intervals[k].settlement is not None, k
    assert settler.order[0].startswith("advance")  # the gate's watermark went first
