"""The outage case of issue 13, reusable: a seller's gateway goes offline after
one reading of the interval and uploads its buffer later (or never).

Two participants trade 2000 Wh in interval ``FIRST``: a seller whose export
rises through the interval (100 Wh in its first minute, 5 Wh more each
minute: 2025 Wh over the interval, so holding its first reading's power
underestimates it) and a buyer importing steadily (1995 Wh). Each has one
meter that reads once a minute. The buyer's gateway sends everything on time;
the seller's sends its first reading of the interval and then nothing until
``upload_at_ms`` (None: never).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gridex.v1 import meter_pb2

from market.engine.engine import Engine
from market.engine.ingest import ingest_batch
from market.engine.signing import Signer
from market.orders import Order, Side

from .conftest import FIRST, register

INTERVAL_MS = 900_000
START_MS = FIRST * INTERVAL_MS
END_MS = START_MS + INTERVAL_MS
MINUTE_MS = 60_000
SELLER_WH_PER_MIN = 100  # in the first minute, then 5 Wh more each minute
SELLER_RISE_WH = 5
BUYER_WH_PER_MIN = 133  # 1995 Wh over the interval


@dataclass(frozen=True)
class Meter:
    gateway: Signer
    meter_id: str
    wh_per_min: int
    exports: bool
    rise_wh: int = 0

    def rate(self, minute: int) -> int:
        """Energy in the minute after ``minute``, Wh."""
        return self.wh_per_min + self.rise_wh * minute

    def counter(self, minute: int) -> int:
        """The cumulative counter at ``minute``, Wh."""
        if minute >= 0:
            return 10_000 + sum(self.rate(m) for m in range(minute))
        return 10_000 + minute * self.wh_per_min

    def readings(self, first_minute: int, last_minute: int) -> list[meter_pb2.Reading]:
        """Readings at the minutes ``first..last`` after the interval start (may be negative)."""
        out = []
        for minute in range(first_minute, last_minute + 1):
            energy = self.counter(minute)
            power = max(self.rate(minute), 0) * 60
            out.append(
                meter_pb2.Reading(
                    seq=minute + 100,
                    timestamp_ms=START_MS + minute * MINUTE_MS,
                    energy_import_wh=0 if self.exports else energy,
                    energy_export_wh=energy if self.exports else 0,
                    power_w=power if self.exports else -power,
                )
            )
        return out

    def send(self, engine: Engine, first_minute: int, last_minute: int) -> None:
        batch = meter_pb2.ReadingBatch(
            gateway=self.gateway.address,
            meter_id=self.meter_id,
            batch_id=first_minute + 100,
            readings=self.readings(first_minute, last_minute),
        ).SerializeToString()
        ack = ingest_batch(
            engine, batch, self.gateway.sign_batch(batch, engine_id=engine.engine_id)
        ).result()
        assert ack.code == 0, ack.message


@dataclass(frozen=True)
class Market:
    engine: Engine
    seller: str
    buyer: str
    seller_meter: Meter
    buyer_meter: Meter


def start(make_engine: Callable[..., Engine], **kwargs: object) -> Market:
    """An engine with the two participants, their meters and their crossing orders."""
    engine = make_engine(**kwargs)
    seller, buyer = register(engine, 2)
    meters = []
    for i, (who, exports, rate, rise) in enumerate(
        (
            (seller, True, SELLER_WH_PER_MIN, SELLER_RISE_WH),
            (buyer, False, BUYER_WH_PER_MIN, 0),
        )
    ):
        gateway = Signer(f"0x{0x40 + i:064x}")
        engine.register_gateway(gateway.address, f"m-{i}", who.address).result()
        meters.append(Meter(gateway, f"m-{i}", rate, exports, rise))
    engine.submit_order(Order("s", seller.address, Side.SELL, FIRST, 2000, 100_000)).result()
    engine.submit_order(Order("b", buyer.address, Side.BUY, FIRST, 2000, 250_000)).result()
    return Market(engine, seller.address, buyer.address, meters[0], meters[1])


def run(market: Market, *, outage_minute: int | None, upload_at_ms: int | None) -> None:
    """Deliver the interval; the seller's gateway is offline from ``outage_minute`` on
    (None: no outage) and uploads its buffer at ``upload_at_ms`` (None: never)."""
    engine = market.engine
    engine.advance_to(START_MS - MINUTE_MS)
    market.buyer_meter.send(engine, -1, -1)
    market.seller_meter.send(engine, -1, -1)
    engine.advance_to(END_MS + MINUTE_MS // 2)  # within the metering window (60 s)
    market.buyer_meter.send(engine, 0, 16)
    last_sent = 16 if outage_minute is None else outage_minute
    market.seller_meter.send(engine, 0, last_sent)
    engine.advance_to(END_MS + 2 * MINUTE_MS)
    if upload_at_ms is not None and last_sent < 16:
        engine.advance_to(upload_at_ms)
        market.seller_meter.send(engine, last_sent + 1, 16)
        engine.advance_to(upload_at_ms + MINUTE_MS)
