"""The ``uniform`` mechanism: a copper-plate, pay-as-clear double auction.

Every order meets at one node and the grid's limits are ignored: the
reference the ``nodal`` mechanism is measured against. The external grid is
an unlimited seller at the retail price and an unlimited buyer at the
feed-in price, so the one clearing price λ lies between them; every bus gets
λ. With ``ac_check`` on, the AC power flow of the schedule is run: its books
are physical (:mod:`market.clearing.books`, rule 3) and a schedule that
breaks a grid limit is not cleared (``ac_infeasible``: this mechanism never
re-solves). Switch ``ac_check`` off for a copper-plate counterfactual.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from grid import Feeder
from market.clearing._extract import assemble, fills_wh, injection_mw
from market.clearing._physics import AcState, ac_check_of, evaluate
from market.clearing._problem import (
    ClearingProblem,
    NetworkRows,
    OrderBook,
    order_costs,
    price_scale_of,
)
from market.clearing._solvers import solve
from market.clearing.options import ClearingOptions
from market.clearing.result import ClearingResult, SolverStats
from market.clearing.status import Termination
from market.config import MarketConfig

__all__ = ["clear_uniform", "define_uniform_problem"]


def define_uniform_problem(
    feeder: Feeder, book: OrderBook, config: MarketConfig
) -> ClearingProblem:
    """The copper-plate LP: one node, the balance row, no network rows."""
    scale = price_scale_of(config.retail_price)
    qty, cost = order_costs(
        book,
        fee_per_kwh=config.grid_fee_per_kwh,
        price_scale=scale,
        retail_price=config.retail_price,
        feed_in_price=config.feed_in_price,
    )
    return ClearingProblem(
        book=book,
        quantity_kwh=qty,
        cost=cost,
        node=np.zeros(book.n, dtype=np.int64),
        node_position=np.array([-1], dtype=np.int64),
        import_cost=config.retail_price / scale,
        export_cost=-config.feed_in_price / scale,
        balance_coef=np.ones(1),
        balance_rhs=0.0,
        balance_price_coef=np.ones(feeder.n_bus),
        rows=NetworkRows.empty(1, feeder.n_bus),
        price_scale=scale,
        fee_per_kwh=config.grid_fee_per_kwh,
    )


def clear_uniform(
    feeder: Feeder,
    book: OrderBook,
    config: MarketConfig,
    *,
    options: ClearingOptions,
    interval: int,
) -> ClearingResult:
    """Clear ``book`` on the copper plate (see the module docstring)."""
    t0 = time.perf_counter()
    problem = define_uniform_problem(feeder, book, config)
    solution = solve(problem, solver=options.solver, time_limit_s=options.time_limit_s)
    t1 = time.perf_counter()
    filled = fills_wh(problem, solution)
    ac = None
    state: AcState | None = None
    failure: Termination | None = None
    t2 = time.perf_counter()
    if options.ac_check and solution.status.has_solution:
        inj = injection_mw(book, filled, feeder.n_bus, config.interval_s)
        state = evaluate(feeder, inj, tolerance=options.ac_tolerance, interval_s=config.interval_s)
        ac = ac_check_of(state, tolerance=options.ac_tolerance)
        if not state.converged:
            failure = Termination.AC_NOT_CONVERGED
        elif not state.feasible:
            failure = Termination.AC_INFEASIBLE
    t3 = time.perf_counter()
    stats = SolverStats(
        solver=options.solver,
        rows=problem.n_row,
        columns=problem.n_col,
        nonzeros=solution.n_nonzeros,
        iterations=solution.iterations,
        build_s=(t1 - t0) - solution.solve_s,
        solve_s=solution.solve_s,
        solver_s=solution.solver_s,
        ac_check_s=t3 - t2,
    )
    result = assemble(
        feeder=feeder,
        config=config,
        problem=problem,
        solution=solution,
        filled_wh=filled,
        interval=interval,
        mechanism="uniform",
        sensitivities="none",
        constraints=(),
        rounds=1,
        ac=ac,
        stats=stats,
        state=state,
        failure=failure,
    )
    t4 = time.perf_counter()
    return replace(
        result,
        stats=replace(result.stats, extract_s=(t2 - t1) + (t4 - t3), total_s=t4 - t0),
    )
