"""The fast path: the clearing LP built as sparse arrays and passed to HiGHS in one call.

No Python loop runs per variable: each block of the constraint matrix (see
:mod:`market.clearing._problem` for the layout) is assembled with numpy,
stacked into one compressed-column matrix and handed to ``Highs.passModel``.
highspy's exceptions are mapped to :class:`~market.errors.SolverError` here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from market.clearing._banner import quiet_highs
from market.clearing._problem import ClearingProblem
from market.clearing._solution import LpSolution
from market.clearing.status import SolutionStatus, Status, Termination
from market.errors import SolverError

__all__ = ["define_columns", "define_matrix", "define_rows", "solve_fast"]

logger = logging.getLogger(__name__)

_INF = float("inf")
#: From this many orders on, interior point (with crossover) beats the dual simplex.
IPM_MIN_ORDERS = 5000


def define_columns(problem: ClearingProblem) -> tuple[Any, Any, Any]:
    """Objective coefficients, lower and upper bounds of every column."""
    n_node = problem.n_node
    cost = np.concatenate(
        [problem.cost, np.zeros(n_node), [problem.import_cost, problem.export_cost]]
    )
    node_lo = np.full(n_node, -_INF) if problem.node_lower is None else problem.node_lower
    node_hi = np.full(n_node, _INF) if problem.node_upper is None else problem.node_upper
    lower = np.concatenate([np.zeros(problem.n_order), node_lo, [0.0, 0.0]])
    upper = np.concatenate([problem.quantity_kwh, node_hi, [_INF, _INF]])
    return cost, lower, upper


def define_rows(problem: ClearingProblem) -> tuple[Any, Any]:
    """Lower and upper bounds of every row: node rows, the balance row, network rows."""
    zeros = np.zeros(problem.n_node)
    lower = np.concatenate([zeros, [problem.balance_rhs], problem.rows.lower])
    upper = np.concatenate([zeros, [problem.balance_rhs], problem.rows.upper])
    return lower, upper


def define_matrix(problem: ClearingProblem) -> sp.csc_matrix:
    """The constraint matrix, compressed by column."""
    n_order, n_node, rows = problem.n_order, problem.n_node, problem.rows
    balance_row = n_node
    # order columns: one entry each, in the row of the order's node
    order_r = problem.node
    order_c = np.arange(n_order)
    order_v = -problem.book.side.astype(np.float64)
    # node columns: their own row, the balance row and the network rows
    node_c = np.arange(n_node)
    net_r, net_c = np.nonzero(rows.coef)
    rows_all = np.concatenate(
        [order_r, node_c, np.full(n_node, balance_row), balance_row + 1 + net_r]
    )
    cols_all = np.concatenate([order_c, n_order + node_c, n_order + node_c, n_order + net_c])
    vals_all = np.concatenate(
        [order_v, np.ones(n_node), problem.balance_coef, rows.coef[net_r, net_c]]
    )
    # grid columns: import +1, export -1 in the balance row
    g_c = n_order + n_node + np.arange(2)
    rows_all = np.concatenate([rows_all, [balance_row, balance_row]])
    cols_all = np.concatenate([cols_all, g_c])
    vals_all = np.concatenate([vals_all, [1.0, -1.0]])
    return sp.csc_matrix(
        (vals_all, (rows_all, cols_all)), shape=(problem.n_row, problem.n_col), dtype=np.float64
    )


_TERMINATION = {
    "kOptimal": Termination.OPTIMAL,
    "kInfeasible": Termination.INFEASIBLE,
    "kUnbounded": Termination.UNBOUNDED,
    "kUnboundedOrInfeasible": Termination.INFEASIBLE,
    "kTimeLimit": Termination.TIME_LIMIT,
    "kIterationLimit": Termination.ITERATION_LIMIT,
    "kModelEmpty": Termination.OPTIMAL,
    "kLoadError": Termination.ERROR,
    "kModelError": Termination.ERROR,
    "kPresolveError": Termination.ERROR,
    "kSolveError": Termination.ERROR,
    "kPostsolveError": Termination.ERROR,
    "kMemoryLimit": Termination.ERROR,
}


def _status(model_status: Any, primal_status: int) -> Status:
    name = str(model_status).rsplit(".", 1)[-1]
    termination = _TERMINATION.get(name, Termination.UNKNOWN)
    if termination == Termination.OPTIMAL:
        return Status.optimal()
    if termination == Termination.INFEASIBLE:
        return Status(termination, SolutionStatus.INFEASIBLE)
    # HiGHS: kSolutionStatusFeasible == 2
    return Status(
        termination, SolutionStatus.FEASIBLE if primal_status == 2 else SolutionStatus.NONE
    )


def solve_fast(problem: ClearingProblem, *, time_limit_s: float | None = None) -> LpSolution:
    """Solve ``problem`` with highspy.

    Raises:
        SolverError: highspy failed to accept the model or to run.
    """
    import highspy

    quiet_highs()
    t0 = time.perf_counter()
    cost, col_lo, col_hi = define_columns(problem)
    row_lo, row_hi = define_rows(problem)
    a = define_matrix(problem)
    try:
        h = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy leaves __init__ unannotated
        h.setOptionValue("output_flag", False)
        # presolve costs far more than it saves on these LPs (seconds at 10k
        # orders); interior point with crossover avoids the dual simplex's
        # slow bound-flipping ratio test on long rows of a big book
        h.setOptionValue("presolve", "off")
        if problem.n_order >= IPM_MIN_ORDERS:
            h.setOptionValue("solver", "ipm")
        if time_limit_s is not None:
            h.setOptionValue("time_limit", float(time_limit_s))
        status = h.passModel(
            problem.n_col,
            problem.n_row,
            int(a.nnz),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            cost,
            col_lo,
            col_hi,
            row_lo,
            row_hi,
            a.indptr.astype(np.int32),
            a.indices.astype(np.int32),
            a.data,
            np.zeros(problem.n_col, dtype=np.int32),
        )
        if status == highspy.HighsStatus.kError:
            raise SolverError(f"HiGHS rejected the clearing model ({status})")
        t1 = time.perf_counter()
        h.run()
        t2 = time.perf_counter()
        info = h.getInfo()
        result_status = _status(h.getModelStatus(), int(info.primal_solution_status))
        solver_s = float(h.getRunTime())
        iterations = int(info.simplex_iteration_count) + int(info.ipm_iteration_count)
        if not result_status.has_solution:
            return LpSolution.empty(
                result_status,
                problem.n_order,
                problem.n_node,
                problem.rows.n,
                build_s=t1 - t0,
                solve_s=t2 - t1,
                solver_s=solver_s,
            )
        sol = h.getSolution()
        col = np.asarray(sol.col_value, dtype=np.float64)
        row_dual = np.asarray(sol.row_dual, dtype=np.float64)
        objective = float(info.objective_function_value)
    except SolverError:
        raise
    except Exception as exc:  # highspy raises its own and builtin types alike
        raise SolverError(f"HiGHS failed: {type(exc).__name__}: {exc}") from exc
    if len(row_dual) != problem.n_row:  # a model without rows, or no duals
        row_dual = np.zeros(problem.n_row)
    n_o, n_n = problem.n_order, problem.n_node
    scale = problem.price_scale
    return LpSolution(
        status=result_status,
        x_kwh=col[:n_o],
        m_kwh=col[n_o : n_o + n_n],
        g_in_kwh=float(col[n_o + n_n]),
        g_out_kwh=float(col[n_o + n_n + 1]),
        balance_dual=float(row_dual[n_n]) * scale,
        row_dual=row_dual[n_n + 1 :] * scale,
        welfare=-objective * scale,
        iterations=iterations,
        build_s=t1 - t0,
        solve_s=t2 - t1,
        solver_s=solver_s,
        n_nonzeros=int(a.nnz),
    )
