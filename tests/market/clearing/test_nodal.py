"""``nodal``: scenarios with a known answer on small feeders."""

from __future__ import annotations

import pytest

from grid import check_schedule, load_feeder
from market.clearing import ClearingOptions, Termination, clear, net_injection_mw
from market.config import MarketConfig
from market.errors import AcInfeasibleClearingError
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


def test_a_limit_the_lp_does_not_enforce_makes_the_interval_not_cleared() -> None:
    """Only the voltage band enforced: the far-end seller overloads the weak cable,
    which no round can repair, so nothing is cleared (and ``clear`` raises)."""
    f = feeder("radial")
    orders, parts = book([(3, "sell", 120, 50_000), (1, "buy", 200, 290_000)])
    opts = ClearingOptions(constraints="voltage")
    with pytest.raises(AcInfeasibleClearingError, match="line"):
        clear(f, orders, parts, CONFIG, options=opts)
    result = clear(f, orders, parts, CONFIG, options=opts, allow_non_optimal=True)
    assert result.status.termination == Termination.AC_INFEASIBLE
    assert not result.ok
    assert all(x.filled_wh == 0 for x in result.fills)
    assert result.trades == ()
    assert all(p.amount == 0 for p in result.payments)
    assert result.grid_import_wh == result.grid_export_wh == 0
    assert result.ac is not None
    assert not result.ac.passed


def test_relinearisation_repairs_a_missed_limit() -> None:
    """The zero-injection linearisation misses a cable limit: one round without
    tightening is not cleared; the rounds repair it and land on the limit."""
    f = feeder("radial")
    orders, parts = book(
        [(3, "sell", 24, 50_000), (5, "buy", 60, 290_000), (4, "sell", 20, 100_000)]
    )
    one = clear(
        f,
        orders,
        parts,
        CONFIG,
        options=ClearingOptions(max_rounds=1, tighten_rounds=0),
        allow_non_optimal=True,
    )
    assert one.status.termination == Termination.AC_INFEASIBLE
    many = clear(f, orders, parts, CONFIG)
    assert many.ok
    assert many.ac is not None
    assert many.ac.passed
    assert many.ac.agreed
    assert many.rounds >= 2
    assert 99.0 <= many.ac.max_line_loading_percent <= 100.0 + many.ac.tolerance
    check_books(many, orders, CONFIG)


def test_losses_are_booked_from_the_power_flow() -> None:
    """Both linearisations book the losses the AC power flow shows, not the LP's."""
    f = feeder("radial")
    orders, parts = book([(3, "sell", 20, 100_000), (5, "buy", 15, 290_000)])
    for opts in (ClearingOptions(), ClearingOptions(sensitivities="dc")):
        result = clear(f, orders, parts, CONFIG, options=opts)
        check_books(result, orders, CONFIG)
        assert result.ac is not None
        base = check_schedule(f, [0.0] * f.n_bus)
        ac = check_schedule(f, net_injection_mw(result, f))
        dloss_wh = (ac.losses_mw - base.losses_mw) * 250_000
        dext_wh = (ac.ext_grid_p_mw - base.ext_grid_p_mw) * 250_000
        assert result.losses_wh > 0
        assert abs(result.losses_wh - dloss_wh) <= 0.51
        assert abs(result.grid_import_wh - result.grid_export_wh - dext_wh) <= 0.51
    assert any(p.loss != 0 for p in clear(f, orders, parts, CONFIG).prices)


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
    # the LP's own books (no AC check): the fee is all the operator gets here
    opts = ClearingOptions(sensitivities=mode, ac_check=False)
    result = clear(f, orders, parts, config, options=opts)
    check_books(result, orders, config)
    buyer = result.fills[1]
    assert buyer.filled_wh == 4000
    assert buyer.price == result.price_at(4).price + 10_000
    assert result.operator_surplus >= 4 * 10_000 - 10  # the fee, less rounding
