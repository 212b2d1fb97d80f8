"""Rolling-horizon clearing: ordinary orders per interval, flexibility across them.

At each gate closure :func:`clear_horizon` clears the coming intervals in
one LP (:mod:`market.clearing._horizon_lp`, laid out by
:mod:`market.clearing._horizon_layout`): every interval is the ``nodal``
LP of :mod:`market.clearing.nodal` at that interval's own feeder view (its
forecast base load, :meth:`grid.Feeder.with_base`) and linearisation, and
flexibility orders (:mod:`market.flex`) move energy between intervals. Only
the first interval is *firm*; the rest are *indicative*.

Rounds, as in :mod:`market.clearing._rounds` but for every interval: after
each solve the integer schedule of every interval is run through the AC
power flow (:func:`market.clearing._physics.evaluate`); an interval whose
linear model disagrees with its power flow is re-linearised at its schedule
(``ac`` sensitivities, up to ``max_rounds``), then an interval that still
breaks a limit has the missed rows tightened (up to ``tighten_rounds``). An
interval that still breaks a limit is *not cleared* (``ac_infeasible`` /
``ac_not_converged``), as a single-interval clearing would be. (The
single-interval trust region is not used here: the coupled intervals are
damped by the tightening instead.)

Integer fills: ordinary orders by the group pro-rata rule of
:mod:`market.clearing.books`; a flexibility order's fill is its LP value
rounded to the Wh, then, walking the intervals in order, cut back where the
integer rule of :func:`market.flex.soc_after` would take the state of charge
outside its bounds (or an energy window beyond its need). The published
state of charge is that rule applied to the published fills, so the next
roll starts exactly where the firm interval left the battery.

Welfare: minus the LP objective, base units: buyers' bids less sellers'
asks of ordinary orders, less the grid's net cost, less cycling costs and
the value of unmet energy, net of the grid fee.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grid import Feeder, FloatArray, Sensitivities, linearise
from market.clearing._cache import _memo, zero_point
from market.clearing._extract import assemble, injection_mw
from market.clearing._horizon_layout import (
    FlexSchedule,
    _coupling,
    _filled,
    _flex_costs,
    _integer_flex,
    _Layout,
    _layout,
    inflexible_profile,
)
from market.clearing._horizon_lp import (
    HorizonLp,
    HorizonSolution,
    StorageCols,
    WindowCols,
    solve_horizon,
)
from market.clearing._physics import AcState, ac_check_of, evaluate
from market.clearing._problem import ClearingProblem, IntArray
from market.clearing._rounds import _fixable, _tightened, mismatch_of
from market.clearing.nodal import Tightening, define_nodal_problem
from market.clearing.options import ClearingOptions
from market.clearing.result import AcCheck, ClearingResult, SolverStats
from market.clearing.status import Termination
from market.config import MarketConfig
from market.errors import ConfigError, SolverError
from market.flex import (
    FlexOrder,
    StorageOrder,
    assert_valid_flex_orders,
)
from market.orders import Order, Participant
from market.validation import assert_valid_orders

__all__ = ["FlexSchedule", "HorizonResult", "clear_horizon", "inflexible_profile"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HorizonResult:
    """One roll: firm first interval, indicative rest.

    Attributes:
        first_interval: the firm interval's id.
        results: one clearing result per interval (``results[0]`` firm),
            with prices per bus, fills of ordinary and flex orders, AC check.
        schedules: one per flexibility order, in input order.
        welfare: the horizon LP's welfare (its prediction), base units.
        books_welfare: the same from the published books, base units: every
            interval's ordinary orders at their tariff-capped limits and its
            physical grid exchange (:attr:`ClearingResult.welfare` without the
            flex orders), less cycling costs and the value of unmet energy.
            With no flexibility and one interval it is ``clear()``'s welfare.
        rounds: LP solves.
        rows, columns, nonzeros: size of the (last) horizon LP.
        total_s: wall clock of the roll.
    """

    first_interval: int
    results: tuple[ClearingResult, ...]
    schedules: tuple[FlexSchedule, ...]
    welfare: float
    books_welfare: float
    rounds: int
    rows: int
    columns: int
    nonzeros: int
    total_s: float

    @property
    def firm(self) -> ClearingResult:
        """The first interval: the only one that trades."""
        return self.results[0]

    def to_json(self) -> bytes:
        """Canonical UTF-8 JSON of :meth:`to_dict` (sorted keys, no whitespace)."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        """Every interval (``firm`` only the first) and schedule; no timings."""
        return {
            "first_interval": self.first_interval,
            "welfare": round(self.welfare, 3),
            "books_welfare": round(self.books_welfare, 3),
            "rounds": self.rounds,
            "results": [
                {"interval": r.interval, "firm": i == 0, "result": r.to_dict()}
                for i, r in enumerate(self.results)
            ],
            "schedules": [s.to_dict() for s in self.schedules],
        }


def _evaluate(feeder: Feeder, inj: FloatArray, *, tolerance: float, interval_s: int) -> AcState:
    """:func:`evaluate`, memoised per feeder view and injection.

    A roll re-checks every indicative interval, and most of them carry the
    same schedule as in the previous roll: the power flow of a view at a
    given injection never changes, so it is computed once.
    """
    digest = hashlib.sha256(np.ascontiguousarray(inj, dtype=np.float64).tobytes()).hexdigest()
    key = f"horizon-ac-{tolerance!r}-{interval_s}-{digest}"
    return _memo(
        feeder, key, lambda: evaluate(feeder, inj, tolerance=tolerance, interval_s=interval_s)
    )


class _Rounds:
    """Solve, AC-check every interval, re-linearise or tighten (module docstring)."""

    def __init__(  # noqa: PLR0917 - the rounds' fixed inputs, built in one place
        self,
        feeders: Sequence[Feeder],
        layout: _Layout,
        flex: Sequence[FlexOrder],
        config: MarketConfig,
        opts: ClearingOptions,
        fixed: Sequence[list[tuple[int, int]]] | None,
        storage: tuple[StorageCols, ...],
        windows: tuple[WindowCols, ...],
    ) -> None:
        self.feeders, self.layout, self.flex, self.config, self.opts = (
            feeders, layout, flex, config, opts,
        )  # fmt: skip
        self.fixed, self.storage, self.windows = fixed, storage, windows
        n_t = len(feeders)
        self.bases = [zero_point(f, opts.sensitivities) for f in feeders]
        self.sens: list[Sensitivities] = list(self.bases)
        self.tight = [Tightening.none(f) for f in feeders]
        self.rounds = self.tightened = 0
        self.states: list[AcState | None] = [None] * n_t
        self.checks: list[AcCheck | None] = [None] * n_t
        self.failure: list[Termination | None] = [None] * n_t

    def _problems(self) -> tuple[ClearingProblem, ...]:
        return tuple(
            _flex_costs(
                define_nodal_problem(
                    f, self.layout.books[t], self.config, sens=self.sens[t], base=self.bases[t],
                    constraints=self.opts.constraints, tighten=self.tight[t],
                ),
                self.layout, t, self.flex, self.config, self.fixed,
            )
            for t, f in enumerate(self.feeders)
        )  # fmt: skip

    def _check(self, t: int, filled: IntArray) -> tuple[FloatArray, bool]:
        """AC power flow of interval ``t``; its injection and whether the model disagrees."""
        opts, f, interval_s = self.opts, self.feeders[t], self.config.interval_s
        inj = injection_mw(self.layout.books[t], filled, f.n_bus, interval_s)
        state = _evaluate(f, inj, tolerance=opts.ac_tolerance, interval_s=interval_s)
        mis = None
        if state.converged and opts.sensitivities == "ac":
            traded = int(np.abs(filled).sum())
            mis = mismatch_of(
                f, self.sens[t], inj, state, opts, interval_s=interval_s, traded_wh=traded
            )
        self.states[t] = state
        self.checks[t] = ac_check_of(
            state,
            tolerance=opts.ac_tolerance,
            agreed=None if mis is None else mis.agreed,
            flow_mismatch=0.0 if mis is None else mis.flow,
            vm_mismatch_pu=0.0 if mis is None else mis.vm_pu,
            slack_mismatch_wh=0.0 if mis is None else mis.slack_wh,
        )
        return inj, mis is not None and not mis.agreed

    def run(
        self, intervals: Sequence[int]
    ) -> tuple[tuple[ClearingProblem, ...], HorizonSolution, list[IntArray], list[FlexSchedule]]:
        """Rounds until every interval agrees and holds, or the rounds run out.

        Raises:
            SolverError: the LP has no solution or the solver failed.
        """
        opts = self.opts
        while True:
            self.rounds += 1
            problems = self._problems()
            sol = solve_horizon(
                HorizonLp(problems, self.storage, self.windows),
                solver=opts.solver,
                time_limit_s=opts.time_limit_s,
            )
            if not sol.status.has_solution:
                raise SolverError(
                    f"horizon from interval {intervals[0]}: the LP ended {sol.status}"
                )
            cin, cout, schedules = _integer_flex(
                self.flex, self.layout, sol, intervals, self.layout.books
            )
            filled = [_filled(self.layout, p, sol, t, cin, cout) for t, p in enumerate(problems)]
            if not opts.ac_check or not self._next(filled):
                return problems, sol, filled, schedules

    def _next(self, filled: list[IntArray]) -> bool:
        """Check every interval; whether another round runs (else failures are set)."""
        opts = self.opts
        checked = [self._check(t, f) for t, f in enumerate(filled)]
        disagree = [t for t, (_, off) in enumerate(checked) if off]
        missed = [t for t, st in enumerate(self.states) if st is None or not st.feasible]
        if disagree and self.rounds < opts.max_rounds and self.tightened == 0:
            for t in disagree:
                self.sens[t] = linearise(self.feeders[t], checked[t][0], mode="ac")
            return True
        fixable: list[tuple[int, AcState]] = []
        for t in missed:
            st = self.states[t]
            if st is not None and st.converged and _fixable(st.misses, opts):
                fixable.append((t, st))
        if fixable and self.tightened < opts.tighten_rounds:
            self.tightened += 1
            for t, st in fixable:
                self.tight[t] = _tightened(self.tight[t], st.misses, self.sens[t])
            return True
        for t in missed:
            st = self.states[t]
            converged = st is not None and st.converged
            self.failure[t] = (
                Termination.AC_INFEASIBLE if converged else Termination.AC_NOT_CONVERGED
            )
        return False


def _books_welfare(
    results: tuple[ClearingResult, ...],
    layout: _Layout,
    flex: Sequence[FlexOrder],
    schedules: tuple[FlexSchedule, ...],
) -> float:
    """Welfare from the published books (see :attr:`HorizonResult.books_welfare`)."""
    total_milli = 0
    for t, res in enumerate(results):
        flex_value = 0
        for idx in np.r_[layout.charge[:, t], layout.discharge[:, t]]:
            if idx < 0:
                continue
            fill = res.fills[int(idx)]
            sign = -1 if fill.side == "buy" else 1
            flex_value -= sign * fill.limit_price * fill.filled_wh
        total_milli += round(res.welfare * 1000) - flex_value
    for f, s in zip(flex, schedules, strict=True):
        if isinstance(f, StorageOrder):
            total_milli -= f.cycling_price * sum(s.discharge_wh)
        else:
            total_milli -= f.value_per_kwh * s.unmet_wh
    return total_milli / 1000.0


def clear_horizon(
    feeders: Sequence[Feeder],
    orders: Sequence[Sequence[Order]],
    flex: Sequence[FlexOrder],
    participants: Mapping[str, Participant],
    config: MarketConfig,
    *,
    first_interval: int,
    options: ClearingOptions | None = None,
    myopic: bool = False,
) -> HorizonResult:
    """Clear intervals ``first_interval, first_interval + 1, …`` jointly.

    Args:
        feeders: one feeder view per interval (its forecast base load).
        orders: the ordinary orders of each interval.
        flex: flexibility orders (their state now).
        participants: registered participants by address.
        config: prices, fee and interval length.
        first_interval: the firm interval's id.
        options: as for :func:`market.clearing.clear` (``nodal`` mechanism).
        myopic: clear each interval on its own, flexibility fixed at
            :func:`inflexible_profile` (the baseline of the welfare comparison).

    Raises:
        OrderValidationError: an order or flexibility order breaks a rule.
        ConfigError: ``feeders`` and ``orders`` differ in length, or are empty.
        SolverError: the solver failed, or the LP is infeasible.
        PowerFlowError: an interval's base case does not converge.
    """
    t_start = time.perf_counter()
    opts = options or ClearingOptions()
    n_t = len(feeders)
    if n_t == 0 or len(orders) != n_t:
        raise ConfigError(
            f"horizon: need one feeder and one order list per interval, got {n_t} and {len(orders)}"
        )
    intervals = [first_interval + t for t in range(n_t)]
    lower = {a.lower(): p for a, p in participants.items()}
    if opts.validate:
        for t, iv in enumerate(intervals):
            assert_valid_orders(
                orders[t], config=config, participants=lower, feeder=feeders[t], interval=iv
            )
        assert_valid_flex_orders(flex, config=config, participants=lower, feeder=feeders[0])
    layout = _layout(orders, flex, lower, feeders, intervals, config)
    fixed = [inflexible_profile(f, intervals, config.interval_s) for f in flex] if myopic else None
    storage, windows = _coupling(flex, layout, intervals, config, fixed=fixed)
    loop = _Rounds(feeders, layout, flex, config, opts, fixed, storage, windows)
    problems, sol, filled, schedules = loop.run(intervals)
    mode = opts.sensitivities
    results = tuple(
        assemble(
            feeder=feeders[t],
            config=config,
            problem=problems[t],
            solution=sol.intervals[t],
            filled_wh=filled[t],
            interval=intervals[t],
            mechanism="nodal",
            sensitivities=mode,
            constraints=tuple(sorted(opts.constraints)),
            rounds=loop.rounds,
            ac=loop.checks[t],
            stats=SolverStats(
                solver=opts.solver,
                rows=sol.rows,
                columns=sol.columns,
                nonzeros=sol.nonzeros,
                iterations=sol.iterations,
            ),
            state=loop.states[t],
            failure=loop.failure[t],
        )
        for t in range(n_t)
    )
    total = time.perf_counter() - t_start
    logger.info(
        "horizon from %d: %d intervals, %d rounds, welfare %.1f, %.2f s",
        first_interval,
        n_t,
        loop.rounds,
        sol.welfare,
        total,
    )
    return HorizonResult(
        first_interval,
        results,
        tuple(schedules),
        sol.welfare,
        _books_welfare(results, layout, flex, tuple(schedules)),
        loop.rounds,
        sol.rows,
        sol.columns,
        sol.nonzeros,
        total,
    )
