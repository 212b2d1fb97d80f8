"""Flexibility orders in the engine: records, journal bodies and their three entry kinds.

Entry kinds (applied by :class:`~market.engine.state.MarketState` like the others):

=============  ======================================================================
``flex_order`` :func:`flex_body` of the order, ``amend`` (bool): a flexibility order
               was submitted (version 1) or amended (version + 1)
``flex_cancel`` ``participant``, ``order_id``
``flex_roll``  ``interval`` (the firm one), ``orders``: the ordinary order keys per
               interval of the horizon, ``flex``: ``[participant, order_id, version]``
               per flexibility order cleared, ``flex_orders``: their
               :func:`flex_body` as cleared, ``bases``: ``{interval: base}``
               for each base the journal did not hold yet (None: no
               forecast); blob = the roll's
               :meth:`~market.clearing.horizon.HorizonResult.to_json`
=============  ======================================================================

A roll advances every order it cleared by :func:`market.flex.advance` with
its firm fills, unless the order was amended or cancelled meanwhile (the
owner's newer version wins), so the state of charge the next roll starts
from is exactly the integer rule applied to what was traded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gridex.v1 import market_pb2

from market.errors import (
    AlreadyExistsError,
    EngineStateError,
    JournalError,
    NotFoundError,
)
from market.flex import EnergyWindow, EvOrder, FlexOrder, ShiftableLoadOrder, StorageOrder, advance

if TYPE_CHECKING:
    from market.engine.state import MarketState

__all__ = [
    "FlexRecord",
    "RollRecord",
    "apply_flex_cancel",
    "apply_flex_order",
    "apply_flex_roll",
    "flex_body",
    "flex_from_body",
    "flex_record",
]

LIVE = market_pb2.FLEX_ORDER_STATUS_LIVE
CANCELLED = market_pb2.FLEX_ORDER_STATUS_CANCELLED
DONE = market_pb2.FLEX_ORDER_STATUS_DONE


@dataclass(slots=True)
class FlexRecord:
    """A flexibility order as the engine holds it, and its latest schedule."""

    order: FlexOrder
    version: int
    accepted_at_ms: int
    accepted: FlexOrder  # this version as its owner sent it (``order`` advances per roll)
    status: int = LIVE
    schedule: market_pb2.FlexSchedule | None = None


@dataclass(frozen=True, slots=True)
class RollRecord:
    """What a journaled roll cleared: its firm interval's bundle publishes it.

    Attributes:
        orders: the ordinary order keys of each interval of the horizon.
        flex: ``(version, flex_body)`` of each flexibility order, as cleared.
        bases: each interval's base (journal form); None without a forecast.
        horizon_json: the roll's horizon result.
    """

    orders: tuple[tuple[tuple[str, str], ...], ...]
    flex: tuple[tuple[int, Mapping[str, Any]], ...]
    bases: tuple[Mapping[str, Any], ...] | None
    horizon_json: bytes


def flex_body(order: FlexOrder) -> dict[str, Any]:
    """The journal body of ``order`` (plain JSON types)."""
    head: dict[str, Any] = {"participant": order.participant, "order_id": order.order_id}
    if isinstance(order, StorageOrder):
        return {
            **head,
            "kind": "storage",
            "capacity_wh": order.capacity_wh,
            "soc_wh": order.soc_wh,
            "min_soc_wh": order.min_soc_wh,
            "max_soc_wh": order.max_soc_wh,
            "max_charge_w": order.max_charge_w,
            "max_discharge_w": order.max_discharge_w,
            "charge_efficiency": float(order.charge_efficiency),
            "discharge_efficiency": float(order.discharge_efficiency),
            "end_soc_wh": order.end_soc_wh,
            "cycling_price": order.cycling_price,
        }
    if isinstance(order, EvOrder):
        return {
            **head,
            "kind": "ev",
            "energy_wh": order.energy_wh,
            "max_power_w": order.max_power_w,
            "arrival_interval": order.arrival_interval,
            "departure_interval": order.departure_interval,
            "value_per_kwh": order.value_per_kwh,
        }
    return {
        **head,
        "kind": "shiftable",
        "windows": [[w.start_interval, w.end_interval, w.energy_wh] for w in order.windows],
        "max_power_w": order.max_power_w,
        "value_per_kwh": order.value_per_kwh,
    }


def flex_from_body(body: Mapping[str, Any]) -> FlexOrder:
    """The order of a :func:`flex_body`.

    Raises:
        JournalError: an unknown kind.
    """
    kind = body["kind"]
    p, oid = str(body["participant"]), str(body["order_id"])
    if kind == "storage":
        return StorageOrder(
            oid, p, int(body["capacity_wh"]), int(body["soc_wh"]), int(body["min_soc_wh"]),
            int(body["max_soc_wh"]), int(body["max_charge_w"]), int(body["max_discharge_w"]),
            float(body["charge_efficiency"]), float(body["discharge_efficiency"]),
            int(body["end_soc_wh"]), int(body["cycling_price"]),
        )  # fmt: skip
    if kind == "ev":
        return EvOrder(
            oid, p, int(body["energy_wh"]), int(body["max_power_w"]),
            int(body["arrival_interval"]), int(body["departure_interval"]),
            int(body["value_per_kwh"]),
        )  # fmt: skip
    if kind == "shiftable":
        windows = tuple(EnergyWindow(int(a), int(b), int(e)) for a, b, e in body["windows"])
        return ShiftableLoadOrder(
            oid, p, windows, int(body["max_power_w"]), int(body["value_per_kwh"])
        )
    raise JournalError(f"journal entry flex_order: unknown kind {kind!r}")


def _kind(order: FlexOrder) -> str:
    return str(flex_body(order)["kind"])


def flex_record(state: MarketState, participant: str, order_id: str) -> FlexRecord:
    """The flexibility order with that key.

    Raises:
        NotFoundError: there is none.
    """
    record = state.flex.get((participant, order_id))
    if record is None:
        raise NotFoundError(
            f"client_order_id: no flexibility order {order_id!r} of participant {participant}"
        )
    return record


def apply_flex_order(
    state: MarketState, at_ms: int, body: Mapping[str, Any], _: bytes | None
) -> list[Any]:
    """Entry ``flex_order``: submit (version 1) or amend (version + 1)."""
    order = flex_from_body(body)
    key = (order.participant, order.order_id)
    existing = state.flex.get(key)
    if not body["amend"]:
        if existing is not None:
            raise AlreadyExistsError(
                f"client_order_id: {order.order_id!r} is already used by participant "
                f"{order.participant} for a flexibility order (amend it with AmendFlexOrder)"
            )
        state.flex[key] = FlexRecord(order, 1, at_ms, order)
        return []
    record = flex_record(state, *key)
    if record.status != LIVE:
        what = "cancelled" if record.status == CANCELLED else "finished"
        raise EngineStateError(f"client_order_id: flexibility order {order.order_id!r} is {what}")
    if _kind(record.order) != _kind(order):
        raise EngineStateError(
            f"order: an amendment must keep the asset kind {_kind(record.order)!r}, "
            f"got {_kind(order)!r}"
        )
    record.order, record.version, record.accepted_at_ms = order, record.version + 1, at_ms
    record.accepted = order
    return []


def apply_flex_cancel(
    state: MarketState, at_ms: int, body: Mapping[str, Any], _: bytes | None
) -> list[Any]:
    """Entry ``flex_cancel``."""
    record = flex_record(state, str(body["participant"]), str(body["order_id"]))
    if record.status == LIVE:
        record.status = CANCELLED
    return []


def _bus_prices(result: Mapping[str, Any]) -> dict[int, int]:
    return {int(p["bus"]): int(p["price"]) for p in result["prices"]}


def _roll_record(
    state: MarketState, first: int, body: Mapping[str, Any], blob: bytes, *, n: int
) -> RollRecord:
    """What a ``flex_roll`` entry cleared; takes its new bases into ``state.bases``.

    Raises:
        JournalError: the entry does not name an order book and a base per interval.
    """
    orders = tuple(tuple((str(p), str(oid)) for p, oid in keys) for keys in body["orders"])
    if len(orders) != n:
        raise JournalError("journal entry flex_roll: one order book per interval expected")
    bases: tuple[Mapping[str, Any], ...] | None = None
    if body.get("bases") is not None:
        known = {**state.bases, **{int(t): b for t, b in body["bases"].items()}}
        missing = [first + t for t in range(n) if first + t not in known]
        if missing:
            raise JournalError(f"journal entry flex_roll: no base for intervals {missing}")
        state.bases = known
        bases = tuple(known[first + t] for t in range(n))
    cleared = body["flex"]
    if "flex_orders" in body:
        as_cleared = [dict(b) for b in body["flex_orders"]]
    else:  # a journal from before flex_orders: the orders as they stand
        as_cleared = [
            flex_body(flex_record(state, str(p), str(oid)).order) for p, oid, _ in cleared
        ]
    flex = tuple((int(v), b) for (_, _, v), b in zip(cleared, as_cleared, strict=True))
    return RollRecord(orders, flex, bases, blob)


def apply_flex_roll(
    state: MarketState, at_ms: int, body: Mapping[str, Any], blob: bytes | None
) -> list[Any]:
    """Entry ``flex_roll``: new schedules, and every cleared order advanced by its firm fills."""
    if not blob:
        raise JournalError("journal entry flex_roll: no horizon result")
    roll = json.loads(blob)
    first = int(body["interval"])
    if int(roll["first_interval"]) != first:
        raise JournalError(
            f"journal entry flex_roll: horizon starts at {roll['first_interval']}, not {first}"
        )
    cleared = body["flex"]
    if len(cleared) != len(roll["schedules"]):
        raise JournalError("journal entry flex_roll: one schedule per flexibility order expected")
    for p, oid, _ in cleared:  # validate before mutating
        flex_record(state, str(p), str(oid))
    record = _roll_record(state, first, body, blob, n=len(roll["results"]))
    prices = [_bus_prices(r["result"]) for r in roll["results"]]
    intervals = [int(r["interval"]) for r in roll["results"]]
    events = []
    for (p, oid, version), s in zip(cleared, roll["schedules"], strict=True):
        live = flex_record(state, str(p), str(oid))
        participant = state.participants.get(str(p))
        bus = -1 if participant is None else participant.bus
        schedule = market_pb2.FlexSchedule(
            participant=str(p),
            client_order_id=str(oid),
            kind=str(s["kind"]),
            first_interval=first,
            unmet_wh=int(s["unmet_wh"]),
            version=int(version),
        )
        for t, iv in enumerate(intervals):
            schedule.intervals.append(
                market_pb2.FlexScheduleInterval(
                    interval=iv,
                    firm=t == 0,
                    charge_wh=int(s["charge_wh"][t]),
                    discharge_wh=int(s["discharge_wh"][t]),
                    soc_wh=int(s["soc_wh"][t]),
                    bus_price=prices[t].get(bus, 0),
                )
            )
        if live.version == int(version) and live.status == LIVE:
            live.schedule = schedule
            nxt = advance(live.order, first, int(s["charge_wh"][0]), int(s["discharge_wh"][0]))
            if nxt is None:
                live.status = DONE
            else:
                live.order = nxt
        updated = market_pb2.FlexScheduleUpdated(schedule=schedule)
        events.append(state._event(at_ms, first, flex_schedule_updated=updated))
    state.flex_rolls[first] = record
    return events


def digest_rows(state: MarketState) -> list[list[Any]]:
    """What :meth:`MarketState.digest` hashes of the flexibility state."""
    rows: list[list[Any]] = []
    for key in sorted(state.flex):
        r = state.flex[key]
        rows.append([flex_body(r.order), r.version, r.accepted_at_ms, r.status])
        rows.append([None if r.schedule is None else r.schedule.SerializeToString().hex()])
    rows.append(sorted(state.flex_rolls))
    return rows
