"""The ``nodal`` mechanism: welfare maximisation under the feeder's limits.

The grid enters through its linearisation at an operating point ``P⁰``
(market injection per bus, MW) from :func:`grid.linearise`: with
``c = 3.6 / interval_s`` MW per kWh and ``m`` the market injection per bus in
kWh, the rows of :mod:`market.clearing._problem` are

* flow of every limited line/transformer ``l`` (``lines``, ``trafos``)::

      −F_l ≤ f⁰_l + Σ_k PTDF_lk·(c·m_k − P⁰_k) ≤ F_l

* voltage of every bus ``k`` with a voltage sensitivity (``voltage``)::

      V_min,k ≤ V⁰_k + Σ_j S_kj·(c·m_j − P⁰_j) ≤ V_max,k

* energy balance with the marginal losses of the ``ac`` linearisation
  (``a_k = −∂P_slack/∂P_k``; 1 in ``dc``)::

      Σ_k a_k·m_k + g_in − g_out = (P⁰_slack − P_slack,base − Σ_k ∂P_slack/∂P_k·P⁰_k) / c

A limit the base case (no market) already breaks is widened to the base
value: the market may not make it worse, and clearing never fails because
of the feeder's own load. Rows that no combination of order fills could
push past their bounds are left out (this changes nothing in the solution
and its prices: their duals would be zero).

Rounds: the LP is solved again at new linearisation points until its
prediction agrees with the AC power flow of its rounded schedule, and rows
that the power flow shows missed are tightened; a schedule that still breaks
a limit is not cleared (:mod:`market.clearing._rounds`). A limit counts
against the market only beyond ``max(limit, base value)``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from grid import Feeder, FloatArray, Sensitivities
from market._columns import unique_inverse
from market.clearing._cache import zero_point
from market.clearing._extract import assemble
from market.clearing._problem import (
    KIND_LINE,
    KIND_TRAFO,
    KIND_VOLTAGE,
    ClearingProblem,
    IntArray,
    NetworkRows,
    OrderBook,
    mw_per_kwh,
    order_costs,
    price_scale_of,
)
from market.clearing.options import ClearingOptions
from market.clearing.result import ClearingResult, SolverStats
from market.config import MarketConfig

__all__ = ["Tightening", "clear_nodal", "define_network_rows", "define_nodal_problem"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tightening:
    """How far each limit is moved inwards after the AC power flow missed it.

    Attributes:
        branch_mw: per branch (``feeder.branches``), MW off its active-power limit.
        vmax_pu: per bus, p.u. off its upper voltage limit.
        vmin_pu: per bus, p.u. onto its lower voltage limit.
    """

    branch_mw: FloatArray
    vmax_pu: FloatArray
    vmin_pu: FloatArray

    @classmethod
    def none(cls, feeder: Feeder) -> Tightening:
        """No tightening."""
        return cls(np.zeros(len(feeder.branches)), np.zeros(feeder.n_bus), np.zeros(feeder.n_bus))


def _node_box(book: OrderBook, node: IntArray, n_node: int) -> tuple[FloatArray, FloatArray]:
    """Smallest and largest possible market injection per node, kWh."""
    qty = book.quantity_wh / 1000.0
    hi = np.bincount(node, weights=np.where(book.side > 0, qty, 0.0), minlength=n_node)
    lo = -np.bincount(node, weights=np.where(book.side < 0, qty, 0.0), minlength=n_node)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def define_network_rows(
    feeder: Feeder,
    sens: Sensitivities,
    base: Sensitivities,
    *,
    constraints: frozenset[str],
    node_position: IntArray,
    node_lo: FloatArray,
    node_hi: FloatArray,
    interval_s: int,
    tighten: Tightening | None = None,
) -> NetworkRows:
    """Flow and voltage rows over node injections (see the module docstring).

    ``tighten`` moves limits inwards by the errors observed in earlier AC
    power flows (:class:`Tightening`).
    """
    c = mw_per_kwh(interval_s)
    t = tighten or Tightening.none(feeder)
    p0 = sens.injection_mw
    limits = feeder.limits
    kinds = np.where(limits.branch_is_line, KIND_LINE, KIND_TRAFO)
    limited = limits.branch_limited
    wanted = np.isin(kinds, [k for n, k in (("lines", 0), ("trafos", 1)) if n in constraints])
    br = np.flatnonzero(limited & wanted)
    d = sens.dflow_dp[br]
    limit = np.maximum(sens.flow_limit_mw[br] - t.branch_mw[br], 0.0)
    f_base = base.flow_mw[br]
    shift = sens.flow_mw[br] - d @ p0
    blocks = [
        (
            d,
            (-np.maximum(limit, -f_base) - shift) / c,
            (np.maximum(limit, f_base) - shift) / c,
            kinds[br],
            br,
        )
    ]
    if "voltage" in constraints and sens.mode == "ac":
        vmin = limits.vm_min_pu + t.vmin_pu
        vmax = limits.vm_max_pu - t.vmax_pu
        s_all = sens.dvm_dp
        bus = np.flatnonzero(np.isfinite(sens.vm_pu) & np.isfinite(base.vm_pu) & s_all.any(axis=1))
        s = s_all[bus]
        shift_v = sens.vm_pu[bus] - s @ p0
        lo_v = np.minimum(vmin[bus], base.vm_pu[bus])
        hi_v = np.maximum(vmax[bus], base.vm_pu[bus])
        blocks.append(
            (s, (lo_v - shift_v) / c, (hi_v - shift_v) / c, np.full(len(bus), KIND_VOLTAGE), bus)
        )
    price_coef = np.vstack([b[0] for b in blocks])
    lower = np.concatenate([b[1] for b in blocks])
    upper = np.concatenate([b[2] for b in blocks])
    kind = np.concatenate([b[3] for b in blocks]).astype(np.int64)
    element = np.concatenate([b[4] for b in blocks]).astype(np.int64)
    # sensitivities below 1e-9 of a row's largest are round-off of the factorisation
    tiny = np.abs(price_coef) < 1e-9 * np.abs(price_coef).max(axis=1, initial=0.0)[:, None]
    price_coef = np.where(tiny, 0.0, price_coef)
    coef = price_coef[:, node_position]
    # keep a row only if some fills could push it past a bound
    act_lo = np.minimum(coef * node_lo, coef * node_hi).sum(axis=1)
    act_hi = np.maximum(coef * node_lo, coef * node_hi).sum(axis=1)
    keep = ((act_lo < lower) | (act_hi > upper)) & np.any(coef != 0.0, axis=1)
    return NetworkRows(
        coef=coef[keep],
        lower=lower[keep],
        upper=upper[keep],
        kind=kind[keep],
        element=element[keep],
        price_coef=price_coef[keep],
    )


def define_nodal_problem(
    feeder: Feeder,
    book: OrderBook,
    config: MarketConfig,
    *,
    sens: Sensitivities,
    base: Sensitivities,
    constraints: frozenset[str],
    tighten: Tightening | None = None,
) -> ClearingProblem:
    """The nodal LP at the operating point of ``sens`` (``base``: the zero-injection point)."""
    c = mw_per_kwh(config.interval_s)
    scale = price_scale_of(config.retail_price)
    qty, cost = order_costs(
        book,
        fee_per_kwh=config.grid_fee_per_kwh,
        price_scale=scale,
        retail_price=config.retail_price,
    )
    unique_pos, inverse = unique_inverse(book.position)
    node_position = unique_pos.astype(np.int64)
    node = inverse.astype(np.int64)
    node_lo, node_hi = _node_box(book, node, len(node_position))
    a_all = -sens.dslack_dp
    rhs = (sens.slack_p_mw - base.slack_p_mw - float(sens.dslack_dp @ sens.injection_mw)) / c
    rows = define_network_rows(
        feeder,
        sens,
        base,
        constraints=constraints,
        node_position=node_position,
        node_lo=node_lo,
        node_hi=node_hi,
        interval_s=config.interval_s,
        tighten=tighten,
    )
    return ClearingProblem(
        book=book,
        quantity_kwh=qty,
        cost=cost,
        node=node,
        node_position=node_position.astype(np.int64),
        import_cost=config.retail_price / scale,
        export_cost=-config.feed_in_price / scale,
        balance_coef=a_all[node_position],
        balance_rhs=rhs,
        balance_price_coef=a_all,
        rows=rows,
        price_scale=scale,
        fee_per_kwh=config.grid_fee_per_kwh,
    )


def clear_nodal(
    feeder: Feeder,
    book: OrderBook,
    config: MarketConfig,
    *,
    options: ClearingOptions,
    interval: int,
) -> ClearingResult:
    """Clear ``book`` under the grid's limits (see the module docstring).

    Raises:
        PowerFlowError: the base case's or a re-linearisation's power flow
            did not converge.
        SolverError: the solver failed.
    """
    from market.clearing._rounds import run_rounds

    t_start = time.perf_counter()
    mode = options.sensitivities
    base = zero_point(feeder, mode)
    timing = dict.fromkeys(
        ("linearise_s", "build_s", "solve_s", "solver_s", "extract_s", "ac_check_s"), 0.0
    )
    timing["linearise_s"] = time.perf_counter() - t_start
    out = run_rounds(feeder, book, config, options=options, base=base, timing=timing)
    problem, solution, filled = out.problem, out.solution, out.filled_wh
    rounds, iterations, ac = out.rounds, out.iterations, out.check
    t4 = time.perf_counter()
    stats = SolverStats(
        solver=options.solver,
        rows=problem.n_row,
        columns=problem.n_col,
        nonzeros=solution.n_nonzeros,
        iterations=iterations,
        **timing,
    )
    result = assemble(
        feeder=feeder,
        config=config,
        problem=problem,
        solution=solution,
        filled_wh=filled,
        interval=interval,
        mechanism="nodal",
        sensitivities=mode,
        constraints=tuple(sorted(options.constraints)),
        rounds=rounds,
        ac=ac,
        stats=stats,
        state=out.state,
        failure=out.failure,
    )
    t5 = time.perf_counter()
    return replace(
        result,
        stats=replace(
            result.stats, extract_s=timing["extract_s"] + (t5 - t4), total_s=t5 - t_start
        ),
    )
