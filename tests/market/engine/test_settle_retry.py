"""A posting that keeps failing: retried with back-off, logged once, given up,
never holding up another interval, and tried again after a restart."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from contracts.errors import ContractRevertError
from market.engine.engine import Engine, EngineConfig
from market.engine.settler import RecordingSettler
from market.settlement import IntervalSettlement

from . import outage

ATTEMPTS = 4
CONFIG = EngineConfig(settle_retry_s=0.05, settle_max_attempts=ATTEMPTS)


class Reverting(RecordingSettler):
    """Reverts every provisional posting of the intervals in ``failing``."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing = failing
        self.attempts: list[int] = []

    def settle(self, settlement: IntervalSettlement) -> str:
        if settlement.interval in self.failing:
            self.attempts.append(settlement.interval)
            raise ContractRevertError("settlement: account overdrawn")
        return super().settle(settlement)


def test_a_reverting_posting_is_given_up_once_and_retried_after_a_restart(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    settler = Reverting({outage.FIRST})
    market = outage.start(make_engine, settler=settler, config=CONFIG)
    engine = market.engine
    with caplog.at_level(logging.DEBUG, logger="market.engine.settling"):
        outage.run(market, outage_minute=None, upload_at_ms=None)
        # the next interval is delivered, metered and settled while the first fails
        engine.advance_to(outage.END_MS + outage.INTERVAL_MS + 2 * outage.MINUTE_MS)
        assert any(s.interval == outage.FIRST + 1 for s in settler.settlements)
        s = engine.state.intervals[outage.FIRST]
        assert s.settlement is None
        deadline = time.monotonic() + 120.0
        while not s.failure and time.monotonic() < deadline:
            engine.advance_to(engine.core.clock.now_ms() + 1000)
            time.sleep(0.05)
        assert "account overdrawn" in s.failure
        for _ in range(3):  # given up: no attempt after the last
            engine.advance_to(engine.core.clock.now_ms() + 1000)
            time.sleep(0.2)
    assert settler.attempts.count(outage.FIRST) == ATTEMPTS
    mine = [r for r in caplog.records if f"interval {outage.FIRST}:" in r.getMessage()]
    loud = [r for r in mine if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["WARNING", "ERROR"]
    assert "given up after 4 attempts" in loud[1].getMessage()
    assert not [r for r in mine if r.exc_info]  # an expected revert: no traceback
    now_ms = engine.core.clock.now_ms()
    engine.close()

    # the operator fixed the cause and restarts: the posting gets one more round
    settler.failing.clear()
    again = make_engine(settler=settler, config=CONFIG)
    again.advance_to(now_ms + 1000)
    deadline = time.monotonic() + 120.0
    s = again.state.intervals[outage.FIRST]
    while s.settlement is None and time.monotonic() < deadline:
        again.advance_to(again.core.clock.now_ms() + 1000)
        time.sleep(0.05)
    assert s.settlement is not None
    assert s.failure == ""
    assert [x.interval for x in settler.settlements].count(outage.FIRST) == 1
