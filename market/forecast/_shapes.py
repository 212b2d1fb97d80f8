"""Daily shapes of the standard load profiles, as data.

Hourly means (index 0 = 00:00-01:00 local time), in W per 1,000 kWh of
annual consumption for the BDEW profiles, per unit of the daily peak for the
CIGRE industrial profile. Profiles are interpolated linearly between hour
centres to any interval length and then scaled (see :mod:`market.forecast.profiles`),
so only their shape matters; the annual normalisation is recomputed.

Sources:

* ``H0`` (household) and ``G0`` (commercial, general): the BDEW/VDEW
  representative load profiles (VDEW, *Repräsentative VDEW-Lastprofile*,
  1999; published by BDEW as "Standardlastprofile Strom"), hourly means read
  off the published quarter-hourly curves for a working day, Saturday and
  Sunday in summer (15 May-14 Sep) and winter (1 Nov-20 Mar); the
  transition season is their mean. ``H0`` is additionally scaled by BDEW's
  dynamisation polynomial over the day of the year.
* ``industrial``: the industrial daily load profile of the CIGRE European LV
  benchmark (CIGRE TF C6.04.02, TB 575, 2014), the same every day of the week
  (two-shift operation, no BDEW counterpart).

These are approximations of the published curves at hourly resolution, not
the official quarter-hourly tables; an operator who needs those (or metered
substation data) feeds them as a forecast file instead.
"""

from __future__ import annotations

__all__ = ["SHAPES"]

# fmt: off
_H0 = {
    ("winter", "workday"): (
        73, 60, 54, 52, 52, 56, 75, 104, 113, 113, 114, 122,
        133, 125, 113, 110, 120, 157, 188, 186, 169, 150, 131, 101,
    ),
    ("winter", "saturday"): (
        80, 66, 57, 53, 52, 54, 62, 82, 108, 128, 136, 142,
        149, 136, 121, 114, 121, 152, 178, 176, 162, 148, 134, 107,
    ),
    ("winter", "sunday"): (
        86, 71, 60, 55, 52, 52, 55, 63, 90, 122, 143, 158,
        163, 138, 118, 110, 116, 146, 172, 172, 160, 145, 128, 101,
    ),
    ("summer", "workday"): (
        78, 62, 55, 52, 51, 52, 64, 86, 96, 100, 104, 113,
        122, 115, 104, 99, 100, 110, 122, 126, 130, 139, 128, 101,
    ),
    ("summer", "saturday"): (
        85, 68, 58, 54, 52, 52, 57, 72, 96, 115, 124, 132,
        138, 126, 112, 106, 106, 113, 122, 124, 126, 134, 127, 106,
    ),
    ("summer", "sunday"): (
        90, 72, 61, 56, 53, 52, 54, 62, 86, 113, 130, 146,
        150, 126, 108, 102, 102, 108, 118, 122, 125, 130, 122, 100,
    ),
}

_G0 = {
    ("winter", "workday"): (
        55, 52, 50, 50, 51, 56, 72, 112, 158, 178, 184, 186,
        176, 172, 175, 172, 166, 152, 126, 100, 84, 72, 64, 58,
    ),
    ("winter", "saturday"): (
        56, 53, 51, 50, 51, 53, 60, 76, 102, 118, 124, 124,
        116, 100, 86, 78, 74, 72, 70, 66, 63, 60, 58, 56,
    ),
    ("winter", "sunday"): (
        54, 52, 51, 50, 50, 51, 53, 56, 60, 64, 67, 68,
        67, 64, 62, 61, 61, 62, 63, 62, 60, 58, 56, 55,
    ),
    ("summer", "workday"): (
        50, 48, 47, 47, 47, 50, 62, 95, 140, 160, 168, 170,
        160, 158, 160, 158, 150, 130, 105, 85, 72, 62, 56, 52,
    ),
    ("summer", "saturday"): (
        50, 48, 47, 46, 46, 47, 52, 66, 90, 106, 112, 112,
        104, 88, 74, 66, 62, 60, 58, 56, 54, 52, 51, 50,
    ),
    ("summer", "sunday"): (
        48, 47, 46, 46, 46, 46, 47, 49, 52, 55, 57, 58,
        57, 55, 53, 52, 52, 52, 53, 53, 52, 50, 49, 48,
    ),
}

_INDUSTRIAL = (
    0.35, 0.35, 0.35, 0.35, 0.35, 0.38, 0.55, 0.80, 0.95, 1.00, 1.00, 0.98,
    0.90, 0.95, 1.00, 0.98, 0.92, 0.80, 0.62, 0.50, 0.45, 0.42, 0.38, 0.36,
)
# fmt: on


def _with_transition(
    table: dict[tuple[str, str], tuple[float, ...]],
) -> dict[tuple[str, str], tuple[float, ...]]:
    out = dict(table)
    for day in ("workday", "saturday", "sunday"):
        winter, summer = table[("winter", day)], table[("summer", day)]
        out[("transition", day)] = tuple((w + s) / 2 for w, s in zip(winter, summer, strict=True))
    return out


def _every_day(shape: tuple[float, ...]) -> dict[tuple[str, str], tuple[float, ...]]:
    return {
        (season, day): shape
        for season in ("winter", "summer", "transition")
        for day in ("workday", "saturday", "sunday")
    }


#: profile name → (season, day type) → 24 hourly values (shape only).
SHAPES: dict[str, dict[tuple[str, str], tuple[float, ...]]] = {
    "H0": _with_transition({k: tuple(float(x) for x in v) for k, v in _H0.items()}),
    "G0": _with_transition({k: tuple(float(x) for x in v) for k, v in _G0.items()}),
    "industrial": _every_day(_INDUSTRIAL),
}
