"""The clearing LP as plain arrays, shared by the fast and the reference solver.

Units inside the LP: energy in kWh (per interval), money in token base units
divided by :attr:`ClearingProblem.price_scale` (so costs are of order one).

Columns, in this order::

    x_o   o = 0..n_order-1   fill of order o, kWh, 0 ≤ x_o ≤ Q_o
    m_j   j = 0..n_node-1    net market injection at node j, kWh, free
    g_in                     energy imported from the external grid, kWh, ≥ 0
    g_out                    energy exported to the external grid, kWh, ≥ 0

Rows, in this order::

    node j      m_j − Σ_{sell o at j} x_o + Σ_{buy o at j} x_o = 0
    balance     Σ_j a_j·m_j + g_in − g_out = b                     (a_j = 1 − marginal loss)
    network r   lower_r ≤ Σ_j A_rj·m_j ≤ upper_r                   (flows, voltages)

Objective (minimised): Σ_sell p_o·x_o − Σ_buy (p_o − fee)·x_o + retail·g_in
− feed_in·g_out, all divided by ``price_scale``; minus the objective is the
participants' welfare net of the grid-usage fee.

A node is a bus that hosts at least one order (``nodal``), or the single
copper plate (``uniform``). The price of injecting one kWh at any bus k is

    price_k = λ·a_k + Σ_r y_r·A_rk

with λ the dual of the balance row and y_r the network rows' duals (HiGHS's
convention: the change of the minimised objective per unit of right-hand
side), times ``price_scale``. :attr:`ClearingProblem.price_rows` holds the
coefficients of *every* bus so prices are defined where nobody trades too.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from grid import Feeder, FloatArray
from market._columns import OrderColumns, dense_codes, first_index, firsts, unique_inverse
from market.clearing.rows import Rows
from market.orders import Order, Participant, Side

__all__ = [
    "ClearingProblem",
    "IntArray",
    "NetworkRows",
    "OrderBook",
    "bid_limits",
    "effective_limits",
    "mw_per_kwh",
    "order_costs",
]

IntArray = npt.NDArray[np.int64]

#: Network-row kinds, the value stored in :attr:`NetworkRows.kind`.
KIND_LINE, KIND_TRAFO, KIND_VOLTAGE = 0, 1, 2


def mw_per_kwh(interval_s: int) -> float:
    """Average power in MW of one kWh delivered evenly over an interval of ``interval_s``."""
    return 3.6 / interval_s


@dataclass(frozen=True)
class OrderBook:
    """The orders of one interval as arrays, in book order.

    Attributes:
        orders: the orders themselves.
        address: lower-case participant address per order (from :meth:`build`,
            :class:`~market.clearing.rows.Rows` spelled out on first read).
        side: +1 for a sell, -1 for a buy.
        bus: pandapower bus index per order.
        position: feeder bus position per order.
        quantity_wh: order quantity, Wh.
        limit_price: limit price, base units per kWh.
    """

    orders: Sequence[Order]
    address: Sequence[str]
    side: IntArray
    bus: IntArray
    position: IntArray
    quantity_wh: IntArray
    limit_price: IntArray
    known_accounts: tuple[tuple[str, ...], IntArray] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def n(self) -> int:
        """Number of orders."""
        return len(self.orders)

    @cached_property
    def order_id(self) -> list[str]:
        """The client's order id per order."""
        return [o.order_id for o in self.orders]

    @cached_property
    def accounts(self) -> tuple[tuple[str, ...], IntArray]:
        """The distinct addresses (first appearance first) and per order its address's index."""
        if self.known_accounts is not None:
            return self.known_accounts
        first = first_index(self.address)
        unique = firsts(first)
        return tuple(self.address[i] for i in unique.tolist()), dense_codes(unique, first)

    @classmethod
    def build(
        cls,
        orders: Sequence[Order] | OrderColumns,
        participants: Mapping[str, Participant],
        feeder: Feeder,
    ) -> OrderBook:
        """Arrays of ``orders``; every participant must be in ``participants``.

        ``participants`` is keyed by lower-case address; a key in another
        case is found through its lower-case form. Works over the book's
        columns (:class:`~market._columns.OrderColumns`): the Python work is
        per distinct participant and side, not per order.

        Raises:
            KeyError: an order's participant or its bus is unknown (validate first).
        """
        cols = orders if isinstance(orders, OrderColumns) else OrderColumns.of(orders)
        n = cols.n
        first, unique = cols.participant_first, cols.participant_unique
        lower = cols.participant_lower
        buses = cols.buses(participants)
        if None in buses:
            by_lower = {addr.lower(): p for addr, p in participants.items()}
            buses = [by_lower[a].bus for a in lower]  # KeyError: not a participant
        bus_at = np.zeros(n, dtype=np.int64)
        bus_at[unique] = np.array(buses, dtype=np.int64).reshape(-1)
        # the distinct lower-case addresses: the book's accounts
        lower_first = cols.lower_first
        distinct = firsts(lower_first)
        names = tuple(map(lower.__getitem__, distinct.tolist()))
        code = dense_codes(distinct, lower_first)
        account_at = np.zeros(n, dtype=np.int64)
        account_at[unique] = code
        account = account_at[first]
        address = Rows(n, partial(_spelled, names, account))
        side = _signs(cols.side)
        bus = bus_at[first]
        qty = np.array(cols.quantity_wh, dtype=np.int64).reshape(n)
        limit = np.array(cols.limit_price, dtype=np.int64).reshape(n)
        unique_bus, inverse = unique_inverse(bus)
        pos_of_unique = np.array([feeder.position_of(int(b)) for b in unique_bus], dtype=np.int64)
        position = pos_of_unique[inverse].astype(np.int64).reshape(n)
        return cls(cols.orders, address, side, bus, position, qty, limit, (names, account))


def _signs(sides: list[Any]) -> IntArray:
    """+1 per sell, -1 per anything else (as ``side == Side.SELL``), by identity where it can."""
    n = len(sides)
    sell = np.fromiter(map(operator.is_, sides, repeat(Side.SELL)), bool, n)
    buy = np.fromiter(map(operator.is_, sides, repeat(Side.BUY)), bool, n)
    other = np.flatnonzero(~(sell | buy))
    sell[other] = [sides[i] == Side.SELL for i in other.tolist()]
    return np.where(sell, 1, -1).astype(np.int64)


def _spelled(names: tuple[str, ...], account: IntArray) -> tuple[str, ...]:
    return tuple(map(names.__getitem__, account.tolist()))


@dataclass(frozen=True)
class NetworkRows:
    """Grid constraints over node injections (kWh).

    Attributes:
        coef: ``(n_row, n_node)`` coefficients A.
        lower: lower bound per row.
        upper: upper bound per row.
        kind: ``KIND_LINE``, ``KIND_TRAFO`` or ``KIND_VOLTAGE`` per row.
        element: position in ``feeder.branches`` (flow rows) or ``feeder.buses``
            (voltage rows).
        price_coef: ``(n_row, n_bus)`` the same rows over every bus of the feeder.
    """

    coef: FloatArray
    lower: FloatArray
    upper: FloatArray
    kind: IntArray
    element: IntArray
    price_coef: FloatArray

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.lower)

    @classmethod
    def empty(cls, n_node: int, n_bus: int) -> NetworkRows:
        """No grid constraints (the copper plate)."""
        return cls(
            coef=np.zeros((0, n_node)),
            lower=np.zeros(0),
            upper=np.zeros(0),
            kind=np.zeros(0, dtype=np.int64),
            element=np.zeros(0, dtype=np.int64),
            price_coef=np.zeros((0, n_bus)),
        )


@dataclass(frozen=True)
class ClearingProblem:
    """One interval's clearing LP (see the module docstring for its layout).

    Attributes:
        book: the orders.
        quantity_kwh: upper bound of every ``x_o``.
        cost: objective coefficient of every ``x_o`` (scaled).
        node: node of every order (index into ``node_position``).
        node_position: feeder bus position per node (-1 for the copper plate).
        import_cost: objective coefficient of ``g_in`` (scaled retail price).
        export_cost: objective coefficient of ``g_out`` (scaled, minus feed-in price).
        balance_coef: ``a_j`` per node.
        balance_rhs: ``b``.
        balance_price_coef: ``a_k`` per feeder bus, for prices.
        rows: grid constraints.
        price_scale: base units per kWh of one unit of scaled cost.
        fee_per_kwh: grid-usage fee charged to buyers, base units per kWh.
        node_lower: lower bound of every ``m_j`` (the rounds' trust region;
            ``None``: free).
        node_upper: upper bound of every ``m_j`` (``None``: free).
    """

    book: OrderBook
    quantity_kwh: FloatArray
    cost: FloatArray
    node: IntArray
    node_position: IntArray
    import_cost: float
    export_cost: float
    balance_coef: FloatArray
    balance_rhs: float
    balance_price_coef: FloatArray
    rows: NetworkRows
    price_scale: float
    fee_per_kwh: int
    node_lower: FloatArray | None = None
    node_upper: FloatArray | None = None

    @property
    def n_order(self) -> int:
        """Number of order columns."""
        return self.book.n

    @property
    def n_node(self) -> int:
        """Number of node columns (and node rows)."""
        return len(self.node_position)

    @property
    def n_col(self) -> int:
        """Number of LP columns."""
        return self.n_order + self.n_node + 2

    @property
    def n_row(self) -> int:
        """Number of LP rows."""
        return self.n_node + 1 + self.rows.n


#: Base units per kWh by which an order whose tariff cap binds bids beyond it.
TIE_BREAK = 0.5


def effective_limits(book: OrderBook, *, retail_price: int, feed_in_price: int) -> IntArray:
    """Each order's price bound as the settlement applies it: the household's tariff.

    A buyer's alternative is to import at ``retail_price`` at its own meter and
    a seller's to export at ``feed_in_price``, so no buyer pays above
    ``min(limit, retail)`` and no seller receives below ``max(limit,
    feed_in)``, base units per kWh (the grid fee is on top for a buyer, inside
    that cap).
    """
    return np.where(
        book.side > 0,
        np.maximum(book.limit_price, feed_in_price),
        np.minimum(book.limit_price, retail_price),
    ).astype(np.int64)


def bid_limits(book: OrderBook, *, retail_price: int) -> IntArray:
    """Each order's limit as the LP bids it, base units per kWh.

    A buyer never values energy above retail, which it can always import at
    its own meter, so its limit is capped there. A seller bids its own limit:
    what it does not sell is curtailed or exported at tariff, so its limit is
    the value it puts on the energy, and capping it at feed-in would curtail
    PV that the grid could take whenever losses make the bus price fall below
    feed-in. Its *payment* is floored at feed-in all the same
    (:func:`effective_limits`); the operator carries the difference, as a
    feed-in tariff's network operator carries the losses today.
    """
    return np.where(
        book.side > 0, book.limit_price, np.minimum(book.limit_price, retail_price)
    ).astype(np.int64)


def order_costs(
    book: OrderBook,
    *,
    fee_per_kwh: int,
    price_scale: float,
    retail_price: int,
) -> tuple[FloatArray, FloatArray]:
    """Upper bounds (kWh) and scaled objective coefficients of the order columns.

    The limits are those of :func:`bid_limits`; a buyer bids its capped limit
    less the grid fee. A buyer whose retail cap binds bids :data:`TIE_BREAK`
    beyond it (``retail + ½``): buying in the market at retail is then
    strictly preferred to not trading, so the LP has no tie there, and the
    half unit is within the price rounding that the settlement's cap absorbs.
    """
    limit = bid_limits(book, retail_price=retail_price)
    capped = (book.side < 0) & (book.limit_price > retail_price)
    tilt = np.where(capped, TIE_BREAK, 0.0)
    bid = np.where(book.side > 0, limit, limit - fee_per_kwh) + tilt
    cost = (book.side * bid).astype(np.float64) / price_scale
    return book.quantity_wh.astype(np.float64) / 1000.0, cost


def price_scale_of(retail_price: int) -> float:
    """The scale that brings the objective's coefficients to order one."""
    return float(max(retail_price, 1))
