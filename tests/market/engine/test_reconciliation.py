"""Settlement true to the meter: provisional, estimated, reconciled, final, each once.

The outage case of issue 13 (see :mod:`tests.market.engine.outage`): before
this was built, the seller whose gateway went offline after one reading was
settled at an imbalance of −2,000 Wh at retail (−107,962 base units here)
and stayed so after its buffer arrived; now the reconciliation brings it to
exactly the settlement of a day without the outage (+494,038).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid import Feeder
from market.engine.clock import SimClock
from market.engine.engine import Engine, EngineConfig
from market.engine.settler import Correction, RecordingSettler
from market.engine.signing import Signer
from market.settlement import IntervalSettlement

from . import outage
from .conftest import T0_MS

CONFIG = EngineConfig(reading_skew_s=7200, reconciliation_window_s=4 * 3600)


def _run(
    make_engine: Callable[..., Engine],
    *,
    outage_minute: int | None,
    upload_at_ms: int | None,
    settler: Any = None,
) -> tuple[outage.Market, Any]:
    settler = settler or RecordingSettler()
    market = outage.start(make_engine, settler=settler, config=CONFIG)
    outage.run(market, outage_minute=outage_minute, upload_at_ms=upload_at_ms)
    return market, settler


def _postings(settler: RecordingSettler, interval: int) -> list[IntervalSettlement | Correction]:
    first: list[IntervalSettlement | Correction] = [
        s for s in settler.settlements if s.interval == interval
    ]
    return first + [c for c in settler.corrections if c.interval == interval]


def _total(postings: list[IntervalSettlement | Correction]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in postings:
        for account, delta in p.deltas.items():
            out[account] = out.get(account, 0) + delta
    return {a: d for a, d in sorted(out.items()) if d}


class Engines:
    """Engines on fresh journals (one folder each), closed at the end."""

    def __init__(self, feeder: Feeder, operator: Signer, root: Path) -> None:
        self.feeder, self.operator, self.root = feeder, operator, root
        self.engines: list[Engine] = []

    def __call__(self, **kwargs: Any) -> Engine:
        folder = Path(tempfile.mkdtemp(dir=self.root))
        kwargs.setdefault("clock", SimClock(T0_MS))
        kwargs.setdefault("operators", [self.operator.address])
        engine = Engine(self.feeder, folder / "engine.db", **kwargs)
        engine.start()
        self.engines.append(engine)
        return engine

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
        self.engines.clear()


@pytest.fixture
def fresh(engine_feeder: Feeder, operator_signer: Signer, tmp_path: Path) -> Iterator[Engines]:
    engines = Engines(engine_feeder, operator_signer, tmp_path)
    yield engines
    engines.close()


def test_the_outage_case_settles_as_if_the_gateway_had_never_been_offline(
    fresh: Engines,
) -> None:
    reference, ref_settler = _run(fresh, outage_minute=None, upload_at_ms=None)
    expected = reference.engine.state.intervals[outage.FIRST].total_deltas()
    assert len(_postings(ref_settler, outage.FIRST)) == 1  # complete data: never corrected

    market, settler = _run(fresh, outage_minute=0, upload_at_ms=outage.END_MS + 3_600_000)
    s = market.engine.state.intervals[outage.FIRST]
    provisional, *corrections = _postings(settler, outage.FIRST)
    assert isinstance(provisional, IntervalSettlement)
    # the provisional posting used an estimate, flagged, and not the old "delivered nothing"
    assert provisional.imbalance_wh[market.seller] == 1500 - 2000
    assert [c.version for c in corrections] == [1]
    assert s.estimated == ()  # the reconciled metering is all measured
    assert s.settlement is not None
    assert s.corrections[0].previous_hash == s.settlement.result_hash
    for posting in (provisional, *corrections):
        assert sum(posting.deltas.values()) + posting.fee == 0
    assert _total([provisional, *corrections]) == dict(expected)
    assert s.total_deltas() == dict(expected)
    assert expected[market.seller] == 494_038


def test_the_provisional_metering_is_flagged_estimated(fresh: Engines) -> None:
    market, _ = _run(fresh, outage_minute=0, upload_at_ms=None)
    engine = market.engine
    s = engine.state.intervals[outage.FIRST]
    assert s.estimated == ("m-0",)
    assert not s.corrections
    [event] = [
        e
        for e in engine.state.events
        if e.interval == outage.FIRST and e.WhichOneof("event") == "interval_settled"
    ]
    assert list(event.interval_settled.settlement.estimated_meters) == ["m-0"]
    assert event.interval_settled.settlement.version == 0


def test_an_upload_after_the_reconciliation_window_changes_nothing(fresh: Engines) -> None:
    late = outage.END_MS + CONFIG.reconciliation_window_s * 1000 + 60_000
    market, settler = _run(fresh, outage_minute=0, upload_at_ms=late)
    s = market.engine.state.intervals[outage.FIRST]
    assert s.final
    assert not [c for c in settler.corrections if c.interval == outage.FIRST]
    assert s.estimated == ("m-0",)  # the estimate stands, and says so
    assert settler.watermarks[-1][0] > outage.FIRST  # final on chain too


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    outage_minute=st.integers(0, 15),
    upload_after_s=st.integers(0, 3 * 3600),
)
def test_any_outage_uploaded_within_the_window_settles_as_without_it(
    engine_feeder: Feeder,
    operator_signer: Signer,
    tmp_path_factory: Any,
    outage_minute: int,
    upload_after_s: int,
) -> None:
    """Property: whenever the seller's gateway goes offline in the interval and
    uploads its buffer within the reconciliation window, the sum of the
    interval's postings is the settlement without the outage; each posting
    balances, each version is posted once, and the final metering is measured."""
    engines = Engines(engine_feeder, operator_signer, tmp_path_factory.mktemp("outage"))
    try:
        reference, _ = _run(engines, outage_minute=None, upload_at_ms=None)
        expected = reference.engine.state.intervals[outage.FIRST].total_deltas()
        upload = outage.END_MS + 2 * 60_000 + upload_after_s * 1000
        market, settler = _run(engines, outage_minute=outage_minute, upload_at_ms=upload)
        postings = _postings(settler, outage.FIRST)
        for posting in postings:
            assert sum(posting.deltas.values()) + posting.fee == 0
        versions = [getattr(p, "version", 0) for p in postings]
        assert versions == list(range(len(versions)))  # 0, 1, ...: each once, in order
        assert _total(postings) == dict(expected)
        s = market.engine.state.intervals[outage.FIRST]
        assert s.estimated == ()
    finally:
        engines.close()


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so the engine catches nothing."""


class ChainLike(RecordingSettler):
    """Postings kept by (interval, version) as a chain would, idempotent; can crash
    right after a posting lands and before the engine hears of it."""

    def __init__(self) -> None:
        super().__init__()
        self.landed: dict[tuple[int, int], bytes] = {}
        self.sent: list[tuple[int, int]] = []
        self.crash_after: tuple[int, int] | None = None
        self.dead = False  # after the crash, until the "process" restarts

    def _land(self, key: tuple[int, int], result_hash: bytes) -> None:
        if self.dead:
            raise Crash
        if key in self.landed:
            assert self.landed[key] == result_hash  # the same posting, found again
            return
        self.sent.append(key)
        self.landed[key] = result_hash
        if key == self.crash_after:
            self.dead = True
            raise Crash

    def settle(self, settlement: IntervalSettlement) -> str:
        self._land((settlement.interval, 0), settlement.result_hash)
        return super().settle(settlement)

    def correct(self, correction: Correction) -> str:
        self._land((correction.interval, correction.version), correction.result_hash)
        return super().correct(correction)


@pytest.mark.parametrize("version", [0, 1])
def test_an_engine_killed_between_posting_and_journaling_posts_each_once(
    make_engine: Callable[..., Engine], version: int
) -> None:
    """Killed right after the provisional posting (or the reconciliation) landed and
    before it was journaled: the restarted engine replays the journal, posts the
    same thing again, the chain finds it, and nothing lands twice."""
    chain = ChainLike()
    chain.crash_after = (outage.FIRST, version)
    market = outage.start(make_engine, settler=chain, config=CONFIG)
    engine = market.engine
    engine.advance_to(outage.START_MS - 60_000)
    market.buyer_meter.send(engine, -1, -1)
    market.seller_meter.send(engine, -1, -1)
    engine.advance_to(outage.END_MS + 30_000)
    market.buyer_meter.send(engine, 0, 16)
    market.seller_meter.send(engine, 0, 0)  # offline from here
    engine.advance_to(outage.END_MS + 120_000)  # provisional posting (crash at version 0)
    if version == 1:
        assert engine.state.intervals[outage.FIRST].settlement is not None
        market.seller_meter.send(engine, 1, 16)
        engine.advance_to(outage.END_MS + 180_000)  # the reconciliation lands, then the crash
    s = engine.state.intervals[outage.FIRST]
    assert (s.settlement is None) if version == 0 else (s.version == 0)  # not journaled
    assert (outage.FIRST, version) in chain.landed
    engine.close()
    chain.dead = False

    again = make_engine(settler=chain, config=CONFIG)
    again.advance_to(outage.END_MS + 240_000)
    s = again.state.intervals[outage.FIRST]
    keys = [k for k in chain.sent if k[0] == outage.FIRST]
    assert keys == [(outage.FIRST, v) for v in range(version + 1)]  # each once
    assert s.version == version
    assert s.settlement is not None
