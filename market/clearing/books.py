"""Exact books: from the LP's floats to integer Wh and integer token base units.

The LP works in floating-point kWh and prices; everything that leaves
:mod:`market.clearing` is an integer. The rounding rule, applied in this order:

1. **Fills (Wh).** Orders with the same node, side and limit price are
   interchangeable in the LP (same column, same cost), so they are rounded as
   a *group*: the group's total ``round(Σ x_o · 1000)`` (half to even, clipped
   to ``[0, Σ Q_o]``) is split pro rata to the order quantities, floors first
   and the leftover Wh one each to the largest remainders (ties: book order).
   No fill exceeds its quantity; the split does not depend on how the solver
   broke the tie.
2. **Prices (base units per kWh).** Each bus's price is ``round(price_k)``
   (half to even). The energy, congestion and voltage components are rounded
   the same way and the loss component is what makes them add up to the
   total exactly. A buyer pays its bus price plus the grid-usage fee, a
   seller receives its bus price, each capped by its tariff-capped limit
   (:func:`market.clearing._problem.effective_limits`): no buyer pays above
   ``min(limit, retail)`` and no seller receives below ``max(limit,
   feed_in)``. For buyers the LP already bids the capped limit, so the cap
   only absorbs the half unit of price rounding and the solver's tolerance;
   a seller bids its own limit (:func:`market.clearing._problem.bid_limits`)
   and the floor at feed-in is a guarantee the operator pays for.
3. **Energy (Wh), from physics.** The market's exchange with the external
   grid is what the AC power flow of the final integer schedule says: the
   external grid's injection with the schedule minus the one without any
   market (the base case), ``Δ = (P_ext(schedule) − P_ext(base)) · interval_s
   / 3600 · 10⁶`` Wh, and ``grid_net_wh = round(Δ)`` (half to even);
   ``grid_import_wh = max(grid_net_wh, 0)``, ``grid_export_wh =
   max(−grid_net_wh, 0)``. Network losses caused by the market are the
   residual that balances the books to the Wh::

       losses_wh = grid_net_wh − Σ buy filled_wh + Σ sell filled_wh

   Because power balance gives ``ΔP_ext = ΔP_losses − Σ market injection``
   and the market injection is the integer fills exactly, ``losses_wh`` is
   also the AC power flow's change of losses rounded half to even: both
   ``|grid_net_wh − Δ|`` and ``|losses_wh − Δlosses|`` are at most 0.5 Wh
   (plus the power flow's convergence tolerance, 10⁻⁸ MVA ≈ 0.003 Wh per
   15 min). Only when the AC check is switched off (``ac_check=False``) are
   the LP's slack and loss figures booked instead.
4. **Money (base units).** Each counterparty's rounding is in its favour,
   so no buyer pays above and no seller receives below its limit, even by a
   fraction of a base unit: a buyer pays ``floor(filled_wh · price / 1000)``,
   a seller receives ``ceil(filled_wh · price / 1000)``; the market pays the
   external grid ``ceil(grid_import_wh · retail / 1000)`` and receives
   ``floor(grid_export_wh · feed_in / 1000)``. The operator is the residual
   claimant: it collects the grid fees and the congestion, voltage and loss
   rents and pays for the physical losses through the grid exchange::

       residual = Σ buyers pay − Σ sellers receive − grid import amount
                  + grid export amount

   ``operator_surplus = max(residual, 0)`` (never negative: the settlement
   contract pays it as a fee); a negative residual is carried by the
   external grid's account as ``grid_rounding_amount = min(residual, 0)``.
   So, to the last unit::

       Σ buyers pay == Σ sellers receive + grid import amount − grid export amount
                       + grid_rounding_amount + operator_surplus

   **Rounding bound.** Against the same sums in exact arithmetic with the
   unrounded bus prices ``lmp`` (buyers at ``lmp + fee``), capped by the
   same tariff limits as rule 2, the booked
   residual differs by at most ``Σ_filled (1 + filled_wh / 1000) + 2`` base
   units: one unit of floor/ceil per filled order, at most one base unit per
   kWh of price rounding (half a unit, plus the cap's solver tolerance) and
   one unit per grid direction. The residual itself, in exact arithmetic, is
   the LP's merchandising surplus less the value of any mismatch between the
   LP's and the power flow's losses; it is not a rounding quantity and its
   sign is not guaranteed where marginal losses are negative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from grid import FloatArray
from market.clearing._problem import IntArray, OrderBook, effective_limits
from market.config import MarketConfig

__all__ = [
    "Books",
    "PriceParts",
    "lp_grid_net_wh",
    "physical_grid_net_wh",
    "round_fills",
    "round_prices",
    "settle",
]

_SAFE = 2**62


def _exact(values: IntArray, bound: int) -> IntArray:
    """``values`` as Python-int objects when products up to ``bound`` could overflow int64."""
    if bound >= _SAFE:
        return values.astype(object)  # exact big-int fallback
    return values


def _group_order(node: IntArray, side: IntArray, limit: IntArray) -> IntArray:
    """``np.lexsort((limit, side, node))``: by node, side, limit, then book order.

    One stable sort of a combined key where it fits in int64, else the lexsort.
    """
    lo, hi = int(limit.min()), int(limit.max())
    span = hi - lo + 1
    if int(node.max()) * 2 * span + 2 * span < _SAFE:
        key = (node * 2 + (side > 0)) * span + (limit - lo)
        return np.argsort(key, kind="stable")
    return np.lexsort((limit, side, node))


def round_fills(book: OrderBook, node: IntArray, x_kwh: FloatArray) -> IntArray:
    """Integer fills in Wh by the group pro-rata rule (rule 1)."""
    n = book.n
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = _group_order(node, book.side, book.limit_price)
    s_node, s_side, s_limit = node[order], book.side[order], book.limit_price[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (
        (s_node[1:] != s_node[:-1]) | (s_side[1:] != s_side[:-1]) | (s_limit[1:] != s_limit[:-1])
    )
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1  # group id per sorted position
    q = book.quantity_wh[order]
    group_q = np.add.reduceat(q, starts)
    group_x = np.add.reduceat(np.clip(x_kwh[order], 0.0, None) * 1000.0, starts)
    total = np.clip(np.rint(group_x).astype(np.int64), 0, group_q)
    bound = int(group_q.max()) * int(q.max())
    product = _exact(total[group], bound) * _exact(q, bound)
    divisor = _exact(group_q[group], bound)
    base = product // divisor
    remainder = product % divisor
    deficit = total - np.asarray(np.add.reduceat(base, starts), dtype=np.int64)
    # leftover Wh to the largest remainders, ties in book order (within a group
    # the sorted positions are in book order already: the sort is stable)
    rank_order = np.lexsort((-np.asarray(remainder, dtype=np.float64), group))
    rank = np.empty(n, dtype=np.int64)
    rank[rank_order] = np.arange(n) - starts[group[rank_order]]
    extra = rank < deficit[group]
    filled_sorted = np.asarray(base, dtype=np.int64) + extra
    filled = np.empty(n, dtype=np.int64)
    filled[order] = filled_sorted
    return filled


@dataclass(frozen=True)
class PriceParts:
    """Per-bus prices in base units per kWh (rule 2): integer parts and the float total."""

    total: IntArray
    energy: IntArray
    loss: IntArray
    congestion: IntArray
    voltage: IntArray
    lmp: FloatArray


def round_prices(
    energy: FloatArray, loss: FloatArray, congestion: FloatArray, voltage: FloatArray
) -> PriceParts:
    """Round float price components per bus; the loss part absorbs the rounding."""
    lmp = energy + loss + congestion + voltage
    total = np.rint(lmp).astype(np.int64)
    e = np.rint(energy).astype(np.int64)
    c = np.rint(congestion).astype(np.int64)
    v = np.rint(voltage).astype(np.int64)
    return PriceParts(
        total=total, energy=e, loss=total - e - c - v, congestion=c, voltage=v, lmp=lmp
    )


@dataclass(frozen=True)
class Books:
    """The integer books of one interval (rules 2-4).

    Attributes:
        filled_wh: fill per order, Wh.
        price: per order, base units per kWh the order pays (buy, fee
            included) or receives (sell).
        amount: per order, base units paid (buy) or received (sell).
        buyers_pay: Σ of the buyers' amounts.
        sellers_receive: Σ of the sellers' amounts.
        grid_import_wh: energy bought from the external grid, Wh.
        grid_export_wh: energy sold to the external grid, Wh.
        losses_wh: network losses attributed to the market, Wh (may be negative).
        grid_import_amount: what the market pays the external grid, base units.
        grid_export_amount: what the external grid pays the market, base units.
        grid_rounding_amount: rounding the operator's rents do not cover,
            carried by the external grid's account, base units (≤ 0).
        operator_surplus: fees, congestion and loss rents less rounding, base units (≥ 0).
        accounts: the book's participants, in order of first appearance.
        account_amount: per account, signed base units (positive = receives).
    """

    filled_wh: IntArray
    price: IntArray
    amount: IntArray
    buyers_pay: int
    sellers_receive: int
    grid_import_wh: int
    grid_export_wh: int
    losses_wh: int
    grid_import_amount: int
    grid_export_amount: int
    grid_rounding_amount: int
    operator_surplus: int
    accounts: tuple[str, ...]
    account_amount: list[int]

    @cached_property
    def payments(self) -> Mapping[str, int]:
        """Per participant, signed base units (positive = receives), sorted by address."""
        return dict(sorted(zip(self.accounts, self.account_amount, strict=True)))


def _sums_by(group: IntArray, values: IntArray, n_group: int) -> list[int]:
    """Exact sum of ``values`` per group ``0..n_group-1`` (int64 or Python-int objects)."""
    if n_group == 0:
        return []
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.diff(group[order], prepend=-1))
    sums = np.add.reduceat(values[order], starts)
    return [int(v) for v in sums.tolist()]


def lp_grid_net_wh(
    book: OrderBook, x_kwh: FloatArray, filled_wh: IntArray, g_in_kwh: float, g_out_kwh: float
) -> float:
    """The LP's net import for the integer fills, Wh (used only without an AC check; rule 3).

    The integer fills' net purchase plus the LP's own losses, rounded to Wh.
    """
    lp_loss_wh = round((g_in_kwh - g_out_kwh + float(np.dot(book.side, x_kwh))) * 1000.0)
    return float(int(np.dot(-book.side, filled_wh)) + lp_loss_wh)


def physical_grid_net_wh(ext_p_mw: float, base_ext_p_mw: float, interval_s: int) -> float:
    """The external grid's energy change caused by the market, Wh (rule 3, unrounded)."""
    return (ext_p_mw - base_ext_p_mw) * interval_s / 3600.0 * 1e6


def settle(
    book: OrderBook,
    filled_wh: IntArray,
    bus_price: IntArray,
    *,
    grid_net_wh: float,
    config: MarketConfig,
) -> Books:
    """Apply rules 2-4 to integer fills, per-order bus prices and the grid exchange.

    Args:
        book: the orders.
        filled_wh: integer fill per order.
        bus_price: the rounded price of each order's bus, base units per kWh.
        grid_net_wh: the market's net import from the external grid, Wh
            (rule 3; rounded half to even here).
        config: tariffs and fee.
    """
    is_buy = book.side < 0
    cap = effective_limits(
        book, retail_price=config.retail_price, feed_in_price=config.feed_in_price
    )
    price = np.where(is_buy, bus_price + config.grid_fee_per_kwh, bus_price)
    filled = filled_wh > 0
    price = np.where(filled & is_buy & (price > cap), cap, price)
    price = np.where(filled & ~is_buy & (price < cap), cap, price)
    bound = int(np.abs(price).max(initial=0)) * int(filled_wh.max(initial=0))
    value = _exact(filled_wh, bound) * _exact(price, bound)
    # buyers round down (floor), sellers up (ceil): each in its own favour
    amount = np.where(is_buy, value // 1000, -((-value) // 1000))
    buyers_pay = int(amount[is_buy].sum())
    sellers_receive = int(amount[~is_buy].sum())
    net_import = round(grid_net_wh)  # Python's round: half to even
    losses_wh = net_import - int(filled_wh[is_buy].sum()) + int(filled_wh[~is_buy].sum())
    import_wh, export_wh = max(net_import, 0), max(-net_import, 0)
    import_amount = -((-import_wh * config.retail_price) // 1000)
    export_amount = (export_wh * config.feed_in_price) // 1000
    residual = buyers_pay - sellers_receive - import_amount + export_amount
    names, account = book.accounts
    signed = np.where(is_buy, -amount, amount)
    return Books(
        filled_wh=filled_wh,
        price=np.asarray(price, dtype=np.int64),
        amount=np.asarray(amount, dtype=object if amount.dtype == object else np.int64),
        buyers_pay=buyers_pay,
        sellers_receive=sellers_receive,
        grid_import_wh=import_wh,
        grid_export_wh=export_wh,
        losses_wh=losses_wh,
        grid_import_amount=import_amount,
        grid_export_amount=export_amount,
        grid_rounding_amount=min(residual, 0),
        operator_surplus=max(residual, 0),
        accounts=names,
        account_amount=_sums_by(account, signed, len(names)),
    )
