"""The engine's rolling-horizon clearing: one roll per gate closure while flexibility is live.

At the gate of interval ``k`` with any live flexibility order, the engine
clears ``k, k+1, …, k+n−1`` in one LP (:func:`market.clearing.horizon.clear_horizon`):
the closed book of ``k``, the open books of the later intervals, every live
flexibility order at its current state. Only ``k`` is firm: its result is
journaled as the interval's clearing (``cleared``, the same JSON as a
single-interval clearing, flexibility fills under ``<order id>/in`` and
``<order id>/out``), so trades, payments and settlement work as for any
interval. The whole roll is journaled first (``flex_roll``, see
:mod:`market.engine._flex`) with the keys of every order it saw, so a replay
can clear it again on the same inputs and compare bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gridex.v1 import types_pb2 as pb

from grid import Feeder
from market.clearing.options import ClearingOptions
from market.config import MarketConfig
from market.engine._flex import LIVE
from market.errors import ClearingError, MarketError
from market.flex import FlexOrder
from market.orders import Order, Participant

if TYPE_CHECKING:
    from market.engine.state import MarketState
    from market.forecast import BaseInterval, ViewCache

__all__ = ["RollInputs", "RollOutcome", "horizon_length", "roll_inputs", "run_roll"]

logger = logging.getLogger(__name__)


def horizon_length(configured: int, interval_s: int) -> int:
    """Intervals per roll: ``configured``, or 24 h of intervals when it is 0."""
    return configured if configured > 0 else max(1, 86_400 // interval_s)


@dataclass(frozen=True, slots=True)
class RollInputs:
    """What one roll clears (taken under the engine lock)."""

    interval: int
    orders: tuple[tuple[Order, ...], ...]  # per interval, the firm one first
    flex: tuple[FlexOrder, ...]
    versions: tuple[int, ...]
    participants: dict[str, Participant]

    def body(self) -> dict[str, Any]:
        """The ``flex_roll`` journal body."""
        return {
            "interval": self.interval,
            "orders": [[[o.participant, o.order_id] for o in book] for book in self.orders],
            "flex": [
                [f.participant, f.order_id, v]
                for f, v in zip(self.flex, self.versions, strict=True)
            ],
        }


def live_flex(state: MarketState) -> list[tuple[FlexOrder, int]]:
    """Every live flexibility order and its version, in key order."""
    return [(r.order, r.version) for _, r in sorted(state.flex.items()) if r.status == LIVE]


def roll_inputs(state: MarketState, interval: int, length: int) -> RollInputs:
    """The inputs of the roll whose firm interval is ``interval``."""
    books: list[tuple[Order, ...]] = []
    for t in range(interval, interval + length):
        s = state.intervals.get(t)
        wanted = pb.ORDER_STATUS_CLOSED if t == interval else pb.ORDER_STATUS_OPEN
        books.append(() if s is None else tuple(r.order for r in s.orders if r.status == wanted))
    flex = live_flex(state)
    return RollInputs(
        interval,
        tuple(books),
        tuple(f for f, _ in flex),
        tuple(v for _, v in flex),
        dict(state.participants),
    )


def journaled_inputs(state: MarketState, body: Mapping[str, Any]) -> RollInputs:
    """The inputs of a journaled roll, rebuilt from the state it was journaled in.

    Raises:
        KeyError: an order the roll names is not in the state.
    """
    books = tuple(
        tuple(state.orders[(str(p), str(oid))].order for p, oid in keys) for keys in body["orders"]
    )
    flex: list[FlexOrder] = []
    for p, oid, _ in body["flex"]:
        flex.append(state.flex[(str(p), str(oid))].order)
    return RollInputs(
        int(body["interval"]),
        books,
        tuple(flex),
        tuple(int(v) for _, _, v in body["flex"]),
        dict(state.participants),
    )


@dataclass(frozen=True, slots=True)
class RollOutcome:
    """A roll's result: the horizon JSON and the firm interval's clearing JSON."""

    ok: bool
    error: str
    horizon_json: bytes
    firm_json: bytes
    base: BaseInterval | None
    length: int


def _views(
    feeder: Feeder, views: ViewCache | None, interval: int, length: int
) -> tuple[list[Feeder], BaseInterval | None]:
    """One feeder view per interval, cut where the forecast ends (the firm one must be covered).

    Raises:
        ForecastError: the forecast does not cover the firm interval.
    """
    if views is None:
        return [feeder] * length, None
    first, base = views.at(interval)
    out = [first]
    for t in range(interval + 1, interval + length):
        try:
            out.append(views.at(t)[0])
        except MarketError:
            break
    return out, base


def run_roll(
    feeder: Feeder,
    views: ViewCache | None,
    market: MarketConfig,
    inputs: RollInputs,
    options: ClearingOptions | None,
) -> RollOutcome:
    """Clear one roll; never raises (a failure is an outcome, as for single intervals)."""
    from market.clearing.horizon import clear_horizon

    k = inputs.interval
    opts = replace(options or ClearingOptions(), validate=False)
    base: BaseInterval | None = None
    try:
        feeders, base = _views(feeder, views, k, len(inputs.orders))
        books: Sequence[Sequence[Order]] = inputs.orders[: len(feeders)]
        result = clear_horizon(
            feeders,
            books,
            inputs.flex,
            inputs.participants,
            market,
            first_interval=k,
            options=opts,
        )
    except ClearingError as exc:
        logger.warning("interval %d: the flexibility roll failed: %s", k, exc)
        return RollOutcome(False, str(exc), b"", b"", base, 0)
    except MarketError as exc:
        logger.warning("interval %d: not cleared: %s", k, exc)
        return RollOutcome(False, str(exc), b"", b"", base, 0)
    except Exception as exc:  # a clearing bug must not stop the market
        logger.exception("interval %d: the flexibility roll raised", k)
        error = f"internal clearing error: {type(exc).__name__}: {exc}"
        return RollOutcome(False, error, b"", b"", base, 0)
    return RollOutcome(True, "", result.to_json(), result.firm.to_json(), base, len(feeders))
