"""``nodal`` with ``dc`` sensitivities equals pandapower's own DC OPF (``rundcopp``).

The same instance is built on both sides: every order becomes a controllable
static generator (sell) or load (buy) with a linear cost equal to its limit
price, the external grid a piecewise-linear cost (feed-in price for export,
retail price for import, kinked at the base case's import: the tariffs apply
to the market's exchange, not to the base load the grid supplies anyway). With
costs in base units per "MW" the OPF's objective is the LP's times a constant,
so ``res_bus.lam_p`` is directly the price per kWh. Instances are chosen so
that the prices are unique (a partially filled order or the grid at the margin
in every price zone).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from grid import Feeder
from market.clearing import ClearingOptions, clear
from market.config import MarketConfig
from market.orders import Order, Participant, Side
from tests.market.clearing.nets import NETS, feeder

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)
DC_LINES = ClearingOptions(
    sensitivities="dc", constraints="lines,trafos", ac_check=False, max_rounds=1
)


def _addr(i: int) -> str:
    return f"0x{i:040x}"


def _book(spec: list[tuple[int, str, float, int]]) -> tuple[list[Order], dict[str, Participant]]:
    """Orders from (bus, side, kWh, price) tuples, one participant each."""
    orders, parts = [], {}
    for i, (bus, side, kwh, price) in enumerate(spec):
        parts[_addr(i)] = Participant(_addr(i), bus)
        orders.append(Order(f"o{i}", _addr(i), Side(side), 0, int(kwh * 1000), price))
    return orders, parts


def _rundcopp(
    net: Any, f: Feeder, orders: list[Order], parts: dict[str, Participant]
) -> np.ndarray:
    import pandapower as pp

    net = copy.deepcopy(net)
    mw_per_kwh = 3.6 / CONFIG.interval_s
    for o in orders:
        bus = parts[o.participant].bus
        p_max = o.quantity_wh / 1000 * mw_per_kwh
        if o.side == Side.SELL:
            idx = pp.create_sgen(
                net, bus, p_mw=0.0, min_p_mw=0.0, max_p_mw=p_max, controllable=True
            )
            pp.create_poly_cost(net, idx, "sgen", cp1_eur_per_mw=o.limit_price)
        else:
            idx = pp.create_load(
                net, bus, p_mw=0.0, min_p_mw=0.0, max_p_mw=p_max, controllable=True
            )
            pp.create_poly_cost(net, idx, "load", cp1_eur_per_mw=-o.limit_price)
    net.ext_grid["min_p_mw"] = -100.0
    net.ext_grid["max_p_mw"] = 100.0
    # the grid's tariffs apply to the market's exchange, i.e. beyond what the
    # external grid already supplies to the base load (DC: lossless)
    base = -float(f.base_p_mw.sum())
    pp.create_pwl_cost(
        net,
        0,
        "ext_grid",
        [[-100.0, base, CONFIG.feed_in_price], [base, 100.0, CONFIG.retail_price]],
    )
    pp.rundcopp(net)
    assert net.OPF_converged
    return np.asarray(net.res_bus["lam_p"], dtype=np.float64)


CASES = {
    # name: (network, orders as (bus, side, kWh, price), expect congestion)
    "radial-import": (
        "radial",
        [(3, "sell", 2, 120_000), (5, "buy", 6, 250_000), (2, "buy", 3, 320_000)],
        False,
    ),
    "radial-export": ("radial", [(3, "sell", 8, 60_000), (5, "buy", 2, 250_000)], False),
    "radial-congested": ("radial", [(3, "sell", 60, 100_000), (1, "buy", 100, 250_000)], True),
    "radial-congested-two-zones": (
        "radial",
        [
            (3, "sell", 60, 90_000),
            (2, "sell", 40, 200_000),
            (5, "buy", 80, 260_000),
            (4, "buy", 5, 290_000),
        ],
        True,
    ),
    "meshed-import": ("meshed", [(4, "sell", 3, 150_000), (2, "buy", 5, 310_000)], False),
    "meshed-congested-spur": ("meshed", [(5, "sell", 60, 100_000), (2, "buy", 80, 250_000)], True),
    "meshed-congested-ring": (
        "meshed",
        [(2, "sell", 120, 85_000), (4, "buy", 150, 280_000), (3, "buy", 10, 200_000)],
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nodal_dc_prices_equal_rundcopp(case: str) -> None:
    net_name, spec, congested = CASES[case]
    f: Feeder = feeder(net_name)
    orders, parts = _book(spec)
    result = clear(f, orders, parts, CONFIG, mechanism="nodal", options=DC_LINES)
    ours = np.array([p.lmp for p in result.prices])
    theirs = _rundcopp(NETS[net_name](), f, orders, parts)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1.0)
    spread = ours.max() - ours.min()
    assert (spread > 1_000) == congested
    if congested:
        assert any(p.congestion != 0 for p in result.prices)
