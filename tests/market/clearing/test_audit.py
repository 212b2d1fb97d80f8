"""The books check can fail: a wrong loss figure, a wrong amount or a wrong price is caught.

Mutation-style: each test breaks one number the clearing publishes (or the
physics it books from) and expects :func:`market.clearing.audit.audit`, the
check the demo runs on every interval, to report it; the unbroken result
passes the same check.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from market.clearing import ClearingResult, clear
from market.clearing import _physics as physics
from market.clearing.audit import audit
from market.config import MarketConfig
from tests.market.clearing.nets import feeder
from tests.market.clearing.test_nodal import book

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000, grid_fee_per_kwh=2_000)


def _result() -> ClearingResult:
    orders, parts = book(
        [(3, "sell", 20, 100_000), (5, "buy", 15, 290_000), (2, "buy", 3, 250_000)]
    )
    return clear(feeder("radial"), orders, parts, CONFIG)


def test_the_true_result_passes() -> None:
    result = _result()
    assert result.losses_wh > 0
    assert audit(result, feeder("radial"), CONFIG) == []


def test_a_wrong_loss_figure_fails_the_books_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's mutation: 50 kWh of invented losses. The old check stayed green."""
    real = physics.physical_grid_net_wh

    def wrong(ext_p_mw: float, base_ext_p_mw: float, interval_s: int) -> float:
        return real(ext_p_mw, base_ext_p_mw, interval_s) + 50_000.0

    monkeypatch.setattr(physics, "physical_grid_net_wh", wrong)
    result = _result()
    problems = audit(result, feeder("radial"), CONFIG)
    assert any("AC power flow" in p and "external grid" in p for p in problems)
    assert any("losses" in p for p in problems)


@pytest.mark.parametrize(
    ("field", "change", "message"),
    [
        ("losses_wh", 1, "losses"),
        ("grid_import_amount", 1, "import amount"),
        ("operator_surplus", 1, "residual"),
    ],
)
def test_one_unit_off_is_caught(field: str, change: int, message: str) -> None:
    result = _result()
    broken = replace(result, **{field: getattr(result, field) + change})
    assert any(message in p for p in audit(broken, feeder("radial"), CONFIG))


def test_a_fill_amount_or_price_off_is_caught() -> None:
    result = _result()
    fills = list(result.fills)
    fills[1] = fills[1]._replace(amount=fills[1].amount + 1)
    assert any("amount" in p for p in audit(replace(result, fills=tuple(fills)), None, CONFIG))
    fills = list(result.fills)
    fills[1] = fills[1]._replace(price=CONFIG.retail_price + 1)
    assert any("price" in p for p in audit(replace(result, fills=tuple(fills)), None, CONFIG))
