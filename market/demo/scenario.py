"""The demo's scenarios: which feeder, which homes, how they trade.

``sunny-congested`` (the default) is a summer day on Kerber's extreme
village feeder (pandapower ``kb_extrem_dorfnetz``: 0.4 kV, 400 kVA
transformer, 58 houses on long NAYY cables) with high PV penetration: nine
homes in ten carry 9-20 kWp (village roofs and barns), so selling every noon surplus on a
copper plate lifts the far ends of the cables above 1.1 p.u.; in the evening
seven in ten charge an 11 kW car and some run a heat pump, more than the
cables feeding the far houses carry. The participants are the village's
households (each takes the place of the network file's load at its bus);
the households that do not take part follow the BDEW H0 profile. Agents
offer their whole forecast surplus at the feed-in price and bid for their
whole deficit at the retail price, and every home follows its cleared
schedule (PV curtailed, car and heat pump held back), so what the grid
carries is what was cleared.

``mild`` is the earlier default day: CIGRE LV, 36 homes with 4-12 kWp on
60 % of them, no cars or heat pumps, asks and bids spread around the
tariffs, homes that do not follow a dispatch. Nothing binds on it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCENARIOS", "Scenario", "scenario"]


@dataclass(frozen=True)
class Scenario:
    """A demo day.

    Attributes:
        name: the ``--scenario`` value.
        feeder: default feeder.
        participants: default number of homes.
        pv_share: share of homes with PV, 0..1.
        kwp: range of PV sizes, kWp.
        annual_kwh: range of yearly household consumption, kWh.
        ev_share: share of homes charging an 11 kW car in the evening.
        heat_pump_share: share of homes with a hot-water heat pump.
        cloudiness: mean cloud cover of the day, 0..1.
        whole: agents offer their whole surplus at feed-in and bid their
            whole deficit at retail (else asks and bids spread around them).
        dispatch: homes follow their cleared schedule.
        replace_loads: participants take the place of the network file's
            loads at their buses (else they come on top of them).
        base_annual_kwh: annual energy of each network load in the base
            forecast (None: scaled to the load's own p_mw as its peak).
        at_loads: place homes at buses that carry a network load first.
    """

    name: str
    feeder: str
    participants: int
    pv_share: float
    kwp: tuple[float, float]
    annual_kwh: tuple[float, float]
    ev_share: float
    heat_pump_share: float
    cloudiness: float
    whole: bool
    dispatch: bool
    replace_loads: bool
    base_annual_kwh: float | None
    at_loads: bool


SCENARIOS: dict[str, Scenario] = {
    "sunny-congested": Scenario(
        name="sunny-congested",
        feeder="kerber-extrem-dorfnetz",
        participants=58,
        pv_share=0.9,
        kwp=(9.0, 20.0),
        annual_kwh=(2500.0, 6000.0),
        ev_share=0.7,
        heat_pump_share=0.3,
        cloudiness=0.05,
        whole=True,
        dispatch=True,
        replace_loads=True,
        base_annual_kwh=4000.0,
        at_loads=True,
    ),
    "mild": Scenario(
        name="mild",
        feeder="cigre-lv",
        participants=36,
        pv_share=0.6,
        kwp=(4.0, 12.0),
        annual_kwh=(2500.0, 5500.0),
        ev_share=0.0,
        heat_pump_share=0.0,
        cloudiness=0.3,
        whole=False,
        dispatch=False,
        replace_loads=False,
        base_annual_kwh=None,
        at_loads=False,
    ),
}


def scenario(name: str) -> Scenario:
    """The scenario called ``name``.

    Raises:
        KeyError: no such scenario.
    """
    return SCENARIOS[name]
