"""Interval settlement: imbalance against the grid, netted deltas, exact balance."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.config import MarketConfig
from market.errors import MarketError, SettlementInputError
from market.settlement import IntervalSettlement, imbalance_amount, settle_interval
from tests.strategies import market_configs, settlement_books

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
CAROL = "0x" + "c3" * 20
OPERATOR = "0x" + "0f" * 20
HASH = bytes(range(32))
TARIFFS = MarketConfig(retail_price=300_000, feed_in_price=80_000)


def settle(**overrides: Any) -> IntervalSettlement:
    kwargs: dict[str, Any] = {
        "traded_wh": {},
        "payments": {},
        "operator_surplus": 0,
        "metered_wh": {},
        "config": TARIFFS,
        "operator": OPERATOR,
        "result_hash": HASH,
    }
    return settle_interval(overrides.pop("interval", 7), **(kwargs | overrides))


# --- hand-computed examples ---------------------------------------------------------


def test_local_trade_with_over_delivery() -> None:
    # Alice sells 1 kWh to Bob at 200_000 per kWh; Alice's meter exports 1.2 kWh
    # and Bob's draws only 0.9 kWh: both delivered 200 Wh and 100 Wh beyond the
    # trade, which the grid buys at feed-in (80_000 per kWh).
    s = settle(
        traded_wh={ALICE: 1_000, BOB: -1_000},
        payments={ALICE: 200_000, BOB: -200_000},
        metered_wh={ALICE: 1_200, BOB: -900},
    )
    assert s.imbalance_wh == {ALICE: 200, BOB: 100}
    assert s.imbalance_amounts == {ALICE: 16_000, BOB: 8_000}
    assert s.deltas == {ALICE: 216_000, BOB: -192_000, OPERATOR: -24_000}
    assert s.fee == 0
    assert s.grid_clearing_amount == 0
    assert s.imbalance_export_wh == 300
    assert s.imbalance_import_wh == 0
    assert s.transferred == 216_000


def test_grid_import_in_clearing_flows_to_the_operator_account() -> None:
    # Bob buys 1 kWh that the clearing imports from the grid at retail; he meters
    # 1.1 kWh, so 100 Wh more are sold to him at retail. Congestion leaves a surplus.
    s = settle(
        traded_wh={BOB: -1_000},
        payments={BOB: -305_000},
        operator_surplus=5_000,
        metered_wh={BOB: -1_100},
    )
    assert s.grid_clearing_amount == 300_000
    assert s.imbalance_wh == {BOB: -100}
    assert s.imbalance_amounts == {BOB: -30_000}
    assert s.deltas == {BOB: -335_000, OPERATOR: 330_000}
    assert s.fee == 5_000
    assert s.imbalance_import_wh == 100


def test_metered_only_participant_buys_everything_at_retail() -> None:
    s = settle(metered_wh={CAROL: -2_000, ALICE: 0})
    assert s.deltas == {CAROL: -600_000, OPERATOR: 600_000}
    assert s.imbalance_wh == {ALICE: 0, CAROL: -2_000}


def test_rounding_favours_the_operator() -> None:
    tariffs = MarketConfig(retail_price=300_001, feed_in_price=80_001)
    assert imbalance_amount(1, tariffs) == 80  # 80.001 received, rounded down
    assert imbalance_amount(-1, tariffs) == -301  # 300.001 paid, rounded up
    assert imbalance_amount(0, tariffs) == 0
    s = settle(config=tariffs, metered_wh={ALICE: 1, BOB: -1})
    assert s.deltas == {ALICE: 80, BOB: -301, OPERATOR: 221}


def test_settlement_file_shape() -> None:
    s = settle(
        interval=42,
        traded_wh={BOB: 10, ALICE: -10},
        payments={BOB: 2_000, ALICE: -2_000},
        metered_wh={ALICE: -10, BOB: 10},
        operator_surplus=0,
    )
    text = s.to_json()
    assert text == (
        '{"deltas":{"' + ALICE + '":-2000,"' + BOB + '":2000},"fee":0,"interval":42,'
        '"result_hash":"0x' + HASH.hex() + '"}'
    )
    assert set(json.loads(text)) == {"interval", "deltas", "fee", "result_hash"}


def test_addresses_are_normalised() -> None:
    s = settle(traded_wh={ALICE.upper().replace("0X", "0x"): 5}, metered_wh={ALICE: 5})
    assert s.traded_wh == {ALICE: 5}
    assert s.deltas == {}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"interval": -1}, "interval"),
        ({"interval": True}, "interval"),
        ({"operator_surplus": -1}, "operator_surplus"),
        ({"result_hash": b"\x00" * 31}, "result_hash"),
        ({"result_hash": "00" * 32}, "result_hash"),
        ({"result_hash": bytes(32)}, "not all zero"),
        ({"operator": "0x0"}, "operator"),
        ({"traded_wh": {OPERATOR: 1}}, "may not also be a participant"),
        ({"traded_wh": {"alice": 1}}, "traded_wh"),
        ({"payments": {ALICE: 1.5}}, "payments"),
        ({"metered_wh": {ALICE: 1, ALICE.upper().replace("0X", "0x"): 2}}, "twice"),
    ],
)
def test_bad_inputs_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(SettlementInputError, match=match) as info:
        settle(**overrides)
    assert isinstance(info.value, MarketError)
    assert isinstance(info.value, ValueError)


# --- properties -----------------------------------------------------------------


@given(books=settlement_books())
def test_money_is_conserved_exactly(books: dict[str, Any]) -> None:
    s = settle_interval(**books)
    assert sum(s.deltas.values()) + s.fee == 0
    assert 0 not in s.deltas.values()
    assert list(s.deltas) == sorted(s.deltas)
    payments = books["payments"]
    for p, amount in s.imbalance_amounts.items():
        assert s.deltas.get(p, 0) == payments.get(p, 0) + amount
    assert s.deltas.get(s.operator, 0) == s.grid_clearing_amount - s.imbalance_total_amount
    assert s.grid_clearing_amount == -sum(payments.values()) - s.fee
    parsed = json.loads(s.to_json())
    assert parsed == {
        "interval": books["interval"],
        "deltas": dict(s.deltas),
        "fee": s.fee,
        "result_hash": "0x" + books["result_hash"].hex(),
    }


@given(books=settlement_books())
def test_imbalance_signs_and_rounding(books: dict[str, Any]) -> None:
    s = settle_interval(**books)
    config: MarketConfig = books["config"]
    for p, imbalance in s.imbalance_wh.items():
        assert imbalance == books["metered_wh"].get(p, 0) - books["traded_wh"].get(p, 0)
        amount = s.imbalance_amounts[p]
        price = config.feed_in_price if imbalance > 0 else config.retail_price
        exact = Fraction(imbalance * price, 1000)
        assert 0 <= exact - amount < 1  # never more to the participant than the value
        if imbalance > 0:
            assert amount >= 0
        elif imbalance < 0:
            assert amount <= 0
            assert amount < 0 or config.retail_price == 0
        else:
            assert amount == 0


@given(books=settlement_books(), data=st.data())
def test_settlement_ignores_mapping_order(books: dict[str, Any], data: st.DataObject) -> None:
    shuffled = dict(books)
    for key in ("traded_wh", "payments", "metered_wh"):
        items = data.draw(st.permutations(list(books[key].items())))
        shuffled[key] = dict(items)
    assert settle_interval(**shuffled).to_json() == settle_interval(**books).to_json()
    assert settle_interval(**shuffled) == settle_interval(**books)


@given(config=market_configs(), imbalance=st.integers(-(10**9), 10**9))
def test_imbalance_amount_is_monotone_in_energy(config: MarketConfig, imbalance: int) -> None:
    assert imbalance_amount(imbalance, config) <= imbalance_amount(imbalance + 1, config)
