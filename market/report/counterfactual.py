"""The copper-plate counterfactual of one interval, beside gridex's nodal result.

The same book is cleared ``uniform`` (one price, no grid: what every anchor
local market does) and both schedules are run through an AC power flow at
the interval's base, so the report can say which buses and lines the copper
plate would have broken, by how much, and what keeping them cost (energy
curtailed or deferred, congestion and voltage rent, price spread).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from grid import AcReport, Feeder, GridError, check_schedule
from market.clearing import GRID, ClearingOptions, ClearingResult, clear, net_injection_mw
from market.config import MarketConfig
from market.errors import MarketError
from market.orders import Order, Participant

__all__ = ["TOLERANCE", "Uniform", "counterfactual_rows", "uniform_schedule"]

logger = logging.getLogger(__name__)


#: A limit counts as broken when missed by more than the clearing's own AC
#: tolerance (percentage points of loading, /100 in p.u.), for both mechanisms.
TOLERANCE = ClearingOptions().ac_tolerance


def _flow(feeder: Feeder, result: ClearingResult | None) -> AcReport | None:
    if result is None:
        return None
    try:
        return check_schedule(feeder, net_injection_mw(result, feeder), tolerance=TOLERANCE)
    except GridError:
        return None


def _figures(
    prefix: str, feeder: Feeder, result: ClearingResult | None, ac: AcReport | None
) -> dict[str, object]:
    connectable = {b.index for b in feeder.connectable_buses}
    fills = result.fills if result is not None else ()
    prices = [p.price for p in (result.prices if result else ()) if p.bus in connectable]
    out: dict[str, object] = {
        f"{prefix}_sold_wh": sum(f.filled_wh for f in fills if f.side == "sell"),
        f"{prefix}_bought_wh": sum(f.filled_wh for f in fills if f.side == "buy"),
        f"{prefix}_local_wh": sum(
            t.energy_wh
            for t in (result.trades if result else ())
            if GRID not in (t.buyer, t.seller)
        ),
        f"{prefix}_price_min": min(prices, default=0),
        f"{prefix}_price_max": max(prices, default=0),
        f"{prefix}_converged": ac is not None,
    }
    if ac is None:
        # a schedule whose power flow fails is a grid event in itself
        nan = float("nan")
        out.update(
            {
                f"{prefix}_buses_over": 0,
                f"{prefix}_lines_over": 0,
                f"{prefix}_trafos_over": 0,
                f"{prefix}_vm_min_pu": nan,
                f"{prefix}_vm_max_pu": nan,
                f"{prefix}_max_line_loading_percent": nan,
                f"{prefix}_max_trafo_loading_percent": nan,
                f"{prefix}_worst_voltage_pu": nan,
                f"{prefix}_worst_overload_percent": nan,
            }
        )
        return out
    kinds = [v.element for v in ac.violations]
    voltage = [
        max(v.value - v.limit, v.limit - v.value) for v in ac.violations if v.element == "bus"
    ]
    loading = [v.value - v.limit for v in ac.violations if v.element != "bus"]
    out.update(
        {
            f"{prefix}_buses_over": kinds.count("bus"),
            f"{prefix}_lines_over": kinds.count("line"),
            f"{prefix}_trafos_over": kinds.count("trafo"),
            f"{prefix}_vm_min_pu": ac.vm_min_pu,
            f"{prefix}_vm_max_pu": ac.vm_max_pu,
            f"{prefix}_max_line_loading_percent": ac.max_line_loading_percent,
            f"{prefix}_max_trafo_loading_percent": ac.max_trafo_loading_percent,
            f"{prefix}_worst_voltage_pu": max(voltage, default=0.0),
            f"{prefix}_worst_overload_percent": max(loading, default=0.0),
        }
    )
    return out


def _state(
    interval: int,
    mechanism: str,
    feeder: Feeder,
    result: ClearingResult | None,
    ac: AcReport | None,
) -> list[dict[str, object]]:
    if ac is None:
        return []
    price = {p.bus: p.price for p in (result.prices if result else ())}
    rows: list[dict[str, object]] = [
        {
            "interval": interval,
            "mechanism": mechanism,
            "kind": "bus",
            "element": b.index,
            "value": float(ac.vm_pu[b.position]),
            "price": price.get(b.index, 0),
        }
        for b in feeder.buses
    ]
    for kind, branches, loading in (
        ("line", feeder.lines, ac.line_loading_percent),
        ("trafo", feeder.trafos, ac.trafo_loading_percent),
    ):
        rows.extend(
            {
                "interval": interval,
                "mechanism": mechanism,
                "kind": kind,
                "element": br.index,
                "value": float(loading[i]),
                "price": 0,
            }
            for i, br in enumerate(branches)
        )
    return rows


def _rents(result: ClearingResult) -> tuple[int, int]:
    """Σ over fills of (congestion, voltage) part × energy withdrawn, base units."""
    parts = {p.bus: (p.congestion, p.voltage) for p in result.prices}
    congestion = voltage = 0.0
    for f in result.fills:
        if not f.filled_wh:
            continue
        withdrawn_kwh = f.filled_wh / 1000 * (1 if f.side == "buy" else -1)
        c, v = parts.get(f.bus, (0, 0))
        congestion += c * withdrawn_kwh
        voltage += v * withdrawn_kwh
    return round(congestion), round(voltage)


#: The copper-plate schedule of one interval and its AC power flow
#: (None when it does not solve, or does not converge).
Uniform = tuple[ClearingResult | None, AcReport | None]


def uniform_schedule(
    feeder: Feeder,
    orders: Sequence[Order],
    participants: Mapping[str, Participant],
    market: MarketConfig,
    *,
    interval: int,
) -> Uniform:
    """The book of ``interval`` cleared ``uniform`` and the AC power flow of that schedule.

    ``feeder`` is the interval's view (its journaled base). The book is
    cleared without validation or AC check (the engine validated the
    orders); the schedule's one AC power flow is run here. ``(None, None)``
    without orders or when the copper plate does not solve.
    """
    if not orders:
        return None, None
    try:
        uniform = clear(
            feeder,
            list(orders),
            dict(participants),
            market,
            mechanism="uniform",
            options=ClearingOptions(ac_check=False, validate=False),
            interval=interval,
        )
    except (MarketError, GridError) as exc:
        logger.info("interval %d: the uniform counterfactual does not solve: %s", interval, exc)
        return None, None
    return uniform, _flow(feeder, uniform)


def counterfactual_rows(
    feeder: Feeder,
    orders: Sequence[Order],
    participants: Mapping[str, Participant],
    market: MarketConfig,
    *,
    interval: int,
    nodal: ClearingResult,
    nodal_flows: AcReport | None = None,
    uniform: Uniform | None = None,
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The ``counterfactual`` row and the ``grid_state`` rows of one interval.

    ``feeder`` is the interval's view (its journaled base); ``nodal`` the
    engine's result and ``nodal_flows`` the AC power flow the engine ran for
    it, its limits checked at :data:`TOLERANCE` (run here when None).
    ``uniform`` is :func:`uniform_schedule` of the same book, computed here
    when None. Without a uniform schedule (no orders, or it does not solve)
    the copper plate is the nodal schedule, and its flow is not run twice.
    """
    if uniform is None:
        uniform = uniform_schedule(feeder, orders, participants, market, interval=interval)
    schedule, ac_u = uniform
    ac_n = nodal_flows if nodal_flows is not None else _flow(feeder, nodal)
    if schedule is None:
        ac_u = ac_n
    row: dict[str, object] = {"interval": interval}
    row.update(_figures("uniform", feeder, schedule if schedule is not None else nodal, ac_u))
    row.update(_figures("nodal", feeder, nodal, ac_n))
    congestion, voltage = _rents(nodal)
    row.update(
        {
            "curtailed_wh": max(int(row["uniform_sold_wh"]) - int(row["nodal_sold_wh"]), 0),  # type: ignore[call-overload]
            "deferred_wh": max(int(row["uniform_bought_wh"]) - int(row["nodal_bought_wh"]), 0),  # type: ignore[call-overload]
            "congestion_rent": congestion,
            "voltage_rent": voltage,
        }
    )
    state = _state(interval, "uniform", feeder, schedule or nodal, ac_u) + _state(
        interval, "nodal", feeder, nodal, ac_n
    )
    return row, state


def violations_of(row: Mapping[str, Any], prefix: str = "uniform") -> int:
    """Limits broken in ``row`` by ``prefix`` (a power flow that fails counts as one)."""
    if not row[f"{prefix}_converged"]:
        return 1
    return int(
        row[f"{prefix}_buses_over"] + row[f"{prefix}_lines_over"] + row[f"{prefix}_trafos_over"]
    )
