"""The market engine of one feeder: order entry, meter ingest, lifecycle, replay.

Typical use (what ``gridex serve`` and the demo do)::

    engine = Engine(load_feeder("cigre-lv"), "engine.db", clock=SimClock(start_ms),
                    settler=my_settler, operators=[operator_address])
    engine.start()                      # replays the journal, starts the threads
    engine.register_participant(address, bus=7)
    engine.submit_order(order).result() # durable once result() returns
    engine.advance_to(t_ms)             # simulated clock: run the intervals up to t
    engine.close()

Every method is thread-safe. Methods that change state return a
:class:`Accepted`: the answer, available at once, and a future that resolves
when the change is on disk — acknowledge only after it (the gRPC servicers
await it; :meth:`Accepted.result` blocks for it).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gridex.v1 import market_pb2
from gridex.v1 import types_pb2 as pb

from grid import Feeder
from market.config import MarketConfig
from market.engine import _convert, _flex
from market.engine._core import Core, EngineConfig
from market.engine.clearing import ClearingBackend, MarketClearing
from market.engine.clock import Clock, WallClock
from market.engine.collateral import EscrowView, check_collateral
from market.engine.journal import Journal
from market.engine.lifecycle import Lifecycle
from market.engine.settler import RecordingSettler, Settler
from market.engine.state import ClearingRecord, MarketState, OrderRecord
from market.errors import (
    ConfigError,
    DuplicateOrderError,
    ForecastError,
    IntervalClosedError,
    JournalError,
    MarketError,
    OrderValidationError,
    RequestError,
)
from market.flex import EvOrder, FlexOrder, StorageOrder, energy_windows, validate_flex_order
from market.orders import Order, normalise_address
from market.validation import validate_order

if TYPE_CHECKING:
    from market.forecast import BaseForecast, ViewCache

__all__ = ["Accepted", "Engine", "EngineConfig"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True, slots=True)
class Accepted(Generic[T]):
    """An answer and the future of its durability.

    Attributes:
        value: the answer.
        durable: resolves once the change (or, for a retry, the original) is on disk.
    """

    value: T
    durable: Future[int]

    def result(self, timeout_s: float | None = 30.0) -> T:
        """Wait until durable, then return the answer.

        Raises:
            JournalError: the journal failed.
        """
        self.durable.result(timeout_s)
        return self.value


def _address(field: str, value: str) -> str:
    try:
        return normalise_address(value)
    except ValueError as exc:
        raise RequestError(f"{field}: must be 0x followed by 40 hex digits, got {value!r}") from exc


class Engine:
    """One feeder's market.

    Args:
        feeder: the feeder (from :func:`grid.load_feeder`).
        journal_path: SQLite journal; replayed by :meth:`start` if it exists.
        market: prices, band and interval length.
        config: lifecycle timing and limits.
        clock: :class:`WallClock` (default) or a :class:`SimClock`.
        clearing: clearing backend (default :class:`MarketClearing`).
        settler: where settlements go (default :class:`RecordingSettler`).
        operators: addresses allowed to call OperatorService.
        base_forecast: the grid's own load and generation per interval
            (:mod:`market.forecast`); None: every interval is cleared against
            the network file's static base. :meth:`start` refuses a forecast
            that misses an interval the engine would clear.

    Raises:
        ConfigError: ``config`` breaks a rule or an operator address is malformed.
    """

    def __init__(
        self,
        feeder: Feeder,
        journal_path: str | Path,
        *,
        market: MarketConfig | None = None,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        clearing: ClearingBackend | None = None,
        settler: Settler | None = None,
        operators: Sequence[str] = (),
        base_forecast: BaseForecast | None = None,
    ) -> None:
        self.feeder = feeder
        self.base_forecast = base_forecast
        self.market = market if market is not None else MarketConfig()
        config = config if config is not None else EngineConfig()
        problems = config.problems()
        if problems:
            raise ConfigError("; ".join(problems))
        if not config.engine_id:
            config = dataclasses.replace(config, engine_id=_engine_id_of(feeder.name))
        self.config = config
        try:
            self.operators = frozenset(normalise_address(a) for a in operators)
            account = self.config.operator_account or (min(self.operators, default=ZERO_ADDRESS))
            self.operator_account = normalise_address(account)
        except ValueError as exc:
            raise ConfigError(f"operators: {exc}") from exc
        self.clock: Clock = clock if clock is not None else WallClock()
        self.clearing = clearing if clearing is not None else MarketClearing()
        self.settler = settler if settler is not None else RecordingSettler()
        self._escrow_of: tuple[object, bool] = (None, False)  # (settler, is an EscrowView)
        self.journal_path = Path(journal_path)
        state = MarketState(
            interval_s=self.market.interval_s,
            skew_s=self.config.reading_skew_s,
            decode=self.clearing.decode,
        )
        self._journal: Journal | None = None
        self._core: Core | None = None
        self._state = state
        self._lifecycle: Lifecycle | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self.replayed_nonces: list[str] = []

    # -- lifecycle of the engine itself ----------------------------------------------

    @property
    def engine_id(self) -> str:
        """Names this engine in every signed request (``docs/signing.md``)."""
        return self.config.engine_id

    @property
    def core(self) -> Core:
        """The shared state, journal and lock (after :meth:`start`)."""
        if self._core is None:
            raise RuntimeError("engine: call start() first")
        return self._core

    @property
    def lifecycle(self) -> Lifecycle:
        """The interval lifecycle (after :meth:`start`)."""
        if self._lifecycle is None:
            raise RuntimeError("engine: call start() first")
        return self._lifecycle

    @property
    def state(self) -> MarketState:
        """The market state (read it under ``core.lock``)."""
        return self._state

    def start(self) -> None:
        """Replay the journal, catch up with the clock and start the threads.

        Raises:
            JournalError: the journal is unreadable or does not replay.
        """
        views = self._base_views()
        journal = Journal(self.journal_path, synchronous=self.config.synchronous)
        core = Core(self._state, journal, self.clock, self.market.interval_s)
        journal._on_durable = core.hub.on_durable  # wired before any append
        self._journal, self._core = journal, core
        self._lifecycle = Lifecycle(
            core,
            feeder=self.feeder,
            market=self.market,
            config=self.config,
            clearing=self.clearing,
            settler=self.settler,
            operator_account=self.operator_account,
            base=views,
        )
        self._replay()
        self.replayed_nonces.extend(journal.nonces(time.time_ns() // 1_000_000))
        core.hub.publish_all()
        if self.clock.kind == "sim":
            self.clock.set(self._state.clock_ms)  # type: ignore[attr-defined]
        with core.lock:
            if self._state.first_interval is None:
                now = self.clock.now_ms()
                first = self.lifecycle.first_open_interval(now)
                core.record("start", now, self._start_body(first))
            self.lifecycle.resume()
        self.lifecycle.process_due(self.clock.now_ms())
        if self.clock.kind == "wall":
            self._ticker = threading.Thread(target=self._tick, name="gridex-clock", daemon=True)
            self._ticker.start()

    def _base_views(self) -> ViewCache | None:
        """The forecast's view cache, after checking it covers what the engine will clear.

        Raises:
            ForecastError: the forecast misses the first interval whose gate
                is still open, or (a bounded forecast) any interval from there
                to its last one.
        """
        if self.base_forecast is None:
            return None
        from market.forecast import ViewCache, first_gap

        fc = self.base_forecast
        interval_ms = self.market.interval_s * 1000
        first = (self.clock.now_ms() + self.config.gate_closure_s * 1000) // interval_ms + 1
        last = getattr(fc, "last", first + self.config.horizon_intervals)
        gap = first_gap(fc, range(first, max(first, last) + 1))
        if gap is not None:
            raise ForecastError(
                f"base forecast {fc.name}: no values for interval {gap}; the engine would "
                f"clear from interval {first} on — give a forecast that covers it "
                "(refusing to clear against the static base instead)"
            )
        return ViewCache(self.feeder, fc)

    def _start_body(self, first_interval: int) -> dict[str, object]:
        """The journal's first entry: enough to read the journal without the engine's flags."""
        m = self.market
        return {
            "first_interval": first_interval,
            "interval_s": m.interval_s,
            "feeder": self.feeder.name,
            "market": {
                "retail_price": m.retail_price,
                "feed_in_price": m.feed_in_price,
                "price_min": m.price_min,
                "price_max": m.price_max,
                "grid_fee_per_kwh": m.grid_fee_per_kwh,
                "token_decimals": m.token_decimals,
            },
            "mechanism": self.config.mechanism,
            "operator_account": self.operator_account,
            "base_forecast": (
                ""
                if self.base_forecast is None
                else f"{self.base_forecast.name}@{self.base_forecast.digest}"
            ),
        }

    def _replay(self) -> None:
        assert self._journal is not None
        count = 0
        for entry in self._journal.entries():
            if self.config.verify_replay and entry.kind == "flex_roll":
                self._verify_roll(entry.seq, entry.body, entry.blob)
            try:
                self._state.apply(entry.kind, entry.at_ms, entry.body, entry.blob)
            except MarketError as exc:
                raise JournalError(
                    f"journal entry {entry.seq} ({entry.kind}) does not replay: {exc}"
                ) from exc
            if entry.nonce:
                self.replayed_nonces.append(entry.nonce)
            verify = self.config.verify_replay and entry.kind == "cleared" and entry.body.get("ok")
            if verify and entry.body["interval"] not in self._state.flex_rolls:
                self._verify_clearing(int(entry.body["interval"]), str(entry.body["mechanism"]))
            count += 1
        if count:
            logger.info("replayed %d journal entries from %s", count, self.journal_path)

    def _verify_clearing(self, interval: int, mechanism: str) -> None:
        s = self._state.interval(interval)
        orders = tuple(r.order for r in s.orders if r.status != pb.ORDER_STATUS_CANCELLED)
        from market.forecast import BaseInterval

        journaled_base = s.clearing.base if s.clearing is not None else None
        ok, error, blob, _ = self.lifecycle.run_clearing(
            interval,
            orders,
            dict(self._state.participants),
            mechanism,
            base=None if journaled_base is None else BaseInterval.from_json(journaled_base),
        )
        journaled = s.clearing.result_json if s.clearing is not None else b""
        if not ok or blob != journaled:
            raise JournalError(
                f"interval {interval}: clearing again does not reproduce the journaled result"
                + (f" ({error})" if error else "")
            )

    def _verify_roll(self, seq: int, body: Mapping[str, Any], blob: bytes | None) -> None:
        if self.lifecycle.replay_roll(body) != blob:
            raise JournalError(
                f"journal entry {seq} (flex_roll of interval {body.get('interval')}): clearing "
                "the horizon again does not reproduce the journaled roll"
            )

    def _tick(self) -> None:
        while not self._stop.wait(self.config.tick_s):
            try:
                self.lifecycle.process_due(self.clock.now_ms())
            except Exception:  # keep the clock running; the journal error is logged there
                logger.exception("lifecycle tick failed")

    def close(self) -> None:
        """Stop the clock thread and the workers, and close the journal."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._lifecycle is not None:
            self._lifecycle.close()
        if self._journal is not None:
            self._journal.close()

    def remember_nonce(self, tag: str, expires_ms: int) -> Future[int]:
        """Keep a signed request's nonce tag across restarts until ``expires_ms`` (wall ms)."""
        return self.core.journal.remember_nonce(tag, expires_ms)

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registration ----------------------------------------------------------------

    def register_participant(
        self, address: str, bus: int, *, nonce: str | None = None
    ) -> Accepted[pb.Participant]:
        """Register ``address`` at ``bus`` (idempotent for the same bus).

        Raises:
            RequestError: malformed address, bus not connectable, or the operator account.
            AlreadyExistsError: registered at another bus.
        """
        address = _address("address", address)
        try:
            connectable = self.feeder.bus(bus).connectable
        except KeyError:
            raise RequestError(f"bus: feeder {self.feeder.name} has no bus {bus}") from None
        if not connectable:
            raise RequestError(f"bus: participants may not connect at bus {bus}")
        if address == self.operator_account:
            raise RequestError(f"address: {address} is the operator's settlement account")
        core = self.core
        with core.lock:
            existing = self._state.participants.get(address)
            if existing is not None and existing.bus == bus:
                return Accepted(pb.Participant(address=address, bus=bus), core.settled_future())
            _, fut = core.record(
                "participant", self.clock.now_ms(), {"address": address, "bus": bus}, nonce=nonce
            )
        return Accepted(pb.Participant(address=address, bus=bus), fut)

    def register_gateway(
        self, gateway: str, meter_id: str, participant: str, *, nonce: str | None = None
    ) -> Accepted[tuple[str, str, str]]:
        """Register the gateway key that signs ``meter_id``'s batches (idempotent).

        Raises:
            RequestError: a malformed address or meter id.
            NotFoundError: the participant is not registered.
            AlreadyExistsError: the meter is registered with other values.
        """
        gateway = _address("gateway", gateway)
        participant = _address("participant", participant)
        if not 1 <= len(meter_id) <= 64 or not meter_id.isprintable():
            raise RequestError("meter_id: must be 1 to 64 printable characters")
        value = (gateway, meter_id, participant)
        core = self.core
        with core.lock:
            if self._state.meters.get(meter_id) == (gateway, participant):
                return Accepted(value, core.settled_future())
            body = {"gateway": gateway, "meter_id": meter_id, "participant": participant}
            _, fut = core.record("gateway", self.clock.now_ms(), body, nonce=nonce)
        return Accepted(value, fut)

    def is_participant(self, address: str) -> bool:
        """``address`` (lower case) is a registered participant."""
        return address in self._state.participants

    def is_gateway(self, address: str) -> bool:
        """``address`` (lower case) is the registered gateway key of some meter."""
        return any(gateway == address for gateway, _ in self._state.meters.values())

    def is_operator(self, address: str) -> bool:
        """``address`` (lower case) is an operator."""
        return address in self.operators

    # -- orders ----------------------------------------------------------------------

    def submit_order(self, order: Order, *, nonce: str | None = None) -> Accepted[pb.OrderState]:
        """Accept an order (idempotent on (participant, order id)).

        Returns:
            The order as accepted; a retry with identical content returns the
            original answer.

        Raises:
            OrderValidationError: a field breaks a rule (every problem listed).
            DuplicateOrderError: the id was used for a different order.
            IntervalClosedError: the gate has closed or the interval is beyond the horizon.
            InsufficientCollateralError: free escrow does not cover the order's
                worst case and the open positions (see :mod:`market.engine.collateral`).
        """
        core = self.core
        with core.lock:
            existing = self._state.orders.get(order.key)
            if existing is not None:
                if existing.order != order:
                    # state.apply words the difference; it raises before changing anything
                    self._state.apply("order", 0, _order_body(order))
                    raise DuplicateOrderError(order.order_id)  # pragma: no cover - unreachable
                return Accepted(
                    _convert.order_state(existing, as_accepted=True), core.settled_future()
                )
            problems = validate_order(
                order,
                config=self.market,
                participants=self._state.participants,
                feeder=self.feeder,
            )
            if problems:
                raise OrderValidationError(problems)
            self._check_open(order.interval)
            if (escrow := self._escrow()) is not None:
                check_collateral(order, self._state, self.market, escrow)
            _, fut = core.record("order", self.clock.now_ms(), _order_body(order), nonce=nonce)
            record = self._state.orders[order.key]
        return Accepted(_convert.order_state(record, as_accepted=True), fut)

    def _escrow(self) -> EscrowView | None:
        """The settler as an escrow view, if it is one.

        A runtime protocol check costs ~70 µs, a third of an order's cost, so
        it is made once per settler (``settler`` is a public attribute).
        """
        settler = self.settler
        if settler is not self._escrow_of[0]:
            self._escrow_of = (settler, isinstance(settler, EscrowView))
        return settler if self._escrow_of[1] else None  # type: ignore[return-value]

    def _check_open(self, interval: int) -> None:
        now = self.clock.now_ms()
        life = self.lifecycle
        first = self._state.first_interval or 0
        if interval < first or life.gate_ms(interval) <= now:
            raise IntervalClosedError(
                f"interval: the gate of interval {interval} closed at {life.gate_ms(interval)} ms "
                f"(engine time {now} ms)"
            )
        current = now // self.core.interval_ms
        if interval > current + self.config.horizon_intervals:
            raise IntervalClosedError(
                f"interval: {interval} is beyond the order horizon "
                f"({self.config.horizon_intervals} intervals after the current {current})"
            )

    def cancel_order(
        self, participant: str, order_id: str, *, nonce: str | None = None
    ) -> Accepted[pb.OrderState]:
        """Cancel an open order; cancelling a cancelled order returns it unchanged.

        Raises:
            NotFoundError: no such order.
            IntervalClosedError: its gate has closed.
        """
        core = self.core
        with core.lock:
            record = self._state.order(participant, order_id)
            if record.status == pb.ORDER_STATUS_CANCELLED:
                return Accepted(_convert.order_state(record), core.settled_future())
            if record.status == pb.ORDER_STATUS_OPEN:
                self._check_open(record.order.interval)
            body = {"participant": participant, "order_id": order_id}
            _, fut = core.record("cancel", self.clock.now_ms(), body, nonce=nonce)
            return Accepted(_convert.order_state(record), fut)

    def get_order(self, participant: str, order_id: str) -> pb.OrderState:
        """The current state of one order.

        Raises:
            NotFoundError: no such order.
        """
        with self.core.lock:
            return _convert.order_state(self._state.order(participant, order_id))

    def list_orders(
        self, participant: str, *, interval: int | None, page_size: int, page_token: str
    ) -> tuple[list[pb.OrderState], str]:
        """One page of a participant's orders, oldest first, and the next page token.

        Raises:
            RequestError: bad page size or token.
        """
        if page_size == 0:
            page_size = 100
        if not 1 <= page_size <= 1000:
            raise RequestError(f"page_size: must be 0 or 1 to 1000, got {page_size}")
        try:
            start = int(page_token) if page_token else 0
        except ValueError:
            raise RequestError(
                f"page_token: {page_token!r} is not a token this engine made"
            ) from None
        if start < 0:
            raise RequestError(f"page_token: {page_token!r} is not a token this engine made")
        with self.core.lock:
            records: list[OrderRecord] = self._state.by_participant.get(participant, [])
            if interval is not None:
                records = [r for r in records if r.order.interval == interval]
            page = records[start : start + page_size]
            more = start + page_size < len(records)
            return [_convert.order_state(r) for r in page], str(start + page_size) if more else ""

    # -- flexibility orders (multi-interval; market.engine.rolling clears them) ----------

    def submit_flex_order(
        self, order: FlexOrder, *, nonce: str | None = None
    ) -> Accepted[market_pb2.FlexOrderState]:
        """Accept a flexibility order (idempotent on (participant, order id) and content).

        Raises:
            OrderValidationError: a field breaks a rule (every problem listed).
            AlreadyExistsError: the id is used for a different flexibility order.
            IntervalClosedError: every window of an EV or load has already closed.
        """
        core = self.core
        with core.lock:
            existing = self._state.flex.get(order.key)
            if existing is not None and existing.version == 1 and existing.accepted == order:
                return Accepted(_convert.flex_order_state(existing), core.settled_future())
            self._check_flex(order)
            body = {**_flex.flex_body(order), "amend": False}
            _, fut = core.record("flex_order", self.clock.now_ms(), body, nonce=nonce)
            return Accepted(_convert.flex_order_state(self._state.flex[order.key]), fut)

    def amend_flex_order(
        self, order: FlexOrder, *, nonce: str | None = None
    ) -> Accepted[market_pb2.FlexOrderState]:
        """Replace a live flexibility order by a new version of the same kind.

        Raises:
            NotFoundError: no such order.
            EngineStateError: it is cancelled or done, or the kind differs.
            OrderValidationError, IntervalClosedError: as for :meth:`submit_flex_order`.
        """
        core = self.core
        with core.lock:
            _flex.flex_record(self._state, order.participant, order.order_id)
            self._check_flex(order)
            body = {**_flex.flex_body(order), "amend": True}
            _, fut = core.record("flex_order", self.clock.now_ms(), body, nonce=nonce)
            return Accepted(_convert.flex_order_state(self._state.flex[order.key]), fut)

    def _check_flex(self, order: FlexOrder) -> None:
        problems = validate_flex_order(
            order, config=self.market, participants=self._state.participants, feeder=self.feeder
        )
        if problems:
            raise OrderValidationError(problems)
        if isinstance(order, StorageOrder):
            return
        first = self.lifecycle.next_gate
        if all(w.end_interval <= first for w in energy_windows(order)):
            name = "departure_interval" if isinstance(order, EvOrder) else "windows"
            raise IntervalClosedError(
                f"{name}: every window ends by interval {first}, the first whose gate is open"
            )

    def cancel_flex_order(
        self, participant: str, order_id: str, *, nonce: str | None = None
    ) -> Accepted[market_pb2.FlexOrderState]:
        """Withdraw a flexibility order from the next roll; a cancelled or done one is returned.

        Raises:
            NotFoundError: no such order.
        """
        core = self.core
        with core.lock:
            record = _flex.flex_record(self._state, participant, order_id)
            if record.status != _flex.LIVE:
                return Accepted(_convert.flex_order_state(record), core.settled_future())
            body = {"participant": participant, "order_id": order_id}
            _, fut = core.record("flex_cancel", self.clock.now_ms(), body, nonce=nonce)
            return Accepted(_convert.flex_order_state(record), fut)

    def flex_schedule(
        self, participant: str, order_id: str
    ) -> tuple[market_pb2.FlexOrderState, market_pb2.FlexSchedule | None]:
        """A flexibility order's state and its schedule from the latest roll (None before one).

        Raises:
            NotFoundError: no such order.
        """
        with self.core.lock:
            record = _flex.flex_record(self._state, participant, order_id)
            schedule = None
            if record.schedule is not None:
                schedule = market_pb2.FlexSchedule()
                schedule.CopyFrom(record.schedule)
            return _convert.flex_order_state(record), schedule

    # -- clearing and the clock ------------------------------------------------------

    def clearing_record(self, interval: int) -> ClearingRecord | None:
        """The latest clearing of ``interval``, if any."""
        with self.core.lock:
            s = self._state.intervals.get(interval)
            return None if s is None else s.clearing

    def trigger_clearing(
        self, interval: int, *, mechanism: str | None = None, rerun: bool = False
    ) -> ClearingRecord:
        """Clear ``interval`` now (or again) and wait for the result.

        Raises:
            RequestError, EngineStateError: see :meth:`Lifecycle.trigger_clearing`.
        """
        future = self.lifecycle.trigger_clearing(
            interval, mechanism or self.config.mechanism, rerun=rerun
        )
        record = future.result(self.config.wait_timeout_s)
        assert isinstance(record, ClearingRecord)
        self.core.settled_future().result(self.config.wait_timeout_s)
        return record

    def advance_to(self, to_ms: int) -> int:
        """Advance a simulated clock to ``to_ms`` and run every transition on the way.

        Returns once every due clearing and settlement is done and on disk.

        Raises:
            EngineStateError: the clock is a wall clock.
            RequestError: ``to_ms`` lies in the past.
        """
        now = self.lifecycle.advance_to(to_ms)
        self.core.settled_future().result(self.config.wait_timeout_s)
        return now

    def digest(self) -> str:
        """SHA-256 of the whole state: equal before a crash and after the replay."""
        with self.core.lock:
            return self._state.digest()


def _engine_id_of(feeder_name: str) -> str:
    """The default engine id: the feeder's name, with characters outside the id's rule as ``-``."""
    return re.sub(r"[^0-9A-Za-z._:-]", "-", feeder_name)[:64] or "gridex"


def _order_body(order: Order) -> dict[str, object]:
    return {
        "participant": order.participant,
        "order_id": order.order_id,
        "side": order.side.value,
        "interval": order.interval,
        "quantity_wh": order.quantity_wh,
        "limit_price": order.limit_price,
    }
