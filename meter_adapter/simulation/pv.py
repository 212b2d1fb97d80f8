"""Simulated rooftop PV: pvlib clear sky on a tilted plane, with seeded clouds.

Clear-sky irradiance (Ineichen, with a fixed Linke turbidity so no lookup
table is needed) is transposed onto the module plane (isotropic sky), reduced
by a per-day cloud process, and converted to AC power with the PVWatts model.
The cloud process draws each local day's mean cover from a beta distribution
around ``cloudiness`` and lets clouds drift through the day as a smoothed
random walk; ``cloudiness=0`` gives the pure clear-sky curve.

Deterministic: power at a minute depends only on the system, the seed and the
minute, never on the order of evaluation or on the wall clock.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import NDArray

from meter_adapter.errors import MeterConfigError
from meter_adapter.simulation._days import (
    MINUTES_PER_LOCAL_DAY,
    DayCache,
    day_generator,
    local_minutes,
    minute_of,
)

__all__ = ["PvProfile", "PvSystem"]

_CLOUD_STREAM = 1
#: Solar position and clear sky by place and minutes, shared by every profile
#: (a feeder's homes share a place and a day); the latest few kept.
_SKY: OrderedDict[tuple[object, ...], tuple[pd.DataFrame, pd.DataFrame]] = OrderedDict()
_SKY_KEEP = 8
_SKY_LOCK = threading.Lock()
_CLOUD_STEP_MIN = 5  # resolution of the cloud process, minutes


@dataclass(frozen=True, slots=True, kw_only=True)
class PvSystem:
    """A PV installation.

    Attributes:
        latitude: Degrees north.
        longitude: Degrees east.
        altitude_m: Height above sea level, m.
        timezone: IANA zone of the site (for local days).
        kwp: Peak DC power, kWp.
        tilt_deg: Module tilt from horizontal, degrees.
        azimuth_deg: Module orientation, degrees clockwise from north (180 = south).
        linke_turbidity: Atmospheric turbidity for the clear-sky model (2 clean .. 6 hazy).
        temp_air_c: Ambient air temperature, °C.
        gamma_pdc_per_k: Power temperature coefficient, 1/K.
        losses: System losses (wiring, soiling, mismatch) as a fraction.
        inverter_efficiency: Inverter efficiency as a fraction.
    """

    latitude: float = 52.52
    longitude: float = 13.405
    altitude_m: float = 34.0
    timezone: str = "Europe/Berlin"
    kwp: float = 5.0
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    linke_turbidity: float = 3.0
    temp_air_c: float = 15.0
    gamma_pdc_per_k: float = -0.004
    losses: float = 0.14
    inverter_efficiency: float = 0.96

    def __post_init__(self) -> None:
        problems = []
        if not -90 <= self.latitude <= 90:
            problems.append(f"latitude {self.latitude} outside -90..90")
        if not -180 <= self.longitude <= 180:
            problems.append(f"longitude {self.longitude} outside -180..180")
        if not 0 < self.kwp <= 10_000:
            problems.append(f"kwp {self.kwp} outside (0, 10000]")
        if not 0 <= self.tilt_deg <= 90:
            problems.append(f"tilt {self.tilt_deg} outside 0..90")
        if not 0 <= self.azimuth_deg <= 360:
            problems.append(f"azimuth {self.azimuth_deg} outside 0..360")
        if not 0 <= self.losses < 1 or not 0 < self.inverter_efficiency <= 1:
            problems.append("losses must be in [0, 1) and inverter efficiency in (0, 1]")
        if problems:
            raise MeterConfigError("invalid PV system: " + "; ".join(problems))


class PvProfile:
    """AC power of a simulated PV system, by minute.

    Args:
        system: The installation.
        seed: Seeds the clouds.
        cloudiness: Mean cloud cover, 0 (always clear) .. 1 (always overcast).
    """

    def __init__(self, system: PvSystem | None = None, *, seed: int = 0, cloudiness: float = 0.4):
        if not 0 <= cloudiness <= 1:
            raise MeterConfigError(f"cloudiness {cloudiness} outside 0..1")
        if seed < 0:
            raise MeterConfigError("seed must be non-negative")
        self.system = system or PvSystem()
        self.seed = seed
        self.cloudiness = cloudiness
        self._location = pvlib.location.Location(
            self.system.latitude, self.system.longitude, tz="UTC", altitude=self.system.altitude_m
        )
        self._clouds = DayCache(self._clear_sky_index)

    def _clear_sky_index(self, ordinal: int) -> NDArray[np.float64]:
        """Ratio of actual to clear-sky irradiance for each minute of a local day."""
        if self.cloudiness == 0:
            return np.ones(MINUTES_PER_LOCAL_DAY)
        rng = day_generator(self.seed, _CLOUD_STREAM, ordinal)
        c = self.cloudiness
        cover = rng.beta(max(2 * c, 0.05), max(2 * (1 - c), 0.05))
        steps = MINUTES_PER_LOCAL_DAY // _CLOUD_STEP_MIN
        walk = np.zeros(steps)
        noise = rng.normal(0.0, 0.25, steps)
        for i in range(1, steps):
            walk[i] = 0.9 * walk[i - 1] + noise[i]
        # more variable on mixed days than on clear or overcast ones
        passing = np.clip(cover + 2.0 * cover * (1 - cover) * walk, 0.0, 1.0)
        index = 1.0 - 0.8 * passing**1.5
        return np.repeat(index, _CLOUD_STEP_MIN)

    def clear_sky_power_w(self, minutes: NDArray[np.int64]) -> NDArray[np.float64]:
        """AC power under a clear sky at the start of each minute, W (not rounded)."""
        return self._ac_power(minutes, None)

    def power_w(self, minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        """AC power during each Unix minute, whole W, clouds included."""
        return np.rint(self._ac_power(minutes, self._clouds)).astype(np.int64)

    def power_at(self, when: datetime) -> int:
        """AC power during the minute containing ``when``, W."""
        return int(self.power_w(np.array([minute_of(when)], dtype=np.int64))[0])

    def _sky(self, utc: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Solar position and clear-sky irradiance at ``utc``: the same for every
        home at one place, so computed once for all of them (:data:`_SKY`)."""
        system = self.system
        place = (system.latitude, system.longitude, system.altitude_m, system.linke_turbidity)
        key = (*place, hashlib.sha256(utc.asi8.tobytes()).digest())
        with _SKY_LOCK:
            hit = _SKY.get(key)
            if hit is not None:
                _SKY.move_to_end(key)
                return hit
        position = self._location.get_solarposition(utc)
        clear = self._location.get_clearsky(
            utc,
            model="ineichen",
            solar_position=position,
            linke_turbidity=system.linke_turbidity,
        )
        with _SKY_LOCK:
            _SKY[key] = (position, clear)
            while len(_SKY) > _SKY_KEEP:
                _SKY.popitem(last=False)
        return position, clear

    def _ac_power(self, minutes: NDArray[np.int64], clouds: DayCache | None) -> NDArray[np.float64]:
        system = self.system
        local = local_minutes(minutes, system.timezone)
        position, clear = self._sky(local.utc)
        poa = pvlib.irradiance.get_total_irradiance(
            system.tilt_deg,
            system.azimuth_deg,
            position["apparent_zenith"],
            position["azimuth"],
            clear["dni"],
            clear["ghi"],
            clear["dhi"],
        )["poa_global"].to_numpy(dtype=np.float64)
        poa = np.nan_to_num(np.clip(poa, 0.0, None))
        if clouds is not None:
            poa = poa * local.per_day(clouds)
        temp_cell = pvlib.temperature.faiman(poa, system.temp_air_c)
        pdc0_w = system.kwp * 1000.0
        dc = pvlib.pvsystem.pvwatts_dc(poa, temp_cell, pdc0_w, system.gamma_pdc_per_k)
        ac = np.asarray(dc, dtype=np.float64) * (1 - system.losses) * system.inverter_efficiency
        return np.clip(np.nan_to_num(ac), 0.0, pdc0_w)
