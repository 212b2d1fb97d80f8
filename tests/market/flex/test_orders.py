"""Flexibility orders: validation lists every problem; the SoC rule and rolling state."""

from __future__ import annotations

from dataclasses import replace

import pytest

from market.config import MarketConfig
from market.errors import OrderValidationError
from market.flex import (
    EnergyWindow,
    EvOrder,
    ShiftableLoadOrder,
    StorageOrder,
    advance,
    assert_valid_flex_orders,
    soc_after,
    validate_flex_order,
)
from market.orders import Participant
from tests.market.clearing.nets import feeder

ADDR = "0x" + "a" * 40
PARTS = {ADDR: Participant(ADDR, 3)}
CONFIG = MarketConfig()
BATTERY = StorageOrder("b", ADDR, 10_000, 5_000, 1_000, 9_000, 5_000, 5_000, 0.95, 0.95, 2_000, 10)


def problems(order: object) -> set[tuple[str, str]]:
    found = validate_flex_order(order, config=CONFIG, participants=PARTS, feeder=feeder("radial"))  # type: ignore[arg-type]
    return {(p.field, p.rule.split(",")[0]) for p in found}


def test_a_valid_battery_has_no_problem() -> None:
    assert problems(BATTERY) == set()


def test_every_storage_problem_at_once_with_field_and_rule() -> None:
    bad = replace(
        BATTERY,
        max_soc_wh=11_000,
        soc_wh=500,
        end_soc_wh=12_000,
        max_charge_w=-1,
        charge_efficiency=1.5,
        discharge_efficiency=0.0,
        cycling_price=-3,
    )
    fields = {f for f, _ in problems(bad)}
    assert fields == {
        "max_soc_wh",
        "soc_wh",
        "end_soc_wh",
        "max_charge_w",
        "charge_efficiency",
        "discharge_efficiency",
        "cycling_price",
    }
    with pytest.raises(OrderValidationError) as err:
        assert_valid_flex_orders([bad], config=CONFIG, participants=PARTS, feeder=feeder("radial"))
    assert len(err.value.problems) == 7
    assert "charge_efficiency: must be a fraction in (0, 1]" in str(err.value)


def test_non_integer_energy_is_refused() -> None:
    assert ("soc_wh", "must be an integer number of Wh") in problems(
        replace(BATTERY, soc_wh=5000.5)
    )


def test_ev_that_cannot_be_full_by_departure_is_refused() -> None:
    ev = EvOrder("ev", ADDR, 20_000, 11_000, 10, 12, 400_000)  # 2 intervals × 2750 Wh
    assert {f for f, _ in problems(ev)} == {"energy_wh"}
    assert problems(replace(ev, departure_interval=10)) >= {
        ("departure_interval", "must be after arrival_interval=10")
    }
    assert problems(replace(ev, energy_wh=5_000)) == set()


def test_shiftable_windows_must_not_overlap_and_unknown_participant_named() -> None:
    load = ShiftableLoadOrder(
        "hp", "0x" + "b" * 40, (EnergyWindow(0, 4, 1000), EnergyWindow(3, 6, 1000)), 3000, 0
    )
    assert {f for f, _ in problems(load)} == {"participant", "windows[1].start_interval"}


def test_soc_rule_rounds_against_the_owner() -> None:
    assert soc_after(BATTERY, 0, 1000, 0) == 950
    assert soc_after(BATTERY, 1000, 0, 900) == 1000 - 948  # ceil(900 / 0.95)
    b = replace(BATTERY, charge_efficiency=0.9, discharge_efficiency=0.9)
    assert soc_after(b, 5000, 1001, 0) == 5900  # floor(900.9)
    assert soc_after(b, 5000, 0, 901) == 5000 - 1002  # ceil(1001.1)


def test_advance_moves_the_state_on() -> None:
    assert advance(BATTERY, 7, 1000, 0) == replace(BATTERY, soc_wh=5950)
    ev = EvOrder("ev", ADDR, 5_000, 11_000, 10, 14, 400_000)
    assert advance(ev, 10, 2000, 0) == replace(ev, energy_wh=3000, arrival_interval=11)
    assert advance(ev, 13, 5000, 0) is None
    load = ShiftableLoadOrder(
        "hp", ADDR, (EnergyWindow(0, 2, 500), EnergyWindow(4, 6, 700)), 3000, 0
    )
    assert advance(load, 1, 500, 0) == replace(load, windows=(EnergyWindow(4, 6, 700),))
