"""Per-interval forecasts of the grid's own load and generation (the clearing's base).

Typical use::

    from market.forecast import ProfileForecast, read_forecast, ViewCache

    forecast = ProfileForecast(feeder, annual_kwh=3500)    # or read_forecast(path, feeder)
    views = ViewCache(feeder, forecast)
    view, record = views.at(interval)                      # a Feeder.with_base view
    clear(view, orders, participants, config)              # no new arguments
"""

from market.forecast.base import (
    BaseForecast,
    BaseInterval,
    BaseViews,
    Element,
    ViewCache,
    elements_of,
    first_gap,
)
from market.forecast.file import FileForecast, read_forecast
from market.forecast.profiles import PROFILES, ProfileForecast, profile_value

__all__ = [
    "PROFILES",
    "BaseForecast",
    "BaseInterval",
    "BaseViews",
    "Element",
    "FileForecast",
    "ProfileForecast",
    "ViewCache",
    "elements_of",
    "first_gap",
    "open_forecast",
    "profile_value",
    "read_forecast",
]


def open_forecast(
    spec: str, feeder: object, *, interval_s: int = 900, annual_kwh: float | None = None
) -> BaseForecast:
    """``profiles`` (the built-in forecast) or the path of a forecast file.

    Raises:
        InputFileError: the file is missing or invalid.
        ConfigError: a profile parameter is out of range.
    """
    from grid import Feeder

    assert isinstance(feeder, Feeder)
    if spec == "profiles":
        return ProfileForecast(feeder, interval_s=interval_s, annual_kwh=annual_kwh)
    return read_forecast(spec, feeder)
