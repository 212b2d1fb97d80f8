"""An independent check of a published clearing result against physics and its own prices.

:func:`audit` does not trust the result's own bookkeeping. It recomputes

* **energy from the power flow**: the AC power flow of the result's integer
  schedule (through :func:`grid.check_schedule`) against the base case; the
  booked ``grid_import_wh − grid_export_wh`` and ``losses_wh`` must be its
  external-grid and loss changes to within :data:`ENERGY_BOUND_WH`;
* **money from fills × prices**: every fill's amount from its energy and
  price (buyers rounded down, sellers up), every price from its bus price
  (plus the fee for a buyer) and the tariff caps, the grid's amounts from
  the booked energy and the tariffs, the operator's surplus and the grid
  account's rounding from the residual;
* **the rounding bound**: the booked residual against the same sums in exact
  arithmetic at the unrounded bus prices, within ``Σ_filled (1 + kWh) + 2``
  base units (:mod:`market.clearing.books`, rule 4);
* **the price rules**: no buyer above ``min(limit, retail)``, no seller below
  ``max(limit, feed_in)``; price components adding up.

It returns every problem found, as text; an empty list means the result
holds. The demo's books check and the tests use it.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from grid import Feeder, check_schedule
from market.clearing.result import ClearingResult, net_injection_mw
from market.config import MarketConfig

__all__ = ["ENERGY_BOUND_WH", "audit"]

#: Half a Wh of rounding plus the power flow's convergence tolerance.
ENERGY_BOUND_WH = 0.51


def _energy_problems(result: ClearingResult, feeder: Feeder) -> list[str]:
    out: list[str] = []
    wh_per_mw = result.interval_s / 3600.0 * 1e6
    base = check_schedule(feeder, np.zeros(feeder.n_bus))
    ac = check_schedule(feeder, net_injection_mw(result, feeder))
    d_ext = (ac.ext_grid_p_mw - base.ext_grid_p_mw) * wh_per_mw
    d_loss = (ac.losses_mw - base.losses_mw) * wh_per_mw
    booked = result.grid_import_wh - result.grid_export_wh
    if abs(booked - d_ext) > ENERGY_BOUND_WH:
        out.append(
            f"interval {result.interval}: books exchange {booked} Wh with the external grid, "
            f"the AC power flow {d_ext:.1f} Wh"
        )
    if abs(result.losses_wh - d_loss) > ENERGY_BOUND_WH:
        out.append(
            f"interval {result.interval}: books {result.losses_wh} Wh of losses, "
            f"the AC power flow {d_loss:.1f} Wh"
        )
    return out


def _fill_problems(result: ClearingResult, config: MarketConfig) -> list[str]:
    out: list[str] = []
    bus_price = {p.bus: p.price for p in result.prices}
    for p in result.prices:
        if p.energy + p.loss + p.congestion + p.voltage != p.price:
            out.append(f"interval {result.interval}: bus {p.bus} price parts do not add up")
    fee = config.grid_fee_per_kwh
    for f in result.fills:
        where = f"interval {result.interval}: order {f.order_id}"
        if not 0 <= f.filled_wh <= f.quantity_wh:
            out.append(f"{where}: filled {f.filled_wh} Wh of {f.quantity_wh}")
        if f.filled_wh == 0:
            if f.amount != 0:
                out.append(f"{where}: unfilled but amount {f.amount}")
            continue
        if not result.ok:
            out.append(f"{where}: filled in an interval that was not cleared")
        if f.side == "buy":
            cap = min(f.limit_price, config.retail_price)
            want = min(bus_price[f.bus] + fee, cap)
            amount = f.filled_wh * f.price // 1000
        else:
            cap = max(f.limit_price, config.feed_in_price)
            want = max(bus_price[f.bus], cap)
            amount = -((-f.filled_wh * f.price) // 1000)
        if f.price != want:
            out.append(f"{where}: price {f.price}, expected {want} (bus price, fee and caps)")
        if f.amount != amount:
            out.append(f"{where}: amount {f.amount}, {f.filled_wh} Wh × {f.price} gives {amount}")
    return out


def _money_problems(result: ClearingResult, config: MarketConfig) -> list[str]:
    out: list[str] = []
    where = f"interval {result.interval}"
    imp, exp = result.grid_import_wh, result.grid_export_wh
    if min(imp, exp) != 0 or min(imp, exp) < 0:
        out.append(f"{where}: import {imp} and export {exp} Wh both booked")
    if result.grid_import_amount != -((-imp * config.retail_price) // 1000):
        out.append(
            f"{where}: grid import amount {result.grid_import_amount} is not import × retail"
        )
    if result.grid_export_amount != (exp * config.feed_in_price) // 1000:
        out.append(
            f"{where}: grid export amount {result.grid_export_amount} is not export × feed-in"
        )
    pay = sum(f.amount for f in result.fills if f.side == "buy")
    receive = sum(f.amount for f in result.fills if f.side == "sell")
    residual = pay - receive - result.grid_import_amount + result.grid_export_amount
    if result.operator_surplus != max(residual, 0) or result.grid_rounding_amount != min(
        residual, 0
    ):
        out.append(
            f"{where}: residual {residual} is not split into surplus "
            f"{result.operator_surplus} and grid rounding {result.grid_rounding_amount}"
        )
    lmp = {p.bus: Fraction(p.lmp).limit_denominator(10**6) for p in result.prices}
    exact = Fraction(0)
    bound = Fraction(2)
    for f in result.fills:
        if f.filled_wh:
            sign = 1 if f.side == "buy" else -1
            price = lmp[f.bus] + (config.grid_fee_per_kwh if f.side == "buy" else 0)
            exact += sign * f.filled_wh * price / 1000
            bound += 1 + Fraction(f.filled_wh, 1000)
    exact += Fraction(-imp * config.retail_price + exp * config.feed_in_price, 1000)
    if abs(residual - exact) > bound:
        out.append(
            f"{where}: booked residual {residual} is {float(residual - exact):.1f} from the "
            f"exact one, beyond the rounding bound {float(bound):.1f}"
        )
    signed: dict[str, int] = {}
    for f in result.fills:
        signed[f.participant] = signed.get(f.participant, 0) + (
            f.amount if f.side == "sell" else -f.amount
        )
    if {p.participant: p.amount for p in result.payments} != signed:
        out.append(f"{where}: payments are not the signed sums of the fills")
    return out


def audit(result: ClearingResult, feeder: Feeder | None, config: MarketConfig) -> list[str]:
    """Every way ``result`` disagrees with physics, its own prices or the rules.

    Args:
        result: a published clearing result.
        feeder: the feeder it was cleared on, for the energy check (``None``
            skips it; so does a result without an AC check, whose books are
            the LP's by design).
        config: the market's tariffs and fee.
    """
    out = _fill_problems(result, config) + _money_problems(result, config)
    if feeder is not None and result.ac is not None and result.ok:
        out += _energy_problems(result, feeder)
    return out
