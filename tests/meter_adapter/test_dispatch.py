"""A simulated home follows its cleared schedule: PV curtailed, EV and heat pump held back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
