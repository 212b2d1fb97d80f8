"""Errors: validation problems all at once, non-optimal outcomes typed, no third-party leaks."""

from __future__ import annotations

from typing import Any

import pytest

from market.clearing import ClearingOptions, Termination, clear
from market.clearing.status import SolutionStatus, Status
from market.config import MarketConfig
from market.errors import (
    ConfigError,
    InfeasibleClearingError,
    OrderValidationError,
    SolverError,
)
from market.orders import Order, Side
from tests.market.clearing.nets import feeder
from tests.market.clearing.test_nodal import book

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)


def test_every_order_problem_is_reported() -> None:
    orders, parts = book([(3, "sell", 5, 100_000), (1, "buy", 4, 250_000)])
    bad = [
        *orders,
        Order("o0", orders[0].participant, Side.BUY, 0, 0, 10),  # duplicate id, zero quantity
        Order("x", orders[1].participant, Side.BUY, 1, 5, 2_000_000),  # wrong interval, price
    ]
    with pytest.raises(OrderValidationError) as info:
        clear(feeder("radial"), bad, parts, CONFIG)
    fields = sorted(p.field for p in info.value.problems)
    assert fields == ["interval", "limit_price", "order_id", "quantity_wh"]


def test_unknown_mechanism() -> None:
    with pytest.raises(ConfigError, match="mechanism"):
        clear(feeder("radial"), [], {}, CONFIG, mechanism="pay-as-bid")  # type: ignore[arg-type]


def _fake_solution(status: Status) -> Any:
    from market.clearing._solution import LpSolution

    def solve(problem: Any, **_: Any) -> LpSolution:
        return LpSolution.empty(status, problem.n_order, problem.n_node, problem.rows.n)

    return solve


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (Status(Termination.INFEASIBLE, SolutionStatus.INFEASIBLE), InfeasibleClearingError),
        (Status(Termination.TIME_LIMIT, SolutionStatus.NONE), SolverError),
    ],
)
@pytest.mark.parametrize("mechanism", ["uniform", "nodal"])
def test_non_optimal_raises_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, status: Status, error: type[Exception], mechanism: str
) -> None:
    from market.clearing import _rounds, uniform

    monkeypatch.setattr(_rounds, "solve", _fake_solution(status))
    monkeypatch.setattr(uniform, "solve", _fake_solution(status))
    orders, parts = book([(3, "sell", 5, 100_000), (1, "buy", 4, 250_000)])
    with pytest.raises(error):
        clear(feeder("radial"), orders, parts, CONFIG, mechanism=mechanism)  # type: ignore[arg-type]
    result = clear(
        feeder("radial"),
        orders,
        parts,
        CONFIG,
        mechanism=mechanism,
        allow_non_optimal=True,  # type: ignore[arg-type]
    )
    assert result.status == status
    assert not result.ok
    assert all(f.filled_wh == 0 for f in result.fills)
    assert result.trades == ()


def test_highspy_exceptions_are_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    import highspy

    def boom(self: Any) -> None:
        raise RuntimeError("segfault averted")

    monkeypatch.setattr(highspy.Highs, "run", boom)
    orders, parts = book([(3, "sell", 5, 100_000)])
    with pytest.raises(SolverError, match="segfault averted") as info:
        clear(feeder("radial"), orders, parts, CONFIG)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_pyomo_exceptions_are_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyomo.environ as pe

    def factory(name: str) -> Any:
        raise ValueError(f"no solver {name}")

    monkeypatch.setattr(pe, "SolverFactory", factory)
    orders, parts = book([(3, "sell", 5, 100_000)])
    with pytest.raises(SolverError, match="no solver") as info:
        clear(feeder("radial"), orders, parts, CONFIG, options=ClearingOptions(solver="pyomo"))
    assert isinstance(info.value.__cause__, ValueError)
