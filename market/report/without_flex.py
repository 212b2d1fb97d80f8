"""The day without flexibility: each rolled interval's ordinary book cleared alone.

For every interval the engine cleared in a flexibility roll, the same
ordinary orders are cleared ``nodal`` on their own, on the interval's
journaled base and with the engine's options, as if no battery, EV or
heat pump had offered anything. Comparing the two says what flexibility
did for the grid: PV that the limits left unsold, demand left unserved,
the intervals where a limit bound (a congestion or voltage part in a bus
price) and the congestion and voltage rent it earned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["Books", "FlexEffect", "books_of", "without_flex"]


@dataclass(frozen=True)
class Books:
    """One mechanism's figures over the rolled intervals (ordinary orders only)."""

    unsold_wh: int  # sell quantity not filled: PV curtailed
    unserved_wh: int  # buy quantity not filled
    binding: int  # intervals with a congestion or voltage part in some bus price
    rent: int  # congestion and voltage rent, base units


@dataclass(frozen=True)
class FlexEffect:
    """The rolled intervals with their flexibility, and without it."""

    intervals: int
    with_flex: Books
    without: Books


def books_of(results: Sequence[Mapping[str, Any]], flex_ids: set[tuple[str, str]]) -> Books:
    """Figures of clearing results (``ClearingResult.to_dict``), flexibility fills left out.

    ``flex_ids`` holds ``(participant, fill order id)`` of every flexibility fill.
    """
    unsold = unserved = binding = 0
    rent = 0.0
    for r in results:
        parts = {int(p["bus"]): int(p["congestion"]) + int(p["voltage"]) for p in r["prices"]}
        binding += any(parts.values())
        for f in r["fills"]:
            if (str(f["participant"]), str(f["order_id"])) in flex_ids:
                continue
            left = int(f["quantity_wh"]) - int(f["filled_wh"])
            if f["side"] == "sell":
                unsold += left
            else:
                unserved += left
            sign = 1 if f["side"] == "buy" else -1
            rent += parts.get(int(f["bus"]), 0) * sign * int(f["filled_wh"]) / 1000
    return Books(unsold, unserved, binding, round(rent))


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
    flexed: list[Mapping[str, Any]] = []
    alone: list[Mapping[str, Any]] = []
    flex_ids: set[tuple[str, str]] = set()
    for k, roll in sorted(state.flex_rolls.items()):
        for _, body in roll.flex:
            p, oid = str(body["participant"]).lower(), str(body["order_id"])
            flex_ids |= {(p, f"{oid}/in"), (p, f"{oid}/out")}
        flexed.append(json.loads(roll.horizon_json)["results"][0]["result"])
        view = feeder if roll.bases is None else BaseInterval.from_json(roll.bases[0]).view(feeder)
        orders = [state.orders[key].order for key in roll.orders[0]]
        result = clear(
            view, orders, dict(state.participants), run.market, options=options, interval=k
        )
        alone.append(result.to_dict())
    return FlexEffect(len(flexed), books_of(flexed, flex_ids), books_of(alone, flex_ids))
