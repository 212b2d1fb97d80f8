"""Read-only views of the engine: order book, account, clearing result, status."""

from __future__ import annotations

from collections import defaultdict

from gridex.v1 import market_pb2, operator_pb2
from gridex.v1 import types_pb2 as pb

from market.engine import _convert
from market.engine.engine import Engine
from market.errors import NotFoundError, RequestError
from market.orders import Side

__all__ = ["account", "clearing_result", "engine_status", "grid_status", "order_book"]

_VERSION = "0.1.0"


def order_book(engine: Engine, interval: int) -> market_pb2.GetOrderBookResponse:
    """Open (or, after the gate, frozen) orders of ``interval`` by price level."""
    with engine.core.lock:
        state = engine.state.intervals.get(interval)
        phase = engine.state.phase(interval)
        frozen = phase != pb.INTERVAL_PHASE_OPEN
        levels: dict[tuple[Side, int], list[int]] = defaultdict(lambda: [0, 0])
        for r in [] if state is None else state.orders:
            if r.status == pb.ORDER_STATUS_CANCELLED:
                continue
            if not frozen and r.status != pb.ORDER_STATUS_OPEN:
                continue
            level = levels[(r.order.side, r.order.limit_price)]
            level[0] += r.order.quantity_wh
            level[1] += 1
    response = market_pb2.GetOrderBookResponse(interval=interval, phase=_convert.phase(phase))
    for (side, price), (quantity, count) in sorted(
        levels.items(),
        key=lambda kv: (kv[0][0].value, -kv[0][1] if kv[0][0] is Side.BUY else kv[0][1]),
    ):
        target = response.bids if side is Side.BUY else response.asks
        target.append(market_pb2.PriceLevel(price=price, quantity_wh=quantity, order_count=count))
    return response


def account(
    engine: Engine, participant: str, first: int | None, last: int | None
) -> market_pb2.GetAccountResponse:
    """A participant's per-interval books and fills.

    Raises:
        NotFoundError: the participant is not registered.
        RequestError: ``first`` after ``last``.
    """
    if first is not None and last is not None and first > last:
        raise RequestError(f"to_interval: must be >= from_interval ({first}), got {last}")
    with engine.core.lock:
        state = engine.state
        who = state.participants.get(participant)
        if who is None:
            raise NotFoundError(f"participant: {participant} is not a registered participant")
        meters = {m for m, (_, p) in state.meters.items() if p == participant}
        response = market_pb2.GetAccountResponse(
            participant=pb.Participant(address=who.address, bus=who.bus)
        )
        for k in sorted(state.intervals):
            if (first is not None and k < first) or (last is not None and k > last):
                continue
            s = state.intervals[k]
            position = market_pb2.IntervalPosition(interval=k, phase=_convert.phase(s.phase))
            touched = False
            summary = None if s.clearing is None else s.clearing.summary
            if summary is not None:
                for f in summary.fills:
                    if f.participant != participant or f.filled_wh == 0:
                        continue
                    touched = True
                    if f.side is Side.BUY:
                        position.bought_wh += f.filled_wh
                    else:
                        position.sold_wh += f.filled_wh
                    position.payment += f.amount
                    response.fills.append(
                        pb.Fill(
                            participant=participant,
                            client_order_id=f.order_id,
                            side=_convert.SIDE_TO_PB[f.side],
                            interval=k,
                            bus=who.bus,
                            filled_wh=f.filled_wh,
                            price=f.price,
                            amount=f.amount,
                        )
                    )
            for m in meters & set(s.metered or {}):
                imp, exp, _ = (s.metered or {})[m]
                position.metered_import_wh += imp
                position.metered_export_wh += exp
                touched = True
            if s.settlement is not None and participant in s.settlement.deltas:
                position.settled_delta = s.total_deltas().get(participant, 0)
                touched = True
            if touched:
                response.intervals.append(position)
                response.total_payment += position.payment
                response.total_settled += position.settled_delta
    return response


def clearing_result(engine: Engine, interval: int) -> pb.ClearingResult:
    """The clearing result of ``interval``, with its JSON.

    Raises:
        NotFoundError: the interval has not been cleared.
    """
    with engine.core.lock:
        record = engine.clearing_record(interval)
        if record is None:
            raise NotFoundError(f"interval: interval {interval} has not been cleared")
        return _convert.clearing_result(interval, record, engine.state.participants, True)


def engine_status(engine: Engine) -> operator_pb2.GetEngineStatusResponse:
    """Clock, journal, counts and the unsettled intervals."""
    core = engine.core
    with core.lock:
        state = engine.state
        now = engine.clock.now_ms()
        response = operator_pb2.GetEngineStatusResponse(
            version=_VERSION,
            feeder=engine.feeder.name,
            mechanism=engine.config.mechanism,
            clock=engine.clock.kind,
            now_ms=now,
            interval_s=engine.market.interval_s,
            current_interval=now // core.interval_ms,
            journal_sequence=core.journal.last_seq,
            event_sequence=core.hub.published,
            participant_count=len(state.participants),
            meter_count=len(state.meters),
            order_count=len(state.orders),
            last_settled_interval=max(
                (k for k, s in state.intervals.items() if s.phase == pb.INTERVAL_PHASE_SETTLED),
                default=-1,
            ),
            state_digest=state.digest(),
        )
        for k in sorted(state.intervals):
            s = state.intervals[k]
            if s.phase != pb.INTERVAL_PHASE_SETTLED:
                response.intervals.append(
                    operator_pb2.IntervalStatus(
                        interval=k, phase=_convert.phase(s.phase), order_count=len(s.orders)
                    )
                )
    return response


def grid_status(engine: Engine) -> operator_pb2.GetGridStatusResponse:
    """The feeder's buses and branches, and the AC check of the latest clearing."""
    feeder = engine.feeder
    with engine.core.lock:
        state = engine.state
        at_bus: dict[int, int] = defaultdict(int)
        for p in state.participants.values():
            at_bus[p.bus] += 1
        cleared = [
            k for k, s in state.intervals.items() if s.clearing is not None and s.clearing.ok
        ]
        latest = max(cleared, default=-1)
        summary = None
        if latest >= 0:
            record = state.intervals[latest].clearing
            summary = None if record is None else record.summary
    response = operator_pb2.GetGridStatusResponse(
        feeder=feeder.name, latest_cleared_interval=latest
    )
    for b in feeder.buses:
        response.buses.append(
            operator_pb2.BusStatus(
                bus=b.index,
                name=str(b.name),
                vn_kv=float(b.vn_kv),
                connectable=bool(b.connectable),
                participant_count=at_bus.get(b.index, 0),
            )
        )
    for br in feeder.branches:
        response.branches.append(
            operator_pb2.BranchStatus(
                label=br.label,
                name=str(br.name),
                from_bus=int(br.from_bus),
                to_bus=int(br.to_bus),
                rating_mva=br.rating_mva if br.limited else 0.0,
                max_loading_percent=br.max_loading_percent,
            )
        )
    if summary is not None:
        response.max_loading_percent = summary.max_loading_percent or 0.0
        response.vm_min_pu = summary.vm_min_pu or 0.0
        response.vm_max_pu = summary.vm_max_pu or 0.0
    return response
