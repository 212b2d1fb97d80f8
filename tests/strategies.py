"""Hypothesis strategies shared by the test suite, one section per package area.

Each section is owned by the area's tests; add a new headed section rather
than editing another one.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from market.config import MarketConfig
from market.metering import Reading
from market.orders import Order, Participant, Side

__all__ = [
    "BOOK_PARTICIPANTS",
    "RADIAL_BUSES",
    "addresses",
    "market_configs",
    "mixed_order_books",
    "reading_streams",
    "settlement_books",
    "valid_order_books",
]

# ---------------------------------------------------------------------------
# market.metering and market.settlement
# ---------------------------------------------------------------------------


def addresses() -> st.SearchStrategy[str]:
    """Lower-case Ethereum addresses."""
    return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@st.composite
def reading_streams(
    draw: st.DrawFn,
    meter_id: str = "m1",
    *,
    min_size: int = 1,
    max_size: int = 30,
    start_ms: int = 0,
    gaps: bool = True,
) -> list[Reading]:
    """A valid stream of one meter's readings, in seq order.

    Timestamps advance by 1 ms to a few minutes, often by whole 5 s steps so
    that readings land exactly on interval boundaries; counters never
    decrease; seq advances by 1, or by more where ``gaps`` allows.
    """
    n = draw(st.integers(min_size, max_size))
    seq = draw(st.integers(0, 5))
    ts = start_ms + draw(st.integers(0, 60_000))
    imp = draw(st.integers(0, 10**6))
    exp = draw(st.integers(0, 10**6))
    step_ms = st.one_of(st.integers(1, 200_000), st.integers(1, 40).map(lambda k: k * 5_000))
    step_wh = st.one_of(st.just(0), st.integers(0, 50), st.integers(0, 10**5))
    seq_step = st.one_of(st.just(1), st.integers(2, 4)) if gaps else st.just(1)
    out: list[Reading] = []
    for _ in range(n):
        out.append(Reading(meter_id, seq, ts, imp, exp, draw(st.integers(-(10**4), 10**4))))
        seq += draw(seq_step)
        ts += draw(step_ms)
        imp += draw(step_wh)
        exp += draw(step_wh)
    return out


def market_configs() -> st.SearchStrategy[MarketConfig]:
    """Market configurations with arbitrary (valid) tariffs, feed-in ≤ retail."""
    return st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(
        lambda p: MarketConfig(retail_price=max(p), feed_in_price=min(p))
    )


@st.composite
def settlement_books(draw: st.DrawFn) -> dict[str, object]:
    """Keyword arguments for :func:`market.settlement.settle_interval`.

    The participants' payments and the surplus are arbitrary integers (the
    settlement must balance whatever the clearing paid); some participants
    only trade, some are only metered.
    """
    people = draw(st.lists(addresses(), min_size=1, max_size=8, unique=True))
    operator = draw(addresses().filter(lambda a: a not in people))
    wh = st.integers(-(10**7), 10**7)
    money = st.integers(-(10**12), 10**12)
    traded = {p: draw(wh) for p in people if draw(st.booleans())}
    metered = {p: draw(wh) for p in people if draw(st.booleans())}
    payments = {p: draw(money) for p in traded if draw(st.integers(0, 4))}
    return {
        "interval": draw(st.integers(0, 10**8)),
        "traded_wh": traded,
        "payments": payments,
        "operator_surplus": draw(st.integers(0, 10**10)),
        "metered_wh": metered,
        "config": draw(market_configs()),
        "operator": operator,
        "result_hash": draw(st.binary(min_size=32, max_size=32).filter(any)),
    }


# ---------------------------------------------------------------------------
# market.engine (gRPC request fields)
# ---------------------------------------------------------------------------

__all__ += ["int64s", "proto_strings", "reading_messages"]


def proto_strings(max_size: int = 80) -> st.SearchStrategy[str]:
    """Any text protobuf can carry (valid UTF-8: no lone surrogates)."""
    return st.text(st.characters(codec="utf-8"), max_size=max_size)


def int64s() -> st.SearchStrategy[int]:
    """Any signed 64-bit integer, with the edges likely."""
    return st.one_of(
        st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1)
    )


def reading_messages() -> st.SearchStrategy[dict[str, int]]:
    """Field values of one gridex.v1.Reading, anywhere in their wire ranges."""
    return st.fixed_dictionaries(
        {
            "seq": st.integers(0, 2**64 - 1),
            "timestamp_ms": int64s(),
            "energy_import_wh": int64s(),
            "energy_export_wh": int64s(),
            "power_w": int64s(),
        }
    )


# ---------------------------------------------------------------------------
# market.clearing (order books on a feeder)
# ---------------------------------------------------------------------------

__all__ += ["clearing_configs", "order_books"]


def clearing_configs() -> st.SearchStrategy[MarketConfig]:
    """Configurations with retail ≥ feed-in, an optional grid fee and 5/15-min intervals."""
    return st.builds(
        lambda prices, fee, interval_s: MarketConfig(
            retail_price=max(prices),
            feed_in_price=min(prices),
            grid_fee_per_kwh=fee,
            interval_s=interval_s,
        ),
        st.tuples(st.integers(0, 400_000), st.integers(0, 400_000)),
        st.one_of(st.just(0), st.integers(0, 20_000)),
        st.sampled_from([300, 900]),
    )


@st.composite
def order_books(
    draw: st.DrawFn,
    buses: Sequence[int],
    *,
    interval: int = 0,
    max_orders: int = 12,
    max_quantity_wh: int = 20_000,
    price_max: int = 1_000_000,
) -> tuple[list[Order], dict[str, Participant]]:
    """A valid book for one interval and the participants it needs.

    Participants sit on ``buses`` (pandapower indices of connectable buses);
    a participant may place several orders, on both sides. Prices cluster on
    a few values so that ties at the margin are common.
    """
    people = draw(st.lists(addresses(), min_size=1, max_size=6, unique=True))
    participants = {a: Participant(a, draw(st.sampled_from(list(buses)))) for a in people}
    price = st.one_of(
        st.sampled_from([0, 50_000, 80_000, 150_000, 300_000]), st.integers(0, price_max)
    )
    n = draw(st.integers(0, max_orders))
    orders = [
        Order(
            order_id=f"o{i}",
            participant=draw(st.sampled_from(people)),
            side=draw(st.sampled_from([Side.BUY, Side.SELL])),
            interval=interval,
            quantity_wh=draw(st.integers(1, max_quantity_wh)),
            limit_price=draw(price),
        )
        for i in range(n)
    ]
    return orders, participants


# ---------------------------------------------------------------------------
# market.forecast
# ---------------------------------------------------------------------------

__all__ += ["forecast_tables"]


@st.composite
def forecast_tables(
    draw: st.DrawFn, element_keys: Sequence[str]
) -> tuple[int, list[str], list[list[float]]]:
    """(first interval, the elements a file names, p_mw per interval and element)."""
    keys = draw(st.lists(st.sampled_from(list(element_keys)), min_size=1, max_size=6, unique=True))
    first = draw(st.integers(min_value=0, max_value=10**7))
    count = draw(st.integers(min_value=1, max_value=6))
    value = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, width=32)
    rows = draw(
        st.lists(
            st.lists(value, min_size=len(keys), max_size=len(keys)), min_size=count, max_size=count
        )
    )
    return first, keys, rows


# ---------------------------------------------------------------------------
# market.backtest.study
# ---------------------------------------------------------------------------

__all__ += ["study_sweeps"]


@st.composite
def study_sweeps(draw: st.DrawFn) -> dict[str, list[object]]:
    """Valid [sweep] tables: a few keys, each with a few distinct valid values."""
    choices: dict[str, st.SearchStrategy[object]] = {
        "pv_penetration": st.floats(0.0, 1.0, allow_nan=False),
        "ev_share": st.floats(0.0, 1.0, allow_nan=False),
        "participants": st.integers(1, 500),
        "mechanism": st.sampled_from(["nodal", "uniform"]),
        "seed": st.integers(0, 2**31),
        "grid_fee_per_kwh": st.integers(0, 100_000),
    }
    keys = draw(st.lists(st.sampled_from(sorted(choices)), min_size=0, max_size=3, unique=True))
    return {
        key: draw(st.lists(choices[key], min_size=1, max_size=3, unique_by=repr)) for key in keys
    }


# ---------------------------------------------------------------------------
# market.validation and market.clearing's order book
# ---------------------------------------------------------------------------

#: Bus indices of ``tests.market.clearing.nets.feeder("radial")``: 0 is the
#: transformer's HV bus (participants may not connect), 1-5 the LV buses.
RADIAL_BUSES = (0, 1, 2, 3, 4, 5)


def _address(i: int) -> str:
    return f"0x{i:040x}"


#: Registered participants for :func:`mixed_order_books`: at LV buses, at the HV
#: bus, at a bus the feeder does not have.
BOOK_PARTICIPANTS = {
    _address(1): Participant(_address(1), 1),
    _address(2): Participant(_address(2), 2),
    _address(3): Participant(_address(3), 5),
    "0x" + "ab" * 20: Participant("0x" + "ab" * 20, 3),
    _address(4): Participant(_address(4), 0),
    _address(5): Participant(_address(5), 99),
    # keys no normalised address has: they tell a string ADDRESS_RE rejects from one it
    # accepts even when the mapping knows it
    _address(6) + "\n" + _address(7): Participant(_address(6), 2),
    _address(8) + "\n": Participant(_address(8), 2),
}


def _participant_strings() -> st.SearchStrategy[str]:
    registered = list(BOOK_PARTICIPANTS)
    odd = [
        "0x" + "AB" * 20,  # a registered address in upper case
        "0x" + "aB" * 20,
        _address(77),  # well formed, not registered
        "0x123",
        "0X" + "0" * 39 + "1",
        _address(1) + "\n",  # ADDRESS_RE's $ lets a final newline through
        _address(1) + "\n" + _address(2),  # but not one inside
        _address(6) + "\n" + _address(7),  # not an address, though a key below
        _address(8) + "\n",  # an address by ADDRESS_RE, and a key below
        "0x" + "g" * 40,
        "",
        " " + _address(1),
    ]
    return st.one_of(st.sampled_from(registered), st.sampled_from(odd))


def _order_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["a", "b", "c", "x" * 64]),
        st.sampled_from(["", "x" * 65, "a\n", "\u200b", "é", " "]),
        st.text(max_size=70),
    )


def _integers_and_odd(low: int, high: int) -> st.SearchStrategy[object]:
    """Values near ``low`` and ``high``, and now and then one that is not an int64."""
    ints = st.one_of(st.integers(low - 2, low + 2), st.integers(high - 2, high + 2))
    odd = st.one_of(
        st.sampled_from([2**63, -(2**63) - 1, 2**70, 0.5, 1.5, -0.5, True, False]),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-10.0, max_value=10.0),
    )
    return st.one_of(ints, ints, ints, odd)


@st.composite
def mixed_order_books(
    draw: st.DrawFn, config: MarketConfig, *, max_size: int = 25, odd_values: bool = True
) -> list[Order]:
    """Books of good and bad orders for :data:`BOOK_PARTICIPANTS` on the radial test feeder.

    Every rule of :func:`market.validation.validate_order` is broken now
    and then, duplicate ids come up often (ids from a small pool, addresses
    in two cases), and with ``odd_values`` quantities and prices are at
    times floats, bools or ints beyond int64.
    """
    from market.validation import MAX_QUANTITY_WH

    quantity = (
        _integers_and_odd(1, MAX_QUANTITY_WH)
        if odd_values
        else st.one_of(st.integers(-2, 3), st.integers(MAX_QUANTITY_WH - 1, MAX_QUANTITY_WH + 1))
    )
    price = (
        _integers_and_odd(config.price_min, config.price_max)
        if odd_values
        else st.integers(config.price_min - 1, config.price_max + 1)
    )
    order = st.builds(
        Order,
        order_id=_order_ids(),
        participant=_participant_strings(),
        side=st.sampled_from([Side.BUY, Side.SELL]),
        interval=st.one_of(st.just(0), st.integers(-1, 2)),
        quantity_wh=quantity,
        limit_price=price,
    )
    return draw(st.lists(order, max_size=max_size))


@st.composite
def valid_order_books(draw: st.DrawFn, config: MarketConfig, *, max_size: int = 40) -> list[Order]:
    """Valid books for the connectable participants of :data:`BOOK_PARTICIPANTS`.

    Addresses come in lower and upper case (one account either way); ids
    are unique per account.
    """
    spellings = {
        _address(1): [_address(1), "0x" + _address(1)[2:].upper()],
        _address(2): [_address(2)],
        _address(3): [_address(3)],
        "0x" + "ab" * 20: ["0x" + "ab" * 20, "0x" + "AB" * 20, "0x" + "aB" * 20],
    }
    n = draw(st.integers(0, max_size))
    out = []
    for i in range(n):
        account = draw(st.sampled_from(sorted(spellings)))
        out.append(
            Order(
                f"o{i}",
                draw(st.sampled_from(spellings[account])),
                draw(st.sampled_from([Side.BUY, Side.SELL])),
                0,
                draw(st.integers(1, 10**6)),
                draw(st.integers(config.price_min, config.price_max)),
            )
        )
    return out
