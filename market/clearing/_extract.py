"""From an LP solution to a :class:`~market.clearing.result.ClearingResult`.

Shared by both mechanisms: prices from the duals, the integer books, the
bilateral trades, the AC check of the rounded schedule.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from grid import Feeder, FloatArray
from market.clearing._cache import electrical_distance
from market.clearing._problem import (
    KIND_VOLTAGE,
    ClearingProblem,
    IntArray,
    OrderBook,
    bid_limits,
)
from market.clearing._solution import LpSolution
from market.clearing.attribution import attribute_trades
from market.clearing.books import Books, lp_grid_net_wh, round_fills, round_prices, settle
from market.clearing.result import (
    AcCheck,
    BusPrice,
    ClearingResult,
    Fill,
    Payment,
    SolverStats,
    rounded,
)
from market.clearing.rows import Rows
from market.clearing.status import SolutionStatus, Status, Termination
from market.config import MarketConfig

if TYPE_CHECKING:
    from market.clearing._physics import AcState

__all__ = ["assemble", "bus_price_parts", "fills_wh", "injection_mw"]

logger = logging.getLogger(__name__)


def bus_price_parts(
    problem: ClearingProblem, solution: LpSolution, n_bus: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Energy, loss, congestion and voltage price per feeder bus, base units per kWh."""
    lam = solution.balance_dual
    energy = np.full(n_bus, lam)
    loss = lam * (problem.balance_price_coef - 1.0)
    rows = problem.rows
    contrib = solution.row_dual[:, None] * rows.price_coef
    is_v = rows.kind == KIND_VOLTAGE
    congestion = contrib[~is_v].sum(axis=0) if rows.n else np.zeros(n_bus)
    voltage = contrib[is_v].sum(axis=0) if rows.n else np.zeros(n_bus)
    return energy, loss, np.asarray(congestion), np.asarray(voltage)


def fills_wh(problem: ClearingProblem, solution: LpSolution) -> IntArray:
    """Integer fills of the solution (group pro-rata rounding)."""
    return round_fills(problem.book, problem.node, solution.x_kwh)


def injection_mw(book: OrderBook, filled_wh: IntArray, n_bus: int, interval_s: int) -> FloatArray:
    """Net market injection per bus position, MW (positive into the grid)."""
    weights = (book.side * filled_wh).astype(np.float64)
    per_bus = np.bincount(book.position, weights=weights, minlength=n_bus)
    return np.asarray(per_bus * (3600.0 / interval_s / 1e6), dtype=np.float64)


def _fill_rows(book: OrderBook, books: Books) -> tuple[Fill, ...]:
    """One :class:`Fill` per order, from the book's and the books' columns."""
    amount = books.amount.tolist()
    if books.amount.dtype == object:
        amount = [int(a) for a in amount]
    return tuple(
        map(
            Fill._make,
            zip(
                book.order_id,
                book.address,
                map(("buy", "sell").__getitem__, (book.side > 0).tolist()),
                book.bus.tolist(),
                book.quantity_wh.tolist(),
                book.limit_price.tolist(),
                books.filled_wh.tolist(),
                books.price.tolist(),
                amount,
                strict=True,
            ),
        )
    )


def _payment_rows(books: Books) -> tuple[Payment, ...]:
    return tuple(map(Payment._make, books.payments.items()))


def assemble(
    *,
    feeder: Feeder,
    config: MarketConfig,
    problem: ClearingProblem,
    solution: LpSolution,
    filled_wh: IntArray,
    interval: int,
    mechanism: str,
    sensitivities: str,
    constraints: tuple[str, ...],
    rounds: int,
    ac: AcCheck | None,
    stats: SolverStats,
    state: AcState | None = None,
    failure: Termination | None = None,
) -> ClearingResult:
    """The result value of a solved (or, with no solution, an empty) clearing.

    ``state`` is the AC power flow of the final schedule: the books' grid
    exchange comes from it (:mod:`market.clearing.books`, rule 3). With a
    ``failure`` (``ac_infeasible``, ``ac_not_converged``) the result is not
    cleared: no fills, no payments, no grid exchange.

    Called inside :func:`market.clearing.clear`, which holds the garbage
    collector for the whole call (:func:`market.clearing._gc.no_gc_pauses`).
    """
    book = problem.book
    status: Status = solution.status
    if failure is not None:
        status = Status(failure, SolutionStatus.INFEASIBLE)
    parts = round_prices(*bus_price_parts(problem, solution, feeder.n_bus))
    if not status.has_solution:
        filled_wh = np.zeros(book.n, dtype=np.int64)
        grid_net_wh = 0.0
    elif state is not None and state.converged:
        grid_net_wh = state.grid_net_wh
    else:
        grid_net_wh = lp_grid_net_wh(
            book, solution.x_kwh, filled_wh, solution.g_in_kwh, solution.g_out_kwh
        )
    books = settle(
        book, filled_wh, parts.total[book.position], grid_net_wh=grid_net_wh, config=config
    )
    trades = attribute_trades(
        book,
        books.filled_wh,
        books.price,
        distance=electrical_distance(feeder),
        grid_bus=feeder.ext_grid.bus,
        config=config,
    )
    fills = Rows(book.n, partial(_fill_rows, book, books))
    lmp = parts.lmp.tolist()
    prices = tuple(
        BusPrice(
            bus=b.index,
            price=int(parts.total[b.position]),
            energy=int(parts.energy[b.position]),
            loss=int(parts.loss[b.position]),
            congestion=int(parts.congestion[b.position]),
            voltage=int(parts.voltage[b.position]),
            lmp=rounded(lmp[b.position]),
        )
        for b in feeder.buses
    )
    limit = bid_limits(book, retail_price=config.retail_price)
    value = int(np.dot(-book.side * limit, books.filled_wh))  # base units × 1000
    welfare = (
        value
        - books.grid_import_wh * config.retail_price
        + books.grid_export_wh * config.feed_in_price
    ) / 1000.0
    return ClearingResult(
        interval=interval,
        interval_s=config.interval_s,
        mechanism=mechanism,
        sensitivities=sensitivities,
        constraints=constraints,
        status=status,
        fills=fills,
        prices=prices,
        trades=trades,
        payments=Rows(len(books.accounts), partial(_payment_rows, books)),
        grid_import_wh=books.grid_import_wh,
        grid_export_wh=books.grid_export_wh,
        losses_wh=books.losses_wh,
        grid_import_amount=books.grid_import_amount,
        grid_export_amount=books.grid_export_amount,
        grid_rounding_amount=books.grid_rounding_amount,
        operator_surplus=books.operator_surplus,
        welfare=rounded(welfare, 3),
        rounds=rounds,
        ac=ac,
        stats=stats,
        # the flow of these fills only: a failed clearing publishes none
        flows=state.report if state is not None and status.has_solution else None,
    )
