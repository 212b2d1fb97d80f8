"""The clearing result: a frozen value with a canonical, byte-stable serialisation.

Rows of the result (fills, prices, trades, payments) are typed named tuples
rather than frozen dataclasses: a 10k-order book creates tens of thousands of
them, and a named tuple is built several times faster than a frozen
dataclass, while being just as immutable.

:meth:`ClearingResult.to_json` writes UTF-8 JSON with sorted keys, no
whitespace and every float rounded to 6 decimals at construction, so the same
input always gives the same bytes (the engine hashes them for settlement).
Solver statistics and timings are not part of those bytes unless asked for,
and do not take part in equality: two clearings of the same book are equal
even when one took longer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np

from grid import AcReport, Feeder, FloatArray
from market.clearing.status import SolutionStatus, Status, Termination
from market.errors import InputFileError

__all__ = [
    "GRID",
    "AcCheck",
    "BusPrice",
    "ClearingResult",
    "Fill",
    "Payment",
    "SolverStats",
    "Trade",
    "net_injection_mw",
]

#: Counterparty name of the external grid in :class:`Trade`.
GRID = "grid"
#: Version of the serialised layout; bump on any change to the bytes.
FORMAT_VERSION = 3


def rounded(value: float, digits: int = 6) -> float:
    """``value`` rounded for serialisation (``-0.0`` folded into ``0.0``)."""
    return round(float(value), digits) + 0.0


class Fill(NamedTuple):
    """How much of one order cleared, and what it pays or receives.

    Attributes:
        order_id: the client's order id.
        participant: the participant's lower-case address.
        side: ``"buy"`` or ``"sell"``.
        bus: pandapower bus index of the participant.
        quantity_wh: the order's quantity, Wh.
        limit_price: the order's limit, base units per kWh.
        filled_wh: cleared energy, Wh (0 ≤ filled_wh ≤ quantity_wh).
        price: base units per kWh the order pays (buy, grid fee included) or
            receives (sell).
        amount: base units the order pays (buy) or receives (sell).
    """

    order_id: str
    participant: str
    side: str
    bus: int
    quantity_wh: int
    limit_price: int
    filled_wh: int
    price: int
    amount: int


class BusPrice(NamedTuple):
    """Locational price of one bus, base units per kWh injected there.

    ``price = energy + loss + congestion + voltage`` exactly; ``lmp`` is the
    unrounded total.
    """

    bus: int
    price: int
    energy: int
    loss: int
    congestion: int
    voltage: int
    lmp: float


class Trade(NamedTuple):
    """One bilateral trade: energy from a seller (or the grid) to a buyer (or the grid).

    Attributes:
        buyer: buyer's address, or ``"grid"`` for export.
        buyer_order: the buyer's order id (empty for the grid).
        buyer_bus: pandapower bus of the buyer (the external grid's bus for the grid).
        seller: seller's address, or ``"grid"`` for import.
        seller_order: the seller's order id (empty for the grid).
        seller_bus: pandapower bus of the seller.
        energy_wh: energy traded, Wh.
        price: base units per kWh the buyer pays (feed-in price for the grid).
        seller_price: base units per kWh the seller receives (retail price for the grid).
    """

    buyer: str
    buyer_order: str
    buyer_bus: int
    seller: str
    seller_order: str
    seller_bus: int
    energy_wh: int
    price: int
    seller_price: int


class Payment(NamedTuple):
    """Net money of one participant in the interval, base units (positive = receives)."""

    participant: str
    amount: int


@dataclass(frozen=True, slots=True)
class AcCheck:
    """AC power-flow check of the final schedule.

    Attributes:
        passed: the power flow converged and no limit is broken by more
            than ``tolerance``.
        converged: the power flow converged (else every figure is 0).
        tolerance: the allowance, percentage points of loading (/100 in p.u.).
        max_line_loading_percent: highest line loading.
        max_trafo_loading_percent: highest transformer loading.
        vm_min_pu: lowest bus voltage.
        vm_max_pu: highest bus voltage.
        losses_mw: network losses, MW.
        violations: one line per violated limit (the market's: a limit the
            base case already breaks counts only where the schedule makes
            it worse).
        ext_grid_change_wh: the external grid's energy with the schedule
            minus without any market, Wh, unrounded (positive: more import);
            the books' ``grid_import_wh − grid_export_wh`` is its rounding.
        losses_change_wh: the network losses' change, Wh, unrounded.
        agreed: whether the LP's linear prediction of the schedule's flows,
            voltages and external-grid energy agreed with this power flow
            within the options' tolerances (``None``: not compared, as for
            ``uniform`` and ``dc``).
        flow_mismatch: largest |predicted − AC| branch flow over the
            enforced branches, as a fraction of the branch's limit.
        vm_mismatch_pu: largest |predicted − AC| voltage over the enforced buses, p.u.
        slack_mismatch_wh: |predicted − AC| external-grid energy, Wh.
    """

    passed: bool
    converged: bool
    tolerance: float
    max_line_loading_percent: float
    max_trafo_loading_percent: float
    vm_min_pu: float
    vm_max_pu: float
    losses_mw: float
    violations: tuple[str, ...]
    ext_grid_change_wh: float = 0.0
    losses_change_wh: float = 0.0
    agreed: bool | None = None
    flow_mismatch: float = 0.0
    vm_mismatch_pu: float = 0.0
    slack_mismatch_wh: float = 0.0


@dataclass(frozen=True, slots=True)
class SolverStats:
    """Solver statistics and timings (seconds); not part of the canonical bytes.

    ``total_s`` is the whole :func:`~market.clearing.clear` call; ``linearise_s``
    (re-linearisations), ``build_s`` (order validation, arrays and the solver's
    model), ``solve_s``, ``extract_s`` and ``ac_check_s`` split it.
    ``solver_s`` is HiGHS's own run time, summed over rounds.
    """

    solver: str = ""
    rows: int = 0
    columns: int = 0
    nonzeros: int = 0
    iterations: int = 0
    linearise_s: float = 0.0
    build_s: float = 0.0
    solve_s: float = 0.0
    solver_s: float = 0.0
    extract_s: float = 0.0
    ac_check_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True)
class ClearingResult:
    """The outcome of clearing one interval.

    Money is in integer token base units, energy in integer Wh, prices in
    base units per kWh. The books balance exactly (see
    :mod:`market.clearing.books`)::

        Σ sell filled_wh + grid_import_wh == Σ buy filled_wh + grid_export_wh + losses_wh
        Σ buyers' amounts == Σ sellers' amounts + grid_import_amount
                             − grid_export_amount + grid_rounding_amount
                             + operator_surplus

    Attributes:
        interval: interval id.
        interval_s: interval length, seconds.
        mechanism: ``"uniform"`` or ``"nodal"``.
        sensitivities: grid linearisation used (``"none"`` for ``uniform``).
        constraints: grid constraints enforced (empty for ``uniform``).
        status: termination and solution status of the final LP, or
            ``ac_infeasible`` / ``ac_not_converged`` when its schedule failed
            the AC power flow (then nothing is filled).
        fills: one per order, in book order.
        prices: one per feeder bus, in feeder order.
        trades: bilateral attribution (see :mod:`market.clearing.attribution`).
        payments: one per participant with an order, sorted by address.

    ``fills``, ``trades`` and ``payments`` are tuples, or, from
    :func:`~market.clearing.clear`, :class:`~market.clearing.rows.Rows`
    that build their rows on first read and compare equal to those tuples.
        grid_import_wh: energy bought from the external grid.
        grid_export_wh: energy sold to the external grid.
        losses_wh: network losses attributed to the market (may be negative).
        grid_import_amount: what the market pays the external grid.
        grid_export_amount: what the external grid pays the market.
        grid_rounding_amount: rounding dust the operator's rents do not
            cover, carried by the external grid's account (≤ 0).
        operator_surplus: fees, congestion and loss rents less rounding (≥ 0).
        welfare: Σ buy limit·fill − Σ sell limit·fill − retail·import +
            feed-in·export of the integer books, base units (fees included),
            with the limits the LP bid (a buyer's capped at retail) and the power
            flow's import and export.
        rounds: LP solves (``nodal``: linearisation and tightening rounds).
        ac: the AC check of the final schedule, or None when it was off.
        stats: solver statistics and timings.
        flows: the AC power flow behind ``ac``, per bus and branch, when it is the
            flow of these fills (not part of the canonical bytes or of equality;
            None after :meth:`from_json`). The engine journals it so the
            report need not run it again.
    """

    interval: int
    interval_s: int
    mechanism: str
    sensitivities: str
    constraints: tuple[str, ...]
    status: Status
    fills: Sequence[Fill]
    prices: tuple[BusPrice, ...]
    trades: Sequence[Trade]
    payments: Sequence[Payment]
    grid_import_wh: int
    grid_export_wh: int
    losses_wh: int
    grid_import_amount: int
    grid_export_amount: int
    grid_rounding_amount: int
    operator_surplus: int
    welfare: float
    rounds: int
    ac: AcCheck | None
    stats: SolverStats = field(default_factory=SolverStats, compare=False)
    flows: AcReport | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the interval cleared: the LP optimal and its schedule AC-feasible.

        A result that is not ``ok`` carries no fills: nothing trades locally
        and every participant is settled at its tariff.
        """
        return self.status.ok

    @property
    def buyers_pay(self) -> int:
        """Σ of what buyers pay, base units."""
        return sum(f.amount for f in self.fills if f.side == "buy")

    @property
    def sellers_receive(self) -> int:
        """Σ of what sellers receive, base units."""
        return sum(f.amount for f in self.fills if f.side == "sell")

    def price_at(self, bus: int) -> BusPrice:
        """The price of pandapower bus ``bus``.

        Raises:
            KeyError: no such bus.
        """
        for p in self.prices:
            if p.bus == bus:
                return p
        raise KeyError(bus)

    def to_dict(self, *, include_timings: bool = False) -> dict[str, Any]:
        """Plain-data form (what :meth:`to_json` writes)."""
        out: dict[str, Any] = {"format": FORMAT_VERSION}
        for f in fields(self):
            if f.name in ("stats", "flows"):
                continue
            out[f.name] = getattr(self, f.name)
        out["status"] = {
            "termination": self.status.termination.value,
            "solution": self.status.solution.value,
        }
        out["constraints"] = list(self.constraints)
        for name in ("fills", "prices", "trades", "payments"):
            out[name] = [v._asdict() for v in getattr(self, name)]
        out["ac"] = None if self.ac is None else asdict(self.ac)
        if out["ac"] is not None:
            out["ac"]["violations"] = list(self.ac.violations)  # type: ignore[union-attr]
        if include_timings:
            out["stats"] = asdict(self.stats)
        return out

    def to_json(self, *, include_timings: bool = False) -> bytes:
        """Canonical UTF-8 JSON: sorted keys, no whitespace, no timings unless asked."""
        return json.dumps(
            self.to_dict(include_timings=include_timings),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> ClearingResult:
        """Rebuild a result written by :meth:`to_json`.

        Raises:
            InputFileError: ``data`` is not a serialised clearing result.
        """
        try:
            raw = json.loads(data)
            if raw.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported format {raw.get('format')!r}")
            ac = raw["ac"]
            return cls(
                interval=int(raw["interval"]),
                interval_s=int(raw["interval_s"]),
                mechanism=str(raw["mechanism"]),
                sensitivities=str(raw["sensitivities"]),
                constraints=tuple(raw["constraints"]),
                status=Status(
                    Termination(raw["status"]["termination"]),
                    SolutionStatus(raw["status"]["solution"]),
                ),
                fills=tuple(Fill(**v) for v in raw["fills"]),
                prices=tuple(BusPrice(**v) for v in raw["prices"]),
                trades=tuple(Trade(**v) for v in raw["trades"]),
                payments=tuple(Payment(**v) for v in raw["payments"]),
                grid_import_wh=int(raw["grid_import_wh"]),
                grid_export_wh=int(raw["grid_export_wh"]),
                losses_wh=int(raw["losses_wh"]),
                grid_import_amount=int(raw["grid_import_amount"]),
                grid_export_amount=int(raw["grid_export_amount"]),
                grid_rounding_amount=int(raw["grid_rounding_amount"]),
                operator_surplus=int(raw["operator_surplus"]),
                welfare=float(raw["welfare"]),
                rounds=int(raw["rounds"]),
                ac=None if ac is None else AcCheck(**{**ac, "violations": tuple(ac["violations"])}),
                stats=SolverStats(**raw["stats"]) if "stats" in raw else SolverStats(),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputFileError(f"not a serialised clearing result: {exc}") from exc


def net_injection_mw(result: ClearingResult, feeder: Feeder) -> FloatArray:
    """Net market injection per bus of ``result``'s fills, MW, in feeder bus order.

    Positive into the grid (sells minus buys at each bus), as average power
    over the interval: ``Wh · 3600 / interval_s / 10⁶``. This is the vector
    :func:`grid.check_schedule` takes.

    Raises:
        KeyError: a fill's bus is not on ``feeder``.
    """
    out = np.zeros(feeder.n_bus)
    scale = 3600.0 / result.interval_s / 1e6
    for f in result.fills:
        if f.filled_wh:
            sign = 1.0 if f.side == "sell" else -1.0
            out[feeder.position_of(f.bus)] += sign * f.filled_wh * scale
    return out
