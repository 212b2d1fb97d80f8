"""The order book over columns, the per-account payments and the lazy rows.

References: the book as it was built before, one order at a time (kept
here), and the payments summed one order at a time.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid import Feeder
from market.clearing import ClearingOptions, clear
from market.clearing._problem import OrderBook
from market.clearing.books import settle
from market.clearing.result import Fill
from market.clearing.rows import Rows
from market.config import MarketConfig
from market.orders import Order, Participant, Side
from tests.market.clearing.nets import feeder
from tests.strategies import BOOK_PARTICIPANTS, valid_order_books

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)


def _reference_book(
    orders: Sequence[Order], participants: Mapping[str, Participant], feeder: Feeder
) -> tuple[list[str], list[int], list[int], list[int], list[int], list[int]]:
    bus_of = {addr.lower(): p.bus for addr, p in participants.items()}
    address = [o.participant.lower() for o in orders]
    side = [1 if o.side == Side.SELL else -1 for o in orders]
    bus = [bus_of[a] for a in address]
    position = [feeder.position_of(b) for b in bus]
    return (
        address,
        side,
        bus,
        position,
        [o.quantity_wh for o in orders],
        [o.limit_price for o in orders],
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_book_columns_equal_the_order_by_order_build(data: st.DataObject) -> None:
    """Catches a participant, bus, side or position mapped to the wrong order."""
    orders = data.draw(valid_order_books(CONFIG))
    f = feeder("radial")
    book = OrderBook.build(orders, BOOK_PARTICIPANTS, f)
    address, side, bus, position, qty, limit = _reference_book(orders, BOOK_PARTICIPANTS, f)
    assert list(book.address) == address
    assert book.side.tolist() == side
    assert book.bus.tolist() == bus
    assert book.position.tolist() == position
    assert book.quantity_wh.tolist() == qty
    assert book.limit_price.tolist() == limit
    assert book.order_id == [o.order_id for o in orders]
    names, code = book.accounts
    assert list(names) == list(dict.fromkeys(address))  # each once, first appearance first
    assert [names[c] for c in code.tolist()] == address


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_payments_are_the_per_order_sums_by_account(data: st.DataObject) -> None:
    """Catches an amount booked to the wrong account, a lost sign, an account missing."""
    orders = data.draw(valid_order_books(CONFIG))
    book = OrderBook.build(orders, BOOK_PARTICIPANTS, feeder("radial"))
    n = book.n
    filled = np.array(data.draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n)))
    filled = np.minimum(filled, book.quantity_wh).astype(np.int64)
    price = np.array(
        data.draw(st.lists(st.integers(0, 400_000), min_size=n, max_size=n)), dtype=np.int64
    ).reshape(n)
    books = settle(book, filled, price, grid_net_wh=0.0, config=CONFIG)
    expected: dict[str, int] = {}
    for a, amt, s in zip(book.address, books.amount.tolist(), book.side.tolist(), strict=True):
        expected[a] = expected.get(a, 0) + (amt if s > 0 else -amt)
    assert list(books.payments.items()) == sorted(expected.items())


def test_a_participant_missing_from_the_mapping_is_a_key_error() -> None:
    order = Order("o", "0x" + "7" * 40, Side.BUY, 0, 10, 100)
    with pytest.raises(KeyError):
        OrderBook.build([order], BOOK_PARTICIPANTS, feeder("radial"))


def test_rows_are_built_once_on_first_read_and_act_as_their_tuple() -> None:
    """Catches rows built eagerly, built twice, or a Rows unequal to its own tuple."""
    calls = []

    def build() -> tuple[int, ...]:
        calls.append(1)
        return (3, 1, 2)

    rows = Rows(3, build)
    assert len(rows) == 3
    assert not rows.built
    assert not calls
    assert rows == (3, 1, 2)
    assert (3, 1, 2) == rows  # noqa: SIM300 - the tuple on the left is the point
    assert rows != (3, 1)
    assert rows != [3, 1, 2]  # as a tuple is not equal to a list
    assert list(rows) == [3, 1, 2]
    assert rows[1:] == (1, 2)
    assert rows[-1] == 2
    assert hash(rows) == hash((3, 1, 2))
    assert repr(rows) == "(3, 1, 2)"
    assert pickle.loads(pickle.dumps(rows)) == (3, 1, 2)
    assert len(calls) == 1


def test_rows_that_do_not_match_their_count_fail_loudly() -> None:
    rows = Rows(2, lambda: (1,))
    with pytest.raises(RuntimeError, match="built 1 rows, expected 2"):
        list(rows)


def test_a_cleared_result_holds_lazy_rows_equal_to_its_serialised_tuples() -> None:
    """The result's fills, trades and payments survive to_json/from_json as plain tuples."""
    a, b = "0x" + "0" * 39 + "1", "0x" + "0" * 39 + "2"
    orders = [
        Order("s", a, Side.SELL, 0, 5_000, 90_000),
        Order("b", b, Side.BUY, 0, 4_000, 250_000),
    ]
    result = clear(
        feeder("radial"),
        orders,
        BOOK_PARTICIPANTS,
        CONFIG,
        options=ClearingOptions(sensitivities="ac"),
    )
    assert isinstance(result.fills, Rows)
    assert not result.fills.built
    again = type(result).from_json(result.to_json())
    assert again == result
    assert isinstance(again.fills, tuple)
    assert again.fills == result.fills
    assert all(isinstance(f, Fill) for f in result.fills)
    assert [f.order_id for f in result.fills] == ["s", "b"]


_ADDRESSES = ["0x" + c * 40 for c in "abc"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_ADDRESSES),
            st.lists(st.booleans(), min_size=42, max_size=42),  # which letters upper case
            st.text(alphabet="aB0_-.é", min_size=1, max_size=3),
        ),
        max_size=30,
    )
)
def test_the_book_permutation_is_book_order(
    drawn: list[tuple[str, list[bool], str]],
) -> None:
    """Catches a sort that ranks two spellings of one address apart, sorts order ids in
    another order than Python's, or is not stable for equal keys."""
    from market._columns import OrderColumns
    from market.orders import book_order

    orders = [
        Order(
            oid,
            "".join(ch.upper() if up else ch for ch, up in zip(addr, upper, strict=True)),
            Side.SELL,
            1,
            100 + i,
            1000,
        )
        for i, (addr, upper, oid) in enumerate(drawn)
    ]
    perm = OrderColumns.of(orders).book_permutation()
    got = orders if perm is None else [orders[i] for i in perm.tolist()]
    assert [id(o) for o in got] == [id(o) for o in book_order(orders)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_ADDRESSES), st.booleans(), st.integers(0, 3)),
        min_size=1,
        max_size=30,
    ),
    st.randoms(use_true_random=False),
)
def test_permuted_columns_carry_what_a_fresh_book_would_find(
    drawn: list[tuple[str, bool, int]], rnd: Any
) -> None:
    """Catches a carried cache (first appearances, spellings, buses) that is not the
    one the permuted book would compute itself."""
    from market._columns import OrderColumns

    orders = [
        Order(f"o{i}", addr.upper() if up else addr, Side.BUY, 1, 100, 1000 + k)
        for i, (addr, up, k) in enumerate(drawn)
    ]
    participants = {a: Participant(a, bus) for bus, a in enumerate(_ADDRESSES)}
    cols = OrderColumns.of(orders)
    cols.buses(participants)  # as validation leaves them
    perm = np.array(rnd.sample(range(len(orders)), len(orders)), dtype=np.int64)
    got = cols.permuted(perm)
    fresh = OrderColumns.of([orders[i] for i in perm.tolist()])
    assert got.orders == fresh.orders
    assert got.participant_first.tolist() == fresh.participant_first.tolist()
    assert got.participant_unique.tolist() == fresh.participant_unique.tolist()
    assert got.participant_names == fresh.participant_names
    assert got.participant_lower == fresh.participant_lower
    assert got.lower_first.tolist() == fresh.lower_first.tolist()
    assert got.buses(participants) == fresh.buses(participants)
