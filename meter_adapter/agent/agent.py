"""The prosumer agent: sells a forecast surplus, buys a forecast deficit.

For the first interval whose gate is still open, the agent forecasts the
home's net energy (:mod:`meter_adapter.agent.forecast`) and places one limit
order through ``MarketService/SubmitOrder``:

- a surplus of at least ``min_order_wh`` → SELL ``quantity_fraction`` of it
  at ``sell_min_price`` (the least the prosumer accepts per kWh);
- a deficit of at least ``min_order_wh`` → BUY ``quantity_fraction`` of it at
  ``buy_max_price`` (the most the prosumer pays per kWh);
- no price limit for that side, too small, or no forecast yet → no order.

Which interval is open comes from the engine, never from the gateway's wall
clock: by default from its market events (the interval after the latest
``GateClosed``; :class:`~meter_adapter.agent.market.MarketEvents`), or, for
in-process use next to an engine whose clock and gate closure are at hand,
computed from the injected clock as ``(now + gate_closure) // I + 1`` — the
engine's own rule.

Exactly one order per interval, even across crashes: the decision is saved
in the gateway's buffer file (table ``agent_orders``) *before* it is sent, and
its ``client_order_id`` (``agent-<interval>-<hash of the meter id>``) is a
function of the interval. A retry after a crash or a lost answer resends the
saved order unchanged, which the engine answers with the original order;
ALREADY_EXISTS (the id was used with other content) is taken as "already
ordered". Gate closed, price out of band and other refusals are logged and
recorded; unavailable engines are retried on the next call.

With ``storage`` settings and a battery on the device, the agent also keeps
a storage order for the battery at the engine, built from its measured state
of charge (:mod:`meter_adapter.agent.storage`): posted on the first plausible
battery reading, amended when the measured SoC drifts from the schedule,
never from a quarantined reading.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import grpc
from gridex.signing import Signer
from gridex.v1 import market_pb2, types_pb2

from meter_adapter.agent.forecast import EnergyHistory, IntervalEnergy, forecast_net_wh
from meter_adapter.agent.market import MarketClient, MarketEvents
from meter_adapter.agent.storage import FlexOrderClient, StorageAgent, StorageConfig
from meter_adapter.clock import Clock
from meter_adapter.errors import MeterConfigError
from meter_adapter.sunspec.battery import BatteryValues
from meter_adapter.uplink.buffer import BufferedReading, ReadingBuffer

__all__ = ["AgentConfig", "AgentOrder", "ProsumerAgent", "client_order_id", "decide_order"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_energy (
    interval INTEGER PRIMARY KEY, net_wh REAL NOT NULL, covered_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_orders (
    interval INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    side TEXT,
    quantity_wh INTEGER NOT NULL,
    limit_price INTEGER NOT NULL,
    forecast_wh REAL NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""

#: Refusals after which the order for that interval is given up (recorded as "refused").
_FINAL = {
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE,
}

Status = Literal["planned", "placed", "refused", "none"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """The prosumer's trading rules.

    Attributes:
        sell_min_price: Least accepted per kWh when selling, token base units;
            None: never sell.
        buy_max_price: Most paid per kWh when buying, token base units; None: never buy.
        interval_s: Market interval length, s (the engine's ``MarketConfig.interval_s``;
            learnt from the engine's events when they tell otherwise).
        gate_closure_s: None: learn the open interval from the engine's market
            events. A number (the engine's ``EngineConfig.gate_closure_s``):
            compute it from the gateway's clock, which must then be the
            engine's clock (in-process use).
        blend: Weight of the most recent interval against the same time
            yesterday in the forecast, 0..1.
        quantity_fraction: Share of the forecast surplus or deficit to trade, 0..1.
        min_order_wh: Smallest order placed, Wh.
        request_timeout_s: Deadline of a SubmitOrder call, s.
        engine_id: The engine's id, which every signed order names (None: asked
            once with the engine's public GetMarketInfo call).
        retry_s: In :meth:`ProsumerAgent.run`, how often to retry an order that
            could not be sent, and (with ``gate_closure_s``) to check the clock, s.
        storage: How to offer a home battery the device reports (None: not offered).
    """

    sell_min_price: int | None = None
    buy_max_price: int | None = None
    interval_s: int = 900
    gate_closure_s: int | None = None
    blend: float = 0.5
    quantity_fraction: float = 1.0
    min_order_wh: int = 10
    request_timeout_s: float = 10.0
    retry_s: float = 5.0
    engine_id: str | None = None
    storage: StorageConfig | None = None

    def problems(self) -> list[str]:
        """Every rule the configuration breaks, each naming the field."""
        out: list[str] = []
        if self.sell_min_price is None and self.buy_max_price is None and self.storage is None:
            out.append(
                "sell_min_price, buy_max_price, storage: give a price limit or storage settings"
            )
        if self.storage is not None:
            out += self.storage.problems()
        for name in ("sell_min_price", "buy_max_price"):
            value = getattr(self, name)
            if value is not None and value < 0:
                out.append(f"{name}: must be >= 0, got {value}")
        if self.interval_s <= 0:
            out.append(f"interval_s: must be positive, got {self.interval_s}")
        if self.gate_closure_s is not None and self.gate_closure_s < 0:
            out.append(f"gate_closure_s: must be >= 0, got {self.gate_closure_s}")
        if not 0.0 <= self.blend <= 1.0:
            out.append(f"blend: must be in 0..1, got {self.blend}")
        if not 0.0 < self.quantity_fraction <= 1.0:
            out.append(f"quantity_fraction: must be in (0, 1], got {self.quantity_fraction}")
        if self.min_order_wh < 1:
            out.append(f"min_order_wh: must be >= 1, got {self.min_order_wh}")
        if not self.request_timeout_s > 0 or not self.retry_s > 0:
            out.append("request_timeout_s, retry_s: must be positive")
        return out


@dataclass(frozen=True, slots=True)
class AgentOrder:
    """The agent's decision for one interval and where it stands.

    Attributes:
        interval: The interval traded.
        client_order_id: The order's idempotency key.
        side: ``"sell"``, ``"buy"``, or None when no order was due.
        quantity_wh: Energy offered or bid, Wh (0 without an order).
        limit_price: Price limit per kWh, token base units (0 without an order).
        forecast_wh: The forecast net energy the decision was based on, Wh.
        status: ``planned`` (saved, not yet confirmed by the engine), ``placed``,
            ``refused`` (given up: the reason is in ``detail``), ``none`` (no order due).
        detail: The engine's message for a refusal, else empty.
    """

    interval: int
    client_order_id: str
    side: Literal["sell", "buy"] | None
    quantity_wh: int
    limit_price: int
    forecast_wh: float
    status: Status
    detail: str = ""


def client_order_id(meter_id: str, interval: int) -> str:
    """The agent's order id for ``interval``: stable, at most 64 characters, one per meter."""
    digest = hashlib.sha256(meter_id.encode()).hexdigest()[:10]
    return f"agent-{interval}-{digest}"


def decide_order(
    config: AgentConfig, meter_id: str, interval: int, forecast_wh: float
) -> AgentOrder:
    """The order (or none) ``config``'s rules give for ``forecast_wh`` in ``interval``.

    A pure function, so in-process users (the backtest) apply the same rules
    as the gateway without a channel.
    """
    quantity = int(abs(forecast_wh) * config.quantity_fraction)
    side: Literal["sell", "buy"] | None = None
    price = 0
    if quantity >= config.min_order_wh:
        if forecast_wh > 0 and config.sell_min_price is not None:
            side, price = "sell", config.sell_min_price
        elif forecast_wh < 0 and config.buy_max_price is not None:
            side, price = "buy", config.buy_max_price
    return AgentOrder(
        interval,
        client_order_id(meter_id, interval),
        side,
        quantity if side else 0,
        price,
        forecast_wh,
        "planned" if side else "none",
    )


class ProsumerAgent:
    """Forecasts and trades for one meter (see the module docstring).

    Args:
        channel: A ``grpc.aio`` channel to the engine.
        signer: The participant's key (in ``gridex-meter run``: the gateway key).
        meter_id: The meter whose readings are forecast.
        config: Trading rules.
        store: The gateway's buffer; the agent's tables live in the same file.
        clock: The gateway's clock (the engine's clock in-process).
        events: The engine's market events (needed unless ``config.gate_closure_s``
            is set; created on demand).
        forecaster: The home energy manager's own forecast of an interval's
            net energy (interval id → Wh, positive = surplus; None: unknown),
            used instead of the persistence forecast of the meter's history
            (which, once the home follows a curtailing dispatch, would only
            see the curtailed export).

    Raises:
        MeterConfigError: ``config`` breaks a rule.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        signer: Signer,
        *,
        meter_id: str,
        config: AgentConfig,
        store: ReadingBuffer,
        clock: Clock,
        events: MarketEvents | None = None,
        forecaster: Callable[[int], float | None] | None = None,
        flex_client: FlexOrderClient | None = None,
        expected_soc_wh: Callable[[int], int | None] | None = None,
    ) -> None:
        if problems := config.problems():
            raise MeterConfigError("agent: " + "; ".join(problems))
        self.config = config
        self._forecaster = forecaster
        self.meter_id = meter_id
        self._client = MarketClient(
            channel, signer, timeout_s=config.request_timeout_s, engine_id=config.engine_id
        )
        if events is None and config.gate_closure_s is None:
            events = MarketEvents(self._client, store=store)
        self.events = events
        self._store = store
        self._db = store.connection
        self._db.executescript(_SCHEMA)
        self._clock = clock
        self.history = EnergyHistory(self._interval_s())
        rows = self._db.execute("SELECT interval, net_wh, covered_ms FROM agent_energy")
        self.history.load(IntervalEnergy(*row) for row in rows)
        self.storage: StorageAgent | None = None
        """The battery's storage order (None: no ``config.storage``)."""
        if config.storage is not None:
            client: FlexOrderClient = self._client if flex_client is None else flex_client
            self.storage = StorageAgent(
                client,
                participant=signer.address,
                meter_id=meter_id,
                config=config.storage,
                store=store,
                expected_soc_wh=expected_soc_wh,
            )

    # -- time --------------------------------------------------------------------------

    def _interval_s(self) -> int:
        learnt = self.events.interval_s if self.events is not None else None
        return learnt or self.config.interval_s

    def _now_ms(self) -> int:
        return _ms(self._clock)

    def open_interval(self) -> int | None:
        """The first interval whose gate is open, per the engine (None if not known yet)."""
        gate_s = self.config.gate_closure_s
        if gate_s is None:
            return self.events.open_interval if self.events is not None else None
        return (_ms(self._clock) + gate_s * 1000) // (self._interval_s() * 1000) + 1

    # -- readings ----------------------------------------------------------------------

    def observe(self, reading: BufferedReading) -> None:
        """Take one buffered reading into the energy history (cheap; call per reading)."""
        if self.history.interval_s != self._interval_s():
            logger.warning(
                "agent %s: the engine's intervals are %d s, not %d s; restarting the history",
                self.meter_id,
                self._interval_s(),
                self.history.interval_s,
            )
            self.history = EnergyHistory(self._interval_s())
        done = self.history.observe(
            reading.timestamp_ms, reading.energy_import_wh, reading.energy_export_wh
        )
        if done:
            entries = [e for k in done if (e := self.history.get(k)) is not None]
            db = self._db
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO agent_energy VALUES (?, ?, ?)",
                [(e.interval, e.net_wh, e.covered_ms) for e in entries],
            )
            keep = 2 * (self.history.intervals_per_day + 1)
            db.execute("DELETE FROM agent_energy WHERE interval < ?", (done[-1] - keep,))
            db.execute("COMMIT")

    def forecast_wh(self, interval: int) -> float | None:
        """Forecast net energy of ``interval``, Wh, positive = surplus (None: no data yet)."""
        if self._forecaster is not None:
            return self._forecaster(interval)
        return forecast_net_wh(
            self.history, interval, now_ms=self._now_ms(), blend=self.config.blend
        )

    def observe_battery(self, battery: BatteryValues | None, timestamp_ms: int) -> None:
        """Take the battery as read with one reading (None: absent or quarantined)."""
        if self.storage is not None:
            self.storage.observe(battery, timestamp_ms)

    # -- orders ------------------------------------------------------------------------

    def order(self, interval: int) -> AgentOrder | None:
        """The saved decision for ``interval``, if any."""
        row = self._db.execute(
            "SELECT interval, client_order_id, side, quantity_wh, limit_price, forecast_wh,"
            " status, detail FROM agent_orders WHERE interval = ?",
            (interval,),
        ).fetchone()
        return None if row is None else AgentOrder(*row)

    def _save(self, order: AgentOrder) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO agent_orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order.interval,
                order.client_order_id,
                order.side,
                order.quantity_wh,
                order.limit_price,
                order.forecast_wh,
                order.status,
                order.detail,
            ),
        )

    def decide(self, interval: int, forecast_wh: float) -> AgentOrder:
        """The order (or none) the rules give for ``forecast_wh`` in ``interval``."""
        return decide_order(self.config, self.meter_id, interval, forecast_wh)

    async def trade_once(self) -> AgentOrder | None:
        """Make sure the open interval has its order; return the decision (None: too early).

        Never raises for an engine problem: it is logged, and the order is sent
        again on the next call while the interval is open. The battery's
        storage order, if any, is posted or amended first.
        """
        if self.storage is not None:
            await self.storage.post_once(self._now_ms())
        if self.config.sell_min_price is None and self.config.buy_max_price is None:
            return None  # storage only
        interval = self.open_interval()
        if interval is None:
            return None
        saved = self.order(interval)
        if saved is not None and saved.status != "planned":
            return saved
        if saved is None:
            forecast = self.forecast_wh(interval)
            if forecast is None:
                logger.debug("agent %s: no forecast for interval %d yet", self.meter_id, interval)
                return None
            saved = self.decide(interval, forecast)
            self._save(saved)  # before sending: a crash from here on resends the same order
            if saved.side is None:
                return saved
        return await self._submit(saved)

    async def _submit(self, order: AgentOrder) -> AgentOrder:
        request = market_pb2.SubmitOrderRequest(
            participant=self._client.signer.address,
            client_order_id=order.client_order_id,
            side=types_pb2.SIDE_SELL if order.side == "sell" else types_pb2.SIDE_BUY,
            interval=order.interval,
            quantity_wh=order.quantity_wh,
            limit_price=order.limit_price,
        )
        try:
            await self._client.submit_order(request)
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
            if code == grpc.StatusCode.ALREADY_EXISTS:
                logger.warning(
                    "agent %s: order %s exists with other content; keeping that one",
                    self.meter_id,
                    order.client_order_id,
                )
                return self._record(order, "placed", details)
            if code in _FINAL:
                logger.warning(
                    "agent %s: %s order for interval %d refused (%s: %s)",
                    self.meter_id,
                    order.side,
                    order.interval,
                    code.name,
                    details,
                )
                return self._record(order, "refused", f"{code.name}: {details}")
            log = logger.warning if code == grpc.StatusCode.UNAVAILABLE else logger.error
            log(
                "agent %s: could not place order for interval %d (%s: %s); will retry",
                self.meter_id,
                order.interval,
                code.name,
                details,
            )
            return order
        logger.info(
            "agent %s: %s %d Wh at %d per kWh for interval %d (forecast %+.0f Wh)",
            self.meter_id,
            order.side,
            order.quantity_wh,
            order.limit_price,
            order.interval,
            order.forecast_wh,
        )
        return self._record(order, "placed", "")

    def _record(self, order: AgentOrder, status: Status, detail: str) -> AgentOrder:
        done = AgentOrder(
            order.interval,
            order.client_order_id,
            order.side,
            order.quantity_wh,
            order.limit_price,
            order.forecast_wh,
            status,
            detail,
        )
        self._save(done)
        return done

    async def run(self, *, follow_events: bool = True) -> None:
        """Trade for ever (until cancelled): on every gate closure, and every ``retry_s``.

        Args:
            follow_events: Also run the market-event follower (False when the
                caller runs ``self.events.run()`` itself, as the gateway does).
        """
        follower = None
        if follow_events and self.events is not None:
            follower = asyncio.create_task(self.events.run(), name="gridex-agent-events")
        try:
            while True:
                if self.events is not None:
                    self.events.changed.clear()
                await self.trade_once()
                if self.events is None:
                    await asyncio.sleep(self.config.retry_s)
                    continue
                try:
                    async with asyncio.timeout(self.config.retry_s):
                        await self.events.changed.wait()
                except TimeoutError:
                    pass
        finally:
            if follower is not None:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)


def _ms(clock: Clock) -> int:
    return (clock() - _EPOCH) // timedelta(milliseconds=1)
