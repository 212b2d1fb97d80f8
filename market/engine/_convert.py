"""Engine values → ``gridex.v1`` messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from gridex.v1 import market_pb2
from gridex.v1 import types_pb2 as pb

from market.errors import RequestError
from market.flex import EnergyWindow, EvOrder, FlexOrder, ShiftableLoadOrder, StorageOrder
from market.orders import Participant, Side

if TYPE_CHECKING:
    from market.engine._flex import FlexRecord
    from market.engine.state import ClearingRecord, OrderRecord, SettlementRecord

__all__ = [
    "SIDE_FROM_PB",
    "SIDE_TO_PB",
    "clearing_result",
    "flex_from_pb",
    "flex_order_state",
    "flex_to_pb",
    "order_state",
    "phase",
    "settlement",
    "status",
]

SIDE_TO_PB: dict[Side, pb.Side.ValueType] = {Side.BUY: pb.SIDE_BUY, Side.SELL: pb.SIDE_SELL}
SIDE_FROM_PB: dict[int, Side] = {pb.SIDE_BUY: Side.BUY, pb.SIDE_SELL: Side.SELL}


def phase(value: int) -> pb.IntervalPhase.ValueType:
    """An interval phase held as a plain int, typed for message constructors."""
    return cast("pb.IntervalPhase.ValueType", value)


def status(value: int) -> pb.OrderStatus.ValueType:
    """An order status held as a plain int, typed for message constructors."""
    return cast("pb.OrderStatus.ValueType", value)


def order_state(record: OrderRecord, *, as_accepted: bool = False) -> pb.OrderState:
    """The order as the API shows it; ``as_accepted`` gives the original answer of SubmitOrder."""
    o = record.order
    msg = pb.OrderState(
        participant=o.participant,
        client_order_id=o.order_id,
        side=SIDE_TO_PB[o.side],
        interval=o.interval,
        quantity_wh=o.quantity_wh,
        limit_price=o.limit_price,
        accepted_sequence=record.accepted_sequence,
        accepted_at_ms=record.accepted_at_ms,
    )
    if as_accepted:
        msg.status = pb.ORDER_STATUS_OPEN
    else:
        msg.status = status(record.status)
        msg.filled_wh = record.filled_wh
        msg.fill_price = record.fill_price
        msg.amount = record.amount
    return msg


def clearing_result(
    interval: int,
    record: ClearingRecord,
    participants: Mapping[str, Participant],
    include_json: bool,
) -> pb.ClearingResult:
    """The ClearingResult message of a clearing record."""
    msg = pb.ClearingResult(
        interval=interval,
        mechanism=record.mechanism,
        ok=record.ok,
        error=record.error,
        result_hash=record.result_hash,
        cleared_at_ms=record.cleared_at_ms,
    )
    if include_json:
        msg.result_json = record.result_json
    summary = record.summary
    if summary is None:
        return msg
    for f in summary.fills:
        p = participants.get(f.participant)
        msg.fills.append(
            pb.Fill(
                participant=f.participant,
                client_order_id=f.order_id,
                side=SIDE_TO_PB[f.side],
                interval=interval,
                bus=-1 if p is None else p.bus,
                filled_wh=f.filled_wh,
                price=f.price,
                amount=f.amount,
            )
        )
    for b in summary.prices:
        msg.prices.append(
            pb.BusPrice(
                bus=b.bus,
                price=b.price,
                energy_part=b.energy_part,
                congestion_part=b.congestion_part,
                voltage_part=b.voltage_part,
                loss_part=b.loss_part,
            )
        )
    msg.grid_import_wh = summary.grid_import_wh
    msg.grid_export_wh = summary.grid_export_wh
    msg.operator_surplus = summary.operator_surplus
    msg.traded_wh = sum(f.filled_wh for f in summary.fills if f.side is Side.SELL)
    return msg


def settlement(
    interval: int, record: SettlementRecord, estimated: tuple[str, ...] = ()
) -> pb.Settlement:
    """The Settlement message of a settlement record (one posting)."""
    return pb.Settlement(
        version=record.version,
        previous_hash=record.previous_hash,
        estimated_meters=list(estimated),
        interval=interval,
        deltas=[pb.BalanceDelta(address=a, delta=d) for a, d in sorted(record.deltas.items())],
        fee=record.fee,
        imbalance_wh=sum(record.imbalance_wh.values()),
        result_hash=record.result_hash,
        receipt=record.receipt,
        settled_at_ms=record.settled_at_ms,
    )


def flex_from_pb(participant: str, msg: market_pb2.FlexOrder) -> FlexOrder:
    """The domain order of a FlexOrder message (values unchecked: validation names them).

    Raises:
        RequestError: no asset is set.
    """
    kind = msg.WhichOneof("asset")
    oid = msg.client_order_id
    if kind == "storage":
        b = msg.storage
        return StorageOrder(
            oid, participant, b.capacity_wh, b.soc_wh, b.min_soc_wh, b.max_soc_wh,
            b.max_charge_w, b.max_discharge_w, b.charge_efficiency, b.discharge_efficiency,
            b.end_soc_wh, b.cycling_price,
        )  # fmt: skip
    if kind == "ev":
        e = msg.ev
        return EvOrder(
            oid, participant, e.energy_wh, e.max_power_w, e.arrival_interval,
            e.departure_interval, e.value_per_kwh,
        )  # fmt: skip
    if kind == "shiftable":
        h = msg.shiftable
        windows = tuple(
            EnergyWindow(w.start_interval, w.end_interval, w.energy_wh) for w in h.windows
        )
        return ShiftableLoadOrder(oid, participant, windows, h.max_power_w, h.value_per_kwh)
    raise RequestError("order.asset: exactly one of storage, ev or shiftable must be set")


def flex_to_pb(order: FlexOrder) -> market_pb2.FlexOrder:
    """The FlexOrder message of a domain order."""
    msg = market_pb2.FlexOrder(client_order_id=order.order_id)
    if isinstance(order, StorageOrder):
        msg.storage.CopyFrom(
            market_pb2.StorageFlex(
                capacity_wh=order.capacity_wh,
                soc_wh=order.soc_wh,
                min_soc_wh=order.min_soc_wh,
                max_soc_wh=order.max_soc_wh,
                max_charge_w=order.max_charge_w,
                max_discharge_w=order.max_discharge_w,
                charge_efficiency=order.charge_efficiency,
                discharge_efficiency=order.discharge_efficiency,
                end_soc_wh=order.end_soc_wh,
                cycling_price=order.cycling_price,
            )
        )
    elif isinstance(order, EvOrder):
        msg.ev.CopyFrom(
            market_pb2.EvFlex(
                energy_wh=order.energy_wh,
                max_power_w=order.max_power_w,
                arrival_interval=order.arrival_interval,
                departure_interval=order.departure_interval,
                value_per_kwh=order.value_per_kwh,
            )
        )
    else:
        msg.shiftable.CopyFrom(
            market_pb2.ShiftableLoadFlex(
                windows=[
                    market_pb2.EnergyWindow(
                        start_interval=w.start_interval,
                        end_interval=w.end_interval,
                        energy_wh=w.energy_wh,
                    )
                    for w in order.windows
                ],
                max_power_w=order.max_power_w,
                value_per_kwh=order.value_per_kwh,
            )
        )
    return msg


def flex_order_state(record: FlexRecord) -> market_pb2.FlexOrderState:
    """The FlexOrderState message of an engine record."""
    return market_pb2.FlexOrderState(
        participant=record.order.participant,
        order=flex_to_pb(record.order),
        status=cast("market_pb2.FlexOrderStatus.ValueType", record.status),
        version=record.version,
        accepted_at_ms=record.accepted_at_ms,
    )
