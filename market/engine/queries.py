"""Read-only views of the engine: order book, account, clearing result, market info, status.

Phases are reported as :func:`phase_at` words them, the same rule for every
view: an interval the engine never ran (before its first interval) or that is
not open for orders yet (beyond the order horizon) is UNSPECIFIED, never OPEN.
"""

from __future__ import annotations

from collections import defaultdict

from gridex.v1 import market_pb2, operator_pb2
from gridex.v1 import types_pb2 as pb

from market.engine import _convert
from market.engine.engine import Engine
from market.errors import NotFoundError, RequestError
from market.orders import Side

__all__ = [
    "account",
    "clearing_result",
    "engine_status",
    "grid_status",
    "market_info",
    "order_book",
    "phase_at",
]

_VERSION = "0.1.0"

#: Most not-yet-settled intervals GetMarketInfo lists (the latest ones).
_MAX_UNSETTLED_LISTED = 96
#: Open intervals GetMarketInfo lists when the request asks for 0.
_DEFAULT_OPEN_LISTED = 4


def phase_at(engine: Engine, interval: int, now_ms: int) -> int:
    """The phase of ``interval`` at engine time ``now_ms``, as the API reports it.

    UNSPECIFIED before the engine's first interval and beyond the order
    horizon; GATE_CLOSED once the gate time has passed even if the clock
    thread has not journaled the closure yet (SubmitOrder refuses it
    already); the journaled phase otherwise. Call with ``core.lock`` held.
    """
    state = engine.state
    s = state.intervals.get(interval)
    if s is not None and s.phase != pb.INTERVAL_PHASE_OPEN:
        return s.phase
    first = state.first_interval
    if first is None or interval < first:
        return pb.INTERVAL_PHASE_UNSPECIFIED
    if engine.lifecycle.gate_ms(interval) <= now_ms:
        return pb.INTERVAL_PHASE_GATE_CLOSED
    if interval > now_ms // engine.core.interval_ms + engine.config.horizon_intervals:
        return pb.INTERVAL_PHASE_UNSPECIFIED
    return pb.INTERVAL_PHASE_OPEN


def order_book(engine: Engine, interval: int) -> market_pb2.GetOrderBookResponse:
    """Open (or, after the gate, frozen) orders of ``interval`` by price level."""
    with engine.core.lock:
        state = engine.state.intervals.get(interval)
        phase = phase_at(engine, interval, engine.clock.now_ms())
        frozen = state is not None and state.phase != pb.INTERVAL_PHASE_OPEN
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
                position.settled_delta = s.settlement.deltas[participant]
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
            engine_id=engine.config.engine_id,
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


def market_info(engine: Engine, open_count: int) -> market_pb2.GetMarketInfoResponse:
    """The clock, the unsettled and next open intervals, the market's rules and buses.

    Raises:
        RequestError: ``open_count`` is negative or beyond the horizon plus one.
    """
    from market.validation import MAX_QUANTITY_WH

    horizon = engine.config.horizon_intervals
    if not 0 <= open_count <= horizon + 1:
        raise RequestError(
            f"open_interval_count: must be 0 (for {_DEFAULT_OPEN_LISTED}) to {horizon + 1}, "
            f"got {open_count}"
        )
    open_count = open_count or _DEFAULT_OPEN_LISTED
    market, config, core = engine.market, engine.config, engine.core
    with core.lock:
        state = engine.state
        now = engine.clock.now_ms()
        current = now // core.interval_ms
        first_open = max(engine.lifecycle.first_open_interval(now), state.first_interval or 0)
        response = market_pb2.GetMarketInfoResponse(
            engine_id=config.engine_id,
            feeder=engine.feeder.name,
            version=_VERSION,
            clock=engine.clock.kind,
            now_ms=now,
            interval_s=market.interval_s,
            current_interval=current,
            first_open_interval=first_open,
            last_open_interval=current + horizon,
            gate_closure_s=config.gate_closure_s,
            horizon_intervals=horizon,
            metering_delay_s=config.metering_delay_s,
            mechanism=config.mechanism,
            price_min=market.price_min,
            price_max=market.price_max,
            retail_price=market.retail_price,
            feed_in_price=market.feed_in_price,
            grid_fee_per_kwh=market.grid_fee_per_kwh,
            token_decimals=market.token_decimals,
            max_order_wh=MAX_QUANTITY_WH,
        )
        unsettled = sorted(
            k
            for k, s in state.intervals.items()
            if pb.INTERVAL_PHASE_GATE_CLOSED <= s.phase < pb.INTERVAL_PHASE_SETTLED
            and k < first_open
        )[-_MAX_UNSETTLED_LISTED:]
        last = min(first_open + open_count - 1, current + horizon)
        for k in [*unsettled, *range(first_open, last + 1)]:
            s = state.intervals.get(k)
            count = 0 if s is None else sum(r.status != pb.ORDER_STATUS_CANCELLED for r in s.orders)
            start = k * core.interval_ms
            response.intervals.append(
                market_pb2.IntervalInfo(
                    interval=k,
                    phase=_convert.phase(phase_at(engine, k, now)),
                    start_ms=start,
                    gate_ms=engine.lifecycle.gate_ms(k),
                    order_count=count,
                )
            )
    for b in engine.feeder.connectable_buses:
        response.buses.append(
            market_pb2.ConnectableBus(bus=b.index, name=str(b.name), vn_kv=float(b.vn_kv))
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
