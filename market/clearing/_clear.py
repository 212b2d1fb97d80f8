"""``clear``: validate the book, run a mechanism, raise on a non-optimal outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import cast

from grid import Feeder
from market._columns import OrderColumns
from market.clearing._gc import no_gc_pauses
from market.clearing._problem import IntArray, OrderBook
from market.clearing.nodal import clear_nodal
from market.clearing.options import ClearingOptions, Mechanism
from market.clearing.result import ClearingResult, Fill
from market.clearing.rows import Rows
from market.clearing.status import Termination
from market.clearing.uniform import clear_uniform
from market.config import MarketConfig
from market.errors import (
    AcInfeasibleClearingError,
    ConfigError,
    InfeasibleClearingError,
    SolverError,
)
from market.orders import Order, Participant
from market.validation import assert_valid_orders

__all__ = ["clear"]

logger = logging.getLogger(__name__)


def clear(
    feeder: Feeder,
    orders: Sequence[Order],
    participants: Mapping[str, Participant],
    config: MarketConfig,
    *,
    mechanism: Mechanism = "nodal",
    options: ClearingOptions | None = None,
    interval: int | None = None,
    allow_non_optimal: bool = False,
) -> ClearingResult:
    """Clear one interval's orders on ``feeder``.

    Args:
        feeder: the feeder the participants are connected to.
        orders: every order of the interval, in any order (they clear in
            :func:`~market.orders.book_order`, so ties break the same way
            however the orders arrived).
        participants: registered participants by (lower-case) address.
        config: prices, fee and interval length of the market.
        mechanism: ``"nodal"`` (under grid limits, locational prices) or
            ``"uniform"`` (copper plate, one price).
        options: solver and grid-model options (defaults when omitted).
        interval: the interval id; defaults to the orders' interval (and
            must be given for an empty book, else 0 is used).
        allow_non_optimal: return the result of an infeasible or
            non-optimal solve (with its status) instead of raising.

    Returns:
        The result; its ``status`` is optimal unless ``allow_non_optimal``
        (a result that is not ``ok`` has no fills: nothing trades locally).

    Raises:
        OrderValidationError: an order breaks a rule (every problem listed),
            or the orders are for more than one interval.
        ConfigError: unknown mechanism.
        InfeasibleClearingError: the LP has no feasible solution.
        AcInfeasibleClearingError: the schedule breaks a limit in the AC
            power flow, or the power flow does not converge, after every
            round (:mod:`market.clearing._rounds`): not cleared.
        SolverError: the solver failed or stopped before optimality.
        PowerFlowError: the feeder's base case power flow does not converge.
    """
    with no_gc_pauses():
        return _clear(
            feeder,
            orders,
            participants,
            config,
            mechanism=mechanism,
            options=options or ClearingOptions(),
            interval=interval,
            allow_non_optimal=allow_non_optimal,
        )


def _clear(
    feeder: Feeder,
    orders: Sequence[Order],
    participants: Mapping[str, Participant],
    config: MarketConfig,
    *,
    mechanism: Mechanism,
    options: ClearingOptions,
    interval: int | None,
    allow_non_optimal: bool,
) -> ClearingResult:
    t0 = time.perf_counter()
    if interval is None:
        interval = orders[0].interval if orders else 0
    # one pass over the Order objects; validation and the book read its columns
    columns = OrderColumns.of(orders)
    if options.validate:
        assert_valid_orders(
            columns, config=config, participants=participants, feeder=feeder, interval=interval
        )
    # validation names orders as given; the LP sees them in the canonical book order
    # (ties break the same way however they arrived), the fills come back as given
    perm = columns.book_permutation()
    if perm is not None:
        columns = columns.permuted(perm)
    book = OrderBook.build(columns, participants, feeder)
    prepare_s = time.perf_counter() - t0
    if mechanism == "nodal":
        result = clear_nodal(feeder, book, config, options=options, interval=interval)
    elif mechanism == "uniform":
        result = clear_uniform(feeder, book, config, options=options, interval=interval)
    else:
        raise ConfigError(f"mechanism: expected 'uniform' or 'nodal', got {mechanism!r}")
    # validating and laying out the book count as building the model
    stats = result.stats
    result = replace(
        result,
        fills=result.fills
        if perm is None or len(result.fills) != len(perm)
        else _as_given(result.fills, perm),
        stats=replace(stats, build_s=stats.build_s + prepare_s, total_s=time.perf_counter() - t0),
    )
    if not result.status.ok and not allow_non_optimal:
        if result.status.ac_failed:
            raise AcInfeasibleClearingError(
                f"interval {interval}: the {mechanism} schedule fails the AC power flow "
                f"({result.status}): {'; '.join(result.ac.violations) if result.ac else ''}"
            )
        if result.status.termination == Termination.INFEASIBLE:
            raise InfeasibleClearingError(
                f"interval {interval}: the {mechanism} clearing LP is infeasible ({result.status})"
            )
        raise SolverError(f"interval {interval}: the {mechanism} clearing LP ended {result.status}")
    logger.debug(
        "interval %d cleared (%s): welfare %.1f, %d rounds, %.3f s",
        interval,
        mechanism,
        result.welfare,
        result.rounds,
        result.stats.total_s,
    )
    return result


def _as_given(fills: Sequence[Fill], perm: IntArray) -> Rows[Fill]:
    """``fills`` of the book in ``perm``'s order (``perm[j]``: the given position of
    fill ``j``) back in the order the orders were given, built on first read."""

    def build() -> tuple[Fill, ...]:
        given: list[Fill | None] = [None] * len(perm)
        for j, i in enumerate(perm.tolist()):
            given[i] = fills[j]
        return tuple(cast(list[Fill], given))

    return Rows(len(perm), build)
