"""The built-in base forecast: standard load profiles and clear-sky PV.

Every in-service element of the feeder's network follows a daily curve:

* a load follows a standard load profile (:mod:`market.forecast._shapes`):
  ``H0`` household, ``G0`` commercial or ``industrial``. Which one is given
  per element or read from the load's name (CIGRE's ``Load R…``, ``Load C…``,
  ``Load I…``); ``H0`` otherwise. The profile is scaled to the load's
  annual energy (an ``annual_kwh`` column of the load table, or
  ``annual_kwh`` for every load) or, without one, so that its peak over the
  year is the load's ``p_mw`` (the design value of an aggregate load);
  reactive power keeps the load's power factor;
* a static generator of type PV (or without a type) follows pvlib's
  clear-sky irradiance on a tilted plane at the forecast's location, scaled so
  that 1,000 W/m² on the plane gives its ``p_mw`` after system losses, capped
  at ``p_mw``;
* every other element (wind, synchronous generators, storage) keeps its
  network-file value.

Local time (``timezone``) decides the hour, the day type (Saturday, Sunday,
else working day; public holidays are not modelled) and the BDEW season
(summer 15 May-14 Sep, winter 1 Nov-20 Mar, else transition). The value of
an interval is the profile at its midpoint, interpolated linearly between
hour centres. ``H0`` carries BDEW's dynamisation factor over the day of the
year.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Collection, Mapping
from zoneinfo import ZoneInfo

import numpy as np

from grid import Feeder, FloatArray
from market.errors import ConfigError
from market.forecast._shapes import SHAPES
from market.forecast.base import Element, digest_of, elements_of

__all__ = ["PROFILES", "ProfileForecast", "profile_value"]

#: Built-in load profiles.
PROFILES = tuple(SHAPES)

_CIGRE_HINTS = {"R": "H0", "C": "G0", "I": "industrial"}
_PV_LOSSES = 0.14


def _season(day: dt.date) -> str:
    md = (day.month, day.day)
    if (5, 15) <= md <= (9, 14):
        return "summer"
    if md >= (11, 1) or md <= (3, 20):
        return "winter"
    return "transition"


def _day_type(day: dt.date) -> str:
    return {5: "saturday", 6: "sunday"}.get(day.weekday(), "workday")


def _dynamisation(day_of_year: int) -> float:
    """BDEW's H0 dynamisation factor for day ``day_of_year`` (1..366)."""
    t = float(day_of_year)
    return -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24


def profile_value(profile: str, local: dt.datetime) -> float:
    """The profile's value (shape units) at local time ``local``.

    Raises:
        ConfigError: unknown profile.
    """
    try:
        table = SHAPES[profile]
    except KeyError:
        raise ConfigError(
            f"profile: expected one of {', '.join(PROFILES)}, got {profile!r}"
        ) from None
    hour = local.hour + local.minute / 60 + local.second / 3600
    # hour centres at h + 0.5: interpolate between the two around `hour`
    x = hour - 0.5
    lo = math.floor(x)
    w = x - lo
    a_day = local.date() if lo >= 0 else local.date() - dt.timedelta(days=1)
    b_day = local.date() if lo + 1 <= 23 else local.date() + dt.timedelta(days=1)
    a = table[(_season(a_day), _day_type(a_day))][lo % 24]
    b = table[(_season(b_day), _day_type(b_day))][(lo + 1) % 24]
    value = (1 - w) * a + w * b
    if profile == "H0":
        value *= _dynamisation(local.timetuple().tm_yday)
    return value


@functools.lru_cache(maxsize=32)
def _annual(profile: str, year: int, tz: str) -> tuple[float, float]:
    """(energy in shape-unit hours, peak) of ``profile`` over ``year`` at quarter hours."""
    zone = ZoneInfo(tz)
    start = dt.datetime(year, 1, 1, tzinfo=zone)
    steps = 4 * 24 * (366 if (year % 4 == 0 and year % 100) or year % 400 == 0 else 365)
    values = [
        profile_value(profile, (start + dt.timedelta(minutes=15 * i + 7.5)).astimezone(zone))
        for i in range(steps)
    ]
    return sum(values) / 4, max(values)


class ProfileForecast:
    """Standard profiles for loads, clear-sky PV for generators (module docstring).

    Args:
        feeder: the feeder whose network elements are forecast.
        interval_s: market interval length, s.
        profiles: profile per load key (``load:3``), overriding the name rule.
        annual_kwh: annual energy of every load without an ``annual_kwh``
            column, kWh (None: scale such loads to their peak).
        latitude: site latitude for PV, degrees north.
        longitude: site longitude for PV, degrees east.
        tilt_deg: PV module tilt, degrees.
        azimuth_deg: PV module orientation, degrees clockwise from north.
        timezone: IANA zone of the feeder (local days and hours).
        exclude_buses: pandapower buses whose loads are left out of the base
            (market participants there take their place).

    Raises:
        ConfigError: an unknown profile, element or a parameter out of range.
    """

    def __init__(
        self,
        feeder: Feeder,
        *,
        interval_s: int = 900,
        profiles: Mapping[str, str] | None = None,
        annual_kwh: float | None = None,
        latitude: float = 52.52,
        longitude: float = 13.405,
        tilt_deg: float = 30.0,
        azimuth_deg: float = 180.0,
        timezone: str = "Europe/Berlin",
        exclude_buses: Collection[int] = (),
    ) -> None:
        excluded = {feeder.position_of(b) for b in exclude_buses}
        self.elements = tuple(
            e for e in elements_of(feeder) if not (e.table == "load" and e.position in excluded)
        )
        problems = _problems(
            feeder,
            self.elements,
            interval_s=interval_s,
            annual_kwh=annual_kwh,
            latitude=latitude,
            longitude=longitude,
            timezone=timezone,
            profiles=profiles or {},
        )
        if problems:
            raise ConfigError("; ".join(problems))
        self.feeder = feeder
        self.interval_s = interval_s
        self.timezone = timezone
        self._zone = ZoneInfo(timezone)
        self._site = (latitude, longitude, tilt_deg, azimuth_deg)
        annual_col = feeder.net.load.get("annual_kwh")
        self.assignment: dict[str, tuple[str, str, float]] = {}
        for e in self.elements:
            if e.table != "load":
                continue
            prof = (profiles or {}).get(e.key) or _profile_from_name(e.name)
            own = None if annual_col is None else annual_col.get(e.index)
            if own is not None and not (isinstance(own, float) and math.isnan(own)):
                self.assignment[e.key] = (prof, "energy", float(own))
            elif annual_kwh is not None:
                self.assignment[e.key] = (prof, "energy", float(annual_kwh))
            else:
                self.assignment[e.key] = (prof, "peak", e.p_mw)
        spec = {
            "feeder": feeder.name,
            "interval_s": interval_s,
            "assignment": self.assignment,
            "site": self._site,
            "timezone": timezone,
            "elements": [(e.key, e.p_mw, e.q_mvar, e.kind) for e in self.elements],
        }
        self._digest = digest_of(json.dumps(spec, sort_keys=True).encode())

    @property
    def name(self) -> str:
        """``profiles``."""
        return "profiles"

    @property
    def digest(self) -> str:
        """Hash of the feeder's elements, the profile assignment and the site."""
        return self._digest

    def covers(self, interval: int) -> bool:
        """Every interval from the Unix epoch on."""
        return interval >= 0

    def base_at(self, interval: int) -> tuple[FloatArray, FloatArray]:
        """Base (p_mw, q_mvar) per bus position at the midpoint of ``interval``."""
        mid = dt.datetime.fromtimestamp((interval + 0.5) * self.interval_s, tz=dt.UTC)
        local = mid.astimezone(self._zone)
        p = np.zeros(self.feeder.n_bus)
        q = np.zeros(self.feeder.n_bus)
        pv = None
        for e in self.elements:
            value_p, value_q = e.p_mw, e.q_mvar
            if e.table == "load":
                value_p = self._load_mw(e, local)
                value_q = value_p * (e.q_mvar / e.p_mw) if e.p_mw else e.q_mvar
            elif e.table == "sgen" and e.kind.upper() in ("", "PV"):
                pv = self._pv_share(mid) if pv is None else pv
                value_p = e.p_mw * pv
                value_q = e.q_mvar * pv
            p[e.position] += e.sign * value_p
            q[e.position] += e.sign * value_q
        return p, q

    def _load_mw(self, e: Element, local: dt.datetime) -> float:
        prof, scale, amount = self.assignment[e.key]
        energy, peak = _annual(prof, local.year, self.timezone)
        value = profile_value(prof, local)
        if scale == "peak":
            return amount * value / peak
        # shape-unit hours per year → MW: amount kWh / energy h
        return amount / energy * value / 1000.0

    def _pv_share(self, when: dt.datetime) -> float:
        """Output per unit of rating at ``when`` on a clear day."""
        return _pv_share(when, self._site)


@functools.lru_cache(maxsize=4096)
def _pv_share(when: dt.datetime, site: tuple[float, float, float, float]) -> float:
    import pandas as pd
    import pvlib

    lat, lon, tilt, azimuth = site
    times = pd.DatetimeIndex([when])
    location = pvlib.location.Location(lat, lon)
    sun = location.get_solarposition(times)
    sky = location.get_clearsky(times, model="ineichen", linke_turbidity=3.0)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azimuth, sun["apparent_zenith"], sun["azimuth"], sky["dni"], sky["ghi"], sky["dhi"]
    )["poa_global"]
    share = float(np.nan_to_num(poa.iloc[0])) / 1000.0 * (1.0 - _PV_LOSSES)
    return min(max(share, 0.0), 1.0)


def _problems(
    feeder: Feeder,
    elements: tuple[Element, ...],
    *,
    interval_s: int,
    annual_kwh: float | None,
    latitude: float,
    longitude: float,
    timezone: str,
    profiles: Mapping[str, str],
) -> list[str]:
    problems = []
    if interval_s <= 0 or 86_400 % interval_s:
        problems.append(f"interval_s: must divide a day, got {interval_s}")
    if annual_kwh is not None and not annual_kwh > 0:
        problems.append(f"annual_kwh: must be positive, got {annual_kwh}")
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        problems.append(f"latitude, longitude: out of range ({latitude}, {longitude})")
    try:
        ZoneInfo(timezone)
    except (KeyError, ValueError):
        problems.append(f"timezone: unknown zone {timezone!r}")
    keys = {e.key for e in elements if e.table == "load"}
    for key, prof in profiles.items():
        if key not in keys:
            problems.append(f"profiles: {key!r} is not an in-service load of {feeder.name!r}")
        if prof not in SHAPES:
            problems.append(f"profiles[{key!r}]: expected one of {PROFILES}, got {prof!r}")
    return problems


def _profile_from_name(name: str) -> str:
    words = name.split()
    if len(words) == 2 and words[0].lower() == "load" and words[1][:1] in _CIGRE_HINTS:
        return _CIGRE_HINTS[words[1][:1]]
    return "H0"
