"""The market event log as streams see it: events become visible once journaled.

The engine appends :class:`gridex.v1.market_pb2.MarketEvent` values to one list
(their sequence is their position, from 1) while it applies entries; the
:class:`EventHub` publishes them only when the journal entry that produced
them is on disk, so a client never sees an event that a crash could undo.
Streams wait on the hub from their asyncio loop; the journal's writer thread
wakes them.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from gridex.v1 import market_pb2

__all__ = ["EventHub", "redacted"]


def redacted(event: market_pb2.MarketEvent, viewer: str) -> market_pb2.MarketEvent:
    """``event`` as participant ``viewer`` (lower-case address) may see it.

    An order event of another participant keeps only what the anonymous
    order book shows — side, interval, quantity, limit price, status — and
    loses the participant's address and client order id. Every other event
    (gate, clearing, delivery, metering, settlement) is the same for everyone.
    Another participant's flexibility schedule loses its owner and order id
    (the intervals, energies, state of charge and prices stay: anonymous, like
    the book).
    """
    kind = event.WhichOneof("event")
    if kind == "flex_schedule_updated":
        return _redacted_schedule(event, viewer)
    if kind not in ("order_accepted", "order_cancelled"):
        return event
    order = getattr(event, kind).order
    if order.participant == viewer:
        return event
    copy = market_pb2.MarketEvent()
    copy.CopyFrom(event)
    hidden = getattr(copy, kind).order
    hidden.ClearField("participant")
    hidden.ClearField("client_order_id")
    return copy


def _redacted_schedule(event: market_pb2.MarketEvent, viewer: str) -> market_pb2.MarketEvent:
    if event.flex_schedule_updated.schedule.participant == viewer:
        return event
    copy = market_pb2.MarketEvent()
    copy.CopyFrom(event)
    copy.flex_schedule_updated.schedule.ClearField("participant")
    copy.flex_schedule_updated.schedule.ClearField("client_order_id")
    return copy


class EventHub:
    """Publishes the engine's events to waiting streams.

    Args:
        events: the engine's event list (appended to under the engine lock).
    """

    def __init__(self, events: list[market_pb2.MarketEvent]) -> None:
        self._events = events
        self._published = 0
        self._lock = threading.Lock()
        self._pending: deque[tuple[int, int]] = deque()  # (journal seq, event seq)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def published(self) -> int:
        """Sequence of the latest event visible to streams."""
        return self._published

    def expect(self, journal_seq: int, event_seq: int) -> None:
        """Journal entry ``journal_seq`` produced events up to ``event_seq``."""
        with self._lock:
            self._pending.append((journal_seq, event_seq))

    def publish_all(self) -> None:
        """Make every event in the list visible (after a replay)."""
        self._set(len(self._events))

    def on_durable(self, journal_seq: int) -> None:
        """Journal callback: entries up to ``journal_seq`` are on disk."""
        top = 0
        with self._lock:
            while self._pending and self._pending[0][0] <= journal_seq:
                top = max(top, self._pending.popleft()[1])
        if top:
            self._set(top)

    def _set(self, sequence: int) -> None:
        with self._lock:
            if sequence <= self._published:
                return
            self._published = sequence
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop has closed; its stream is gone
                with self._lock:
                    self._waiters.discard((loop, event))

    def after(self, sequence: int, limit: int = 1000) -> list[market_pb2.MarketEvent]:
        """Published events with a sequence above ``sequence``, at most ``limit``."""
        end = min(self._published, sequence + limit)
        return self._events[sequence:end] if end > sequence else []

    async def wait(self, sequence: int, timeout_s: float) -> None:
        """Return once an event above ``sequence`` is published, or after ``timeout_s``."""
        if self._published > sequence:
            return
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            if self._published <= sequence:
                await asyncio.wait_for(waiter[1].wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)
