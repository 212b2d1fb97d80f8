"""The engine's rolling-horizon clearing: one roll per gate closure while flexibility is live.

At the gate of interval ``k`` with any live flexibility order, the engine
clears ``k, k+1, …, k+n−1`` in one LP (:func:`market.clearing.horizon.clear_horizon`):
the closed book of ``k``, the open books of the later intervals, every live
flexibility order at its current state. Only ``k`` is firm: its result is
journaled as the interval's clearing (``cleared``, the same JSON as a
single-interval clearing, flexibility fills under ``<order id>/in`` and
``<order id>/out``), so trades, payments and settlement work as for any
interval. The whole roll is journaled first (``flex_roll``, see
:mod:`market.engine._flex`) with everything it cleared: the keys of every
ordinary order, every flexibility order as it stood, and the base of every
interval the journal does not hold yet. So a replay, and anyone holding the
interval's bundle (:mod:`market.bundle`), can clear it again on the same
inputs and compare bytes.
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
from market.engine._flex import LIVE, flex_body, flex_from_body
from market.errors import ClearingError, MarketError
from market.flex import FlexOrder
from market.orders import Order, Participant

if TYPE_CHECKING:
    from market.clearing.horizon import HorizonResult
    from market.engine.state import MarketState
    from market.forecast import BaseInterval, BaseViews, ViewCache

__all__ = [
    "RollInputs",
    "RollOutcome",
    "clear_roll",
    "horizon_length",
    "journaled_inputs",
    "roll_inputs",
    "run_roll",
]

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
    #: the base of every interval (None: take them from the engine's forecast views)
    bases: tuple[BaseInterval, ...] | None = None

    def body(self, known: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
        """The ``flex_roll`` journal body; ``known`` is the base per interval the
        journal already holds (``MarketState.bases``): only new or changed bases
        are written; ``bases`` is None for a roll cleared without a forecast."""
        bases: dict[str, Any] | None = None
        if self.bases is not None:
            bases = {}
            for t, base in enumerate(self.bases):
                record = base.to_json()
                if known.get(self.interval + t) != record:
                    bases[str(self.interval + t)] = record
        return {
            "interval": self.interval,
            "orders": [[[o.participant, o.order_id] for o in book] for book in self.orders],
            "flex": [
                [f.participant, f.order_id, v]
                for f, v in zip(self.flex, self.versions, strict=True)
            ],
            "flex_orders": [flex_body(f) for f in self.flex],
            "bases": bases,
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
    """The inputs of a journaled roll, rebuilt from its body and the state it
    was journaled in (its ordinary orders, and the bases journaled before it).

    Raises:
        KeyError: an order or a base the roll names is not in the state.
    """
    from market.forecast import BaseInterval

    books = tuple(
        tuple(state.orders[(str(p), str(oid))].order for p, oid in keys) for keys in body["orders"]
    )
    if "flex_orders" in body:  # as the roll cleared them (an amendment may have followed)
        flex = [flex_from_body(b) for b in body["flex_orders"]]
    else:  # a journal from before flex_orders: the state the roll was journaled in
        flex = [state.flex[(str(p), str(oid))].order for p, oid, _ in body["flex"]]
    k = int(body["interval"])
    bases = None
    if body.get("bases") is not None:  # cleared against a forecast: every base is journaled
        journaled = {**state.bases, **{int(t): b for t, b in body["bases"].items()}}
        bases = tuple(BaseInterval.from_json(journaled[k + t]) for t in range(len(books)))
    return RollInputs(
        k,
        books,
        tuple(flex),
        tuple(int(v) for _, _, v in body["flex"]),
        dict(state.participants),
        bases,
    )


@dataclass(frozen=True, slots=True)
class RollOutcome:
    """A roll's result: the horizon JSON and the firm interval's clearing JSON."""

    ok: bool
    error: str
    horizon_json: bytes
    firm_json: bytes
    bases: tuple[BaseInterval, ...]  # per interval cleared; empty without a forecast
    length: int

    @property
    def base(self) -> BaseInterval | None:
        """The firm interval's base."""
        return self.bases[0] if self.bases else None


def _views(
    feeder: Feeder, views: ViewCache | None, inputs: RollInputs, journaled: BaseViews | None
) -> tuple[list[Feeder], tuple[BaseInterval, ...]]:
    """One feeder view per interval and its base: the journaled bases when the
    inputs carry them, else the forecast's, cut where it ends (the firm one must
    be covered).

    Raises:
        ForecastError: the forecast does not cover the firm interval.
    """
    if inputs.bases is not None:
        if journaled is None:
            return [b.view(feeder) for b in inputs.bases], inputs.bases
        return [journaled.view(b) for b in inputs.bases], inputs.bases
    interval, length = inputs.interval, len(inputs.orders)
    if views is None:
        return [feeder] * length, ()
    first, base = views.at(interval)
    out, bases = [first], [base]
    for t in range(interval + 1, interval + length):
        try:
            view, b = views.at(t)
        except MarketError:
            break
        out.append(view)
        bases.append(b)
    return out, tuple(bases)


def clear_roll(
    feeders: Sequence[Feeder],
    inputs: RollInputs,
    market: MarketConfig,
    options: ClearingOptions | None,
) -> HorizonResult:
    """Clear a roll's inputs on one feeder view per interval (the first
    ``len(feeders)`` intervals); what the engine, its replay and ``gridex
    verify`` all run.

    Raises:
        MarketError: the roll does not clear (see :func:`clear_horizon`).
    """
    from market.clearing.horizon import clear_horizon

    books: Sequence[Sequence[Order]] = inputs.orders[: len(feeders)]
    return clear_horizon(
        feeders,
        books,
        inputs.flex,
        inputs.participants,
        market,
        first_interval=inputs.interval,
        options=replace(options or ClearingOptions(), validate=False),
    )


def run_roll(
    feeder: Feeder,
    views: ViewCache | None,
    market: MarketConfig,
    inputs: RollInputs,
    options: ClearingOptions | None,
    *,
    journaled: BaseViews | None = None,
) -> RollOutcome:
    """Clear one roll; never raises (a failure is an outcome, as for single intervals).

    Inputs that carry their bases are cleared on views of them (from
    ``journaled`` when given, so a replay reuses one view per base).
    """
    k = inputs.interval
    bases: tuple[BaseInterval, ...] = ()
    try:
        feeders, bases = _views(feeder, views, inputs, journaled)
        result = clear_roll(feeders, inputs, market, options)
    except ClearingError as exc:
        logger.warning("interval %d: the flexibility roll failed: %s", k, exc)
        return RollOutcome(False, str(exc), b"", b"", bases[:1], 0)
    except MarketError as exc:
        logger.warning("interval %d: not cleared: %s", k, exc)
        return RollOutcome(False, str(exc), b"", b"", bases[:1], 0)
    except Exception as exc:  # a clearing bug must not stop the market
        logger.exception("interval %d: the flexibility roll raised", k)
        error = f"internal clearing error: {type(exc).__name__}: {exc}"
        return RollOutcome(False, error, b"", b"", bases[:1], 0)
    n = len(feeders)
    return RollOutcome(True, "", result.to_json(), result.firm.to_json(), bases[:n], n)
