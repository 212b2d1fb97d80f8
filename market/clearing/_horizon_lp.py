"""The rolling horizon's LP: one interval LP per interval, coupled by flexibility.

Each interval ``t`` keeps the single-interval LP of
:mod:`market.clearing._problem` unchanged (its own orders, node rows, energy
balance and network rows at that interval's linearisation). A flexibility
order appears in every interval it may act in as one or two *flex orders* of
that interval's book: a buy (charging, an EV, a load) and, for storage, a
sell (discharging), each bounded by the power limit times the interval.
Their objective coefficients are set here, not from a limit price: a buy
costs the grid fee, a storage sell costs its cycling price. The intervals
are then coupled by extra columns and rows, after every interval's own::

    s_d,t   state of charge of storage d after interval t, kWh,
            min_soc ≤ s_d,t ≤ max_soc, and s_d,T−1 ≥ end_soc (capped by reach)
    u_w     energy of window w not delivered, kWh, 0 ≤ u_w ≤ need_in_horizon,
            costing the order's value of unmet energy

    soc row   s_d,t − s_d,t−1 − η_c·x_charge,t + x_discharge,t / η_d = (soc now if t = 0)
    window    need_in_horizon ≤ Σ_{t∈w} x_t + u_w ≤ need

``need_in_horizon`` is what must come within the horizon even if the rest of
the window (beyond the horizon) runs at full power. Minus the objective is
the horizon's welfare, in base units.

The fast path stacks the interval matrices of :func:`market.clearing._highs.define_matrix`
block-diagonally and solves once with HiGHS; the reference path builds the
same model in pyomo from :mod:`market.clearing._pyomo`'s components, one
block per interval. Both return one :class:`LpSolution` per interval
(its duals give that interval's prices) and the coupling columns' values.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from grid import FloatArray
from market.clearing._banner import quiet_highs
from market.clearing._highs import _status, define_columns, define_matrix, define_rows
from market.clearing._problem import ClearingProblem, IntArray
from market.clearing._solution import LpSolution
from market.clearing.status import SolutionStatus, Status, Termination
from market.errors import SolverError

logger = logging.getLogger(__name__)

__all__ = ["HorizonLp", "HorizonSolution", "StorageCols", "WindowCols", "solve_horizon"]


@dataclass(frozen=True)
class StorageCols:
    """One storage order in the LP: its flex orders per interval (−1: none) and bounds, kWh."""

    charge: IntArray
    discharge: IntArray
    eta_charge: float
    eta_discharge: float
    soc0_kwh: float
    lo_kwh: float
    hi_kwh: float
    end_kwh: float


@dataclass(frozen=True)
class WindowCols:
    """One energy window in the LP: (interval, flex-order index) pairs, needs in kWh."""

    interval: IntArray
    index: IntArray
    need_kwh: float
    need_in_horizon_kwh: float
    unmet_cost: float


@dataclass(frozen=True)
class HorizonLp:
    """The interval LPs and what couples them."""

    problems: tuple[ClearingProblem, ...]
    storage: tuple[StorageCols, ...]
    windows: tuple[WindowCols, ...]

    def offsets(self) -> tuple[IntArray, IntArray]:
        """First column and first row of every interval block."""
        cols = np.cumsum([0] + [p.n_col for p in self.problems]).astype(np.int64)
        rows = np.cumsum([0] + [p.n_row for p in self.problems]).astype(np.int64)
        return cols, rows

    @property
    def n_soc(self) -> int:
        """Number of state-of-charge columns (and rows)."""
        return len(self.storage) * len(self.problems)


@dataclass(frozen=True)
class HorizonSolution:
    """Per-interval solutions, coupling values and totals."""

    status: Status
    intervals: tuple[LpSolution, ...]
    soc_kwh: FloatArray  # (n_storage, T)
    unmet_kwh: FloatArray  # (n_window,)
    welfare: float
    rows: int
    columns: int
    nonzeros: int
    iterations: int
    solve_s: float


def _coupling(lp: HorizonLp) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
    """Coupling columns (cost, bounds) and rows (triplets, bounds)."""
    n_t = len(lp.problems)
    col0, _ = lp.offsets()
    base_col = int(col0[-1])
    n_soc = lp.n_soc
    cost = np.zeros(n_soc + len(lp.windows))
    lo = np.zeros(n_soc + len(lp.windows))
    hi = np.zeros(n_soc + len(lp.windows))
    r: list[int] = []
    c: list[int] = []
    v: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []
    row = 0
    for d, s in enumerate(lp.storage):
        for t in range(n_t):
            k = d * n_t + t
            lo[k], hi[k] = s.lo_kwh, s.hi_kwh
            if t == n_t - 1:
                lo[k] = max(s.lo_kwh, min(s.end_kwh, s.hi_kwh))
            r.append(row)
            c.append(base_col + k)
            v.append(1.0)
            if t > 0:
                r.append(row)
                c.append(base_col + k - 1)
                v.append(-1.0)
            if s.charge[t] >= 0:
                r.append(row)
                c.append(int(col0[t]) + int(s.charge[t]))
                v.append(-s.eta_charge)
            if s.discharge[t] >= 0:
                r.append(row)
                c.append(int(col0[t]) + int(s.discharge[t]))
                v.append(1.0 / s.eta_discharge)
            rhs = s.soc0_kwh if t == 0 else 0.0
            row_lo.append(rhs)
            row_hi.append(rhs)
            row += 1
    for w_i, w in enumerate(lp.windows):
        k = n_soc + w_i
        cost[k], hi[k] = w.unmet_cost, w.need_in_horizon_kwh
        r.append(row)
        c.append(base_col + k)
        v.append(1.0)
        for t, o in zip(w.interval.tolist(), w.index.tolist(), strict=True):
            r.append(row)
            c.append(int(col0[t]) + o)
            v.append(1.0)
        row_lo.append(w.need_in_horizon_kwh)
        row_hi.append(w.need_kwh)
        row += 1
    return cost, lo, hi, (np.array(r), np.array(c), np.array(v)), row, row_lo, row_hi


def _assemble(lp: HorizonLp) -> tuple[Any, Any, Any, Any, Any, sp.csc_matrix]:
    blocks = [define_matrix(p) for p in lp.problems]
    cols = [define_columns(p) for p in lp.problems]
    rows = [define_rows(p) for p in lp.problems]
    k_cost, k_lo, k_hi, (kr, kc, kv), n_krow, k_rlo, k_rhi = _coupling(lp)
    diag = sp.block_diag(blocks, format="coo") if blocks else sp.coo_matrix((0, 0))
    n_col = diag.shape[1] + len(k_cost)
    n_row = diag.shape[0] + n_krow
    a = sp.csc_matrix(
        (
            np.concatenate([diag.data, kv]),
            (np.concatenate([diag.row, kr + diag.shape[0]]), np.concatenate([diag.col, kc])),
        ),
        shape=(n_row, n_col),
    )
    cost = np.concatenate([*(x[0] for x in cols), k_cost])
    lo = np.concatenate([*(x[1] for x in cols), k_lo])
    hi = np.concatenate([*(x[2] for x in cols), k_hi])
    rlo = np.concatenate([*(x[0] for x in rows), np.asarray(k_rlo, dtype=np.float64)])
    rhi = np.concatenate([*(x[1] for x in rows), np.asarray(k_rhi, dtype=np.float64)])
    return cost, lo, hi, rlo, rhi, a


def _split(
    lp: HorizonLp,
    col: FloatArray,
    row_dual: FloatArray,
    status: Status,
    objective: float,
    *,
    dims: tuple[int, int, int, int],
    solve_s: float,
) -> HorizonSolution:
    col0, row0 = lp.offsets()
    out: list[LpSolution] = []
    for t, p in enumerate(lp.problems):
        x = col[col0[t] : col0[t + 1]]
        y = row_dual[row0[t] : row0[t + 1]]
        n_o, n_n = p.n_order, p.n_node
        out.append(
            LpSolution(
                status=status,
                x_kwh=x[:n_o],
                m_kwh=x[n_o : n_o + n_n],
                g_in_kwh=float(x[n_o + n_n]),
                g_out_kwh=float(x[n_o + n_n + 1]),
                balance_dual=float(y[n_n]) * p.price_scale,
                row_dual=y[n_n + 1 :] * p.price_scale,
                welfare=0.0,
                iterations=0,
                build_s=0.0,
                solve_s=0.0,
                solver_s=0.0,
                n_nonzeros=0,
            )
        )
    base = int(col0[-1])
    n_t = len(lp.problems)
    soc = col[base : base + lp.n_soc].reshape(len(lp.storage), n_t)
    unmet = col[base + lp.n_soc : base + lp.n_soc + len(lp.windows)]
    scale = lp.problems[0].price_scale if lp.problems else 1.0
    rows, cols, nnz, iters = dims
    return HorizonSolution(
        status, tuple(out), soc, unmet, -objective * scale, rows, cols, nnz, iters, solve_s
    )


def _empty(
    lp: HorizonLp, status: Status, dims: tuple[int, int, int, int], s: float
) -> HorizonSolution:
    rows, cols, _, _ = dims
    return _split(lp, np.zeros(cols), np.zeros(rows), status, 0.0, dims=dims, solve_s=s)


def solve_fast_horizon(lp: HorizonLp, *, time_limit_s: float | None = None) -> HorizonSolution:
    """Solve the stacked LP with highspy in one call.

    Raises:
        SolverError: highspy failed.
    """
    import highspy

    quiet_highs()
    cost, lo, hi, rlo, rhi, a = _assemble(lp)
    t0 = time.perf_counter()
    try:
        h = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy leaves __init__ unannotated
        h.setOptionValue("output_flag", False)
        if time_limit_s is not None:
            h.setOptionValue("time_limit", float(time_limit_s))
        status = h.passModel(
            a.shape[1],
            a.shape[0],
            int(a.nnz),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            cost,
            lo,
            hi,
            rlo,
            rhi,
            a.indptr.astype(np.int32),
            a.indices.astype(np.int32),
            a.data,
            np.zeros(a.shape[1], dtype=np.int32),
        )
        if status == highspy.HighsStatus.kError:
            raise SolverError(f"HiGHS rejected the horizon model ({status})")
        h.run()
        info = h.getInfo()
        result = _status(h.getModelStatus(), int(info.primal_solution_status))
        iters = int(info.simplex_iteration_count) + int(info.ipm_iteration_count)
        dims = (a.shape[0], a.shape[1], int(a.nnz), iters)
        if not result.has_solution:
            return _empty(lp, result, dims, time.perf_counter() - t0)
        sol = h.getSolution()
        col = np.asarray(sol.col_value, dtype=np.float64)
        dual = np.asarray(sol.row_dual, dtype=np.float64)
        objective = float(info.objective_function_value)
    except SolverError:
        raise
    except Exception as exc:  # highspy raises its own and builtin types alike
        raise SolverError(f"HiGHS failed: {type(exc).__name__}: {exc}") from exc
    if len(dual) != a.shape[0]:
        dual = np.zeros(a.shape[0])
    return _split(lp, col, dual, result, objective, dims=dims, solve_s=time.perf_counter() - t0)


def build_pyomo_horizon(lp: HorizonLp) -> Any:
    """The readable model: one block per interval (the single-interval components), coupled."""
    import pyomo.environ as pe

    from market.clearing import _pyomo as single

    n_t = len(lp.problems)
    model = pe.ConcreteModel(name="gridex horizon")
    model.T = pe.Set(initialize=range(n_t), ordered=True)
    model.interval = pe.Block(model.T)
    for t, p in enumerate(lp.problems):
        b = model.interval[t]
        single.define_order_variables(b, p)
        single.define_node_variables(b, p)
        single.define_grid_variables(b)
        single.define_node_constraints(b, p)
        single.define_balance_constraint(b, p)
        single.define_network_constraints(b, p)
    model.STORAGE = pe.Set(initialize=range(len(lp.storage)), ordered=True)

    def soc_bounds(_m: Any, d: int, t: int) -> tuple[float, float]:
        s = lp.storage[d]
        low = max(s.lo_kwh, min(s.end_kwh, s.hi_kwh)) if t == n_t - 1 else s.lo_kwh
        return (low, s.hi_kwh)

    model.soc = pe.Var(model.STORAGE, model.T, bounds=soc_bounds)

    def soc_rule(m: Any, d: int, t: int) -> Any:
        s = lp.storage[d]
        before = s.soc0_kwh if t == 0 else m.soc[d, t - 1]
        blk = m.interval[t]
        charge = s.eta_charge * blk.fill[int(s.charge[t])] if s.charge[t] >= 0 else 0.0
        dis = blk.fill[int(s.discharge[t])] / s.eta_discharge if s.discharge[t] >= 0 else 0.0
        return m.soc[d, t] == before + charge - dis

    model.soc_dynamics = pe.Constraint(model.STORAGE, model.T, rule=soc_rule)
    model.WINDOWS = pe.Set(initialize=range(len(lp.windows)), ordered=True)
    model.unmet = pe.Var(
        model.WINDOWS, bounds=lambda _m, w: (0.0, lp.windows[w].need_in_horizon_kwh)
    )

    def window_rule(m: Any, w: int) -> Any:
        win = lp.windows[w]
        delivered = sum(
            m.interval[t].fill[o]
            for t, o in zip(win.interval.tolist(), win.index.tolist(), strict=True)
        )
        return (win.need_in_horizon_kwh, delivered + m.unmet[w], win.need_kwh)

    model.window_energy = pe.Constraint(model.WINDOWS, rule=window_rule)

    def objective(m: Any) -> Any:
        total = 0.0
        for t, p in enumerate(lp.problems):
            b = m.interval[t]
            cost = p.cost.tolist()
            total += sum(cost[o] * b.fill[o] for o in b.ORDERS)
            total += p.import_cost * b.grid_import + p.export_cost * b.grid_export
        return total + sum(lp.windows[w].unmet_cost * m.unmet[w] for w in m.WINDOWS)

    model.cost = pe.Objective(rule=objective, sense=pe.minimize)
    model.dual = pe.Suffix(direction=pe.Suffix.IMPORT)
    return model


def solve_pyomo_horizon(lp: HorizonLp, *, time_limit_s: float | None = None) -> HorizonSolution:
    """Solve the pyomo reference model with HiGHS.

    Raises:
        SolverError: pyomo or HiGHS failed.
    """
    import pyomo.environ as pe

    t0 = time.perf_counter()
    try:
        model = build_pyomo_horizon(lp)
        quiet_highs()
        opt = pe.SolverFactory("appsi_highs")
        opt.highs_options = {"output_flag": False}
        if time_limit_s is not None:
            opt.highs_options["time_limit"] = float(time_limit_s)
        opt.config.load_solution = False
        results = opt.solve(model)
    except Exception as exc:  # pyomo raises many unrelated types
        raise SolverError(f"pyomo/HiGHS failed: {type(exc).__name__}: {exc}") from exc
    name = str(results.solver.termination_condition).rsplit(".", 1)[-1]
    n_col = sum(p.n_col for p in lp.problems) + lp.n_soc + len(lp.windows)
    n_row = sum(p.n_row for p in lp.problems) + lp.n_soc + len(lp.windows)
    dims = (n_row, n_col, 0, 0)
    if name != "optimal":
        term = Termination.INFEASIBLE if "nfeasible" in name else Termination.UNKNOWN
        sol_status = (
            SolutionStatus.INFEASIBLE if term == Termination.INFEASIBLE else SolutionStatus.NONE
        )
        return _empty(lp, Status(term, sol_status), dims, time.perf_counter() - t0)
    opt.load_vars()
    try:
        opt.load_duals()  # not every pyomo version loads duals into the suffix on its own
    except Exception:  # pragma: no cover - older appsi without load_duals on the legacy wrapper
        logger.debug("appsi_highs: duals loaded by the solve call")
    duals = model.dual
    col: list[float] = []
    dual: list[float] = []
    for t, p in enumerate(lp.problems):
        b = model.interval[t]
        col += [b.fill[o].value or 0.0 for o in range(p.n_order)]
        col += [b.injection[j].value or 0.0 for j in range(p.n_node)]
        col += [b.grid_import.value or 0.0, b.grid_export.value or 0.0]
        dual += [duals.get(b.node_balance[j], 0.0) for j in range(p.n_node)]
        dual += [duals.get(b.energy_balance, 0.0)]
        dual += [duals.get(b.network_limit[r], 0.0) for r in range(p.rows.n)]
    n_t = len(lp.problems)
    col += [model.soc[d, t].value or 0.0 for d in range(len(lp.storage)) for t in range(n_t)]
    col += [model.unmet[w].value or 0.0 for w in range(len(lp.windows))]
    dual += [0.0] * (lp.n_soc + len(lp.windows))
    return _split(
        lp,
        np.asarray(col, dtype=np.float64),
        np.asarray(dual, dtype=np.float64),
        Status.optimal(),
        float(pe.value(model.cost)),
        dims=dims,
        solve_s=time.perf_counter() - t0,
    )


def solve_horizon(
    lp: HorizonLp, *, solver: str, time_limit_s: float | None = None
) -> HorizonSolution:
    """Solve with the ``fast`` (highspy) or the ``pyomo`` reference path."""
    if solver == "pyomo":
        return solve_pyomo_horizon(lp, time_limit_s=time_limit_s)
    return solve_fast_horizon(lp, time_limit_s=time_limit_s)
