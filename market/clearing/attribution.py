"""Bilateral attribution: who sold to whom, preferring electrically close sellers.

Prices and fills come from the LP; this module only *names counterparties*
for what already cleared, so it changes no amount. The rule, deterministic
for a given result:

1. Take every filled buy and sell order with its fill in Wh.
2. Form every (buyer bus, seller bus) pair and sort the pairs by electrical
   distance (:func:`market.clearing._cache.electrical_distance`; same bus
   first, distance 0), then by buyer bus position, then seller bus position.
3. Walk the pairs in that order; at each pair, match the buyer bus's buy
   orders and the seller bus's sell orders in book order, each trade taking
   the smaller of the two remaining fills, until one side of the pair is
   exhausted.
4. What is left of a buy order was bought from the external grid; what is
   left of a sell order was sold to it.

Trade prices are per side: the buyer pays its order's price (its bus price
plus the grid fee), the seller receives its own (its bus price); the
difference between the two is congestion and loss rent that goes to the
operator. The grid sells at the retail price and buys at the feed-in price.
The network losses booked as grid import (:mod:`market.clearing.books`) are
the operator's, so they appear in no trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from grid import FloatArray
from market._columns import sorted_unique
from market.clearing._problem import IntArray, OrderBook
from market.clearing.result import GRID, Trade
from market.clearing.rows import Rows
from market.config import MarketConfig

__all__ = ["attribute_trades"]


@dataclass(frozen=True)
class _Tape:
    """One side's filled orders laid end to end, sorted by bus position, book order within a bus.

    Order ``idx[i]`` occupies ``[ends[i] - fill, ends[i])`` of the tape; bus
    ``buses[k]`` occupies ``[bus_start[k], bus_start[k] + bus_total[k])``.
    """

    idx: IntArray
    ends: IntArray
    buses: list[int]
    bus_start: list[int]
    bus_total: list[int]


def _tape(book: OrderBook, filled_wh: IntArray, mask: npt.NDArray[np.bool_]) -> _Tape:
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(book.position[idx], kind="stable")]
    fills = filled_wh[idx].astype(np.int64)
    ends = np.cumsum(fills)
    pos = book.position[idx]  # ascending
    first = np.flatnonzero(np.diff(pos, prepend=-1)) if len(pos) else np.zeros(0, dtype=np.int64)
    buses = pos[first]
    starts = np.concatenate([[0], ends])[first]
    totals = np.add.reduceat(fills, first) if len(idx) else np.zeros(0, dtype=np.int64)
    return _Tape(idx, ends, buses.tolist(), starts.tolist(), totals.tolist())


def _bus_flows(
    buy: _Tape, sell: _Tape, distance: FloatArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Greedy bus-to-bus matching by distance (rule step 2-3, bus level).

    Returns per flow, in matching order: its offset on the buyer tape, its
    offset on the seller tape and its Wh.
    """
    b_pos = np.array(buy.buses, dtype=np.int64)
    s_pos = np.array(sell.buses, dtype=np.int64)
    # every (buyer bus, seller bus) pair, raveled row by row: as both tapes' buses
    # ascend, that is the order of (buyer bus, seller bus), so a stable sort by
    # distance alone breaks ties by buyer bus, then seller bus
    dd = distance[np.ix_(b_pos, s_pos)].ravel()
    order = np.argsort(dd, kind="stable")
    n_s = len(s_pos)
    demand, supply = list(buy.bus_total), list(sell.bus_total)
    at_b, at_s = list(buy.bus_start), list(sell.bus_start)
    unmatched = min(sum(demand), sum(supply))
    fb: list[int] = []
    fs: list[int] = []
    fw: list[int] = []
    if unmatched:
        for i, j in zip((order // n_s).tolist(), (order % n_s).tolist(), strict=True):
            d = demand[i]
            if not d:
                continue
            s = supply[j]
            if not s:
                continue
            wh = d if d < s else s
            fb.append(at_b[i])
            fs.append(at_s[j])
            fw.append(wh)
            at_b[i] += wh
            at_s[j] += wh
            demand[i] = d - wh
            supply[j] = s - wh
            unmatched -= wh
            if not unmatched:
                break
    return (
        np.array(fb, dtype=np.int64),
        np.array(fs, dtype=np.int64),
        np.array(fw, dtype=np.int64),
    )


def _inner_breaks(tape_ends: IntArray, offset: IntArray, width: IntArray, t0: IntArray) -> IntArray:
    """Order boundaries that fall strictly inside a flow, as points on the flow axis."""
    order = np.argsort(offset)
    off, w, t = offset[order], width[order], t0[order]
    seg = np.searchsorted(off, tape_ends, side="right") - 1
    ok = seg >= 0
    seg_ok = np.where(ok, seg, 0)
    inside = ok & (tape_ends > off[seg_ok]) & (tape_ends < off[seg_ok] + w[seg_ok])
    return np.asarray(t[seg_ok[inside]] + tape_ends[inside] - off[seg_ok[inside]], dtype=np.int64)


def _order_trades(
    buy: _Tape, sell: _Tape, flows: tuple[IntArray, IntArray, IntArray]
) -> tuple[IntArray, IntArray, IntArray]:
    """Split the bus flows into order-to-order trades (rule step 3, order level).

    Every flow is laid on one axis in matching order; the buyer and seller
    order boundaries inside each flow cut it into trades.
    """
    fb, fs, fw = flows
    t_end = np.cumsum(fw)
    t0 = t_end - fw
    breaks = sorted_unique(
        np.concatenate(
            [t0, _inner_breaks(buy.ends, fb, fw, t0), _inner_breaks(sell.ends, fs, fw, t0)]
        )
    )
    total = int(t_end[-1])
    width = np.diff(np.append(breaks, total))
    flow = np.searchsorted(t0, breaks, side="right") - 1
    b_at = fb[flow] + breaks - t0[flow]
    s_at = fs[flow] + breaks - t0[flow]
    buyer = buy.idx[np.searchsorted(buy.ends, b_at, side="right")]
    seller = sell.idx[np.searchsorted(sell.ends, s_at, side="right")]
    return buyer, seller, width


def attribute_trades(
    book: OrderBook,
    filled_wh: IntArray,
    price: IntArray,
    *,
    distance: FloatArray,
    grid_bus: int,
    config: MarketConfig,
) -> Rows[Trade]:
    """Trades for the fills of ``book`` by the rule in the module docstring.

    The matching runs now, over arrays; the :class:`Trade` rows are built
    when first read (:class:`~market.clearing.rows.Rows`).

    Args:
        book: the orders.
        filled_wh: fill per order, Wh.
        price: per order, base units per kWh paid (buy) or received (sell).
        distance: ``(n_bus, n_bus)`` electrical distance by bus position.
        grid_bus: pandapower bus of the external grid.
        config: the market configuration (grid tariffs).
    """
    buy = _tape(book, filled_wh, (book.side < 0) & (filled_wh > 0))
    sell = _tape(book, filled_wh, (book.side > 0) & (filled_wh > 0))
    left = filled_wh.astype(np.int64).copy()
    flows = _bus_flows(buy, sell, distance) if buy.buses and sell.buses else None
    empty = np.zeros(0, dtype=np.int64)
    buyer, seller, width = empty, empty, empty
    if flows is not None and len(flows[2]):
        buyer, seller, width = _order_trades(buy, sell, flows)
        left -= np.bincount(buyer, weights=width, minlength=book.n).astype(np.int64)
        left -= np.bincount(seller, weights=width, minlength=book.n).astype(np.int64)
    rest = np.flatnonzero(left > 0)
    pair = _Pairs(buyer, seller, width, rest, left[rest])
    build = partial(_trade_rows, book, price, pair, grid_bus=grid_bus, config=config)
    return Rows(len(width) + len(rest), build)


@dataclass(frozen=True)
class _Pairs:
    """The trades as columns: order-to-order ones, then each rest traded with the grid."""

    buyer: IntArray
    seller: IntArray
    width: IntArray
    rest: IntArray
    rest_wh: IntArray


def _trade_rows(
    book: OrderBook, price: IntArray, pair: _Pairs, *, grid_bus: int, config: MarketConfig
) -> tuple[Trade, ...]:
    address = tuple(book.address)  # a plain tuple: indexing Rows is a Python call
    order_id = book.order_id
    bus_of = book.bus.tolist()
    price_of = price.tolist()
    b, s = pair.buyer.tolist(), pair.seller.tolist()
    trades = list(
        map(
            Trade._make,
            zip(
                map(address.__getitem__, b),
                map(order_id.__getitem__, b),
                map(bus_of.__getitem__, b),
                map(address.__getitem__, s),
                map(order_id.__getitem__, s),
                map(bus_of.__getitem__, s),
                pair.width.tolist(),
                map(price_of.__getitem__, b),
                map(price_of.__getitem__, s),
                strict=True,
            ),
        )
    )
    sides = book.side[pair.rest].tolist()
    for i, wh, side in zip(pair.rest.tolist(), pair.rest_wh.tolist(), sides, strict=True):
        if side < 0:
            trades.append(
                Trade(
                    address[i],
                    order_id[i],
                    bus_of[i],
                    GRID,
                    "",
                    grid_bus,
                    wh,
                    price_of[i],
                    config.retail_price,
                )
            )
        else:
            trades.append(
                Trade(
                    GRID,
                    "",
                    grid_bus,
                    address[i],
                    order_id[i],
                    bus_of[i],
                    wh,
                    config.feed_in_price,
                    price_of[i],
                )
            )
    return tuple(trades)
