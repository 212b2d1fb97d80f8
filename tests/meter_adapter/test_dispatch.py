"""A simulated home follows its cleared schedule: PV curtailed, EV and heat pump held back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from meter_adapter.errors import MeterConfigError
from meter_adapter.simulation import HouseholdProfile, PvProfile, PvSystem, SimulatedMeter
from meter_adapter.simulation.flexible import EvCharging, FlexibleLoads, HeatPump

DAY = datetime(2026, 6, 21, tzinfo=UTC)


def _home() -> SimulatedMeter:
    return SimulatedMeter(
        household=HouseholdProfile(annual_kwh=4000, seed=3),
        pv=PvProfile(PvSystem(kwp=12.0), seed=3, cloudiness=0.0),
        flexible=FlexibleLoads(ev=EvCharging(), heat_pump=HeatPump(), seed=3),
        start=DAY,
    )


def _delta(meter: SimulatedMeter, start: datetime, end: datetime) -> tuple[int, int]:
    before = meter.advance_to(start)
    after = meter.advance_to(end)
    return after.export_wh - before.export_wh, after.import_wh - before.import_wh


def test_noon_export_is_held_to_what_was_sold() -> None:
    start = DAY + timedelta(hours=11)
    end = start + timedelta(minutes=15)
    free = _home()
    planned = free.planned_net_wh(start, end)
    exported, _ = _delta(free, start, end)
    assert planned > 1000  # a 12 kWp roof at noon exports well over 1 kWh per quarter hour
    assert exported == pytest.approx(planned, abs=20)
    held = _home()
    held.dispatch(start, end, export_wh=400, import_wh=None)
    exported, imported = _delta(held, start, end)
    assert 380 <= exported <= 400
    assert imported == 0
    # production is curtailed, not merely unmetered
    assert held.state.production_wh < free.state.production_wh


def test_evening_import_is_held_to_what_was_bought_by_deferring_the_ev() -> None:
    free = _home()
    # find a quarter hour in the evening where the car charges
    t = DAY + timedelta(hours=17)
    while free.planned_net_wh(t, t + timedelta(minutes=15)) > -2000:
        t += timedelta(minutes=15)
        assert t < DAY + timedelta(hours=23)
    end = t + timedelta(minutes=15)
    held = _home()
    held.dispatch(t, end, export_wh=None, import_wh=600)
    _, imported = _delta(held, t, end)
    _, imported_free = _delta(free, t, end)
    assert imported_free > 2000
    assert imported <= 600 + 5


def test_bad_dispatch_is_refused() -> None:
    home = _home()
    with pytest.raises(MeterConfigError, match="export_wh"):
        home.dispatch(DAY, DAY + timedelta(minutes=15), export_wh=-1, import_wh=None)
    with pytest.raises(MeterConfigError, match="one UTC day"):
        home.dispatch(
            DAY - timedelta(minutes=5), DAY + timedelta(minutes=10), export_wh=0, import_wh=0
        )


def _night_home() -> SimulatedMeter:
    """No PV, no deferrable load: only the household and what a battery does."""
    return SimulatedMeter(household=HouseholdProfile(annual_kwh=4000, seed=5), pv=None, start=DAY)


@pytest.mark.parametrize(("charge_wh", "discharge_wh"), [(1234, 0), (0, 997), (7, 3)])
def test_a_battery_behind_the_meter_moves_it_by_its_schedule_to_the_wh(
    charge_wh: int, discharge_wh: int
) -> None:
    """The meter's net over the interval moves by exactly discharge − charge (in Wh),
    whatever the household does; minutes outside the window do not move."""
    start = DAY + timedelta(hours=20)
    end = start + timedelta(minutes=15)
    after = end + timedelta(minutes=15)
    free, run = _night_home(), _night_home()
    run.follow(start, end, charge_wh=charge_wh, discharge_wh=discharge_wh)
    free_ex, free_im = _delta(free, start, end)
    run_ex, run_im = _delta(run, start, end)
    # the household alone imports about 100 Wh a quarter hour: a 997 Wh discharge exports
    assert (run_ex - run_im) - (free_ex - free_im) == pytest.approx(discharge_wh - charge_wh, abs=1)
    assert _delta(free, end, after) == _delta(run, end, after)
    assert run.state.production_wh == 0  # a battery is not PV


def test_a_battery_schedule_is_exact_without_a_household() -> None:
    """With nothing else behind the meter, the counters show the schedule to the Wh."""

    class Zero:
        def power_w(self, minutes):  # type: ignore[no-untyped-def]
            return minutes * 0

    start = DAY + timedelta(hours=3)
    end = start + timedelta(minutes=7)  # 60,000 W·min over 7 minutes: 8571 W, 3 left over
    meter = SimulatedMeter(household=Zero(), pv=None, start=DAY)
    meter.follow(start, end, charge_wh=1000, discharge_wh=0)
    assert meter.advance_to(start).storage_w == -8572
    assert meter.advance_to(start + timedelta(minutes=3)).storage_w == -8571
    assert meter.advance_to(start).import_wh == 3 * 8572 // 60  # a meter cannot un-count
    meter = SimulatedMeter(household=Zero(), pv=None, start=DAY)
    meter.follow(start, end, charge_wh=1000, discharge_wh=0)
    assert _delta(meter, start, end) == (0, 1000)
    end = start + timedelta(minutes=15)
    meter.follow(end, end + timedelta(minutes=15), charge_wh=0, discharge_wh=333)
    assert _delta(meter, end, end + timedelta(minutes=15)) == (333, 0)
    with pytest.raises(MeterConfigError, match="charge_wh"):
        meter.follow(end, end + timedelta(minutes=15), charge_wh=-1, discharge_wh=0)


def test_a_dispatch_works_around_a_running_battery() -> None:
    """Noon: the battery charges 1000 Wh from the roof; the home sold 400 Wh. PV covers
    the battery, the household and the sale: export stays within 400 Wh and the battery
    still gets its 1000 Wh (the import does not rise)."""
    start = DAY + timedelta(hours=11)
    end = start + timedelta(minutes=15)
    home = _home()
    home.follow(start, end, charge_wh=1000, discharge_wh=0)
    home.dispatch(start, end, export_wh=400, import_wh=0)
    exported, imported = _delta(home, start, end)
    assert 380 <= exported <= 400
    assert imported == 0
    held = _home()
    held.dispatch(start, end, export_wh=400, import_wh=0)
    _delta(held, start, end)
    # the roof produced about 1000 Wh more for the battery than without it
    assert home.state.production_wh - held.state.production_wh == pytest.approx(1000, abs=20)


def test_homes_at_one_place_share_the_sky_but_not_their_roofs() -> None:
    """The solar position is computed once per place and day; each roof still has
    its own size and orientation (a cache keyed on the place alone would merge them)."""
    minutes = np.arange(29_000_000, 29_000_000 + 1440, dtype=np.int64)
    small = PvProfile(PvSystem(kwp=4.0), seed=1, cloudiness=0.0).clear_sky_power_w(minutes)
    big = PvProfile(PvSystem(kwp=12.0), seed=1, cloudiness=0.0).clear_sky_power_w(minutes)
    west = PvProfile(PvSystem(kwp=12.0, azimuth_deg=270.0), seed=1, cloudiness=0.0)
    assert big.max() > 2.5 * small.max()
    assert int(np.argmax(west.clear_sky_power_w(minutes))) > int(np.argmax(big))
