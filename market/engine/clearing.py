"""How the engine clears an interval: a small backend protocol and its default.

The engine needs two things from a clearing: canonical result bytes to
journal and hash (replay must reproduce them byte for byte), and a summary it
can serve (fills, prices, payments). :class:`ClearingBackend` is exactly that;
:class:`MarketClearing` implements it with :func:`market.clearing.clear`.
Tests and benchmarks may plug in a cheaper backend.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from grid import Feeder
from market.config import MarketConfig
from market.orders import Order, Participant, Side

if TYPE_CHECKING:
    from market.clearing import ClearingOptions, ClearingResult

__all__ = [
    "BusPriceSummary",
    "ClearingBackend",
    "ClearingSummary",
    "FillSummary",
    "MarketClearing",
]


@dataclass(frozen=True, slots=True)
class FillSummary:
    """One order's share of a clearing (energy Wh, price per kWh, amount signed)."""

    participant: str
    order_id: str
    side: Side
    filled_wh: int
    price: int
    amount: int


@dataclass(frozen=True, slots=True)
class BusPriceSummary:
    """Price at one bus per kWh, with its parts."""

    bus: int
    price: int
    energy_part: int = 0
    congestion_part: int = 0
    voltage_part: int = 0
    loss_part: int = 0


@dataclass(frozen=True, slots=True)
class ClearingSummary:
    """What the engine keeps of a clearing result.

    Attributes:
        mechanism: ``nodal`` or ``uniform``.
        fills: one per order, in the order the orders were given.
        prices: per bus.
        payments: per participant, signed (positive = receives).
        traded_wh: net traded export per participant (sells positive).
        grid_import_wh: energy imported from the external grid.
        grid_export_wh: energy exported to the external grid.
        operator_surplus: congestion rent and fees, ``>= 0``.
        max_loading_percent: highest branch loading of the AC check, if any.
        vm_min_pu: lowest voltage of the AC check, if any.
        vm_max_pu: highest voltage of the AC check, if any.
    """

    mechanism: str
    fills: tuple[FillSummary, ...]
    prices: tuple[BusPriceSummary, ...]
    payments: Mapping[str, int]
    traded_wh: Mapping[str, int]
    grid_import_wh: int
    grid_export_wh: int
    operator_surplus: int
    max_loading_percent: float | None = None
    vm_min_pu: float | None = None
    vm_max_pu: float | None = None


class ClearingBackend(Protocol):
    """Clears one interval's book and reads back what it produced."""

    def clear(
        self,
        feeder: Feeder,
        orders: Sequence[Order],
        participants: Mapping[str, Participant],
        config: MarketConfig,
        *,
        interval: int,
        mechanism: str,
    ) -> bytes:
        """Clear the book of ``interval``; return the result's canonical JSON.

        The same inputs must give the same bytes.

        Raises:
            ClearingError: no optimal result (the engine records the failure).
        """
        ...

    def decode(self, result_json: bytes) -> ClearingSummary:
        """The summary of a result made by :meth:`clear`."""
        ...


#: Flows kept for the engine to take; it takes each right after its clearing.
_KEPT_FLOWS = 16


class MarketClearing:
    """The default backend: :func:`market.clearing.clear` with fixed options.

    Besides the result's bytes it hands the engine the AC power flow the
    clearing ran for the published schedule (:meth:`take_flows`), which the
    engine journals beside the result for the report to read.

    Args:
        options: clearing options; the engine validated every order at entry,
            so ``validate`` is switched off unless given explicitly.
    """

    def __init__(self, options: ClearingOptions | None = None) -> None:
        from market.clearing import ClearingOptions

        self.options = options if options is not None else ClearingOptions(validate=False)
        self._flows: dict[int, dict[str, object]] = {}
        self._flows_lock = threading.Lock()

    def clear(
        self,
        feeder: Feeder,
        orders: Sequence[Order],
        participants: Mapping[str, Participant],
        config: MarketConfig,
        *,
        interval: int,
        mechanism: str,
    ) -> bytes:
        """Clear with :meth:`clear_result`; return ``to_json()``."""
        from market.clearing.flows import flows_to_body

        result = self.clear_result(
            feeder, orders, participants, config, interval=interval, mechanism=mechanism
        )
        with self._flows_lock:
            if result.flows is None:
                self._flows.pop(interval, None)
            else:
                self._flows[interval] = flows_to_body(result.flows)
                while len(self._flows) > _KEPT_FLOWS:  # clearings nobody took (replay checks)
                    del self._flows[next(iter(self._flows))]
        return result.to_json()

    def clear_result(
        self,
        feeder: Feeder,
        orders: Sequence[Order],
        participants: Mapping[str, Participant],
        config: MarketConfig,
        *,
        interval: int,
        mechanism: str,
    ) -> ClearingResult:
        """The :func:`market.clearing.clear` result of one book."""
        from market.clearing import clear

        return clear(
            feeder,
            list(orders),
            dict(participants),
            config,
            mechanism=mechanism,  # type: ignore[arg-type]  # checked by the engine
            options=self.options,
            interval=interval,
        )

    def take_flows(self, interval: int) -> dict[str, object] | None:
        """The journal form of the AC power flow of ``interval``'s last clearing, once.

        None when that clearing ran none for its published schedule (AC check
        off, or the clearing failed).
        """
        with self._flows_lock:
            return self._flows.pop(interval, None)

    def decode(self, result_json: bytes) -> ClearingSummary:
        """Summarise with ``ClearingResult.from_json``."""
        from market.clearing import ClearingResult

        return summarise(ClearingResult.from_json(result_json))


def summarise(result: ClearingResult) -> ClearingSummary:
    """A :class:`ClearingSummary` of a :class:`market.clearing.ClearingResult`.

    The clearing's fill amounts are unsigned (buyers pay, sellers receive);
    the summary signs them from the participant's side.
    """
    fills = tuple(
        FillSummary(
            participant=f.participant,
            order_id=f.order_id,
            side=Side(f.side),
            filled_wh=f.filled_wh,
            price=f.price,
            amount=-f.amount if f.side == Side.BUY.value else f.amount,
        )
        for f in result.fills
    )
    traded: dict[str, int] = {}
    for f in fills:
        sign = 1 if f.side is Side.SELL else -1
        traded[f.participant] = traded.get(f.participant, 0) + sign * f.filled_wh
    ac = result.ac
    return ClearingSummary(
        mechanism=result.mechanism,
        fills=fills,
        prices=tuple(
            BusPriceSummary(p.bus, p.price, p.energy, p.congestion, p.voltage, p.loss)
            for p in result.prices
        ),
        payments={p.participant: p.amount for p in result.payments},
        traded_wh=traded,
        grid_import_wh=result.grid_import_wh,
        grid_export_wh=result.grid_export_wh,
        operator_surplus=result.operator_surplus,
        max_loading_percent=(
            None
            if ac is None or not ac.converged
            else max(ac.max_line_loading_percent, ac.max_trafo_loading_percent)
        ),
        vm_min_pu=None if ac is None or not ac.converged else ac.vm_min_pu,
        vm_max_pu=None if ac is None or not ac.converged else ac.vm_max_pu,
    )
