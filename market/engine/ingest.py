"""Meter ingest: one signed reading batch in, one BatchAck out.

Checks, in order (the first that fails decides the ack's code): the bytes
parse as a ReadingBatch (INVALID_ARGUMENT), it holds 1 to
``max_batch_readings`` readings (INVALID_ARGUMENT), the signature recovers to
the batch's ``gateway`` for this engine's id (UNAUTHENTICATED: a batch
signed for another engine recovers to another address), the meter is registered
(FAILED_PRECONDITION), that gateway is the meter's (PERMISSION_DENIED), the
gateway stays under its batch rate limit (RESOURCE_EXHAUSTED), and
the meter ledger accepts the readings all or nothing (INVALID_ARGUMENT for a
broken reading rule). A batch that applied readings is journaled — with its
signature, as an audit trail — before it is acknowledged; a batch of
duplicates only is acknowledged once everything before it is on disk.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.message import DecodeError
from gridex.v1 import meter_pb2

from market.engine._status import status_of
from market.engine.auth import RateLimiter
from market.engine.engine import Accepted, Engine
from market.engine.signing import recover_batch_signer
from market.engine.state import parse_batch
from market.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RequestError,
    UnknownMeterError,
)
from market.orders import normalise_address

__all__ = ["ingest_batch"]

logger = logging.getLogger(__name__)


def _check_gateway(engine: Engine, meter_id: str, gateway: str, rate: RateLimiter | None) -> None:
    """The meter is registered to ``gateway``, which is under its rate (call under the lock)."""
    registered = engine.state.meters.get(meter_id)
    if registered is None:
        raise UnknownMeterError("meter_id", "is not registered", meter_id=meter_id)
    if registered[0] != gateway:
        raise PermissionDeniedError(
            f"gateway: {gateway} is not the gateway registered for meter {meter_id!r}"
        )
    if rate is not None:
        rate.check(gateway)


def ingest_batch(
    engine: Engine, batch: bytes, signature: bytes, *, rate: RateLimiter | None = None
) -> Accepted[meter_pb2.BatchAck]:
    """Verify and apply one signed batch; never raises for a bad batch (the ack says why).

    ``rate`` limits batches per gateway, checked once the signature and the
    gateway's registration are (so only a registered gateway has a bucket).
    """
    ack = meter_pb2.BatchAck()
    core = engine.core
    try:
        try:
            msg = parse_batch(batch)
        except DecodeError:
            raise RequestError("batch: is not a serialized gridex.v1.ReadingBatch") from None
        ack.batch_id = msg.batch_id
        ack.meter_id = msg.meter_id
        limit = engine.config.max_batch_readings
        if not 1 <= len(msg.readings) <= limit:
            raise RequestError(
                f"readings: must hold 1 to {limit} readings, got {len(msg.readings)}"
            )
        try:
            gateway = normalise_address(msg.gateway)
        except ValueError:
            raise RequestError(
                f"gateway: must be 0x followed by 40 hex digits, got {msg.gateway!r}"
            ) from None
        signer = recover_batch_signer(batch, signature, engine_id=engine.engine_id)
        if signer != gateway:
            raise AuthenticationError(
                f"signature: recovers to {signer}, not to the batch's gateway {gateway} (wrong "
                f"key, or signed for another engine; this engine's id is {engine.engine_id!r})"
            )
        with core.lock:
            _check_gateway(engine, msg.meter_id, gateway, rate)
            now_ms = engine.clock.now_ms()
            body = {"meter_id": msg.meter_id, "now_ms": now_ms, "signature": signature.hex()}
            engine.state.apply("readings", now_ms, body, batch)
            outcome = engine.state.last_outcome
            assert outcome is not None
            if outcome.applied or outcome.gaps:
                _, durable = core.journal.append("readings", now_ms, body, blob=batch)
            else:
                durable = core.settled_future()
            gaps = engine.state.ledger.gaps(msg.meter_id)
        ack.ack_seq = outcome.ack_seq or 0
        ack.applied = outcome.applied
        ack.duplicates = outcome.duplicates
        ack.gaps.extend(meter_pb2.SeqGap(first_seq=g.first, last_seq=g.last) for g in gaps)
        return Accepted(ack, durable)
    except Exception as exc:
        mapped = status_of(exc)
        if mapped is None:
            logger.exception("meter batch %d: unexpected error", ack.batch_id)
            code, message = grpc.StatusCode.INTERNAL, "internal error"
        else:
            code, message = mapped
        ack.code = code.value[0]
        ack.message = message
        return Accepted(ack, core.settled_future())
