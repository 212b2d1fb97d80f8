"""Successive linearisation of the ``nodal`` LP until it agrees with the AC power flow.

One *round* is an LP solve at a linearisation point, the integer rounding of
its fills, and the AC power flow of that rounded schedule
(:func:`market.clearing._physics.evaluate`, which runs
:func:`grid.check_schedule`). The rounds stop as soon as

* the AC power flow converges and breaks no limit (tolerance
  ``ac_tolerance``), and
* the LP's prediction at the schedule agrees with the power flow: every
  enforced branch flow within ``flow_tolerance`` of its limit, every enforced
  bus voltage within ``voltage_tolerance_pu`` and the external grid's
  energy within ``max(slack_tolerance_wh, 0.5 % of the traded energy)``.

* the trust region (below) holds back at most 0.5 % of the traded energy.

Otherwise, up to ``max_rounds`` rounds, the grid is re-linearised
(:func:`grid.linearise`) at the schedule and the LP solved again. Damping by
a trust region on each bus's market injection, centred on the schedule the
LP is linearised at: a bus whose step reverses direction, or every bus that
moved in a round whose disagreement (the largest mismatch as a multiple of
its tolerance, above 1) did not shrink, may move at most half its last step
in the next round; when the schedule's power flow diverges, every step is
halved and the LP solved again at the same point. This stops the rounds from
oscillating between two vertices (a marginal order whose bus price moves
with the loss factors, an interior optimum of the losses). The region's
column bounds do not enter the prices. With ``dc`` sensitivities the model is
the same at every point, so there is one linearisation round.

If the schedule still breaks a limit after those rounds, up to
``tighten_rounds`` further solves *tighten the rows that missed* at the same
linearisation: a branch limit by the observed overload (``value/limit − 1``
of its active-power limit, plus 0.1 %), a voltage bound by the observed
excess plus 10⁻⁴ p.u. When the schedule is feasible after those, it is
published (``agreed`` may then be false: the books are physical anyway).
When it is not, or a missed limit is one the LP does not enforce (``voltage``
with ``dc``, a constraint left out of ``constraints``), or the power flow
never converges, the result is *not cleared*: ``ac_infeasible`` or
``ac_not_converged``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from grid import Feeder, FloatArray, Sensitivities, linearise
from market.clearing._extract import fills_wh, injection_mw
from market.clearing._physics import AcState, Miss, ac_check_of, evaluate
from market.clearing._problem import ClearingProblem, IntArray, OrderBook, mw_per_kwh
from market.clearing._solution import LpSolution
from market.clearing._solvers import solve
from market.clearing.nodal import Tightening, define_nodal_problem
from market.clearing.options import ClearingOptions
from market.clearing.result import AcCheck
from market.clearing.status import Termination
from market.config import MarketConfig

__all__ = ["Mismatch", "RoundsOutcome", "mismatch_of", "run_rounds"]

logger = logging.getLogger(__name__)

#: Tightening margins beyond the observed error.
BRANCH_MARGIN = 0.001
VOLTAGE_MARGIN_PU = 1e-4


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Predicted against AC values of one schedule (see the module docstring)."""

    flow: float
    vm_pu: float
    slack_wh: float
    score: float

    @property
    def agreed(self) -> bool:
        """Every mismatch within its tolerance."""
        return self.score <= 1.0


@dataclass(frozen=True)
class RoundsOutcome:
    """What the rounds leave: the final LP, its schedule and its physics."""

    problem: ClearingProblem
    solution: LpSolution
    filled_wh: IntArray
    state: AcState | None
    check: AcCheck | None
    rounds: int
    iterations: int
    failure: Termination | None


def mismatch_of(
    feeder: Feeder,
    sens: Sensitivities,
    inj: FloatArray,
    state: AcState,
    options: ClearingOptions,
    *,
    interval_s: int,
    traded_wh: int,
) -> Mismatch:
    """How far the linear model at ``sens`` is from the AC power flow at ``inj``."""
    report = state.report
    assert report is not None  # callers compare converged power flows only
    d = inj - sens.injection_mw
    limits = feeder.limits
    wanted = np.where(
        limits.branch_is_line, "lines" in options.constraints, "trafos" in options.constraints
    )
    rows = np.flatnonzero(limits.branch_limited & wanted & np.isfinite(sens.flow_limit_mw))
    flow = 0.0
    if len(rows):
        pred = sens.flow_mw[rows] + sens.dflow_dp[rows] @ d
        limit = np.maximum(sens.flow_limit_mw[rows], 1e-9)
        flow = float(np.max(np.abs(pred - report.branch_p_mw[rows]) / limit))
    vm = 0.0
    if "voltage" in options.constraints:
        has = np.isfinite(sens.vm_pu) & np.isfinite(report.vm_pu) & sens.dvm_dp.any(axis=1)
        if has.any():
            pred_v = sens.vm_pu[has] + sens.dvm_dp[has] @ d
            vm = float(np.max(np.abs(pred_v - report.vm_pu[has])))
    pred_slack = sens.slack_p_mw + float(sens.dslack_dp @ d)
    slack_wh = abs(pred_slack - report.ext_grid_p_mw) * interval_s / 3600.0 * 1e6
    slack_tol = max(options.slack_tolerance_wh, 0.005 * traded_wh)
    score = max(
        flow / max(options.flow_tolerance, 1e-12),
        vm / max(options.voltage_tolerance_pu, 1e-12),
        slack_wh / max(slack_tol, 1e-12),
    )
    return Mismatch(flow, vm, slack_wh, score)


def _tightened(t: Tightening, misses: tuple[Miss, ...], sens: Sensitivities) -> Tightening:
    branch, vmax, vmin = t.branch_mw.copy(), t.vmax_pu.copy(), t.vmin_pu.copy()
    for m in misses:
        if m.kind == "bus":
            excess = abs(m.value - m.limit) + VOLTAGE_MARGIN_PU
            if m.value > m.limit:
                vmax[m.position] += excess
            else:
                vmin[m.position] += excess
        else:
            limit = float(sens.flow_limit_mw[m.position])
            if np.isfinite(limit):
                branch[m.position] += (m.value / m.limit - 1.0 + BRANCH_MARGIN) * limit
    return Tightening(branch, vmax, vmin)


def _fixable(misses: tuple[Miss, ...], options: ClearingOptions) -> bool:
    return all(m.constraint in options.constraints for m in misses)


def _solve_at(
    feeder: Feeder,
    book: OrderBook,
    config: MarketConfig,
    options: ClearingOptions,
    *,
    sens: Sensitivities,
    base: Sensitivities,
    tight: Tightening,
    radius: FloatArray,
    timing: dict[str, float],
) -> tuple[ClearingProblem, LpSolution, IntArray]:
    """One LP at ``sens`` with the tightening and the trust region; its integer fills."""
    c = mw_per_kwh(config.interval_s)
    t0 = time.perf_counter()
    problem = define_nodal_problem(
        feeder, book, config, sens=sens, base=base, constraints=options.constraints, tighten=tight
    )
    centre = sens.injection_mw[problem.node_position] / c
    r_node = radius[problem.node_position] / c
    if np.isfinite(r_node).any():
        problem = replace(problem, node_lower=centre - r_node, node_upper=centre + r_node)
    solution = solve(problem, solver=options.solver, time_limit_s=options.time_limit_s)
    t1 = time.perf_counter()
    timing["build_s"] += (t1 - t0) - solution.solve_s
    timing["solve_s"] += solution.solve_s
    timing["solver_s"] += solution.solver_s
    filled = fills_wh(problem, solution)
    timing["extract_s"] += time.perf_counter() - t1
    return problem, solution, filled


def _check(
    feeder: Feeder,
    sens: Sensitivities,
    inj: FloatArray,
    filled: IntArray,
    *,
    options: ClearingOptions,
    interval_s: int,
) -> tuple[AcState, Mismatch | None, AcCheck]:
    """The AC power flow of ``inj``, its mismatch against ``sens`` (``ac`` only), the check."""
    state = evaluate(feeder, inj, tolerance=options.ac_tolerance, interval_s=interval_s)
    mis: Mismatch | None = None
    if state.converged and options.sensitivities == "ac":
        traded = int(np.abs(filled).sum())
        mis = mismatch_of(
            feeder, sens, inj, state, options, interval_s=interval_s, traded_wh=traded
        )
    check = ac_check_of(
        state,
        tolerance=options.ac_tolerance,
        agreed=None if mis is None else mis.agreed,
        flow_mismatch=0.0 if mis is None else mis.flow,
        vm_mismatch_pu=0.0 if mis is None else mis.vm_pu,
        slack_mismatch_wh=0.0 if mis is None else mis.slack_wh,
    )
    return state, mis, check


def run_rounds(
    feeder: Feeder,
    book: OrderBook,
    config: MarketConfig,
    *,
    options: ClearingOptions,
    base: Sensitivities,
    timing: dict[str, float],
) -> RoundsOutcome:
    """Solve, check and re-linearise (see the module docstring); ``timing`` is added to.

    Raises:
        SolverError: the solver failed.
    """
    sens = base
    tight = Tightening.none(feeder)
    rounds = iterations = tightened = 0
    prev_score = float("inf")
    radius = np.full(feeder.n_bus, np.inf)  # trust region per bus, MW around the point
    prev_step: FloatArray | None = None
    while True:
        rounds += 1
        problem, solution, filled = _solve_at(
            feeder,
            book,
            config,
            options,
            sens=sens,
            base=base,
            tight=tight,
            radius=radius,
            timing=timing,
        )
        iterations += solution.iterations
        if not (options.ac_check and solution.status.has_solution):
            return RoundsOutcome(problem, solution, filled, None, None, rounds, iterations, None)
        t2 = time.perf_counter()
        inj = injection_mw(book, filled, feeder.n_bus, config.interval_s)
        state, mis, check = _check(
            feeder, sens, inj, filled, options=options, interval_s=config.interval_s
        )
        t3 = time.perf_counter()
        timing["ac_check_s"] += t3 - t2
        outcome = RoundsOutcome(problem, solution, filled, state, check, rounds, iterations, None)
        step = inj - sens.injection_mw
        binding = _region_binds(problem, solution, radius, book, mw_per_kwh(config.interval_s))
        if state.feasible and (mis is None or (mis.agreed and not binding)):
            return outcome
        if options.sensitivities == "ac" and rounds < options.max_rounds and tightened == 0:
            moved = np.abs(step) > 0.0
            if mis is None:
                # the power flow of the schedule failed: stay, halve the step
                radius = np.where(moved, np.minimum(radius, 0.5 * np.abs(step)), radius)
                continue
            if prev_step is not None:
                # a bus that reverses direction oscillates; a round that did not
                # bring the model closer (while it still disagrees) overshot
                worse = mis.score >= prev_score and mis.score > 1.0
                shrink = moved & ((step * prev_step < 0) | worse)
                radius = np.where(shrink, np.minimum(radius, 0.5 * np.abs(step)), radius)
            prev_score, prev_step = mis.score, step
            logger.info("round %d: mismatch score %.3g; re-linearising", rounds, mis.score)
            assert state.report is not None  # mis is not None: the flow converged
            sens = linearise(feeder, inj, mode="ac", flow=state.report.flow)
            timing["linearise_s"] += time.perf_counter() - t3
            continue
        if state.feasible:
            logger.info("round %d: AC-feasible but not agreed (%s); published", rounds, mis)
            return outcome
        if not state.converged:
            return replace(outcome, failure=Termination.AC_NOT_CONVERGED)
        if tightened < options.tighten_rounds and _fixable(state.misses, options):
            tightened += 1
            logger.info("round %d: %d limit(s) missed; tightening", rounds, len(state.misses))
            tight = _tightened(tight, state.misses, sens)
            continue
        return replace(outcome, failure=Termination.AC_INFEASIBLE)


def _region_binds(
    problem: ClearingProblem, solution: LpSolution, radius: FloatArray, book: OrderBook, c: float
) -> bool:
    """Whether the trust region holds back more than 0.5 % of the traded energy.

    The energy the region could hold back is at most the sum of its radii at
    the nodes where the solution sits on its edge; below 0.5 % of the traded
    energy that no longer changes the cleared quantity by the 1 % the rounds
    aim at, so the region no longer counts as binding.
    """
    if problem.node_lower is None or problem.node_upper is None:
        return False
    r = radius[problem.node_position] / c
    at_edge = (solution.m_kwh >= problem.node_upper - 1e-6) | (
        solution.m_kwh <= problem.node_lower + 1e-6
    )
    held = float(np.where(at_edge & np.isfinite(r), r, 0.0).sum())
    traded = (
        float(np.maximum(solution.x_kwh, 0.0) @ (book.side > 0)),
        float(np.maximum(solution.x_kwh, 0.0) @ (book.side < 0)),
    )
    return held > max(0.005 * max(traded), 0.001)
