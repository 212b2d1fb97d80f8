"""Bilateral attribution prefers electrically close sellers and covers every fill once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market.clearing import GRID, ClearingOptions, Trade, clear
from market.clearing._cache import electrical_distance
from market.clearing._problem import OrderBook
from market.clearing.attribution import attribute_trades
from market.config import MarketConfig
from market.orders import Order, Side
from tests.market.clearing.nets import feeder
from tests.market.clearing.test_nodal import book

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)
COPPER = ClearingOptions(ac_check=False)


def test_radial_distance_counts_branches_on_the_path() -> None:
    f = feeder("radial")
    d = electrical_distance(f)
    pos = f.position_of
    assert d[pos(2), pos(2)] == 0
    assert d[pos(2), pos(3)] == 1  # lv1 - lv2
    assert d[pos(3), pos(5)] == 4  # lv2 - lv1 - lv0 - lv3 - lv4
    assert (d == d.T).all()


def test_buyer_is_matched_to_the_closest_seller_first() -> None:
    f = feeder("radial")
    # seller A far (bus 5), seller B next door (bus 3), buyer at bus 2; both
    # sellers ask below the feed-in price, so both sell everything
    orders, parts = book([(5, "sell", 3, 70_000), (3, "sell", 3, 70_000), (2, "buy", 4, 250_000)])
    result = clear(f, orders, parts, CONFIG, mechanism="uniform", options=COPPER)
    trades = [(t.seller_order, t.energy_wh) for t in result.trades if t.buyer_order == "o2"]
    assert trades == [("o1", 3000), ("o0", 1000)]
    # the rest of the far seller goes to the grid
    assert [(t.buyer, t.energy_wh) for t in result.trades if t.seller_order == "o0"] == [
        ("0x" + f"{2:040x}", 1000),
        (GRID, 2000),
    ]


def test_same_bus_first_and_grid_for_the_rest() -> None:
    f = feeder("meshed")
    orders, parts = book([(4, "sell", 1, 100_000), (2, "sell", 2, 100_000), (4, "buy", 5, 320_000)])
    result = clear(f, orders, parts, CONFIG, mechanism="uniform", options=COPPER)
    assert [(t.seller, t.seller_order, t.energy_wh) for t in result.trades] == [
        (parts_addr(0), "o0", 1000),
        (parts_addr(1), "o1", 2000),
        (GRID, "", 2000),
    ]
    grid_trade = result.trades[-1]
    assert grid_trade.seller_price == CONFIG.retail_price
    assert grid_trade.seller_bus == f.ext_grid.bus


def parts_addr(i: int) -> str:
    return f"0x{i:040x}"


def reference_trades(
    book: OrderBook, filled: list[int], distance: np.ndarray
) -> list[tuple[int | None, int | None, int]]:
    """The rule of the module docstring, written out order by order: (buyer, seller, Wh)."""
    left = list(filled)
    queues: dict[tuple[int, int], list[int]] = {}
    for i in range(book.n):
        if filled[i] > 0:
            queues.setdefault((int(book.side[i]), int(book.position[i])), []).append(i)
    buyers = sorted(pos for side, pos in queues if side < 0)
    sellers = sorted(pos for side, pos in queues if side > 0)
    pairs = sorted((distance[b, s], b, s) for b in buyers for s in sellers)
    out: list[tuple[int | None, int | None, int]] = []
    for _, b_pos, s_pos in pairs:
        bq, sq = queues[(-1, b_pos)], queues[(1, s_pos)]
        while bq and sq:
            b, s = bq[0], sq[0]
            wh = min(left[b], left[s])
            out.append((b, s, wh))
            left[b] -= wh
            left[s] -= wh
            if left[b] == 0:
                bq.pop(0)
            if left[s] == 0:
                sq.pop(0)
    for i, wh in enumerate(left):
        if wh > 0:
            out.append((i, None, wh) if book.side[i] < 0 else (None, i, wh))
    return out


def _by_position(
    trades: Sequence[Trade], orders: Sequence[Order]
) -> list[tuple[int | None, int | None, int]]:
    """Each trade as (buyer order's position, seller order's position, Wh); None: the grid."""
    index = {o.order_id: i for i, o in enumerate(orders)}
    return [
        (
            index[t.buyer_order] if t.buyer != GRID else None,
            index[t.seller_order] if t.seller != GRID else None,
            t.energy_wh,
        )
        for t in trades
    ]


@settings(max_examples=200)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from([-1, 1]), st.integers(0, 4), st.integers(0, 50)),
        max_size=25,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_vectorised_attribution_matches_the_written_out_rule(
    rows: list[tuple[int, int, int]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 4, size=(5, 2))  # distances with ties on purpose
    distance = np.abs(points[:, None, :] - points[None, :, :]).sum(axis=2).astype(float)
    orders = tuple(
        Order(f"o{i}", f"0x{i:040x}", Side.SELL if s > 0 else Side.BUY, 0, max(q, 1), 1)
        for i, (s, _, q) in enumerate(rows)
    )
    arr = np.array([(s, p, max(q, 1)) for s, p, q in rows], dtype=np.int64).reshape(-1, 3)
    book = OrderBook(
        orders,
        tuple(o.participant for o in orders),
        arr[:, 0],
        arr[:, 1] + 100,
        arr[:, 1],
        arr[:, 2],
        np.ones(len(rows), dtype=np.int64),
    )
    filled = np.array([q for _, _, q in rows], dtype=np.int64)
    trades = attribute_trades(
        book, filled, np.zeros(book.n, dtype=np.int64), distance=distance, grid_bus=0, config=CONFIG
    )
    assert _by_position(trades, orders) == reference_trades(book, filled.tolist(), distance)


def test_many_buses_match_the_written_out_rule() -> None:
    # up to 60 buses on each side: thousands of bus pairs, most of them left unmatched
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n, n_bus = 240, 60
        points = rng.integers(0, 6, size=(n_bus, 2))
        distance = np.abs(points[:, None, :] - points[None, :, :]).sum(axis=2).astype(float)
        side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int64)
        pos = rng.integers(0, n_bus, n).astype(np.int64)
        qty = rng.integers(1, 400, n).astype(np.int64)
        orders = tuple(
            Order(f"o{i}", f"0x{i:040x}", Side.SELL if side[i] > 0 else Side.BUY, 0, int(qty[i]), 1)
            for i in range(n)
        )
        book = OrderBook(
            orders,
            tuple(o.participant for o in orders),
            side,
            pos + 100,
            pos,
            qty,
            np.ones(n, dtype=np.int64),
        )
        filled = np.where(rng.random(n) < 0.8, rng.integers(0, 400, n), 0).clip(max=qty)
        trades = attribute_trades(
            book, filled, np.zeros(n, dtype=np.int64), distance=distance, grid_bus=0, config=CONFIG
        )
        got = _by_position(trades, orders)
        assert got == reference_trades(book, filled.tolist(), distance), seed
