"""Simulated EV charging: energy per day, determinism, arrival in the evening."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from meter_adapter.errors import MeterConfigError
from meter_adapter.simulation import EvCharging


def _day_minutes(day: date) -> np.ndarray:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) // 60
    return np.arange(start, start + 1440, dtype=np.int64)


def test_a_charging_day_draws_its_energy_at_the_wallbox_power() -> None:
    ev = EvCharging(charge_power_w=11_000, daily_kwh=12, home_probability=1.0, seed=4)
    days = [date(2026, 6, d) for d in range(1, 29)]
    energies = []
    for day in days:
        power = ev.power_w(_day_minutes(day))
        assert set(np.unique(power).tolist()) <= {0, 11_000}
        energies.append(power.sum() / 60 / 1000)
    charged = [e for e in energies if e > 0]
    assert len(charged) >= 20  # weekdays always charge; weekends 60 % of the time
    assert 8 < float(np.mean(charged)) < 16


def test_no_car_at_home_means_no_load() -> None:
    ev = EvCharging(home_probability=0.0, seed=1)
    assert ev.power_w(_day_minutes(date(2026, 6, 3))).sum() == 0


def test_the_same_seed_gives_the_same_minutes_in_any_order() -> None:
    minutes = _day_minutes(date(2026, 6, 3))
    a = EvCharging(seed=9).power_w(minutes)
    b = EvCharging(seed=9)
    b.power_w(_day_minutes(date(2026, 6, 10)))  # another day first
    assert np.array_equal(a, b.power_w(minutes))
    assert not np.array_equal(a, EvCharging(seed=10).power_w(minutes)) or a.sum() == 0


def test_charging_starts_in_the_evening_local_time() -> None:
    ev = EvCharging(arrival_hour=18.0, home_probability=1.0, seed=2)
    starts = []
    for d in range(1, 6):  # Monday 1 June .. Friday 5 June 2026
        power = ev.power_w(_day_minutes(date(2026, 6, d)))
        on = np.flatnonzero(power)
        if len(on):
            starts.append(on[0] / 60 + 2)  # UTC minute → Berlin summer hour
    assert starts
    assert all(12 <= h <= 24 for h in starts)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"charge_power_w": 0}, "charge_power_w"),
        ({"daily_kwh": -1}, "daily_kwh"),
        ({"arrival_hour": 24}, "arrival_hour"),
        ({"home_probability": 1.5}, "home_probability"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(MeterConfigError, match=field):
        EvCharging(**kwargs)
