"""The rounding rule of :mod:`market.clearing.books`, on raw arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market.clearing._problem import OrderBook
from market.clearing.books import round_fills, round_prices, settle
from market.config import MarketConfig
from market.orders import Order, Side


def _book(rows: list[tuple[int, int, int, int]]) -> OrderBook:
    """rows: (side ±1, node/position, quantity_wh, limit_price)."""
    orders = tuple(
        Order(f"o{i}", f"0x{i:040x}", Side.SELL if s > 0 else Side.BUY, 0, q, p)
        for i, (s, _, q, p) in enumerate(rows)
    )
    arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
    address = tuple(o.participant for o in orders)
    return OrderBook(orders, address, arr[:, 0], arr[:, 1], arr[:, 1], arr[:, 2], arr[:, 3])


def test_group_is_split_pro_rata_with_largest_remainders() -> None:
    # one group (same node, side, price): 1000 + 2000 + 3000 Wh, LP fills 3.001 kWh in any split
    book = _book([(1, 0, 1000, 5), (1, 0, 2000, 5), (1, 0, 3000, 5)])
    filled = round_fills(book, book.position, np.array([3.001, 0.0, 0.0]))
    assert filled.tolist() == [
        500,
        1000,
        1501,
    ]  # 500.17, 1000.33, 1500.5: the 1 Wh left to the largest remainder


def test_ties_between_equal_remainders_go_in_book_order() -> None:
    book = _book([(-1, 2, 100, 7), (-1, 2, 100, 7), (-1, 2, 100, 7)])
    filled = round_fills(book, book.position, np.array([0.1, 0.1, 0.0]))
    assert filled.tolist() == [67, 67, 66]


def test_huge_quantities_stay_exact() -> None:
    q = 10**9
    book = _book([(1, 0, q, 1)] * 7)
    filled = round_fills(book, book.position, np.full(7, q / 1000 * 3 / 7))
    assert int(filled.sum()) == 3 * q
    assert max(filled) - min(filled) <= 1


@settings(max_examples=200)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([-1, 1]),
            st.integers(0, 3),
            st.integers(1, 10**7),
            st.sampled_from([0, 10, 10**5, 10**6]),
        ),
        min_size=1,
        max_size=12,
    ),
    share=st.lists(st.floats(0, 1), min_size=12, max_size=12),
    price=st.integers(-(10**6), 10**6),
    losses=st.integers(-1000, 1000),
    fee=st.integers(0, 10**4),
)
def test_rounded_books_balance(
    rows: list[tuple[int, int, int, int]],
    share: list[float],
    price: int,
    losses: int,
    fee: int,
) -> None:
    book = _book(rows)
    x = np.array([q * s / 1000 for (_, _, q, _), s in zip(rows, share, strict=False)])
    filled = round_fills(book, book.position, x)
    assert np.all((filled >= 0) & (filled <= book.quantity_wh))
    config = MarketConfig(retail_price=300_000, feed_in_price=80_000, grid_fee_per_kwh=fee)
    net = int(filled[book.side < 0].sum()) - int(filled[book.side > 0].sum()) + losses
    books = settle(book, filled, np.full(book.n, price), grid_net_wh=net, config=config)
    buy = book.side < 0
    assert books.buyers_pay == (
        books.sellers_receive
        + books.grid_import_amount
        - books.grid_export_amount
        + books.grid_rounding_amount
        + books.operator_surplus
    )
    assert books.operator_surplus >= 0 >= books.grid_rounding_amount
    assert int(filled[~buy].sum()) + books.grid_import_wh == (
        int(filled[buy].sum()) + books.grid_export_wh + books.losses_wh
    )
    for i in range(book.n):
        value = int(filled[i]) * int(books.price[i])
        if buy[i]:
            assert books.amount[i] * 1000 <= value < books.amount[i] * 1000 + 1000
        else:
            assert books.amount[i] * 1000 - 1000 < value <= books.amount[i] * 1000
    assert sum(books.payments.values()) == books.sellers_receive - books.buyers_pay


def test_rounding_dust_without_rent_goes_to_the_grid_account() -> None:
    """1 Wh at 999 per kWh: the buyer pays floor(0.999) = 0, the seller gets ceil = 1."""
    book = _book([(-1, 0, 1, 999), (1, 0, 1, 999)])
    config = MarketConfig(retail_price=1_000, feed_in_price=0)
    books = settle(book, np.array([1, 1]), np.array([999, 999]), grid_net_wh=0, config=config)
    assert books.amount.tolist() == [0, 1]
    assert books.operator_surplus == 0
    assert books.grid_rounding_amount == -1


def test_price_parts_add_up_exactly() -> None:
    energy = np.array([100.4, 100.4])
    loss = np.array([0.3, -0.2])
    congestion = np.array([0.4, -50.6])
    voltage = np.array([-0.3, 0.0])
    parts = round_prices(energy, loss, congestion, voltage)
    assert (
        parts.energy + parts.loss + parts.congestion + parts.voltage
    ).tolist() == parts.total.tolist()
    assert parts.total.tolist() == [101, 50]  # 100.8 and 49.6
