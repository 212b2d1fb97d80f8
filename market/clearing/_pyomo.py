"""The reference path: the clearing LP as a readable pyomo model, solved by HiGHS.

Same LP as the fast path (:mod:`market.clearing._problem` documents it),
written one named component at a time, so a reader can check the
formulation against DESIGN.md line by line. Slower to build; used by the
differential tests and the benchmark. pyomo's and highspy's exceptions are
mapped to :class:`~market.errors.SolverError` here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from market.clearing._banner import quiet_highs
from market.clearing._problem import ClearingProblem
from market.clearing._solution import LpSolution
from market.clearing.status import SolutionStatus, Status, Termination
from market.errors import SolverError

__all__ = [
    "build_model",
    "define_balance_constraint",
    "define_grid_variables",
    "define_network_constraints",
    "define_node_constraints",
    "define_node_variables",
    "define_objective",
    "define_order_variables",
    "solve_pyomo",
]

logger = logging.getLogger(__name__)


def define_order_variables(model: Any, problem: ClearingProblem) -> None:
    """``fill[o]``: energy cleared of order o, kWh, between 0 and its quantity."""
    import pyomo.environ as pe

    qty = problem.quantity_kwh.tolist()
    model.ORDERS = pe.Set(initialize=range(problem.n_order), ordered=True)
    model.fill = pe.Var(model.ORDERS, bounds=lambda _m, o: (0.0, qty[o]))


def define_node_variables(model: Any, problem: ClearingProblem) -> None:
    """``injection[j]``: net market injection at node j, kWh (sells minus buys)."""
    import pyomo.environ as pe

    model.NODES = pe.Set(initialize=range(problem.n_node), ordered=True)
    lo_n, hi_n = problem.node_lower, problem.node_upper
    model.injection = pe.Var(
        model.NODES,
        domain=pe.Reals,
        bounds=lambda _m, j: (
            None if lo_n is None else float(lo_n[j]),
            None if hi_n is None else float(hi_n[j]),
        ),
    )


def define_grid_variables(model: Any) -> None:
    """``grid_import`` and ``grid_export``: energy from and to the external grid, kWh."""
    import pyomo.environ as pe

    model.grid_import = pe.Var(domain=pe.NonNegativeReals)
    model.grid_export = pe.Var(domain=pe.NonNegativeReals)


def define_node_constraints(model: Any, problem: ClearingProblem) -> None:
    """A node's injection is what its sellers deliver minus what its buyers take."""
    import pyomo.environ as pe

    sells: list[list[int]] = [[] for _ in range(problem.n_node)]
    buys: list[list[int]] = [[] for _ in range(problem.n_node)]
    for o, (node, side) in enumerate(
        zip(problem.node.tolist(), problem.book.side.tolist(), strict=True)
    ):
        (sells if side > 0 else buys)[node].append(o)

    def rule(m: Any, j: int) -> Any:
        return (
            m.injection[j] - sum(m.fill[o] for o in sells[j]) + sum(m.fill[o] for o in buys[j]) == 0
        )

    model.node_balance = pe.Constraint(model.NODES, rule=rule)


def define_balance_constraint(model: Any, problem: ClearingProblem) -> None:
    """Energy balance: injections (net of marginal losses) plus import equal export."""
    import pyomo.environ as pe

    a = problem.balance_coef.tolist()
    model.energy_balance = pe.Constraint(
        expr=sum(a[j] * model.injection[j] for j in model.NODES)
        + model.grid_import
        - model.grid_export
        == problem.balance_rhs
    )


def define_network_constraints(model: Any, problem: ClearingProblem) -> None:
    """Flows of limited branches and voltages within their (linearised) limits."""
    import pyomo.environ as pe

    rows = problem.rows
    model.ROWS = pe.Set(initialize=range(rows.n), ordered=True)
    coef = rows.coef

    def rule(m: Any, r: int) -> Any:
        expr = sum(float(coef[r, j]) * m.injection[j] for j in np.flatnonzero(coef[r]).tolist())
        return (float(rows.lower[r]), expr, float(rows.upper[r]))

    model.network_limit = pe.Constraint(model.ROWS, rule=rule)


def define_objective(model: Any, problem: ClearingProblem) -> None:
    """Minimise sellers' asks minus buyers' bids plus the external grid's net cost."""
    import pyomo.environ as pe

    cost = problem.cost.tolist()
    model.cost = pe.Objective(
        expr=sum(cost[o] * model.fill[o] for o in model.ORDERS)
        + problem.import_cost * model.grid_import
        + problem.export_cost * model.grid_export,
        sense=pe.minimize,
    )


def build_model(problem: ClearingProblem) -> Any:
    """The whole pyomo model of ``problem``, with a ``dual`` suffix to import duals."""
    import pyomo.environ as pe

    model = pe.ConcreteModel(name="gridex clearing")
    define_order_variables(model, problem)
    define_node_variables(model, problem)
    define_grid_variables(model)
    define_node_constraints(model, problem)
    define_balance_constraint(model, problem)
    define_network_constraints(model, problem)
    define_objective(model, problem)
    model.dual = pe.Suffix(direction=pe.Suffix.IMPORT)
    return model


_TERMINATION = {
    "optimal": Termination.OPTIMAL,
    "infeasible": Termination.INFEASIBLE,
    "unbounded": Termination.UNBOUNDED,
    "infeasibleOrUnbounded": Termination.INFEASIBLE,
    "maxTimeLimit": Termination.TIME_LIMIT,
    "maxIterations": Termination.ITERATION_LIMIT,
    "error": Termination.ERROR,
}


def solve_pyomo(problem: ClearingProblem, *, time_limit_s: float | None = None) -> LpSolution:
    """Build and solve ``problem`` through pyomo's HiGHS interface.

    Raises:
        SolverError: pyomo or HiGHS failed.
    """
    import pyomo.environ as pe

    from market.clearing._highs import IPM_MIN_ORDERS

    t0 = time.perf_counter()
    try:
        model = build_model(problem)
        quiet_highs()
        opt = pe.SolverFactory("appsi_highs")
        opt.highs_options = {"presolve": "off", "output_flag": False}
        if problem.n_order >= IPM_MIN_ORDERS:
            opt.highs_options["solver"] = "ipm"
        if time_limit_s is not None:
            opt.highs_options["time_limit"] = float(time_limit_s)
        opt.config.load_solution = False
        t1 = time.perf_counter()
        results = opt.solve(model)
        t2 = time.perf_counter()
    except Exception as exc:  # pyomo raises many unrelated types
        raise SolverError(f"pyomo/HiGHS failed: {type(exc).__name__}: {exc}") from exc
    name = str(results.solver.termination_condition).rsplit(".", 1)[-1]
    termination = _TERMINATION.get(name, Termination.UNKNOWN)
    n_o, n_n, n_r = problem.n_order, problem.n_node, problem.rows.n
    if termination != Termination.OPTIMAL:
        solution = (
            SolutionStatus.INFEASIBLE
            if termination == Termination.INFEASIBLE
            else SolutionStatus.NONE
        )
        return LpSolution.empty(
            Status(termination, solution), n_o, n_n, n_r, build_s=t1 - t0, solve_s=t2 - t1
        )
    try:
        opt.load_vars()
        opt.load_duals()  # not every pyomo version loads duals into the suffix on its own
    except Exception:  # pragma: no cover - older appsi without load_duals on the legacy wrapper
        logger.debug("appsi_highs: duals loaded by the solve call")
    scale = problem.price_scale
    duals = model.dual
    x = np.array([model.fill[o].value or 0.0 for o in range(n_o)])
    m = np.array([model.injection[j].value or 0.0 for j in range(n_n)])
    row_dual = np.array([duals.get(model.network_limit[r], 0.0) for r in range(n_r)])
    return LpSolution(
        status=Status.optimal(),
        x_kwh=x,
        m_kwh=m,
        g_in_kwh=float(model.grid_import.value or 0.0),
        g_out_kwh=float(model.grid_export.value or 0.0),
        balance_dual=float(duals.get(model.energy_balance, 0.0)) * scale,
        row_dual=row_dual * scale,
        welfare=-float(pe.value(model.cost)) * scale,
        iterations=0,
        build_s=t1 - t0,
        solve_s=t2 - t1,
        solver_s=t2 - t1,
        n_nonzeros=0,
    )
