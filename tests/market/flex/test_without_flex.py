"""The day without flexibility: which limit was at its bound, and where flexibility relieved it.

Worked by hand on clearing results written out as ``ClearingResult.to_dict``
gives them and on a two-branch feeder's limits (a line at 100 %, a
transformer the operator limits to 80 %, a 0.9–1.1 p.u. band).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grid.model import Limits
from market.report.without_flex import (
    LINE,
    TRANSFORMER,
    VOLTAGE_HIGH,
    VOLTAGE_LOW,
    IntervalEffect,
    Outcome,
    outcome_of,
    reliefs,
)

LIMITS = Limits(
    branch_limited=np.array([True, True]),
    branch_is_line=np.array([True, False]),
    rating_mva=np.array([0.2, 0.4]),
    max_loading_percent=np.array([100.0, 80.0]),
    vm_min_pu=np.array([0.9, 0.9, 0.9]),
    vm_max_pu=np.array([1.1, 1.1, 1.1]),
)
FLEX = {("0xbat", "bat/in"), ("0xbat", "bat/out")}


def _result(
    *, trafo: float = 50.0, line: float = 50.0, vm: tuple[float, float] = (0.95, 1.05),
    congestion: int = 0, converged: bool = True, fills: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "prices": [
            {"bus": 0, "congestion": 0, "voltage": 0},
            {"bus": 1, "congestion": congestion, "voltage": 0},
        ],
        "fills": fills or [],
        "ac": {
            "converged": converged,
            "max_trafo_loading_percent": trafo,
            "max_line_loading_percent": line,
            "vm_min_pu": vm[0],
            "vm_max_pu": vm[1],
        },
    }


def test_a_limit_is_at_its_bound_within_its_own_limit_and_only_where_a_price_shows_it() -> None:
    def at(**kw: Any) -> tuple[str, ...]:
        return outcome_of(_result(**kw), FLEX, LIMITS).at_limit

    assert at(trafo=79.5, congestion=-10_000) == (TRANSFORMER,)  # the operator's 80 %
    assert at(trafo=79.5) == ()  # no price part: nothing bound
    assert at(trafo=78.5, congestion=-10_000) == ()  # 1.5 points below: slack
    assert at(line=99.2, congestion=5_000) == (LINE,)
    assert at(vm=(0.95, 1.096), congestion=5_000) == (VOLTAGE_HIGH,)
    assert at(vm=(0.904, 1.0), congestion=5_000) == (VOLTAGE_LOW,)
    assert at(trafo=79.9, converged=False, congestion=5_000) == ()


def test_flexibility_fills_are_left_out_of_what_was_not_traded() -> None:
    fills = [
        {"participant": "0xs", "order_id": "s", "side": "sell", "bus": 0,
         "quantity_wh": 3000, "filled_wh": 1000},
        {"participant": "0xb", "order_id": "b", "side": "buy", "bus": 1,
         "quantity_wh": 5000, "filled_wh": 2000},
        {"participant": "0xbat", "order_id": "bat/in", "side": "buy", "bus": 1,
         "quantity_wh": 4000, "filled_wh": 0},
    ]  # fmt: skip
    o = outcome_of(_result(congestion=10_000, fills=fills), FLEX, LIMITS)
    assert (o.unsold_wh, o.unserved_wh, o.held_back_wh) == (2000, 3000, 5000)
    assert o.binding
    assert o.rent == 10_000 * 2000 / 1000  # the buyer at bus 1 pays the congestion part


def _outcome(held: int, at: tuple[str, ...]) -> Outcome:
    return Outcome(held, 0, bool(at), 0.0, at, 80.0 if at else 40.0, 50.0)


def test_a_limit_that_bound_without_flexibility_is_relieved_where_less_was_held_back() -> None:
    rows = [
        IntervalEffect(10, _outcome(0, ()), _outcome(0, (LINE,)), 0, 0),
        IntervalEffect(11, _outcome(20_000, (TRANSFORMER,)), _outcome(2_000, ()), 18_000, 0),
        IntervalEffect(12, _outcome(25_000, (TRANSFORMER,)), _outcome(9_000, (TRANSFORMER,)),
                       14_000, 0),
        IntervalEffect(13, _outcome(5_000, (VOLTAGE_HIGH,)), _outcome(5_000, (VOLTAGE_HIGH,)),
                       0, 0),
    ]  # fmt: skip
    found = {r.limit: r for r in reliefs(rows)}
    assert set(found) == {TRANSFORMER, VOLTAGE_HIGH}  # the line bound only with flexibility
    t = found[TRANSFORMER]
    assert t.intervals == (11, 12)
    assert (t.held_back_without_wh, t.held_back_with_wh) == (45_000, 11_000)
    assert (t.still_at_limit, t.charged_wh, t.discharged_wh) == (1, 32_000, 0)
    assert t.relieved
    assert not found[VOLTAGE_HIGH].relieved
    assert t.line() == (
        "transformer loading at its limit in 2 intervals without flexibility: relieved "
        "(45.0 kWh held back there without it, 11.0 kWh with it)"
    )
    assert ": not relieved (5.0 kWh" in found[VOLTAGE_HIGH].line()
