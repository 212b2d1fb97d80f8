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

from collections import deque

import numpy as np
import numpy.typing as npt

from grid import FloatArray
from market.clearing._problem import IntArray, OrderBook
from market.clearing.result import GRID, Trade
from market.config import MarketConfig

__all__ = ["attribute_trades"]


def _queues(
    book: OrderBook, filled_wh: IntArray, mask: npt.NDArray[np.bool_]
) -> tuple[dict[int, deque[int]], dict[int, int]]:
    """Per bus position, the queue of order indices (book order) and the bus's total Wh."""
    idx = np.flatnonzero(mask)
    pos = book.position[idx]
    order = np.argsort(pos, kind="stable")  # by bus, book order within a bus
    idx, pos = idx[order], pos[order]
    buses, starts = np.unique(pos, return_index=True)
    ends = [*starts[1:].tolist(), len(idx)]
    sums = np.add.reduceat(filled_wh[idx], starts).tolist() if len(idx) else []
    idx_list = idx.tolist()
    queues = {
        b: deque(idx_list[s:e])
        for b, s, e in zip(buses.tolist(), starts.tolist(), ends, strict=True)
    }
    return queues, dict(zip(buses.tolist(), sums, strict=True))


def attribute_trades(
    book: OrderBook,
    filled_wh: IntArray,
    price: IntArray,
    *,
    distance: FloatArray,
    grid_bus: int,
    config: MarketConfig,
) -> tuple[Trade, ...]:
    """Trades for the fills of ``book`` by the rule in the module docstring.

    Args:
        book: the orders.
        filled_wh: fill per order, Wh.
        price: per order, base units per kWh paid (buy) or received (sell).
        distance: ``(n_bus, n_bus)`` electrical distance by bus position.
        grid_bus: pandapower bus of the external grid.
        config: the market configuration (grid tariffs).
    """
    buyers, demand = _queues(book, filled_wh, (book.side < 0) & (filled_wh > 0))
    sellers, supply = _queues(book, filled_wh, (book.side > 0) & (filled_wh > 0))
    left = filled_wh.tolist()
    address = [o.participant.lower() for o in book.orders]
    order_id = [o.order_id for o in book.orders]
    bus_of = book.bus.tolist()
    price_of = price.tolist()
    orders = book.orders
    trades: list[Trade] = []
    if buyers and sellers:
        b_pos = np.array(sorted(buyers), dtype=np.int64)
        s_pos = np.array(sorted(sellers), dtype=np.int64)
        grid_b, grid_s = np.meshgrid(b_pos, s_pos, indexing="ij")
        bb, ss = grid_b.ravel(), grid_s.ravel()
        dd = distance[bb, ss]
        unmatched = min(sum(demand.values()), sum(supply.values()))
        for k in np.lexsort((ss, bb, dd)).tolist():
            if unmatched == 0:
                break
            bp, sp = int(bb[k]), int(ss[k])
            bq, sq = buyers[bp], sellers[sp]
            while demand[bp] > 0 and supply[sp] > 0:
                b, s = bq[0], sq[0]
                wh = min(left[b], left[s])
                trades.append(
                    Trade(
                        address[b],
                        order_id[b],
                        bus_of[b],
                        address[s],
                        order_id[s],
                        bus_of[s],
                        wh,
                        price_of[b],
                        price_of[s],
                    )
                )
                left[b] -= wh
                left[s] -= wh
                demand[bp] -= wh
                supply[sp] -= wh
                unmatched -= wh
                if left[b] == 0:
                    bq.popleft()
                if left[s] == 0:
                    sq.popleft()
    for i in [i for i, wh in enumerate(left) if wh > 0]:
        o = orders[i]
        if book.side[i] < 0:
            trades.append(
                Trade(
                    buyer=o.participant.lower(),
                    buyer_order=o.order_id,
                    buyer_bus=bus_of[i],
                    seller=GRID,
                    seller_order="",
                    seller_bus=grid_bus,
                    energy_wh=left[i],
                    price=price_of[i],
                    seller_price=config.retail_price,
                )
            )
        else:
            trades.append(
                Trade(
                    buyer=GRID,
                    buyer_order="",
                    buyer_bus=grid_bus,
                    seller=o.participant.lower(),
                    seller_order=o.order_id,
                    seller_bus=bus_of[i],
                    energy_wh=left[i],
                    price=config.feed_in_price,
                    seller_price=price_of[i],
                )
            )
    return tuple(trades)
