"""One home gateway: a meter, its buffer, the uplink and (optionally) the prosumer agent.

:class:`Gateway` is the API for running gateways inside another program — the
demo runs a few dozen of them on one event loop next to the engine, on the
engine's simulated clock — and what ``gridex-meter run`` runs. Either let it
run by itself::

    async with Gateway(source, key, channel, meter_id="home-7",
                       buffer_path="home-7.sqlite") as gateway:
        await gateway.run(poll_interval_s=5)

or step it from outside (deterministic, no background tasks)::

    clock = clock_from_ms(engine.clock.now_ms)
    gateway = Gateway(SimulatedSource(meter, clock, meter_id="home-7"), key, channel,
                      meter_id="home-7", buffer_path=tmp / "home-7.sqlite", clock=clock,
                      agent=AgentConfig(sell_min_price=80_000, gate_closure_s=300),
                      synchronous="NORMAL")
    for t in times:
        engine.advance_to(t)
        await gateway.poll_once()    # read the meter, buffer the reading
        if it_is_time_to_flush:
            await gateway.flush()    # deliver everything buffered, wait for the acks
        await gateway.trade_once()   # the agent's order for the open interval

Costs (``bench/uplink.py``, 2 cores): ``poll_once`` on a simulated home is
~0.1 ms with ``synchronous="NORMAL"`` (the meter's integration, one SQLite
transaction, the agent's bookkeeping), ~1.5-3 ms with ``"FULL"`` (an fsync).
A flush costs one signed batch and one round trip to the engine (~1 ms),
however many readings it carries: a fleet that flushes once per interval
instead of once per reading moves about five times as many readings a second.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

import grpc
from gridex.signing import Signer

from meter_adapter.agent.agent import AgentConfig, AgentOrder, ProsumerAgent
from meter_adapter.agent.market import MarketEvents
from meter_adapter.agent.storage import FlexOrderClient
from meter_adapter.clock import Clock, utc_now
from meter_adapter.errors import MeterConfigError
from meter_adapter.uplink.buffer import BufferedReading, ReadingBuffer
from meter_adapter.uplink.sources import ReadingSource
from meter_adapter.uplink.stream import Uplink, UplinkConfig

__all__ = ["Gateway"]

logger = logging.getLogger(__name__)


class Gateway:
    """A meter's gateway to the engine.

    Args:
        source: Where readings come from (:class:`~meter_adapter.reader.MeterReader`,
            :class:`~meter_adapter.uplink.sources.SimulatedSource`, ...).
        key: The gateway's key (a :class:`gridex.signing.Signer`, or the private
            key as hex or 32 bytes). It signs reading batches and, with an agent,
            orders: the address must be registered for the meter and as the participant.
        engine_channel: A ``grpc.aio`` channel to the engine (not closed by the gateway;
            see :func:`~meter_adapter.uplink.channel.engine_channel`).
        meter_id: The meter's id, as registered by the operator.
        buffer_path: The buffer's SQLite file (one per gateway), or ``":memory:"``,
            which gives up durability (tests and benchmarks only), or an open
            :class:`~meter_adapter.uplink.buffer.ReadingBuffer` (the gateway closes it).
        agent: Trading rules, or None for no prosumer agent.
        clock: The gateway's time (the engine's clock in-process,
            :func:`~meter_adapter.uplink.sources.clock_from_ms`); the source
            stamps readings with its own clock.
        uplink: Batching and retry settings.
        engine_id: The engine's id, which every signature names (None: the
            agent's ``engine_id`` if it has one, else asked with GetMarketInfo).
        synchronous: The buffer's SQLite ``synchronous`` (see
            :class:`~meter_adapter.uplink.buffer.ReadingBuffer`).
        first_seq: Seq of the first reading of a fresh buffer (default: the
            wall clock in Unix ms, see :mod:`~meter_adapter.uplink.buffer`).
        events: A market-event follower to share (default: the agent makes its
            own when it needs one).
        forecaster: The agent's forecast of an interval's net energy, Wh
            (see :class:`~meter_adapter.agent.agent.ProsumerAgent`).
        flex_client: Where the agent's storage orders go (see
            :class:`~meter_adapter.agent.agent.ProsumerAgent`).

    Raises:
        MeterConfigError: A setting breaks a rule or the buffer belongs to another meter.
    """

    def __init__(
        self,
        source: ReadingSource,
        key: Signer | str | bytes,
        engine_channel: grpc.aio.Channel,
        *,
        meter_id: str,
        buffer_path: str | Path | ReadingBuffer,
        agent: AgentConfig | None = None,
        clock: Clock = utc_now,
        uplink: UplinkConfig | None = None,
        engine_id: str | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        first_seq: int | None = None,
        events: MarketEvents | None = None,
        forecaster: Callable[[int], float | None] | None = None,
        flex_client: FlexOrderClient | None = None,
    ) -> None:
        try:
            signer = key if isinstance(key, Signer) else Signer(key)
        except ValueError as exc:
            raise MeterConfigError(f"key: {exc}") from None
        self.source = source
        self.meter_id = meter_id
        self.signer = signer
        if isinstance(buffer_path, ReadingBuffer):
            if buffer_path.meter_id != meter_id:
                raise MeterConfigError(
                    f"buffer belongs to meter {buffer_path.meter_id!r}, not {meter_id!r}"
                )
            self.buffer = buffer_path
        else:
            self.buffer = ReadingBuffer(
                buffer_path, meter_id=meter_id, first_seq=first_seq, synchronous=synchronous
            )
        try:
            if engine_id is None and agent is not None:
                engine_id = agent.engine_id
            self.uplink = Uplink(
                engine_channel, self.buffer, signer, engine_id=engine_id, config=uplink
            )
            self.agent = (
                None
                if agent is None
                else ProsumerAgent(
                    engine_channel,
                    signer,
                    meter_id=meter_id,
                    config=agent,
                    store=self.buffer,
                    clock=clock,
                    events=events,
                    forecaster=forecaster,
                    flex_client=flex_client,
                )
            )
        except BaseException:
            self.buffer.close()
            raise
        self.events = events if events is not None else (self.agent and self.agent.events)
        self.skipped = 0
        """Polls that gave no reading or one that could not follow the previous one."""
        self._counters_down = 0

    @property
    def address(self) -> str:
        """The gateway key's address (lower case)."""
        return self.signer.address

    async def poll_once(self) -> BufferedReading | None:
        """Read the source once and buffer the reading; return it (None: nothing buffered).

        A reading that cannot follow the previous one (its timestamp does not
        increase, as with a simulated clock that has not moved, or a counter
        went down) is skipped, as is one the buffer cannot store (logged).
        Never raises for a device or disk problem.
        """
        reading = await self.source.poll()
        if reading is None:
            self.skipped += 1
            return None
        if self.agent is not None:
            self.agent.observe_battery(reading.battery, reading.timestamp_ms)
        ts, imp, exp = reading.timestamp_ms, reading.energy_import_wh, reading.energy_export_wh
        problem = self.buffer.accepts(ts, imp, exp)
        if problem is not None:
            self.skipped += 1
            if problem.startswith("timestamp"):  # a clock that has not moved: normal
                logger.debug("meter %s: reading skipped: %s", self.meter_id, problem)
                return None
            # counters that went down are not normal: say so at once, then every 100th time
            self._counters_down += 1
            (logger.warning if self._counters_down % 100 == 1 else logger.debug)(
                "meter %s: reading skipped (%d in a row): %s",
                self.meter_id,
                self._counters_down,
                problem,
            )
            return None
        self._counters_down = 0
        try:
            buffered = self.buffer.append(ts, imp, exp, reading.power_w, reading.production_wh)
        except sqlite3.Error:
            self.skipped += 1
            logger.exception("meter %s: cannot buffer the reading", self.meter_id)
            return None
        self.uplink.notify()
        if self.agent is not None:
            self.agent.observe(buffered)
        return buffered

    async def flush(self, *, timeout_s: float | None = None) -> int:
        """Deliver everything buffered so far; return how many readings are still pending.

        See :meth:`~meter_adapter.uplink.stream.Uplink.flush`: reconnects as
        needed and gives up only when ``timeout_s`` passes.
        """
        return await self.uplink.flush(timeout_s=timeout_s)

    async def trade_once(self) -> AgentOrder | None:
        """Let the agent place its order for the open interval (None: no agent, or too early)."""
        if self.agent is None:
            return None
        return await self.agent.trade_once()

    async def run(self, *, poll_interval_s: float = 5.0) -> None:
        """Poll, deliver, follow the market and trade, for ever (until cancelled).

        Args:
            poll_interval_s: Real time between two polls of the source, s.
        """
        if not poll_interval_s > 0:
            raise MeterConfigError(f"poll_interval_s must be positive, got {poll_interval_s}")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.uplink.run(), name=f"uplink {self.meter_id}")
            if self.events is not None:
                tasks.create_task(self.events.run(), name=f"events {self.meter_id}")
            if self.agent is not None:
                tasks.create_task(
                    self.agent.run(follow_events=False), name=f"agent {self.meter_id}"
                )
            tasks.create_task(self._poll_forever(poll_interval_s), name=f"poll {self.meter_id}")

    async def _poll_forever(self, interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self.poll_once()
            next_at += interval_s
            now = loop.time()
            if next_at < now:  # fell behind (slow device): skip the missed polls
                next_at = now + interval_s - (now - next_at) % interval_s
            await asyncio.sleep(next_at - now)

    async def close(self) -> None:
        """Close the stream and the buffer (the channel stays open)."""
        await self.uplink.close()
        self.buffer.close()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
