"""A hostile Modbus device on 127.0.0.1: no malformed answer ever becomes a wrong reading.

Each kind of :data:`tests.meter_adapter.hostile.KINDS` malforms about a third
of the device's answers — during SunSpec discovery and during polls — while
the gateway's full reader polls it; every reading reported must hold exactly
the device's values, and the reader must read correctly once the device
behaves. Implausible but well-framed contents (:data:`VALUE_KINDS`) must be
quarantined, never reported.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.meter_adapter.hostile import KINDS, VALUE_KINDS, expected_values, run_kind

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EXPECTED = expected_values()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_malformed_answer_becomes_a_reading(kind: str) -> None:
    outcome = asyncio.run(run_kind(KINDS[kind], share=0.35, polls=4, seed=11, expected=EXPECTED))
    assert outcome.malformed > 0
    assert outcome.wrong == 0, outcome.notes
    assert outcome.recovered


@pytest.mark.parametrize("kind", sorted(VALUE_KINDS))
def test_implausible_contents_are_quarantined(kind: str) -> None:
    outcome = asyncio.run(run_kind(None, registers=VALUE_KINDS[kind], polls=2, expected=EXPECTED))
    assert outcome.wrong == 0, outcome.notes
    assert outcome.quarantined == 2
    assert outcome.recovered


def test_a_failure_episode_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Every answer malformed for several polls: one warning per layer, one recovery line."""
    with caplog.at_level(logging.DEBUG, logger="meter_adapter"):
        outcome = asyncio.run(
            run_kind(KINDS["transaction-id-0"], share=1.0, polls=5, expected=EXPECTED)
        )
    assert outcome.readings == outcome.wrong == 0
    assert outcome.framing_errors >= 5
    assert outcome.recovered
    ours = [r for r in caplog.records if r.name.startswith("meter_adapter")]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    assert sorted(r.name for r in warnings) == [
        "meter_adapter.modbus_client",
        "meter_adapter.reader",
    ]
    recoveries = [r for r in ours if "working again" in r.getMessage()]
    assert {r.name for r in recoveries} == {"meter_adapter.modbus_client", "meter_adapter.reader"}
