"""Simulated meters: deterministic profiles, exact integration, the SunSpec register image."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_adapter.clock import ScaledClock, SimulatedClock
from meter_adapter.errors import MeterConfigError
from meter_adapter.reader import MeterReader
from meter_adapter.reading import Reading
from meter_adapter.simulation import (
    DeviceIdentity,
    HouseholdProfile,
    PvProfile,
    PvSystem,
    SimulatedMeter,
    SunSpecSimulator,
)
from meter_adapter.simulation._days import minute_of

MIDSUMMER = datetime(2024, 6, 21, tzinfo=UTC)
MIDWINTER = datetime(2024, 12, 21, tzinfo=UTC)


def day_minutes(day: datetime) -> np.ndarray:
    first = minute_of(day)
    return np.arange(first, first + 1440, dtype=np.int64)


def test_pv_is_deterministic_for_a_seed() -> None:
    minutes = day_minutes(MIDSUMMER)
    a = PvProfile(seed=7).power_w(minutes)
    b = PvProfile(seed=7).power_w(minutes[::-1])[::-1]  # any evaluation order
    c = PvProfile(seed=8).power_w(minutes)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_clear_sky_pv_curve() -> None:
    profile = PvProfile(PvSystem(kwp=5.0), cloudiness=0.0)
    summer = profile.power_w(day_minutes(MIDSUMMER))
    winter = profile.power_w(day_minutes(MIDWINTER))
    # Berlin: night around 0 UTC, solar noon around 11:07 UTC, peak below kWp
    assert summer[0] == 0
    assert summer[23 * 60] == 0
    assert 10 * 60 <= int(np.argmax(summer)) <= 12 * 60 + 15
    assert 3000 < summer.max() <= 5000
    assert 25 < summer.sum() / 60 / 1000 < 40  # kWh on a clear solstice day
    assert 2 < winter.sum() / 60 / 1000 < 12
    assert np.array_equal(summer, np.rint(profile.clear_sky_power_w(day_minutes(MIDSUMMER))))


def test_clouds_only_reduce_pv() -> None:
    minutes = day_minutes(MIDSUMMER)
    for seed in range(5):
        cloudy = PvProfile(seed=seed, cloudiness=0.7)
        assert np.all(cloudy.power_w(minutes) <= np.rint(cloudy.clear_sky_power_w(minutes)) + 1)


def test_household_profile_shape_and_annual_energy() -> None:
    profile = HouseholdProfile(annual_kwh=3500, seed=3)
    first = minute_of(datetime(2023, 1, 1, tzinfo=UTC))
    year = profile.power_w(np.arange(first, first + 365 * 1440, dtype=np.int64))
    assert 3300 < year.sum() / 60 / 1000 < 3700
    assert year.min() > 0
    by_hour = year.reshape(365, 24, 60).mean(axis=(0, 2))  # UTC hours; Berlin is +1/+2
    assert by_hour[17:19].mean() > 2 * by_hour[1:3].mean()  # evening peak over night
    again = HouseholdProfile(annual_kwh=3500, seed=3).power_at(datetime(2023, 5, 5, 18, tzinfo=UTC))
    assert again == profile.power_at(datetime(2023, 5, 5, 18, tzinfo=UTC))


def home(start: datetime, **counters: int) -> SimulatedMeter:
    return SimulatedMeter(
        household=HouseholdProfile(seed=1), pv=PvProfile(seed=1), start=start, **counters
    )


@given(st.lists(st.integers(1, 3 * 86_400_000_000), min_size=1, max_size=6))
def test_counters_do_not_depend_on_how_time_was_reached(steps_us: list[int]) -> None:
    stepped = home(MIDSUMMER)
    for step in steps_us:
        state = stepped.advance_to(stepped.state.time + timedelta(microseconds=step))
    at_once = home(MIDSUMMER).advance_to(state.time)
    assert state == at_once


def test_energy_balance_and_counters() -> None:
    meter = home(MIDSUMMER, initial_import_wh=1000)
    state = meter.advance_to(MIDSUMMER + timedelta(days=2))
    minutes = np.arange(minute_of(MIDSUMMER), minute_of(MIDSUMMER) + 2 * 1440, dtype=np.int64)
    production = PvProfile(seed=1).power_w(minutes)
    consumption = HouseholdProfile(seed=1).power_w(minutes)
    net = production - consumption
    assert state.production_wh == production.sum() // 60
    assert state.export_wh == np.clip(net, 0, None).sum() // 60
    assert state.import_wh == 1000 + np.clip(-net, 0, None).sum() // 60
    assert meter.advance_to(MIDSUMMER) == state  # a meter cannot un-count


def test_simulated_meter_needs_aware_times() -> None:
    with pytest.raises(MeterConfigError):
        home(datetime(2024, 1, 1))
    with pytest.raises(MeterConfigError):
        home(MIDSUMMER, initial_export_wh=-1)


def test_register_image_reads_back_as_the_state() -> None:
    clock = SimulatedClock(MIDSUMMER + timedelta(hours=11))
    meter = home(clock(), initial_import_wh=2**32 - 10, initial_export_wh=7)
    simulator = SunSpecSimulator(meter, clock, identity=DeviceIdentity(serial_number="SIM-42"))

    async def read() -> tuple[dict[str, Any], Reading]:
        reader = MeterReader(simulator.snapshot(), meter_id="sim", clock=clock)
        return await reader.describe(), await reader.read()

    description, reading = asyncio.run(read())
    state = meter.state
    assert [m["id"] for m in description["models"]] == [1, 103, 203]
    assert description["common"]["serial_number"] == "SIM-42"
    assert reading.power_w == state.production_w - state.consumption_w
    assert reading.production_w == state.production_w
    assert reading.energy_export_wh == 7
    assert reading.energy_import_wh == 2**32 - 10


def test_clocks() -> None:
    clock = SimulatedClock(MIDSUMMER)
    assert clock.advance(90) == MIDSUMMER + timedelta(seconds=90)
    with pytest.raises(MeterConfigError):
        clock.advance(-1)
    with pytest.raises(MeterConfigError):
        clock.set(MIDSUMMER)
    ticks = iter([100.0, 102.5])
    scaled = ScaledClock(MIDSUMMER, speed=3600, monotonic=lambda: next(ticks))
    assert scaled() == MIDSUMMER + timedelta(hours=2.5)
