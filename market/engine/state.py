"""The engine's state and the one function that changes it: :meth:`MarketState.apply`.

Every change is a journal entry (:class:`~market.engine.journal.Entry`
without its seq). The live engine calls :meth:`MarketState.apply` and
journals the entry only if it succeeded; a restart calls it for every
journaled entry in order. ``apply`` validates before it mutates (all or
nothing) and depends on nothing but the state and the entry, so replay
reaches the same state and emits the same market events with the same
sequence numbers.

Entry kinds and bodies:

=============  ======================================================================
``start``      ``first_interval``, ``interval_s``: the engine's first interval
``clock``      ``to_ms``: a simulated clock was advanced
``participant`` ``address``, ``bus``
``gateway``    ``gateway``, ``meter_id``, ``participant``
``order``      ``participant``, ``order_id``, ``side``, ``interval``, ``quantity_wh``,
               ``limit_price``
``cancel``     ``participant``, ``order_id``
``gate``       ``interval``
``cleared``    ``interval``, ``mechanism``, ``ok``, ``error``; blob = result JSON
``delivered``  ``interval``
``readings``   ``meter_id``, ``now_ms``, ``signature`` (hex); blob = ReadingBatch bytes
``metered``    ``interval``, ``meters``: {meter_id: [import_wh, export_wh, complete]},
               ``estimated``: meter ids whose missing data was substituted
               (the provisional settlement's metering)
``settled``    ``interval``, ``deltas``, ``fee``, ``imbalance_wh``, ``result_hash``,
               ``receipt``: the provisional posting (version 0) landed
``remetered``  ``interval``, ``version``, ``meters``, ``estimated``: late readings
               changed the metering; reconciliation ``version`` is to be posted
``corrected``  ``interval``, ``version``, ``deltas`` (the difference), ``fee``,
               ``imbalance_wh``, ``result_hash``, ``previous_hash``, ``receipt``
``final``      ``interval``: the reconciliation window closed; nothing more is posted
``settle_failed`` ``interval``, ``version``, ``error``: a posting was given up
``flex_order``, ``flex_cancel``, ``flex_roll``: flexibility orders and the rolls
               that clear them (:mod:`market.engine._flex`)
=============  ======================================================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from eth_hash.auto import keccak
from gridex.v1 import market_pb2, meter_pb2
from gridex.v1 import types_pb2 as pb

from market.engine import _convert, _flex
from market.engine.clearing import ClearingSummary
from market.engine.journal import canonical_json
from market.errors import (
    AlreadyExistsError,
    DuplicateOrderError,
    EngineStateError,
    IntervalClosedError,
    JournalError,
    NotFoundError,
)
from market.metering import BatchOutcome, MeterLedger, Reading
from market.orders import Order, Participant, Side

__all__ = [
    "ClearingRecord",
    "IntervalState",
    "MarketState",
    "OrderRecord",
    "SettlementRecord",
    "parse_batch",
    "phase_name",
]

Decode = Callable[[bytes], ClearingSummary]


@dataclass(slots=True)
class OrderRecord:
    """An accepted order and what became of it."""

    order: Order
    accepted_sequence: int
    accepted_at_ms: int
    status: int = pb.ORDER_STATUS_OPEN
    filled_wh: int = 0
    fill_price: int = 0
    amount: int = 0


@dataclass(frozen=True, slots=True)
class ClearingRecord:
    """A clearing of one interval, successful or not."""

    mechanism: str
    ok: bool
    error: str
    result_json: bytes
    result_hash: bytes
    summary: ClearingSummary | None
    cleared_at_ms: int
    #: the journaled base the interval was cleared against (BaseInterval.to_json), if any
    base: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A posted settlement."""

    deltas: Mapping[str, int]
    fee: int
    imbalance_wh: Mapping[str, int]
    result_hash: bytes
    receipt: str
    settled_at_ms: int
    gas_used: int = 0
    version: int = 0
    previous_hash: bytes = b""


@dataclass(slots=True)
class IntervalState:
    """One interval's phase, book and books."""

    interval: int
    phase: int = pb.INTERVAL_PHASE_OPEN
    orders: list[OrderRecord] = field(default_factory=list)
    clearing: ClearingRecord | None = None
    metered: dict[str, tuple[int, int, bool]] | None = None
    settlement: SettlementRecord | None = None
    estimated: tuple[str, ...] = ()
    corrections: list[SettlementRecord] = field(default_factory=list)
    pending: tuple[int, dict[str, tuple[int, int, bool]], tuple[str, ...]] | None = None
    final: bool = False
    failure: str = ""
    # the metering each posting used, in version order (the last is ``metered``)
    meterings: list[tuple[dict[str, tuple[int, int, bool]], tuple[str, ...]]] = field(
        default_factory=list
    )

    @property
    def version(self) -> int:
        """Version of the latest posting that landed (0: the provisional one)."""
        return len(self.corrections)

    @property
    def last_hash(self) -> bytes:
        """Result hash of the latest posting that landed (empty before the first)."""
        if self.corrections:
            return self.corrections[-1].result_hash
        return b"" if self.settlement is None else self.settlement.result_hash

    def total_deltas(self) -> dict[str, int]:
        """What all the interval's postings moved, per account (zeros left out)."""
        out: dict[str, int] = {}
        for record in [self.settlement, *self.corrections]:
            if record is not None:
                for account, delta in record.deltas.items():
                    out[account] = out.get(account, 0) + delta
        return {a: d for a, d in sorted(out.items()) if d != 0}


def parse_batch(batch: bytes) -> meter_pb2.ReadingBatch:
    """Parse a serialized ReadingBatch.

    Raises:
        google.protobuf.message.DecodeError: the bytes are not a ReadingBatch.
    """
    return meter_pb2.ReadingBatch.FromString(batch)


class MarketState:
    """Participants, meters, orders, intervals, the meter ledger and the event log.

    Args:
        interval_s: interval length, s.
        skew_s: the meter ledger's timestamp window, s.
        decode: reads a journaled clearing result.
    """

    def __init__(self, *, interval_s: int, skew_s: float, decode: Decode) -> None:
        self.interval_s = interval_s
        self.decode = decode
        self.first_interval: int | None = None
        self.clock_ms = 0
        self.participants: dict[str, Participant] = {}
        self.meters: dict[str, tuple[str, str]] = {}  # meter_id -> (gateway, participant)
        self.orders: dict[tuple[str, str], OrderRecord] = {}
        self.by_participant: dict[str, list[OrderRecord]] = {}
        self.intervals: dict[int, IntervalState] = {}
        self.ledger = MeterLedger(interval_s, skew_s=skew_s)
        self.events: list[market_pb2.MarketEvent] = []
        self.last_outcome: BatchOutcome | None = None
        self.flex: dict[tuple[str, str], _flex.FlexRecord] = {}
        self.flex_rolls: dict[int, _flex.RollRecord] = {}  # by firm interval
        self.bases: dict[int, Mapping[str, Any]] = {}  # the rolls' journaled base per interval

    # -- queries ---------------------------------------------------------------------

    def interval(self, interval: int) -> IntervalState:
        """The state of ``interval`` (created empty, phase OPEN, on first use)."""
        state = self.intervals.get(interval)
        if state is None:
            state = self.intervals[interval] = IntervalState(interval)
        return state

    def phase(self, interval: int) -> int:
        """Phase of ``interval``; OPEN for one never touched."""
        state = self.intervals.get(interval)
        return pb.INTERVAL_PHASE_OPEN if state is None else state.phase

    def order(self, participant: str, order_id: str) -> OrderRecord:
        """The order with that key.

        Raises:
            NotFoundError: there is none.
        """
        record = self.orders.get((participant, order_id))
        if record is None:
            raise NotFoundError(
                f"client_order_id: no order {order_id!r} of participant {participant}"
            )
        return record

    def digest(self) -> str:
        """SHA-256 over the whole state: equal for equal journals."""
        h = hashlib.sha256()
        h.update(canonical_json([self.first_interval, self.clock_ms]).encode())
        h.update(
            canonical_json(sorted((p.address, p.bus) for p in self.participants.values())).encode()
        )
        h.update(canonical_json(sorted((m, g, p) for m, (g, p) in self.meters.items())).encode())
        for key in sorted(self.orders):
            r = self.orders[key]
            o = r.order
            row = [*key, o.side.value, o.interval, o.quantity_wh, o.limit_price]
            row += [r.accepted_sequence, r.status, r.filled_wh, r.fill_price, r.amount]
            h.update(canonical_json(row).encode())
        for k in sorted(self.intervals):
            s = self.intervals[k]
            c = s.clearing
            row2: list[Any] = [k, s.phase, [r.order.key for r in s.orders]]
            row2 += [None if c is None else [c.mechanism, c.ok, c.error, c.result_hash.hex()]]
            row2 += [s.metered, None if s.settlement is None else _settlement_json(s.settlement)]
            if s.corrections or s.estimated or s.final or s.failure or s.pending:
                row2 += [[_settlement_json(c) for c in s.corrections], list(s.estimated)]
                row2 += [s.final, s.failure, None if s.pending is None else list(s.pending)]
            h.update(canonical_json(row2).encode())
        if self.flex or self.flex_rolls:
            h.update(canonical_json(_flex.digest_rows(self)).encode())
        h.update(repr(self.ledger.snapshot()).encode())
        h.update(b"".join(e.SerializeToString(deterministic=True) for e in self.events))
        return h.hexdigest()

    # -- the one mutator -------------------------------------------------------------

    def apply(
        self, kind: str, at_ms: int, body: Mapping[str, Any], blob: bytes | None = None
    ) -> list[market_pb2.MarketEvent]:
        """Validate and apply one entry; return the market events it emits.

        Raises:
            EngineError: the entry is not allowed in this state (nothing changed).
            MeteringError: a reading batch breaks a ledger rule (nothing changed).
            JournalError: the entry is malformed.
        """
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise JournalError(f"journal entry kind {kind!r} is unknown")
        try:
            events = handler(self, at_ms, body, blob)
        except (KeyError, TypeError) as exc:
            raise JournalError(f"journal entry {kind}: malformed body: {exc!r}") from exc
        self.clock_ms = max(self.clock_ms, at_ms)
        return events

    def _event(self, at_ms: int, interval: int, **kwargs: Any) -> market_pb2.MarketEvent:
        event = market_pb2.MarketEvent(
            sequence=len(self.events) + 1, time_ms=at_ms, interval=interval, **kwargs
        )
        self.events.append(event)
        return event

    def _start(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        if self.first_interval is not None:
            raise JournalError("journal: a second start entry")
        if body["interval_s"] != self.interval_s:
            raise JournalError(
                f"journal: written with interval_s={body['interval_s']}, "
                f"engine configured with {self.interval_s}"
            )
        self.first_interval = int(body["first_interval"])
        return []

    def _clock(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        self.clock_ms = max(self.clock_ms, int(body["to_ms"]))
        return []

    def _participant(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        address, bus = body["address"], int(body["bus"])
        existing = self.participants.get(address)
        if existing is not None and existing.bus != bus:
            raise AlreadyExistsError(
                f"address: {address} is registered at bus {existing.bus}, not {bus}"
            )
        self.participants[address] = Participant(address, bus)
        return []

    def _gateway(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        gateway, meter_id, participant = body["gateway"], body["meter_id"], body["participant"]
        if participant not in self.participants:
            raise NotFoundError(f"participant: {participant} is not a registered participant")
        existing = self.meters.get(meter_id)
        if existing is not None and existing != (gateway, participant):
            raise AlreadyExistsError(
                f"meter_id: {meter_id!r} is registered to gateway {existing[0]} "
                f"and participant {existing[1]}"
            )
        self.ledger.register_meter(meter_id, participant)
        self.meters[meter_id] = (gateway, participant)
        return []

    def _order(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        order = Order(
            order_id=body["order_id"],
            participant=body["participant"],
            side=Side(body["side"]),
            interval=int(body["interval"]),
            quantity_wh=int(body["quantity_wh"]),
            limit_price=int(body["limit_price"]),
        )
        existing = self.orders.get(order.key)
        if existing is not None:
            raise DuplicateOrderError(_difference(existing.order, order))
        state = self.interval(order.interval)
        if state.phase != pb.INTERVAL_PHASE_OPEN:
            raise IntervalClosedError(f"interval: the gate of interval {order.interval} has closed")
        record = OrderRecord(order, len(self.events) + 1, at_ms)
        self.orders[order.key] = record
        self.by_participant.setdefault(order.participant, []).append(record)
        state.orders.append(record)
        accepted = market_pb2.OrderAccepted(order=_convert.order_state(record))
        return [self._event(at_ms, order.interval, order_accepted=accepted)]

    def _cancel(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        record = self.order(body["participant"], body["order_id"])
        if record.status == pb.ORDER_STATUS_CANCELLED:
            return []
        if record.status != pb.ORDER_STATUS_OPEN:
            raise IntervalClosedError(
                f"client_order_id: order {record.order.order_id!r} can no longer be cancelled: "
                f"the gate of interval {record.order.interval} has closed"
            )
        record.status = pb.ORDER_STATUS_CANCELLED
        cancelled = market_pb2.OrderCancelled(order=_convert.order_state(record))
        return [self._event(at_ms, record.order.interval, order_cancelled=cancelled)]

    def _gate(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self.interval(int(body["interval"]))
        if state.phase != pb.INTERVAL_PHASE_OPEN:
            raise EngineStateError(f"interval: the gate of interval {state.interval} is closed")
        state.phase = pb.INTERVAL_PHASE_GATE_CLOSED
        live = [r for r in state.orders if r.status == pb.ORDER_STATUS_OPEN]
        for r in live:
            r.status = pb.ORDER_STATUS_CLOSED
        gate = market_pb2.GateClosed(
            order_count=len(live),
            buy_wh=sum(r.order.quantity_wh for r in live if r.order.side is Side.BUY),
            sell_wh=sum(r.order.quantity_wh for r in live if r.order.side is Side.SELL),
        )
        return [self._event(at_ms, state.interval, gate_closed=gate)]

    def _cleared(self, at_ms: int, body: Mapping[str, Any], blob: bytes | None) -> list[Any]:
        state = self.interval(int(body["interval"]))
        if state.phase not in (pb.INTERVAL_PHASE_GATE_CLOSED, pb.INTERVAL_PHASE_CLEARED):
            raise EngineStateError(
                f"interval: interval {state.interval} cannot be cleared in phase "
                f"{phase_name(state.phase)}"
            )
        ok = bool(body["ok"])
        result_json = blob or b""
        summary = self.decode(result_json) if ok else None
        record = ClearingRecord(
            mechanism=str(body["mechanism"]),
            ok=ok,
            error=str(body["error"]),
            result_json=result_json,
            result_hash=keccak(result_json),
            summary=summary,
            cleared_at_ms=at_ms,
            base=body.get("base"),
        )
        state.clearing = record
        state.phase = pb.INTERVAL_PHASE_CLEARED
        fills = {} if summary is None else {(f.participant, f.order_id): f for f in summary.fills}
        for r in state.orders:
            if r.status == pb.ORDER_STATUS_CANCELLED:
                continue
            fill = fills.get(r.order.key)
            r.filled_wh = 0 if fill is None else fill.filled_wh
            r.fill_price = 0 if fill is None else fill.price
            r.amount = 0 if fill is None else fill.amount
            if r.filled_wh <= 0:
                r.status = pb.ORDER_STATUS_UNFILLED
            elif r.filled_wh >= r.order.quantity_wh:
                r.status = pb.ORDER_STATUS_FILLED
            else:
                r.status = pb.ORDER_STATUS_PARTIALLY_FILLED
        result = _convert.clearing_result(state.interval, record, self.participants, False)
        cleared = market_pb2.IntervalCleared(result=result)
        return [self._event(at_ms, state.interval, interval_cleared=cleared)]

    def _delivered(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self._advance(int(body["interval"]), pb.INTERVAL_PHASE_CLEARED)
        state.phase = pb.INTERVAL_PHASE_DELIVERED
        delivered = market_pb2.IntervalDelivered()
        return [self._event(at_ms, state.interval, interval_delivered=delivered)]

    def _readings(self, at_ms: int, body: Mapping[str, Any], blob: bytes | None) -> list[Any]:
        batch = parse_batch(blob or b"")
        meter_id = body["meter_id"]
        readings = [
            Reading(
                meter_id, r.seq, r.timestamp_ms, r.energy_import_wh, r.energy_export_wh, r.power_w
            )
            for r in batch.readings
        ]
        self.last_outcome = self.ledger.apply(meter_id, readings, now_ms=int(body["now_ms"]))
        return []

    def _metered(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self._advance(int(body["interval"]), pb.INTERVAL_PHASE_DELIVERED)
        meters = _meters(body["meters"])
        state.metered = meters
        state.estimated = tuple(str(m) for m in body.get("estimated", ()))
        state.meterings.append((meters, state.estimated))
        state.phase = pb.INTERVAL_PHASE_METERED
        metered = market_pb2.IntervalMetered(
            meter_count=len(meters),
            complete_count=sum(1 for v in meters.values() if v[2]),
            import_wh=sum(v[0] for v in meters.values()),
            export_wh=sum(v[1] for v in meters.values()),
        )
        return [self._event(at_ms, state.interval, interval_metered=metered)]

    def _settled(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self._advance(int(body["interval"]), pb.INTERVAL_PHASE_METERED)
        record = SettlementRecord(
            deltas={str(a): int(v) for a, v in body["deltas"].items()},
            fee=int(body["fee"]),
            imbalance_wh={str(a): int(v) for a, v in body["imbalance_wh"].items()},
            result_hash=bytes.fromhex(body["result_hash"]),
            receipt=str(body["receipt"]),
            settled_at_ms=at_ms,
            gas_used=int(body.get("gas_used", 0)),
        )
        state.settlement = record
        state.phase = pb.INTERVAL_PHASE_SETTLED
        state.failure = ""
        settled = market_pb2.IntervalSettled(
            settlement=_convert.settlement(state.interval, record, state.estimated)
        )
        return [self._event(at_ms, state.interval, interval_settled=settled)]

    def _remetered(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self._advance(int(body["interval"]), pb.INTERVAL_PHASE_SETTLED)
        version = int(body["version"])
        if state.final or state.pending is not None or version != state.version + 1:
            raise EngineStateError(
                f"interval: interval {state.interval} cannot take reconciliation {version} "
                f"(final {state.final}, pending {state.pending is not None}, "
                f"at version {state.version})"
            )
        estimated = tuple(str(m) for m in body.get("estimated", ()))
        state.pending = (version, _meters(body["meters"]), estimated)
        return []

    def _corrected(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self._advance(int(body["interval"]), pb.INTERVAL_PHASE_SETTLED)
        version = int(body["version"])
        if state.pending is None or state.pending[0] != version:
            raise EngineStateError(
                f"interval: reconciliation {version} of interval {state.interval} was not pending"
            )
        record = SettlementRecord(
            deltas={str(a): int(v) for a, v in body["deltas"].items()},
            fee=int(body["fee"]),
            imbalance_wh={str(a): int(v) for a, v in body["imbalance_wh"].items()},
            result_hash=bytes.fromhex(body["result_hash"]),
            receipt=str(body["receipt"]),
            settled_at_ms=at_ms,
            gas_used=int(body.get("gas_used", 0)),
            version=version,
            previous_hash=bytes.fromhex(body["previous_hash"]),
        )
        state.metered, state.estimated = state.pending[1], state.pending[2]
        state.meterings.append((state.metered, state.estimated))
        state.pending = None
        state.corrections.append(record)
        state.failure = ""
        settled = market_pb2.IntervalSettled(
            settlement=_convert.settlement(state.interval, record, state.estimated)
        )
        return [self._event(at_ms, state.interval, interval_settled=settled)]

    def _final(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self.interval(int(body["interval"]))
        if state.phase < pb.INTERVAL_PHASE_METERED or state.final:
            raise EngineStateError(
                f"interval: interval {state.interval} cannot become final in phase "
                f"{phase_name(state.phase)}"
            )
        state.final = True
        state.pending = None
        return []

    def _settle_failed(self, at_ms: int, body: Mapping[str, Any], _: bytes | None) -> list[Any]:
        state = self.interval(int(body["interval"]))
        if state.phase < pb.INTERVAL_PHASE_METERED:
            raise EngineStateError(f"interval: interval {state.interval} is not metered")
        state.failure = f"version {int(body['version'])}: {body['error']}"
        if int(body["version"]) > 0:
            state.pending = None  # given up; a later reading may start a new reconciliation
        return []

    def _advance(self, interval: int, expected: int) -> IntervalState:
        state = self.interval(interval)
        if state.phase != expected:
            raise EngineStateError(
                f"interval: interval {interval} is in phase {phase_name(state.phase)}, "
                f"expected {phase_name(expected)}"
            )
        return state


def _meters(raw: Mapping[str, Any]) -> dict[str, tuple[int, int, bool]]:
    return {str(m): (int(v[0]), int(v[1]), bool(v[2])) for m, v in raw.items()}


def phase_name(phase: int) -> str:
    """``INTERVAL_PHASE_...`` name of a phase value."""
    return pb.IntervalPhase.Name(cast("pb.IntervalPhase.ValueType", phase))


def _settlement_json(record: SettlementRecord) -> dict[str, Any]:
    return {
        "deltas": dict(record.deltas),
        "fee": record.fee,
        "imbalance_wh": dict(record.imbalance_wh),
        "result_hash": record.result_hash.hex(),
        "receipt": record.receipt,
    }


def _difference(old: Order, new: Order) -> str:
    fields = [
        name
        for name in ("side", "interval", "quantity_wh", "limit_price")
        if getattr(old, name) != getattr(new, name)
    ]
    return (
        f"client_order_id: {new.order_id!r} is already used by participant {new.participant} "
        f"for a different order ({', '.join(fields)} differ)"
    )


_Handler = Callable[[MarketState, int, Mapping[str, Any], "bytes | None"], list[Any]]
_HANDLERS: dict[str, _Handler] = {
    "start": MarketState._start,
    "clock": MarketState._clock,
    "participant": MarketState._participant,
    "gateway": MarketState._gateway,
    "order": MarketState._order,
    "cancel": MarketState._cancel,
    "gate": MarketState._gate,
    "cleared": MarketState._cleared,
    "delivered": MarketState._delivered,
    "readings": MarketState._readings,
    "metered": MarketState._metered,
    "settled": MarketState._settled,
    "remetered": MarketState._remetered,
    "corrected": MarketState._corrected,
    "final": MarketState._final,
    "settle_failed": MarketState._settle_failed,
    "flex_order": _flex.apply_flex_order,
    "flex_cancel": _flex.apply_flex_cancel,
    "flex_roll": _flex.apply_flex_roll,
}
