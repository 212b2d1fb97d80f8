"""One (feeder, day) of a backtest: every interval ordered, cleared, metered and settled.

For each interval ``t`` of the day, in order, as the engine and the homes'
gateways would do it, but in-process (no gRPC, no chain):

1. **Orders.** Each home's prosumer agent forecasts its net energy for ``t``
   at the start of ``t − 1``, when the demo's agents place their order:
   from its meter's history (:func:`meter_adapter.agent.forecast_net_wh`),
   or, where the scenario's homes follow a dispatch, the home energy
   manager's own plan (:meth:`SimulatedMeter.planned_net_wh`), as the demo's
   gateways do. It decides with the gateway's own rules
   (:func:`meter_adapter.agent.decide_order`). The day before warms the
   history up, so the first interval already has "same time yesterday".
2. **Clearing.** :func:`market.clearing.clear` with the study's mechanism,
   linearisation and the AC check of the cleared schedule, on the feeder as
   interval ``t`` sees it: its base load is the engine's forecast for ``t``
   (:func:`market.backtest.grid.base_forecast`, one
   :meth:`grid.Feeder.with_base` view per interval).
   With ``nodal``, the same book is also cleared on a copper plate
   (``uniform``, LP only): the sell energy the copper plate takes beyond the
   nodal fills is the energy the grid's limits kept off the market
   (``curtailed_wh``).
3. **Delivery.** Where the scenario says so, every home that traded follows
   its cleared schedule in ``t`` (export what it sold, import what it
   bought; PV and flexible loads held back first, as in the demo). What the
   meters count in ``t`` is run through an AC power flow on the same view
   (the physical check of what happened, as the report does).
4. **Settlement.** :func:`market.settlement.settle_interval` on the clearing
   and the metered energy, computed and not posted; its canonical JSON is
   hashed into the row, so two runs agree on the books to the last unit iff
   their hashes do.

An interval that fails to clear is recorded with its reason (status
``failed``) and settled as the engine settles it (all energy as imbalance
against the grid); the day goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from grid import Feeder, GridError, check_schedule
from market.backtest.grid import base_forecast
from market.backtest.homes import HomeMeter
from market.backtest.spec import BacktestSpec
from market.clearing import ClearingOptions, ClearingResult, clear
from market.config import MarketConfig
from market.errors import MarketError
from market.orders import Order, Participant, Side
from market.settlement import IntervalSettlement, settle_interval

if TYPE_CHECKING:
    from market.demo.fleet import Home
    from market.forecast import BaseForecast
    from meter_adapter.agent import AgentConfig, EnergyHistory

__all__ = ["SCHEMA", "DayResult", "simulate_day"]

logger = logging.getLogger(__name__)

#: Columns of the interval table, one row per interval (the parquet dataset's schema).
SCHEMA: dict[str, Any] = {
    "feeder": pl.String,
    "day": pl.Date,
    "interval": pl.Int64,
    "start_s": pl.Int64,
    "status": pl.String,
    "reason": pl.String,
    "base_p_mw": pl.Float64,
    "orders": pl.Int64,
    "bid_wh": pl.Int64,
    "offered_wh": pl.Int64,
    "traded_wh": pl.Int64,
    "grid_import_wh": pl.Int64,
    "grid_export_wh": pl.Int64,
    "losses_wh": pl.Int64,
    "price_min": pl.Int64,
    "price_max": pl.Int64,
    "price_mean": pl.Float64,
    "price_spread": pl.Int64,
    "operator_surplus": pl.Int64,
    "welfare": pl.Float64,
    "rounds": pl.Int64,
    "ac_passed": pl.Boolean,
    "ac_violations": pl.Int64,
    "max_line_loading_percent": pl.Float64,
    "max_trafo_loading_percent": pl.Float64,
    "vm_min_pu": pl.Float64,
    "vm_max_pu": pl.Float64,
    "curtailed_wh": pl.Int64,
    "metered_import_wh": pl.Int64,
    "metered_export_wh": pl.Int64,
    "production_wh": pl.Int64,
    "local_wh": pl.Int64,
    "delivered_violations": pl.Int64,
    "delivered_max_line_loading_percent": pl.Float64,
    "delivered_max_trafo_loading_percent": pl.Float64,
    "delivered_vm_min_pu": pl.Float64,
    "delivered_vm_max_pu": pl.Float64,
    "imbalance_import_wh": pl.Int64,
    "imbalance_export_wh": pl.Int64,
    "imbalance_amount": pl.Int64,
    "settled_volume": pl.Int64,
    "settlement_hash": pl.String,
}


@dataclass(frozen=True)
class DayResult:
    """The outcome of one (feeder, day).

    Attributes:
        table: one row per interval, columns :data:`SCHEMA`.
        failed: (interval, reason) of every interval that did not clear.
        clear_s: wall time spent in clearing calls (AC check included), s.
    """

    table: pl.DataFrame
    failed: tuple[tuple[int, str], ...]
    clear_s: float


def simulate_day(
    feeder: Feeder,
    homes: Sequence[Home],
    day: dt.date,
    spec: BacktestSpec,
    *,
    operator: str,
    forecast: BaseForecast | None = None,
) -> DayResult:
    """Order, clear, meter and settle every interval of ``day`` on ``feeder``.

    Args:
        feeder: the feeder (loaded once per worker and reused across days).
        homes: its participants (:func:`market.backtest.homes.plan_participants`).
        day: the simulated day (UTC).
        spec: the backtest.
        operator: the operator's account, which takes the grid's side.
        forecast: the base-load forecast (default:
            :func:`market.backtest.grid.base_forecast`; a worker passes the
            one it keeps per feeder).

    An interval whose clearing raises (infeasible, solver failure, a power
    flow that does not converge) is recorded as ``failed`` with its reason;
    only a bug escapes as an exception.
    """
    import time

    from market.forecast import ViewCache
    from meter_adapter.agent import AgentConfig, EnergyHistory

    market = spec.market()
    planned = spec.day.dispatch  # homes follow their schedule and trade their own plan
    n = spec.intervals_per_day
    i_s = spec.interval_s
    first = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()) // i_s
    meters = [HomeMeter(h, day, spec) for h in homes]
    for meter in meters:  # the day before, for the agents' history
        for _ in range(n):
            meter.advance()
    histories = [EnergyHistory(i_s) for _ in homes]
    agents = [
        AgentConfig(
            sell_min_price=h.sell_min_price,
            buy_max_price=h.buy_max_price,
            interval_s=i_s,
        )
        for h in homes
    ]
    participants = {h.address: Participant(h.address, h.bus) for h in homes}
    options = ClearingOptions(sensitivities="ac" if spec.sensitivities == "ac" else "dc")
    views = ViewCache(feeder, forecast or base_forecast(feeder, homes, spec))
    observed = 0
    rows: list[dict[str, Any]] = []
    failed: list[tuple[int, str]] = []
    clear_s = 0.0
    for i in range(n):
        t = first + i
        # the agent decides at the start of t − 1: readings up to there are in
        while observed <= n + i - 1:
            for history, m in zip(histories, meters, strict=True):
                at_ms = (m.start_s + observed * i_s) * 1000
                history.observe(at_ms, m.import_wh[observed], m.export_wh[observed])
            observed += 1
        orders = _orders(t, homes, histories, agents, meters, j=n + i, planned=planned)
        grid, _ = views.at(t)
        started = time.perf_counter()
        result: ClearingResult | None = None
        reason = ""
        try:
            result = clear(
                grid,
                orders,
                participants,
                market,
                mechanism="nodal" if spec.mechanism == "nodal" else "uniform",
                options=options,
                interval=t,
            )
        except (MarketError, GridError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            failed.append((t, reason))
            logger.info("%s %s interval %d: %s", feeder.name, day, t, reason)
        clear_s += time.perf_counter() - started
        curtailed = _curtailed_wh(grid, orders, participants, market, result)
        if planned and result is not None:
            _dispatch(meters, homes, result, n + i)
        for meter in meters:
            meter.advance()
        metered = [m.interval(n + i) for m in meters]
        settlement = _settle(
            t, result, homes=homes, metered=metered, market=market, operator=operator
        )
        rows.append(
            {
                "feeder": feeder.name,
                "day": day,
                "interval": t,
                "start_s": t * i_s,
                "status": "cleared" if result is not None else "failed",
                "reason": reason,
                "base_p_mw": float(grid.base_p_mw.sum()),
                "orders": len(orders),
                "bid_wh": sum(o.quantity_wh for o in orders if o.side is Side.BUY),
                "offered_wh": sum(o.quantity_wh for o in orders if o.side is Side.SELL),
                **_clearing_columns(result),
                "curtailed_wh": curtailed,
                **_delivered(grid, homes, metered, i_s),
                **_settlement_columns(settlement),
            }
        )
    table = pl.DataFrame(rows, schema=SCHEMA, orient="row" if not rows else None)
    return DayResult(table=table, failed=tuple(failed), clear_s=clear_s)


def _orders(
    t: int,
    homes: Sequence[Home],
    histories: Sequence[EnergyHistory],
    agents: Sequence[AgentConfig],
    meters: Sequence[HomeMeter],
    *,
    j: int,
    planned: bool,
) -> list[Order]:
    """Every home's order for interval ``t`` (boundary ``j`` on its meter), decided at ``t − 1``."""
    from meter_adapter.agent import decide_order, forecast_net_wh

    interval_s = meters[0].interval_s if meters else 0
    orders = []
    for home, history, agent, m in zip(homes, histories, agents, meters, strict=True):
        net_wh = (
            m.planned_net_wh(j)
            if planned
            else forecast_net_wh(history, t, now_ms=(t - 1) * interval_s * 1000, blend=agent.blend)
        )
        if net_wh is None:
            continue
        decision = decide_order(agent, home.meter_id, t, net_wh)
        if decision.side is None:
            continue
        orders.append(
            Order(
                order_id=decision.client_order_id,
                participant=home.address,
                side=Side.SELL if decision.side == "sell" else Side.BUY,
                interval=t,
                quantity_wh=decision.quantity_wh,
                limit_price=decision.limit_price,
            )
        )
    return orders


def _dispatch(
    meters: Sequence[HomeMeter], homes: Sequence[Home], result: ClearingResult, j: int
) -> None:
    """Every home that traded follows its schedule in interval ``j`` (demo's ``_Dispatch``)."""
    sold: dict[str, int] = {}
    bought: dict[str, int] = {}
    for f in result.fills:
        book = sold if f.side == "sell" else bought
        book[f.participant] = book.get(f.participant, 0) + f.filled_wh
    for home, meter in zip(homes, meters, strict=True):
        if home.address in sold or home.address in bought:
            meter.dispatch(j, export_wh=sold.get(home.address), import_wh=bought.get(home.address))


def _clearing_columns(result: ClearingResult | None) -> dict[str, Any]:
    if result is None:
        return {
            "traded_wh": 0,
            "grid_import_wh": 0,
            "grid_export_wh": 0,
            "losses_wh": 0,
            "price_min": None,
            "price_max": None,
            "price_mean": None,
            "price_spread": None,
            "operator_surplus": 0,
            "welfare": 0.0,
            "rounds": 0,
            "ac_passed": None,
            "ac_violations": None,
            "max_line_loading_percent": None,
            "max_trafo_loading_percent": None,
            "vm_min_pu": None,
            "vm_max_pu": None,
        }
    prices = [p.price for p in result.prices]
    ac = result.ac
    return {
        "traded_wh": sum(f.filled_wh for f in result.fills if f.side == "sell"),
        "grid_import_wh": result.grid_import_wh,
        "grid_export_wh": result.grid_export_wh,
        "losses_wh": result.losses_wh,
        "price_min": min(prices),
        "price_max": max(prices),
        "price_mean": sum(prices) / len(prices),
        "price_spread": max(prices) - min(prices),
        "operator_surplus": result.operator_surplus,
        "welfare": result.welfare,
        "rounds": result.rounds,
        "ac_passed": None if ac is None else ac.passed,
        "ac_violations": None if ac is None else len(ac.violations),
        "max_line_loading_percent": None if ac is None else ac.max_line_loading_percent,
        "max_trafo_loading_percent": None if ac is None else ac.max_trafo_loading_percent,
        "vm_min_pu": None if ac is None else ac.vm_min_pu,
        "vm_max_pu": None if ac is None else ac.vm_max_pu,
    }


def _curtailed_wh(
    grid: Feeder,
    orders: list[Order],
    participants: dict[str, Participant],
    market: MarketConfig,
    result: ClearingResult | None,
) -> int:
    """Sell energy a copper plate would clear beyond the nodal fills (0 for ``uniform``)."""
    if result is None or result.mechanism != "nodal" or not orders:
        return 0
    try:
        plate = clear(
            grid,
            orders,
            participants,
            market,
            mechanism="uniform",
            options=ClearingOptions(ac_check=False, validate=False),
            interval=result.interval,
        )
    except (MarketError, GridError):
        return 0
    nodal = sum(f.filled_wh for f in result.fills if f.side == "sell")
    return max(0, sum(f.filled_wh for f in plate.fills if f.side == "sell") - nodal)


def _delivered(
    grid: Feeder,
    homes: Sequence[Home],
    metered: list[tuple[int, int, int]],
    interval_s: int,
) -> dict[str, Any]:
    imp = sum(m[0] for m in metered)
    exp = sum(m[1] for m in metered)
    out: dict[str, Any] = {
        "metered_import_wh": imp,
        "metered_export_wh": exp,
        "production_wh": sum(m[2] for m in metered),
        "local_wh": min(imp, exp),
    }
    injection = np.zeros(grid.n_bus)
    hours = interval_s / 3600
    for home, (i_wh, e_wh, _) in zip(homes, metered, strict=True):
        injection[grid.position_of(home.bus)] += (e_wh - i_wh) / hours / 1e6
    try:
        report = check_schedule(grid, injection)
    except GridError:
        # a physical flow that does not converge is a grid event in itself
        return {
            **out,
            "delivered_violations": 1,
            "delivered_max_line_loading_percent": None,
            "delivered_max_trafo_loading_percent": None,
            "delivered_vm_min_pu": None,
            "delivered_vm_max_pu": None,
        }
    return {
        **out,
        "delivered_violations": len(report.violations),
        "delivered_max_line_loading_percent": _finite(report.max_line_loading_percent),
        "delivered_max_trafo_loading_percent": _finite(report.max_trafo_loading_percent),
        "delivered_vm_min_pu": _finite(report.vm_min_pu),
        "delivered_vm_max_pu": _finite(report.vm_max_pu),
    }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _settle(
    interval: int,
    result: ClearingResult | None,
    *,
    homes: Sequence[Home],
    metered: list[tuple[int, int, int]],
    market: MarketConfig,
    operator: str,
) -> IntervalSettlement:
    """The engine's settlement of the interval (``Lifecycle.settlement_of``), computed."""
    from eth_hash.auto import keccak

    traded: dict[str, int] = {}
    payments: dict[str, int] = {}
    surplus = 0
    blob = b""
    if result is not None:
        for f in result.fills:
            sign = 1 if f.side == "sell" else -1
            traded[f.participant] = traded.get(f.participant, 0) + sign * f.filled_wh
        payments = {p.participant: p.amount for p in result.payments}
        surplus = max(result.operator_surplus, 0)  # as the engine: the fee cannot be negative
        blob = result.to_json()
    net: dict[str, int] = {}
    for home, (i_wh, e_wh, _) in zip(homes, metered, strict=True):
        net[home.address] = net.get(home.address, 0) + e_wh - i_wh
    return settle_interval(
        interval,
        traded_wh=traded,
        payments=payments,
        operator_surplus=surplus,
        metered_wh=net,
        config=market,
        operator=operator,
        result_hash=keccak(blob),
    )


def _settlement_columns(settlement: IntervalSettlement) -> dict[str, Any]:
    return {
        "imbalance_import_wh": settlement.imbalance_import_wh,
        "imbalance_export_wh": settlement.imbalance_export_wh,
        "imbalance_amount": settlement.imbalance_total_amount,
        "settled_volume": settlement.transferred,
        "settlement_hash": hashlib.sha256(settlement.to_json().encode()).hexdigest(),
    }
