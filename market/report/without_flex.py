"""The day without flexibility: each rolled interval's ordinary book cleared alone.

For every interval the engine cleared in a flexibility roll, the same
ordinary orders are cleared ``nodal`` on their own, on the interval's
journaled base and with the engine's options, as if no battery, EV or
heat pump had offered anything. Comparing the two says what flexibility
did for the grid: PV that the limits left unsold, demand left unserved,
the intervals where a limit bound (a congestion or voltage part in a bus
price) and the congestion and voltage rent it earned.

Which limit bound is read from each schedule's AC check: in an interval
where some bus price has a congestion or voltage part, a limit is *at its
bound* when the schedule's power flow takes it within :data:`AT_LIMIT_PP`
percentage points of its loading limit (the transformers', the lines') or
within :data:`AT_LIMIT_PU` of the voltage band. A limit that bound in the
day without flexibility is *relieved* where, in the same intervals, the
limits held back less energy with flexibility (PV unsold and demand
unserved): :func:`reliefs`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AT_LIMIT_PP",
    "AT_LIMIT_PU",
    "Books",
    "FlexEffect",
    "IntervalEffect",
    "Outcome",
    "Relief",
    "outcome_of",
    "reliefs",
    "without_flex",
]

#: A loading within this many percentage points of its limit is at its bound.
AT_LIMIT_PP = 1.0
#: A voltage within this many p.u. of its band is at its bound.
AT_LIMIT_PU = 0.005

TRANSFORMER = "transformer loading"
LINE = "line loading"
VOLTAGE_HIGH = "voltage (upper band)"
VOLTAGE_LOW = "voltage (lower band)"


@dataclass(frozen=True)
class Outcome:
    """One interval's clearing, flexibility fills left out of the energy figures.

    Attributes:
        unsold_wh: sell quantity not filled (PV curtailed).
        unserved_wh: buy quantity not filled.
        binding: some bus price has a congestion or voltage part.
        rent: congestion and voltage rent, base units (unrounded).
        at_limit: the limits at their bound (module docstring), empty unless binding.
        trafo_loading_percent, line_loading_percent: the schedule's highest loadings.
    """

    unsold_wh: int
    unserved_wh: int
    binding: bool
    rent: float
    at_limit: tuple[str, ...]
    trafo_loading_percent: float
    line_loading_percent: float

    @property
    def held_back_wh(self) -> int:
        """PV unsold plus demand unserved, Wh."""
        return self.unsold_wh + self.unserved_wh


@dataclass(frozen=True)
class Books:
    """One mechanism's figures over the rolled intervals (ordinary orders only)."""

    unsold_wh: int  # sell quantity not filled: PV curtailed
    unserved_wh: int  # buy quantity not filled
    binding: int  # intervals with a congestion or voltage part in some bus price
    rent: int  # congestion and voltage rent, base units

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> Books:
        """The sums over ``outcomes``."""
        return cls(
            sum(o.unsold_wh for o in outcomes),
            sum(o.unserved_wh for o in outcomes),
            sum(o.binding for o in outcomes),
            round(sum(o.rent for o in outcomes)),
        )


@dataclass(frozen=True)
class IntervalEffect:
    """One rolled interval without and with its flexibility.

    ``charged_wh`` and ``discharged_wh`` are the firm flexibility fills
    (bought: batteries charging, EVs and heat pumps drawing; sold: batteries
    discharging).
    """

    interval: int
    without: Outcome
    with_flex: Outcome
    charged_wh: int
    discharged_wh: int


@dataclass(frozen=True)
class Relief:
    """A limit that bound in the day without flexibility, and what flexibility did there.

    Attributes:
        limit: which limit (:data:`TRANSFORMER`, :data:`LINE`, :data:`VOLTAGE_HIGH`,
            :data:`VOLTAGE_LOW`).
        intervals: where it was at its bound without flexibility.
        held_back_without_wh, held_back_with_wh: PV unsold plus demand unserved
            in those intervals, without and with flexibility.
        still_at_limit: how many of those intervals it was at its bound with flexibility.
        charged_wh, discharged_wh: the flexibility fills in those intervals.
    """

    limit: str
    intervals: tuple[int, ...]
    held_back_without_wh: int
    held_back_with_wh: int
    still_at_limit: int
    charged_wh: int
    discharged_wh: int

    @property
    def relieved(self) -> bool:
        """The limits held back less energy there with flexibility than without."""
        return self.held_back_with_wh < self.held_back_without_wh

    def line(self) -> str:
        """One line for a terminal: the limit, where it bound, and what flexibility did."""
        return (
            f"{self.limit} at its limit in {len(self.intervals)} intervals without "
            f"flexibility: {'relieved' if self.relieved else 'not relieved'} "
            f"({self.held_back_without_wh / 1000:.1f} kWh held back there without it, "
            f"{self.held_back_with_wh / 1000:.1f} kWh with it)"
        )


@dataclass(frozen=True)
class FlexEffect:
    """The rolled intervals with their flexibility, and without it."""

    intervals: int
    with_flex: Books
    without: Books
    rows: tuple[IntervalEffect, ...] = ()


def outcome_of(result: Mapping[str, Any], flex_ids: set[tuple[str, str]], limits: Any) -> Outcome:
    """The :class:`Outcome` of a clearing result (``ClearingResult.to_dict``).

    ``flex_ids`` holds ``(participant, fill order id)`` of every flexibility
    fill; ``limits`` is the feeder's :class:`grid.Limits`.
    """
    unsold = unserved = 0
    rent = 0.0
    parts = {int(p["bus"]): int(p["congestion"]) + int(p["voltage"]) for p in result["prices"]}
    for f in result["fills"]:
        if (str(f["participant"]), str(f["order_id"])) in flex_ids:
            continue
        left = int(f["quantity_wh"]) - int(f["filled_wh"])
        if f["side"] == "sell":
            unsold += left
        else:
            unserved += left
        sign = 1 if f["side"] == "buy" else -1
        rent += parts.get(int(f["bus"]), 0) * sign * int(f["filled_wh"]) / 1000
    binding = any(parts.values())
    ac = result.get("ac") or {}
    trafo = float(ac.get("max_trafo_loading_percent", 0.0))
    line = float(ac.get("max_line_loading_percent", 0.0))
    at: list[str] = []
    if binding and ac.get("converged"):
        limited = np.asarray(limits.branch_limited)
        is_line = np.asarray(limits.branch_is_line)
        loading = np.asarray(limits.max_loading_percent)
        for name, mask, value in ((TRANSFORMER, ~is_line, trafo), (LINE, is_line, line)):
            bounds = loading[limited & mask]
            if bounds.size and value >= float(bounds.min()) - AT_LIMIT_PP:
                at.append(name)
        if float(ac["vm_max_pu"]) >= float(np.min(limits.vm_max_pu)) - AT_LIMIT_PU:
            at.append(VOLTAGE_HIGH)
        if float(ac["vm_min_pu"]) <= float(np.max(limits.vm_min_pu)) + AT_LIMIT_PU:
            at.append(VOLTAGE_LOW)
    return Outcome(unsold, unserved, binding, rent, tuple(at), trafo, line)


def reliefs(rows: Sequence[IntervalEffect]) -> list[Relief]:
    """Every limit at its bound in the day without flexibility (module docstring), in
    the order first met."""
    names = list(dict.fromkeys(n for r in rows for n in r.without.at_limit))
    out = []
    for name in names:
        there = [r for r in rows if name in r.without.at_limit]
        out.append(
            Relief(
                name,
                tuple(r.interval for r in there),
                sum(r.without.held_back_wh for r in there),
                sum(r.with_flex.held_back_wh for r in there),
                sum(name in r.with_flex.at_limit for r in there),
                sum(r.charged_wh for r in there),
                sum(r.discharged_wh for r in there),
            )
        )
    return out


def _flex_fills(result: Mapping[str, Any], flex_ids: set[tuple[str, str]]) -> tuple[int, int]:
    """Charged (bought) and discharged (sold) flexibility fills of a result, Wh."""
    bought = sold = 0
    for f in result["fills"]:
        if (str(f["participant"]), str(f["order_id"])) in flex_ids:
            if f["side"] == "buy":
                bought += int(f["filled_wh"])
            else:
                sold += int(f["filled_wh"])
    return bought, sold


def without_flex(journal: Path, feeder: Any) -> FlexEffect | None:
    """Clear every rolled interval of ``journal`` again without its flexibility
    (module docstring); None when nothing was rolled.

    Raises:
        InputFileError: the journal cannot be read.
        MarketError: an interval's ordinary book does not clear on its own.
    """
    from market.clearing import clear
    from market.engine.clearing import MarketClearing
    from market.forecast import BaseInterval
    from market.report.journal import read_journal

    run = read_journal(journal)
    state = run.state
    if not state.flex_rolls:
        return None
    options = replace(MarketClearing().options, validate=False)
    flex_ids: set[tuple[str, str]] = set()
    for roll in state.flex_rolls.values():
        for _, body in roll.flex:
            p, oid = str(body["participant"]).lower(), str(body["order_id"])
            flex_ids |= {(p, f"{oid}/in"), (p, f"{oid}/out")}
    limits = feeder.limits
    rows: list[IntervalEffect] = []
    for k, roll in sorted(state.flex_rolls.items()):
        flexed = json.loads(roll.horizon_json)["results"][0]["result"]
        view = feeder if roll.bases is None else BaseInterval.from_json(roll.bases[0]).view(feeder)
        orders = [state.orders[key].order for key in roll.orders[0]]
        alone = clear(
            view, orders, dict(state.participants), run.market, options=options, interval=k
        ).to_dict()
        rows.append(
            IntervalEffect(
                k,
                outcome_of(alone, flex_ids, limits),
                outcome_of(flexed, flex_ids, limits),
                *_flex_fills(flexed, flex_ids),
            )
        )
    return FlexEffect(
        len(rows),
        Books.of([r.with_flex for r in rows]),
        Books.of([r.without for r in rows]),
        tuple(rows),
    )
