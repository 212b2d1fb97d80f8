"""The agent's storage order: the home battery offered to the market from its measured SoC.

When the gateway's device has a battery (SunSpec model 802,
:class:`~meter_adapter.sunspec.battery.BatteryValues`), :class:`StorageAgent`
keeps one storage order at the engine for it, built by
:func:`build_storage_order` from the latest plausible battery reading and the
prosumer's settings (:class:`StorageConfig`):

- capacity, state of charge and the charge and discharge power limits as the
  battery reports them (integer Wh and W, rounded as
  :mod:`meter_adapter.sunspec.battery` says);
- lowest state of charge: the battery's own (``SoCMin``/``SoCRsvMin``) or the
  prosumer's reserve, whichever is higher; highest: the battery's own. A
  measured SoC outside that band widens it to the SoC (the order may then
  only move it back towards the band), so the order is valid as measured;
- the state of charge to end the horizon with: ``end_soc_percent`` of the
  capacity (default: the lowest allowed), within the band;
- efficiencies and the price of cycling as configured.

:class:`StorageOrder` carries exactly the fields of ``market.flex.StorageOrder``
(a gateway imports nothing of the engine; a test checks the two agree, and
that every order built passes ``market.flex.validate_flex_order``).

When it posts (:meth:`StorageAgent.post_once`):

- never without a fresh plausible battery reading — a quarantined reading
  (:class:`~meter_adapter.reader.MeterReader` then reports no battery), no
  battery, or a reading older than ``max_age_s`` holds everything back;
- once, when nothing is posted yet;
- again with the same order id (an amendment) when the measured SoC differs
  from the SoC the schedule expects by more than ``drift_wh``, or the
  battery's limits changed. The expected SoC comes from ``expected_soc_wh``
  (the engine's schedule for the order, where the caller has it), else it is
  the SoC last posted.

The order posted last is saved in the gateway's buffer file (table
``agent_storage``) once the engine accepted it, so a restart neither posts it
again nor forgets it. A refusal (INVALID_ARGUMENT, FAILED_PRECONDITION,
OUT_OF_RANGE) is logged and that exact order is not sent again; other
failures are retried on the next call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Protocol

import grpc

from meter_adapter.sunspec.battery import BatteryValues
from meter_adapter.uplink.buffer import ReadingBuffer

__all__ = [
    "FlexOrderClient",
    "StorageAgent",
    "StorageConfig",
    "StorageOrder",
    "StoragePost",
    "build_storage_order",
    "storage_order_id",
]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_storage (
    order_id TEXT PRIMARY KEY, posted_ms INTEGER NOT NULL, body TEXT NOT NULL
);
"""

_FINAL = {
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE,
}


@dataclass(frozen=True, slots=True)
class StorageOrder:
    """A battery offered over the horizon: field for field ``market.flex.StorageOrder``.

    Energy in integer Wh, power in integer W, ``cycling_price`` in token base
    units per kWh discharged, efficiencies as fractions in (0, 1].
    """

    order_id: str
    participant: str
    capacity_wh: int
    soc_wh: int
    min_soc_wh: int
    max_soc_wh: int
    max_charge_w: int
    max_discharge_w: int
    charge_efficiency: float
    discharge_efficiency: float
    end_soc_wh: int
    cycling_price: int


class FlexOrderClient(Protocol):
    """Where storage orders go: the engine's flexibility-order call.

    Submitting an order whose id the engine already holds replaces it (an amendment).
    """

    async def submit_flex_order(self, order: StorageOrder) -> object:
        """Submit or amend ``order``.

        Raises:
            grpc.RpcError: The engine refused it or could not be reached.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageConfig:
    """The prosumer's settings for offering the battery.

    Attributes:
        cycling_price: What one kWh discharged costs the owner (wear), token
            base units per kWh.
        reserve_percent: Least state of charge the market may leave, % of the
            capacity (on top of the battery's own minimum).
        end_soc_percent: State of charge to hold at the end of the horizon, %
            of capacity (None: the lowest allowed).
        charge_efficiency: Share of the metered charge that is stored, (0, 1].
        discharge_efficiency: Share of the drawn energy that reaches the meter, (0, 1].
        drift_wh: Amend the order once the measured SoC is this far from the
            SoC the schedule expects, Wh.
        max_age_s: A battery reading older than this is not posted from, s.
    """

    cycling_price: int
    reserve_percent: float = 0.0
    end_soc_percent: float | None = None
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    drift_wh: int = 500
    max_age_s: float = 120.0

    def problems(self) -> list[str]:
        """Every rule the settings break, each naming the field."""
        out: list[str] = []
        if self.cycling_price < 0:
            out.append(f"storage.cycling_price: must be >= 0, got {self.cycling_price}")
        for name in ("reserve_percent", "end_soc_percent"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= 100.0):
                out.append(f"storage.{name}: must be in 0..100, got {value}")
        for name in ("charge_efficiency", "discharge_efficiency"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value <= 1.0):
                out.append(f"storage.{name}: must be in (0, 1], got {value}")
        if self.drift_wh < 1:
            out.append(f"storage.drift_wh: must be >= 1, got {self.drift_wh}")
        if not self.max_age_s > 0:
            out.append(f"storage.max_age_s: must be positive, got {self.max_age_s}")
        return out


def storage_order_id(meter_id: str) -> str:
    """The id of the battery's one storage order: stable per meter, at most 64 characters."""
    return f"storage-{hashlib.sha256(meter_id.encode()).hexdigest()[:10]}"


def _percent_wh(capacity_wh: int, percent: float, rounding: Callable[[Fraction], int]) -> int:
    return rounding(capacity_wh * Fraction(percent) / 100)


def build_storage_order(
    config: StorageConfig, *, order_id: str, participant: str, battery: BatteryValues
) -> StorageOrder:
    """The storage order for ``battery`` as measured (rules in the module docstring)."""
    capacity = battery.capacity_wh
    soc = battery.soc_wh
    reserve = _percent_wh(capacity, config.reserve_percent, math.ceil)
    high = battery.max_soc_wh
    low = min(max(battery.min_soc_wh, reserve), high)
    low, high = min(low, soc), max(high, soc)
    end = low
    if config.end_soc_percent is not None:
        end = _percent_wh(capacity, config.end_soc_percent, math.ceil)
    return StorageOrder(
        order_id=order_id,
        participant=participant.lower(),
        capacity_wh=capacity,
        soc_wh=soc,
        min_soc_wh=low,
        max_soc_wh=high,
        max_charge_w=battery.max_charge_w,
        max_discharge_w=battery.max_discharge_w,
        charge_efficiency=float(config.charge_efficiency),
        discharge_efficiency=float(config.discharge_efficiency),
        end_soc_wh=min(max(end, low), high),
        cycling_price=config.cycling_price,
    )


PostStatus = Literal["posted", "amended", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class StoragePost:
    """One attempt to post the storage order.

    Attributes:
        order: What was sent.
        status: ``posted`` (first time), ``amended``, ``refused`` (the engine
            said no: not sent again unchanged), ``failed`` (retried next time).
        detail: The engine's message for a refusal or failure, else empty.
    """

    order: StorageOrder
    status: PostStatus
    detail: str = ""


class StorageAgent:
    """Keeps the battery's storage order at the engine (see the module docstring).

    Args:
        client: The engine's flexibility-order call.
        participant: The participant's address (the key's).
        meter_id: The meter the battery sits behind (names the order).
        config: The prosumer's settings.
        store: The gateway's buffer (the posted order is saved there), or None.
        expected_soc_wh: The SoC the engine's schedule expects at a time
            (Unix ms → Wh, None: not known), or None to compare with the SoC
            last posted.
    """

    def __init__(
        self,
        client: FlexOrderClient,
        *,
        participant: str,
        meter_id: str,
        config: StorageConfig,
        store: ReadingBuffer | None = None,
        expected_soc_wh: Callable[[int], int | None] | None = None,
    ) -> None:
        self._client = client
        self.participant = participant.lower()
        self.order_id = storage_order_id(meter_id)
        self.config = config
        self._expected = expected_soc_wh
        self._db = None if store is None else store.connection
        self.battery: BatteryValues | None = None
        """The latest plausible battery reading (None: none, or the latest was quarantined)."""
        self.battery_ms: int | None = None
        """When :attr:`battery` was read, Unix ms."""
        self.posted: StorageOrder | None = None
        """The order the engine accepted last."""
        self._refused: StorageOrder | None = None
        self.posts: list[StoragePost] = []
        """Every attempt so far, oldest first (the latest few hundred)."""
        if self._db is not None:
            self._db.executescript(_SCHEMA)
            row = self._db.execute(
                "SELECT body FROM agent_storage WHERE order_id = ?", (self.order_id,)
            ).fetchone()
            if row is not None:
                self.posted = StorageOrder(**json.loads(row[0]))

    def observe(self, battery: BatteryValues | None, timestamp_ms: int) -> None:
        """Take the battery as read with one reading (None: absent or quarantined)."""
        self.battery = battery
        self.battery_ms = timestamp_ms

    def due(self, now_ms: int) -> StorageOrder | None:
        """The order to send now, or None (rules in the module docstring)."""
        order = self._measured_order(now_ms)
        if order is None or order == self._refused:
            return None
        return order if self._differs(order, now_ms) else None

    def _measured_order(self, now_ms: int) -> StorageOrder | None:
        """The order for the latest battery reading, if it is fresh."""
        battery, read_ms = self.battery, self.battery_ms
        if battery is None or read_ms is None:
            return None
        if now_ms - read_ms > self.config.max_age_s * 1000:
            return None
        return build_storage_order(
            self.config, order_id=self.order_id, participant=self.participant, battery=battery
        )

    def _differs(self, order: StorageOrder, now_ms: int) -> bool:
        """Whether ``order`` should replace what was posted (drift, or other limits)."""
        posted = self.posted
        if posted is None:
            return True
        expected = self._expected(now_ms) if self._expected is not None else None
        reference = posted.soc_wh if expected is None else expected
        if abs(order.soc_wh - reference) > self.config.drift_wh:
            return True
        unchanged = ("soc_wh", "end_soc_wh", "min_soc_wh", "max_soc_wh")
        # capacity, power limits or settings changed
        return dataclasses.replace(order, **{k: getattr(posted, k) for k in unchanged}) != posted

    async def post_once(self, now_ms: int) -> StoragePost | None:
        """Send the order if one is due; return what happened (None: nothing due).

        Never raises for an engine problem (logged; a failure is retried on the next call).
        """
        order = self.due(now_ms)
        if order is None:
            return None
        status: PostStatus = "posted" if self.posted is None else "amended"
        try:
            await self._client.submit_flex_order(order)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
            details = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            name = code.name if code is not None else type(exc).__name__
            if code in _FINAL:
                self._refused = order
                logger.warning("storage order %s refused (%s: %s)", order.order_id, name, details)
                return self._log(StoragePost(order, "refused", f"{name}: {details}"))
            logger.warning("storage order %s not sent (%s: %s); will retry", order.order_id,
                           name, details)  # fmt: skip
            return self._log(StoragePost(order, "failed", f"{name}: {details}"))
        self.posted, self._refused = order, None
        if self._db is not None:
            body = json.dumps(dataclasses.asdict(order), sort_keys=True)
            self._db.execute(
                "INSERT OR REPLACE INTO agent_storage VALUES (?, ?, ?)",
                (order.order_id, now_ms, body),
            )
        logger.info(
            "storage order %s %s: SoC %d Wh of %d Wh (band %d..%d, end %d), "
            "charge ≤ %d W, discharge ≤ %d W",
            order.order_id,
            status,
            order.soc_wh,
            order.capacity_wh,
            order.min_soc_wh,
            order.max_soc_wh,
            order.end_soc_wh,
            order.max_charge_w,
            order.max_discharge_w,
        )
        return self._log(StoragePost(order, status))

    def _log(self, post: StoragePost) -> StoragePost:
        self.posts.append(post)
        del self.posts[:-256]
        return post
