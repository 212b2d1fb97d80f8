"""The feeder as each interval of a backtest sees it: the engine's base-load forecast.

Clearing, its AC check and the check of what was metered all take the grid
of interval ``t`` from :class:`market.forecast.ViewCache` over the forecast
:func:`base_forecast` makes, as the demo's engine does: the feeder's own
loads follow standard load profiles and its PV generators pvlib's clear-sky
output (:class:`market.forecast.ProfileForecast`), and where the scenario has
participants take the place of the network's load at their bus
(``replace_loads``) those loads are left out of the base.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from grid import Feeder
from market.backtest.spec import BacktestSpec

if TYPE_CHECKING:
    from market.demo.fleet import Home
    from market.forecast import ProfileForecast

__all__ = ["base_forecast"]


def base_forecast(feeder: Feeder, homes: Sequence[Home], spec: BacktestSpec) -> ProfileForecast:
    """The base-load forecast of ``feeder`` with ``homes`` on it, as the demo's engine uses.

    Raises:
        ConfigError: a profile parameter is out of range.
    """
    from market.forecast import ProfileForecast

    day = spec.day
    return ProfileForecast(
        feeder,
        interval_s=spec.interval_s,
        annual_kwh=day.base_annual_kwh,
        exclude_buses={h.bus for h in homes} if day.replace_loads else (),
    )
