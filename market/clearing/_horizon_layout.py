"""The horizon LP's layout: flex orders per interval, coupling, integer schedules.

Private to :mod:`market.clearing.horizon` (its docstring states the rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from grid import Feeder
from market.clearing._horizon_lp import (
    HorizonSolution,
    StorageCols,
    WindowCols,
)
from market.clearing._problem import ClearingProblem, IntArray, OrderBook, price_scale_of
from market.clearing.books import round_fills
from market.config import MarketConfig
from market.flex import (
    EvOrder,
    FlexOrder,
    StorageOrder,
    energy_windows,
    max_energy_wh,
    soc_after,
    stored_wh,
)
from market.orders import Order, Participant, Side, book_order

__all__ = ["FlexSchedule", "inflexible_profile"]


@dataclass(frozen=True)
class FlexSchedule:
    """A flexibility order's integer schedule over the horizon.

    Attributes:
        order_id: the order.
        participant: lower-case address.
        kind: ``storage``, ``ev`` or ``shiftable``.
        charge_wh: metered energy taken per interval, Wh (charging or consumption).
        discharge_wh: metered energy delivered per interval, Wh (storage only).
        soc_wh: storage: state of charge after each interval
            (:func:`market.flex.soc_after`); otherwise energy delivered so far.
        unmet_wh: energy of its windows the horizon leaves undelivered, Wh.
    """

    order_id: str
    participant: str
    kind: str
    charge_wh: tuple[int, ...]
    discharge_wh: tuple[int, ...]
    soc_wh: tuple[int, ...]
    unmet_wh: int

    def to_dict(self) -> dict[str, object]:
        """Canonical form."""
        return {
            "order_id": self.order_id,
            "participant": self.participant,
            "kind": self.kind,
            "charge_wh": list(self.charge_wh),
            "discharge_wh": list(self.discharge_wh),
            "soc_wh": list(self.soc_wh),
            "unmet_wh": self.unmet_wh,
        }


def _kind(order: FlexOrder) -> str:
    if isinstance(order, StorageOrder):
        return "storage"
    return "ev" if isinstance(order, EvOrder) else "shiftable"


def _power_w(order: FlexOrder) -> tuple[int, int]:
    if isinstance(order, StorageOrder):
        return order.max_charge_w, order.max_discharge_w
    return order.max_power_w, 0


def _active(order: FlexOrder, interval: int) -> bool:
    if isinstance(order, StorageOrder):
        return True
    return any(w.start_interval <= interval < w.end_interval for w in energy_windows(order))


def inflexible_profile(
    order: FlexOrder, intervals: Sequence[int], interval_s: int
) -> list[tuple[int, int]]:
    """What the order does without a market across time, (charge, discharge) Wh per interval.

    Storage idles (or charges at full power until its end SoC), an EV or a
    load runs at full power from the start of each window until its need is
    met. The single-interval baseline of the welfare comparison.
    """
    out: list[tuple[int, int]] = []
    if isinstance(order, StorageOrder):
        soc = order.soc_wh
        for _ in intervals:
            c = 0
            if soc < order.end_soc_wh:
                c = min(
                    max_energy_wh(order.max_charge_w, interval_s),
                    int((order.end_soc_wh - soc) / order.charge_efficiency) + 1,
                )
                while c > 0 and soc_after(order, soc, c, 0) > order.max_soc_wh:
                    c -= 1
            soc = soc_after(order, soc, c, 0)
            out.append((c, 0))
        return out
    cap = max_energy_wh(order.max_power_w, interval_s)
    left = {i: w.energy_wh for i, w in enumerate(energy_windows(order))}
    for t in intervals:
        c = 0
        for i, w in enumerate(energy_windows(order)):
            if w.start_interval <= t < w.end_interval:
                c = min(cap, left[i])
                left[i] -= c
        out.append((c, 0))
    return out


def _end_kwh(order: StorageOrder, profile: list[tuple[int, int]] | None, reach: int) -> float:
    """The SoC the horizon must end with, kWh: the order's (capped by reach), or its profile's."""
    if profile is None:
        return min(order.end_soc_wh, reach) / 1000.0
    soc = float(order.soc_wh)
    for c, d in profile:  # the LP's continuous SoC of the profile (a hair of slack for round-off)
        soc += c * order.charge_efficiency - d / order.discharge_efficiency
    return soc / 1000.0 - 1e-9


@dataclass(frozen=True)
class _Layout:
    books: tuple[OrderBook, ...]
    n_ordinary: tuple[int, ...]
    charge: IntArray  # (n_flex, T) index in the interval book, -1 none
    discharge: IntArray


def _layout(  # noqa: PLR0917 - private helper called positionally in one place
    orders: Sequence[Sequence[Order]],
    flex: Sequence[FlexOrder],
    participants: Mapping[str, Participant],
    feeders: Sequence[Feeder],
    intervals: Sequence[int],
    config: MarketConfig,
) -> _Layout:
    n_t = len(intervals)
    charge = np.full((len(flex), n_t), -1, dtype=np.int64)
    discharge = np.full((len(flex), n_t), -1, dtype=np.int64)
    books: list[OrderBook] = []
    n_ord: list[int] = []
    for t, iv in enumerate(intervals):
        book = book_order(orders[t])  # ties break the same way however the orders arrived
        n_ord.append(len(book))
        for d, f in enumerate(flex):
            if not _active(f, iv):
                continue
            p_in, p_out = _power_w(f)
            q_in, q_out = (
                max_energy_wh(p_in, config.interval_s),
                max_energy_wh(p_out, config.interval_s),
            )
            who = f.participant.lower()
            if q_in > 0:
                charge[d, t] = len(book)
                book.append(Order(f"{f.order_id}/in", who, Side.BUY, iv, q_in, config.retail_price))
            if q_out > 0:
                discharge[d, t] = len(book)
                book.append(
                    Order(f"{f.order_id}/out", who, Side.SELL, iv, q_out, config.feed_in_price)
                )
        books.append(OrderBook.build(book, participants, feeders[t]))
    return _Layout(tuple(books), tuple(n_ord), charge, discharge)


def _flex_costs(  # noqa: PLR0917 - private helper called positionally in one place
    problem: ClearingProblem,
    layout: _Layout,
    t: int,
    flex: Sequence[FlexOrder],
    config: MarketConfig,
    fixed: Sequence[list[tuple[int, int]]] | None,
) -> ClearingProblem:
    cost = problem.cost.copy()
    qty = problem.quantity_kwh.copy()
    scale = problem.price_scale
    for d, f in enumerate(flex):
        ci, di = int(layout.charge[d, t]), int(layout.discharge[d, t])
        if ci >= 0:
            cost[ci] = config.grid_fee_per_kwh / scale
        if di >= 0:
            cost[di] = (f.cycling_price if isinstance(f, StorageOrder) else 0) / scale
        if fixed is not None:
            for idx, wh in ((ci, fixed[d][t][0]), (di, fixed[d][t][1])):
                if idx >= 0:
                    qty[idx] = wh / 1000.0
    return replace(problem, cost=cost, quantity_kwh=qty)


def _coupling(
    flex: Sequence[FlexOrder],
    layout: _Layout,
    intervals: Sequence[int],
    config: MarketConfig,
    fixed: Sequence[list[tuple[int, int]]] | None,
) -> tuple[tuple[StorageCols, ...], tuple[WindowCols, ...]]:
    """Storage and window coupling (with ``fixed`` profiles, a battery ends as its profile does)."""
    scale = price_scale_of(config.retail_price)
    storage: list[StorageCols] = []
    windows: list[WindowCols] = []
    last = intervals[-1] if intervals else 0
    for d, f in enumerate(flex):
        if isinstance(f, StorageOrder):
            reach = f.soc_wh + stored_wh(f, max_energy_wh(f.max_charge_w, config.interval_s)) * len(
                intervals
            )
            storage.append(
                StorageCols(
                    layout.charge[d],
                    layout.discharge[d],
                    float(f.charge_efficiency),
                    float(f.discharge_efficiency),
                    f.soc_wh / 1000.0,
                    f.min_soc_wh / 1000.0,
                    f.max_soc_wh / 1000.0,
                    _end_kwh(f, fixed[d] if fixed else None, reach),
                )
            )
            continue
        cap = max_energy_wh(f.max_power_w, config.interval_s)
        for w in energy_windows(f):
            ts = [t for t, iv in enumerate(intervals) if w.start_interval <= iv < w.end_interval]
            if not ts:
                continue
            beyond = max(0, w.end_interval - max(last + 1, w.start_interval))
            need_h = max(0, w.energy_wh - cap * beyond)
            windows.append(
                WindowCols(
                    np.array(ts, dtype=np.int64),
                    layout.charge[d, ts].astype(np.int64),
                    w.energy_wh / 1000.0,
                    need_h / 1000.0,
                    f.value_per_kwh / scale,
                )
            )
    return tuple(storage), tuple(windows)


def _integer_flex(
    flex: Sequence[FlexOrder],
    layout: _Layout,
    sol: HorizonSolution,
    intervals: Sequence[int],
    books: Sequence[OrderBook],
) -> tuple[IntArray, IntArray, list[FlexSchedule]]:
    n_t = len(intervals)
    cin = np.zeros((len(flex), n_t), dtype=np.int64)
    cout = np.zeros((len(flex), n_t), dtype=np.int64)
    schedules: list[FlexSchedule] = []
    for d, f in enumerate(flex):
        for t in range(n_t):
            for idx, arr in ((layout.charge[d, t], cin), (layout.discharge[d, t], cout)):
                if idx >= 0:
                    q = int(books[t].quantity_wh[idx])
                    arr[d, t] = min(q, max(0, int(np.rint(sol.intervals[t].x_kwh[idx] * 1000.0))))
        path: list[int] = []
        if isinstance(f, StorageOrder):
            soc = f.soc_wh
            for t in range(n_t):
                c, x = int(cin[d, t]), int(cout[d, t])
                while c > 0 and soc_after(f, soc, c, x) > f.max_soc_wh:
                    c -= 1
                while x > 0 and soc_after(f, soc, c, x) < f.min_soc_wh:
                    x -= 1
                cin[d, t], cout[d, t] = c, x
                soc = soc_after(f, soc, c, x)
                path.append(soc)
            unmet = 0
        else:
            left = {i: w.energy_wh for i, w in enumerate(energy_windows(f))}
            done = 0
            for t, iv in enumerate(intervals):
                c = int(cin[d, t])
                for i, w in enumerate(energy_windows(f)):
                    if w.start_interval <= iv < w.end_interval:
                        c = min(c, left[i])
                        left[i] -= c
                cin[d, t] = c
                done += c
                path.append(done)
            first, end = intervals[0], intervals[-1] + 1
            unmet = sum(
                left[i]
                for i, w in enumerate(energy_windows(f))
                if w.start_interval < end and w.end_interval <= end and w.end_interval > first
            )
        schedules.append(
            FlexSchedule(
                f.order_id,
                f.participant.lower(),
                _kind(f),
                tuple(cin[d].tolist()),
                tuple(cout[d].tolist()),
                tuple(path),
                int(unmet),
            )
        )
    return cin, cout, schedules


def _filled(  # noqa: PLR0917 - private helper called positionally in one place
    layout: _Layout,
    problem: ClearingProblem,
    sol: HorizonSolution,
    t: int,
    cin: IntArray,
    cout: IntArray,
) -> IntArray:
    """Integer fills of interval ``t``: ordinary orders pro rata, flex orders as scheduled."""
    n_o = layout.n_ordinary[t]
    book = layout.books[t]
    sub = OrderBook(
        book.orders[:n_o], book.address[:n_o], book.side[:n_o], book.bus[:n_o],
        book.position[:n_o], book.quantity_wh[:n_o], book.limit_price[:n_o],
    )  # fmt: skip
    out = np.zeros(book.n, dtype=np.int64)
    out[:n_o] = round_fills(sub, problem.node[:n_o], sol.intervals[t].x_kwh[:n_o])
    for idx, wh in ((layout.charge[:, t], cin[:, t]), (layout.discharge[:, t], cout[:, t])):
        has = idx >= 0
        out[idx[has]] = wh[has]
    return out
