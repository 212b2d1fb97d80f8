"""``nodal``: scenarios with a known answer on small feeders."""

from __future__ import annotations

import pytest

from grid import check_schedule, load_feeder
from market.clearing import ClearingOptions, clear, net_injection_mw
from market.config import MarketConfig
from market.orders import Order, Participant, Side
from tests.market.clearing.invariants import check_books, check_merit_consistency
from tests.market.clearing.nets import feeder

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)
CONFIG_TOL = ClearingOptions().ac_tolerance


def book(spec: list[tuple[int, str, float, int]]) -> tuple[list[Order], dict[str, Participant]]:
    """Orders from (bus, side, kWh, price) tuples, one participant each."""
    orders, parts = [], {}
    for i, (bus, side, kwh, price) in enumerate(spec):
        addr = f"0x{i:040x}"
        parts[addr] = Participant(addr, bus)
        orders.append(Order(f"o{i}", addr, Side(side), 0, round(kwh * 1000), price))
    return orders, parts


def test_congested_cable_splits_prices_and_holds_in_ac() -> None:
    """A cheap seller behind a weak cable: curtailed, paid its own ask, rent to the operator."""
    f = feeder("radial")
    orders, parts = book([(3, "sell", 60, 100_000), (1, "buy", 100, 250_000)])
    result = clear(f, orders, parts, CONFIG)
    check_books(result, orders, CONFIG)
    check_merit_consistency(result, CONFIG)
    seller, buyer = result.fills
    assert 0 < seller.filled_wh < seller.quantity_wh  # curtailed by the cable
    assert seller.price == 100_000  # the marginal seller sets its bus price
    assert buyer.price == 250_000  # and the partly filled buyer its own
    assert result.price_at(3).congestion < 0
    assert result.operator_surplus > 0  # congestion rent
    assert result.ac is not None
    assert result.ac.passed
    report = check_schedule(f, net_injection_mw(result, f))
    assert report.line_loading_percent.max() <= 100.0 + CONFIG_TOL


def test_voltage_band_limits_export_with_voltage_price() -> None:
    """With only the voltage band enforced, a big far-end seller stops at the band's edge."""
    f = feeder("radial")
    orders, parts = book([(3, "sell", 120, 50_000)])
    result = clear(f, orders, parts, CONFIG, options=ClearingOptions(constraints="voltage"))
    check_books(result, orders, CONFIG)
    seller = result.fills[0]
    assert 0 < seller.filled_wh < seller.quantity_wh
    assert result.price_at(3).voltage < 0
    assert result.price_at(3).price == 50_000
    assert result.ac is not None
    assert result.ac.vm_max_pu <= 1.1 + CONFIG_TOL / 100
    # the cable overload is reported (lines are off), but it is no reason for another round
    assert not result.ac.passed
    assert result.rounds == 1


def test_relinearisation_repairs_a_missed_limit() -> None:
    """The zero-injection linearisation misses a cable limit; the second round fixes it."""
    f = feeder("radial")
    orders, parts = book(
        [(3, "sell", 24, 50_000), (5, "buy", 60, 290_000), (4, "sell", 20, 100_000)]
    )
    one = clear(f, orders, parts, CONFIG, options=ClearingOptions(max_rounds=1, ac_tolerance=0.0))
    assert one.ac is not None
    assert not one.ac.passed
    assert one.rounds == 1
    many = clear(f, orders, parts, CONFIG, options=ClearingOptions(max_rounds=5, ac_tolerance=0.0))
    assert many.ac is not None
    assert many.ac.passed
    assert many.rounds == 2
    check_books(many, orders, CONFIG)


def test_losses_are_booked_as_grid_energy() -> None:
    """With ac sensitivities the market's loss change closes the Wh books and prices carry it."""
    f = feeder("radial")
    orders, parts = book([(3, "sell", 20, 100_000), (5, "buy", 15, 290_000)])
    result = clear(f, orders, parts, CONFIG)
    check_books(result, orders, CONFIG)
    assert result.losses_wh != 0
    assert any(p.loss != 0 for p in result.prices)
    dc = clear(f, orders, parts, CONFIG, options=ClearingOptions(sensitivities="dc"))
    assert dc.losses_wh == 0
    assert dc.rounds == 1


def test_base_case_overload_is_not_made_worse() -> None:
    """cigre-mv's transformer is overloaded before anyone trades: clearing still works
    and a buyer who would import more through it is not served."""
    f = load_feeder("cigre-mv")
    bus = f.connectable_buses[0].index
    orders, parts = book([(bus, "buy", 500, 900_000)])
    result = clear(f, orders, parts, CONFIG)
    base = check_schedule(f, [0.0] * f.n_bus)
    assert result.ok
    assert result.ac is not None
    assert result.ac.max_trafo_loading_percent <= base.max_trafo_loading_percent + 0.05
    assert result.fills[0].filled_wh < result.fills[0].quantity_wh
    assert result.price_at(bus).congestion > 0


def test_empty_book_clears_to_zero() -> None:
    f = feeder("meshed")
    result = clear(f, [], {}, CONFIG, interval=42)
    assert result.ok
    assert result.interval == 42
    assert result.fills == ()
    assert result.trades == ()
    assert result.payments == ()
    assert result.grid_import_wh == result.grid_export_wh == result.operator_surplus == 0
    assert len(result.prices) == f.n_bus


@pytest.mark.parametrize("mode", ["ac", "dc"])
def test_grid_fee_goes_to_the_operator(mode: str) -> None:
    f = feeder("meshed")
    config = MarketConfig(retail_price=300_000, feed_in_price=80_000, grid_fee_per_kwh=10_000)
    orders, parts = book([(2, "sell", 5, 100_000), (4, "buy", 4, 250_000)])
    result = clear(f, orders, parts, config, options=ClearingOptions(sensitivities=mode))
    check_books(result, orders, config)
    buyer = result.fills[1]
    assert buyer.filled_wh == 4000
    assert buyer.price == result.price_at(4).price + 10_000
    assert result.operator_surplus >= 4 * 10_000 - 10  # the fee, less rounding
