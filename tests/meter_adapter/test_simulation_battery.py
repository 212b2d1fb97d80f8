"""The simulated home battery: SoC follows charge and discharge, served as model 802 over TCP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meter_adapter.clock import SimulatedClock
from meter_adapter.errors import MeterConfigError
from meter_adapter.modbus_client import ReadOnlyModbusClient
from meter_adapter.reader import MeterReader
from meter_adapter.simulation import (
    BatterySpec,
    HouseholdProfile,
    PvProfile,
    SimulatedBattery,
    SimulatedMeter,
    SunSpecSimulator,
    start_simulator_server,
)

T0 = datetime(2024, 6, 21, 0, tzinfo=UTC)  # 02:00 in Berlin
SPEC = BatterySpec(capacity_wh=10_000, max_charge_w=5_000, max_discharge_w=4_000)


def constant(power_w: int) -> SimulatedBattery:
    return SimulatedBattery(SPEC, start=T0, soc_wh=5_000, schedule=lambda _minute: power_w)


def test_charging_stores_the_energy_times_the_charge_efficiency() -> None:
    battery = constant(-2_000)
    state = battery.advance_to(T0 + timedelta(hours=1))
    assert state.soc_wh == 5_000 + 1_900  # 2000 Wh × 0.95
    assert (state.power_w, state.charge_status) == (-2_000, 4)


def test_discharging_draws_the_energy_over_the_discharge_efficiency() -> None:
    battery = constant(1_000)
    state = battery.advance_to(T0 + timedelta(hours=1))
    assert state.soc_wh == 3_947  # 5000 − 1000 / 0.95 = 3947.37, rounded down
    assert state.charge_status == 3


def test_power_is_clipped_to_the_limits_and_stops_at_the_soc_limits() -> None:
    charging = constant(-9_000)  # beyond the 5 kW charge limit
    assert charging.advance_to(T0 + timedelta(minutes=30)).soc_wh == 5_000 + 2_375  # 2500 × 0.95
    full = charging.advance_to(T0 + timedelta(hours=3))
    assert (full.soc_wh, full.power_w, full.charge_status) == (10_000, 0, 5)
    draining = constant(9_000)  # beyond the 4 kW discharge limit; reserve 10 % = 1000 Wh
    empty = draining.advance_to(T0 + timedelta(hours=5))
    assert (empty.soc_wh, empty.power_w, empty.charge_status) == (1_000, 0, 2)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3 * 3_600_000_000), min_size=1, max_size=8))
def test_the_soc_does_not_depend_on_how_time_was_reached(steps_us: list[int]) -> None:
    stepped = SimulatedBattery(SPEC, start=T0, soc_wh=5_000)  # the default daily cycle
    at = T0
    for step in steps_us:
        at += timedelta(microseconds=step)
        stepped.advance_to(at)
    jumped = SimulatedBattery(SPEC, start=T0, soc_wh=5_000)
    assert jumped.advance_to(at) == stepped.state


def test_the_default_cycle_charges_at_noon_and_discharges_in_the_evening() -> None:
    battery = SimulatedBattery(SPEC, start=T0, soc_wh=2_000)  # 40 % of the limits: 2 kW, 1.6 kW
    morning = battery.advance_to(datetime(2024, 6, 21, 7, 59, tzinfo=UTC))  # 09:59 Berlin
    assert (morning.soc_wh, morning.charge_status) == (2_000, 6)  # holding
    noon = battery.advance_to(datetime(2024, 6, 21, 10, tzinfo=UTC))  # 12:00 Berlin
    assert noon.soc_wh == 2_000 + 2 * 1_900  # since 10:00 local at 2 kW × 0.95
    full = battery.advance_to(datetime(2024, 6, 21, 13, tzinfo=UTC))  # 15:00: full since 14:13
    assert full.soc_wh == 10_000
    evening = battery.advance_to(datetime(2024, 6, 21, 20, tzinfo=UTC))  # 22:00 Berlin
    assert evening.soc_wh == 1_578  # 10 000 − 5 h × 1600 W / 0.95 = 1578.9
    assert evening.charge_status == 6  # holding at night


def test_a_battery_outside_its_limits_is_refused() -> None:
    with pytest.raises(MeterConfigError, match="soc_wh"):
        SimulatedBattery(SPEC, start=T0, soc_wh=500)  # below the 10 % reserve
    with pytest.raises(MeterConfigError, match="capacity_wh"):
        SimulatedBattery(BatterySpec(capacity_wh=0), start=T0, soc_wh=0)


@pytest.mark.integration
def test_the_battery_read_over_modbus_tcp_follows_the_simulation() -> None:
    """Poll every 30 simulated minutes for a day on loopback; the SoC read is the simulated one."""
    clock = SimulatedClock(T0)
    meter = SimulatedMeter(household=HouseholdProfile(seed=2), pv=PvProfile(seed=2), start=T0)
    battery = SimulatedBattery(SPEC, start=T0, soc_wh=3_000)
    simulator = SunSpecSimulator(meter, clock, battery=battery)

    async def run() -> list[tuple[int, int]]:
        server = await start_simulator_server(simulator)
        seen = []
        async with server, ReadOnlyModbusClient(server.host, server.port) as client:
            reader = MeterReader(client, meter_id="sim", clock=clock)
            models = [m["id"] for m in (await reader.describe())["models"]]
            assert models == [1, 103, 203, 802]
            for _ in range(48):
                reading = await reader.poll()
                assert reading is not None
                assert reading.battery is not None
                state = battery.state
                b = reading.battery
                # capacity 10 000 Wh, SoC in 0.01 %: exactly the simulated Wh
                assert b.soc_wh == state.soc_wh
                assert b.power_w == state.power_w
                assert b.charge_status == state.charge_status
                assert (b.capacity_wh, b.max_charge_w, b.max_discharge_w) == (10_000, 5_000, 4_000)
                assert (b.min_soc_wh, b.max_soc_wh) == (1_000, 10_000)
                seen.append((b.soc_wh, b.charge_status))
                clock.advance(timedelta(minutes=30))
        assert reader.quarantined.total() == 0
        return seen

    seen = asyncio.run(run())
    socs = [soc for soc, _ in seen]
    assert max(socs) > 3_000 + 4_000
    assert socs[-1] < max(socs)
    assert {status for _, status in seen} >= {3, 4, 6}
