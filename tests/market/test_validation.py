"""Book validation over columns against a one-order-at-a-time reference.

The reference below is the validator as it was before it ran over columns
(one order at a time, then the duplicate check), kept here verbatim so that
a trader gets the same problems, in the same order, for the same book.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid import Feeder
from market.config import MarketConfig
from market.errors import OrderValidationError
from market.orders import ADDRESS_RE, Order, Participant, Side
from market.validation import (
    MAX_QUANTITY_WH,
    OrderProblem,
    assert_valid_orders,
    validate_orders,
)
from tests.market.clearing.nets import feeder
from tests.strategies import BOOK_PARTICIPANTS, mixed_order_books

CONFIG = MarketConfig(price_min=0, price_max=1_000_000)
BAND = MarketConfig(price_min=50_000, price_max=400_000)


def _reference_order(
    order: Order,
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None,
) -> list[OrderProblem]:
    out: list[OrderProblem] = []

    def bad(field: str, rule: str) -> None:
        out.append(OrderProblem(order.order_id, field, rule))

    if not order.order_id or len(order.order_id) > 64 or not order.order_id.isprintable():
        bad("order_id", "must be 1 to 64 printable characters")
    if not ADDRESS_RE.match(order.participant):
        bad("participant", "must be 0x followed by 40 hexadecimal digits")
    elif order.participant.lower() not in participants:
        bad("participant", "is not a registered participant")
    else:
        bus = participants[order.participant.lower()].bus
        try:
            connectable = feeder.bus(bus).connectable
        except KeyError:
            bad("participant", f"is registered at bus {bus}, which the feeder does not have")
        else:
            if not connectable:
                bad(
                    "participant", f"is registered at bus {bus}, where participants may not connect"
                )
    if order.quantity_wh <= 0:
        bad("quantity_wh", f"must be positive, got {order.quantity_wh}")
    elif order.quantity_wh > MAX_QUANTITY_WH:
        bad("quantity_wh", f"must be at most {MAX_QUANTITY_WH}, got {order.quantity_wh}")
    if not config.price_min <= order.limit_price <= config.price_max:
        bad(
            "limit_price",
            f"must be within the price band [{config.price_min}, {config.price_max}], "
            f"got {order.limit_price}",
        )
    if interval is not None and order.interval != interval:
        bad("interval", f"must be {interval}, got {order.interval}")
    return out


def _reference(
    orders: Iterable[Order],
    *,
    config: MarketConfig,
    participants: Mapping[str, Participant],
    feeder: Feeder,
    interval: int | None,
) -> list[OrderProblem]:
    out: list[OrderProblem] = []
    seen: set[tuple[str, str]] = set()
    for order in orders:
        out.extend(
            _reference_order(
                order, config=config, participants=participants, feeder=feeder, interval=interval
            )
        )
        key = (order.participant.lower(), order.order_id)
        if key in seen:
            out.append(
                OrderProblem(order.order_id, "order_id", "is used twice by the same participant")
            )
        seen.add(key)
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.data(),
    st.sampled_from([CONFIG, BAND]),
    st.sampled_from([None, 0, 1]),
)
def test_same_problems_in_the_same_order_as_one_by_one(
    data: st.DataObject, config: MarketConfig, interval: int | None
) -> None:
    """Catches a rule the columns miss or judge differently, a lost duplicate, a changed order."""
    orders = data.draw(mixed_order_books(config))
    kwargs = {
        "config": config,
        "participants": BOOK_PARTICIPANTS,
        "feeder": feeder("radial"),
        "interval": interval,
    }
    got = validate_orders(orders, **kwargs)  # type: ignore[arg-type]
    assert [str(p) for p in got] == [str(p) for p in _reference(orders, **kwargs)]  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_book_of_plain_ints_takes_the_array_path_and_agrees(data: st.DataObject) -> None:
    """The int64 path alone (no floats or big ints that send a column to the fallback)."""
    orders = data.draw(mixed_order_books(BAND, max_size=60, odd_values=False))
    kwargs = {"config": BAND, "participants": BOOK_PARTICIPANTS, "feeder": feeder("radial")}
    got = validate_orders(orders, interval=0, **kwargs)  # type: ignore[arg-type]
    assert got == _reference(orders, interval=0, **kwargs)  # type: ignore[arg-type]


def test_each_rule_once_with_its_message() -> None:
    """A hand-made book: the messages a trader sees, word for word, in book order."""
    ok = "0x" + "0" * 39 + "1"
    book = [
        Order("", ok, Side.BUY, 0, 10, 100),
        Order("a", "0x12", Side.BUY, 0, 0, 100),
        Order("b", "0x" + "0" * 39 + "4", Side.SELL, 0, MAX_QUANTITY_WH + 1, 100),
        Order("c", "0x" + "0" * 39 + "5", Side.SELL, 3, 10, -1),
        Order("d", "0x" + "0" * 39 + "9", Side.SELL, 0, 10, 100),
        Order("a", "0x" + "AB" * 20, Side.BUY, 0, 10, 100),
        Order("a", "0x" + "ab" * 20, Side.SELL, 0, 10, 100),
    ]
    with pytest.raises(OrderValidationError) as err:
        assert_valid_orders(
            book,
            config=CONFIG,
            participants=BOOK_PARTICIPANTS,
            feeder=feeder("radial"),
            interval=0,
        )
    assert [str(p) for p in err.value.problems] == [
        "order '': order_id: must be 1 to 64 printable characters",
        "order 'a': participant: must be 0x followed by 40 hexadecimal digits",
        "order 'a': quantity_wh: must be positive, got 0",
        "order 'b': participant: is registered at bus 0, where participants may not connect",
        "order 'b': quantity_wh: must be at most 1000000000, got 1000000001",
        "order 'c': participant: is registered at bus 99, which the feeder does not have",
        "order 'c': limit_price: must be within the price band [0, 1000000], got -1",
        "order 'c': interval: must be 0, got 3",
        "order 'd': participant: is not a registered participant",
        "order 'a': order_id: is used twice by the same participant",
    ]


@pytest.mark.parametrize(
    "participant",
    ["0x" + "0" * 39 + "6\n0x" + "0" * 39 + "7", "0x" + "0" * 39 + "8\n"],
    ids=["newline-inside", "final-newline"],
)
def test_a_mapping_key_that_is_not_a_clean_address_is_judged_by_address_re(
    participant: str,
) -> None:
    """Catches a whole-book address check fooled by a name that carries its own newline.

    Both strings are keys of the participants' mapping at a connectable bus;
    ADDRESS_RE refuses the first and (its ``$`` before a final newline)
    accepts the second, so only the first is a problem.
    """
    clean = "0x" + "0" * 39 + "1"
    book = [Order("a", clean, Side.BUY, 0, 10, 100), Order("b", participant, Side.BUY, 0, 10, 100)]
    kwargs = {"config": CONFIG, "participants": BOOK_PARTICIPANTS, "feeder": feeder("radial")}
    got = validate_orders(book, interval=0, **kwargs)  # type: ignore[arg-type]
    assert got == _reference(book, interval=0, **kwargs)  # type: ignore[arg-type]
    assert len(got) == (1 if "\n0x" in participant else 0)
