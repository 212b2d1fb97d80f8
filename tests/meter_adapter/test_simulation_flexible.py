"""The one model of a home's flexible loads: an evening car charge and a hot-water heat pump."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from meter_adapter.errors import MeterConfigError
from meter_adapter.simulation import EvCharging, FlexibleLoads, HeatPump


def _minutes(first: date, days: int = 1) -> np.ndarray:
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()) // 60
    return np.arange(start, start + 1440 * days, dtype=np.int64)


def test_every_evening_the_car_takes_its_drawn_energy_at_the_wallbox_power() -> None:
    ev = EvCharging()
    power = FlexibleLoads(ev=ev, seed=4).power_w(_minutes(date(2026, 6, 2), 27))
    assert set(np.unique(power).tolist()) <= {0, 11_000}
    on = np.concatenate(([0], (power > 0).astype(int), [0]))
    starts = np.flatnonzero(np.diff(on) == 1)
    ends = np.flatnonzero(np.diff(on) == -1)
    assert len(starts) >= 26  # a session every evening
    lo, hi = ev.energy_kwh
    for a, b in zip(starts, ends, strict=True):
        kwh = power[a:b].sum() / 60 / 1000
        assert lo - 0.2 <= kwh <= hi  # whole minutes: at most one minute short


def test_the_car_arrives_and_the_heat_pump_starts_within_their_local_hours() -> None:
    ev, pump = EvCharging(), HeatPump()
    for seed in range(5):
        car = FlexibleLoads(ev=ev, seed=seed).power_w(_minutes(date(2026, 6, 3)))
        hot = FlexibleLoads(heat_pump=pump, seed=seed).power_w(_minutes(date(2026, 6, 3)))
        for on, (first, last) in ((car, ev.arrival_hours), (hot, pump.start_hours)):
            starts = np.flatnonzero(np.diff((on > 0).astype(int)) == 1) + 1
            assert len(starts) == 1
            hour = (starts[0] / 60 + 2) % 24  # UTC minute of the day → Berlin summer hour
            assert first <= hour <= last


def test_the_same_seed_gives_the_same_minutes_in_any_order() -> None:
    june3 = _minutes(date(2026, 6, 3))
    a = FlexibleLoads(ev=EvCharging(), heat_pump=HeatPump(), seed=9).power_w(june3)
    b = FlexibleLoads(ev=EvCharging(), heat_pump=HeatPump(), seed=9)
    b.power_w(_minutes(date(2026, 6, 10)))  # another day first
    assert np.array_equal(a, b.power_w(june3))
    other = FlexibleLoads(ev=EvCharging(), heat_pump=HeatPump(), seed=10).power_w(june3)
    assert not np.array_equal(a, other)


def test_no_load_means_no_power() -> None:
    assert FlexibleLoads(seed=1).power_w(_minutes(date(2026, 6, 3))).sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ev": EvCharging(power_w=0)}, "ev.power_w"),
        ({"heat_pump": HeatPump(power_w=60_000)}, "heat_pump.power_w"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(MeterConfigError, match=field):
        FlexibleLoads(**kwargs)  # type: ignore[arg-type]
