"""Hypothesis: clearing invariants on random books, small feeders, every mechanism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.clearing import ClearingOptions, clear
from tests.market.clearing.invariants import (
    check_books,
    check_merit_consistency,
    check_serialisation,
)
from tests.market.clearing.nets import feeder
from tests.strategies import clearing_configs, order_books

CONNECTABLE = {
    name: [b.index for b in feeder(name).connectable_buses] for name in ("radial", "meshed")
}

MODES = {
    "uniform": ("uniform", ClearingOptions(ac_check=False)),
    "nodal-dc": ("nodal", ClearingOptions(sensitivities="dc", ac_check=False)),
    "nodal-ac": ("nodal", ClearingOptions(sensitivities="ac", max_rounds=3)),
}


@pytest.mark.parametrize("mode", sorted(MODES))
@settings(max_examples=20)
@given(data=st.data())
def test_invariants_hold_on_random_books(mode: str, data: st.DataObject) -> None:
    mechanism, options = MODES[mode]
    name = data.draw(st.sampled_from(sorted(CONNECTABLE)), label="feeder")
    config = data.draw(clearing_configs(), label="config")
    orders, parts = data.draw(order_books(CONNECTABLE[name]), label="book")
    result = clear(feeder(name), orders, parts, config, mechanism=mechanism, options=options)
    # with the AC check on, the books must also be the power flow's (audit)
    check_books(result, orders, config, feeder(name) if options.ac_check else None)
    check_merit_consistency(result, config)
    check_serialisation(result)
    if mechanism == "uniform":
        assert len({p.price for p in result.prices}) == 1
    if mechanism == "uniform" or options.sensitivities == "dc":
        # lossless model, LP books: no losses; the integer loss part only takes
        # up the rounding of the other three parts (each half a unit at most)
        assert result.losses_wh == 0
        assert all(abs(p.loss) <= 1 for p in result.prices)
    # the same input gives byte-identical output
    again = clear(feeder(name), orders, parts, config, mechanism=mechanism, options=options)
    assert again.to_json() == result.to_json()


@settings(max_examples=15)
@given(data=st.data())
def test_nodal_without_constraints_matches_uniform_in_dc(data: st.DataObject) -> None:
    """With no grid limits and a lossless grid, the nodal market is the copper plate."""
    name = data.draw(st.sampled_from(sorted(CONNECTABLE)), label="feeder")
    config = data.draw(clearing_configs(), label="config")
    orders, parts = data.draw(order_books(CONNECTABLE[name]), label="book")
    f = feeder(name)
    free = ClearingOptions(sensitivities="dc", constraints=(), ac_check=False)
    nodal = clear(f, orders, parts, config, mechanism="nodal", options=free)
    uniform = clear(f, orders, parts, config, mechanism="uniform", options=free)
    assert nodal.welfare == pytest.approx(uniform.welfare, rel=1e-9, abs=1e-3)
    assert len({p.price for p in nodal.prices}) == 1


@settings(max_examples=15)
@given(data=st.data())
def test_grid_limits_never_raise_welfare(data: st.DataObject) -> None:
    """Adding constraints can only lower (or keep) the welfare of the lossless market."""
    name = data.draw(st.sampled_from(sorted(CONNECTABLE)), label="feeder")
    config = data.draw(clearing_configs(), label="config")
    orders, parts = data.draw(order_books(CONNECTABLE[name], max_quantity_wh=200_000), label="book")
    f = feeder(name)
    limited = clear(
        f, orders, parts, config, options=ClearingOptions(sensitivities="dc", ac_check=False)
    )
    free = clear(
        f,
        orders,
        parts,
        config,
        options=ClearingOptions(sensitivities="dc", constraints=(), ac_check=False),
    )
    assert limited.welfare <= free.welfare + 1e-6 * max(abs(free.welfare), 1.0)
    # congestion rent is non-negative in the lossless model; only rounding can
    # take from the operator: a unit per amount, half a unit per kWh and side
    # for the price, the grid tariff per Wh the fill rounding leaves to the grid
    n = len(orders)
    kwh = sum(x.filled_wh for x in limited.fills) / 1000
    residual = limited.operator_surplus + limited.grid_rounding_amount
    assert residual >= -(n + 2) - kwh - (n + 1) * config.retail_price / 1000
