"""``uniform`` against a merit-order crossing computed here, independently of the LP."""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings

from market.clearing import ClearingOptions, ClearingResult, clear
from market.config import MarketConfig
from market.orders import Order, Participant, Side
from tests.market.clearing.invariants import check_books
from tests.market.clearing.nets import feeder
from tests.strategies import clearing_configs, order_books

BUSES = [b.index for b in feeder("radial").connectable_buses]
UNLIMITED = 10**15  # Wh: the external grid's depth on either side


def _uniform(
    orders: list[Order], parts: dict[str, Participant], config: MarketConfig
) -> ClearingResult:
    """The copper-plate clearing of ``orders`` on the radial test feeder, no AC check."""
    return clear(
        feeder("radial"),
        orders,
        parts,
        config,
        mechanism="uniform",
        options=ClearingOptions(ac_check=False),
    )


@dataclass
class Crossing:
    """The welfare-maximising volume and the interval of clearing prices."""

    welfare: Fraction  # base units, net of the grid fee
    price_low: Fraction
    price_high: Fraction


def merit_order(orders: list[Order], config: MarketConfig) -> Crossing:
    """Sort bids down and asks up (the grid at both ends) and walk to the crossing."""
    fee = config.grid_fee_per_kwh
    bids = sorted(
        # a buyer bids its limit capped at retail (it can always import there); a
        # seller asks its own limit (unsold energy is curtailed or exported at
        # tariff; its payment, not its ask, is floored at feed-in)
        [
            (min(o.limit_price, config.retail_price) - fee, o.quantity_wh)
            for o in orders
            if o.side == Side.BUY
        ]
        + [(config.feed_in_price, UNLIMITED)],
        key=lambda b: -b[0],
    )
    asks = sorted(
        [(o.limit_price, o.quantity_wh) for o in orders if o.side == Side.SELL]
        + [(config.retail_price, UNLIMITED)]
    )
    bid_left = [q for _, q in bids]
    ask_left = [q for _, q in asks]
    i = j = 0
    welfare = Fraction(0)
    while i < len(bids) and j < len(asks) and bids[i][0] > asks[j][0]:
        wh = min(bid_left[i], ask_left[j])
        if wh >= UNLIMITED:
            break  # grid to grid: retail ≥ feed-in, never profitable
        welfare += Fraction(wh * (bids[i][0] - asks[j][0]), 1000)
        bid_left[i] -= wh
        ask_left[j] -= wh
        if bid_left[i] == 0:
            i += 1
        if ask_left[j] == 0:
            j += 1
    # a clearing price must not be below any accepted ask or unserved bid, nor
    # above any accepted bid or unused ask
    accepted_asks = [p for (p, q), left in zip(asks, ask_left, strict=True) if left < q]
    unserved_bids = [p for (p, q), left in zip(bids, bid_left, strict=True) if left > 0]
    accepted_bids = [p for (p, q), left in zip(bids, bid_left, strict=True) if left < q]
    unused_asks = [p for (p, q), left in zip(asks, ask_left, strict=True) if left > 0]
    low = max(accepted_asks + unserved_bids)
    high = min(accepted_bids + unused_asks)
    return Crossing(welfare, Fraction(low), Fraction(high))


@settings(max_examples=40)
@given(config=clearing_configs(), book=order_books(BUSES, max_orders=15))
def test_uniform_matches_merit_order(
    config: MarketConfig, book: tuple[list[Order], dict[str, Participant]]
) -> None:
    orders, parts = book
    result = _uniform(orders, parts, config)
    check_books(result, orders, config)
    ref = merit_order(orders, config)
    # the result's welfare includes the fees the buyers pay; the crossing is net of them
    bought_kwh = sum(f.filled_wh for f in result.fills if f.side == "buy") / 1000
    fees = config.grid_fee_per_kwh * bought_kwh
    # welfare is of the integer books: up to one Wh per order at up to the
    # largest price, and the ½-unit tie-break of capped orders per kWh
    top = max([config.retail_price, *(o.limit_price for o in orders)])
    tolerance = (
        1e-6 * max(float(ref.welfare), 1.0)
        + (config.grid_fee_per_kwh + top) * len(orders) / 1000
        + 0.5 * sum(o.quantity_wh for o in orders) / 1000
    )
    assert abs(result.welfare - fees - float(ref.welfare)) <= tolerance + 1e-3
    price = result.prices[0].lmp
    assert float(ref.price_low) - 0.5 - 1e-6 <= price <= float(ref.price_high) + 0.5 + 1e-6


def test_textbook_crossing() -> None:
    """Three asks, three bids: the marginal seller sets the price and is filled partly."""
    parts = {f"0x{i:040x}": Participant(f"0x{i:040x}", BUSES[i % len(BUSES)]) for i in range(6)}
    addr = list(parts)
    orders = [
        Order("s1", addr[0], Side.SELL, 0, 4000, 100_000),
        Order("s2", addr[1], Side.SELL, 0, 4000, 150_000),
        Order("s3", addr[2], Side.SELL, 0, 4000, 220_000),
        Order("b1", addr[3], Side.BUY, 0, 3000, 280_000),
        Order("b2", addr[4], Side.BUY, 0, 3000, 200_000),
        Order("b3", addr[5], Side.BUY, 0, 3000, 120_000),
    ]
    config = MarketConfig(retail_price=300_000, feed_in_price=80_000)
    result = _uniform(orders, parts, config)
    fills = {f.order_id: f for f in result.fills}
    # demand at 150k: b1 + b2 = 6000 Wh; supply s1 4000 + s2 partly 2000 Wh
    assert [fills[k].filled_wh for k in ("s1", "s2", "s3", "b1", "b2", "b3")] == [
        4000,
        2000,
        0,
        3000,
        3000,
        0,
    ]
    assert {p.price for p in result.prices} == {150_000}
    assert fills["b1"].amount == 450_000
    assert fills["s1"].amount == 600_000
    assert result.grid_import_wh == result.grid_export_wh == 0
    assert result.operator_surplus == 0


def test_equal_offers_clear_the_same_way_whatever_order_they_arrive_in() -> None:
    """Six sellers at one price and room for two and a half: the LP has many
    optima, and the solver's pick follows the order of its columns (twelve
    arrival orders gave nine different fills before the book was cleared in
    ``book_order``). Every arrival order now gets the same fills."""
    parts = {f"0x{i:040x}": Participant(f"0x{i:040x}", BUSES[i % 2]) for i in range(7)}
    addr = list(parts)
    sellers = [Order(f"s{i}", addr[i], Side.SELL, 0, 1000, 100_000) for i in range(6)]
    buyer = Order("b", addr[6], Side.BUY, 0, 2500, 280_000)
    config = MarketConfig(retail_price=300_000, feed_in_price=80_000)
    rng = random.Random(0)
    seen = set()
    for _ in range(12):
        arrival = [*sellers, buyer]
        rng.shuffle(arrival)
        result = _uniform(arrival, parts, config)
        seen.add(tuple(sorted((f.order_id, f.filled_wh, f.amount) for f in result.fills)))
    assert len(seen) == 1
    (fills,) = seen
    assert sum(wh for oid, wh, _ in fills if oid.startswith("s")) == 2500
