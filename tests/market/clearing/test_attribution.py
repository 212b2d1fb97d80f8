"""Bilateral attribution prefers electrically close sellers and covers every fill once."""

from __future__ import annotations

from market.clearing import GRID, ClearingOptions, clear
from market.clearing._cache import electrical_distance
from market.config import MarketConfig
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
