"""Delivering buffered readings to the engine's ``MeterService.StreamReadings``.

The :class:`Uplink` keeps one bidirectional stream open and runs it
stop-and-wait: it sends one signed batch (the oldest pending readings, in seq
order), waits for its ``BatchAck``, and only then sends the next. A pipelined
window would be faster, but the engine applies a later batch even when an
earlier one was refused, and the earlier batch's good readings would then
arrive "late" and be refused for ever; one batch in flight keeps "resend in
order" true under every failure.

What each answer does (``docs/signing.md``, ``meter.proto``):

- **code 0**: every buffered reading with ``seq <= ack_seq`` is dropped (the
  engine holds it durably); readings above it are sent again.
- **connection lost**, stream closed, no ack within ``ack_timeout_s``: the
  stream is dropped and reopened after a capped, jittered backoff; everything
  not acknowledged is sent again in order. The engine acknowledges re-sent
  readings as duplicates without applying them, so an outage of any length
  loses nothing and applies nothing twice.
- **INVALID_ARGUMENT** (a reading breaks a rule, the batch is malformed or
  too long) — the poison-batch policy: the batch size is halved and the same
  readings are sent again, until the refused batch is a single reading; a
  single reading refused ``quarantine_after`` times in a row (with backoff
  between) is moved to the buffer's quarantine table with the engine's code
  and message, logged at ERROR, and the stream moves on (the engine records
  the hole as a gap). Batch size grows back (doubling per success) afterwards.
- **any other code** (UNAUTHENTICATED, PERMISSION_DENIED, FAILED_PRECONDITION:
  the key or the meter is not registered as expected; RESOURCE_EXHAUSTED;
  INTERNAL ...): nothing about these is the readings' fault, so nothing is
  dropped or quarantined. The batch is logged at ERROR (WARNING for
  RESOURCE_EXHAUSTED) and retried after the backoff until the operator or
  the engine fixes the cause.

Every batch is signed for one engine (``docs/signing.md``): the engine id is
given, or asked once with ``MarketService/GetMarketInfo`` signed for engine
``*`` (the gateway key must be registered; until it is, the question is
retried like a lost stream).

Nothing here raises for an engine problem; :meth:`Uplink.run` runs until it
is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import grpc
from gridex.signing import ANY_ENGINE, DISCOVERY_METHOD, Signer
from gridex.v1 import market_pb2, meter_pb2, meter_pb2_grpc

from meter_adapter.errors import MeterConfigError
from meter_adapter.uplink.backoff import Backoff, BackoffPolicy
from meter_adapter.uplink.buffer import BufferedReading, ReadingBuffer

__all__ = ["Uplink", "UplinkConfig", "UplinkStats"]

logger = logging.getLogger(__name__)

_INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
_RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
#: Errors that mean the stream is gone (not that a batch was refused).
_LOST = (grpc.RpcError, asyncio.InvalidStateError, grpc.aio.UsageError, TimeoutError)

_Call = grpc.aio.StreamStreamCall[meter_pb2.SignedReadingBatch, meter_pb2.BatchAck]


@dataclass(frozen=True, slots=True, kw_only=True)
class UplinkConfig:
    """How the uplink batches and retries.

    Attributes:
        max_batch_readings: Most readings in one batch (keep it at or below
            the engine's limit, 10,000 by default).
        max_delay_s: Longest a reading waits for others to fill its batch while
            the stream is idle, s (0: send each reading at once). A backlog is
            sent at once in full batches.
        ack_timeout_s: Longest wait for a batch's ack before the stream is
            taken as dead and reopened, s.
        backoff: Delays between reconnects and between retries of a refused batch.
        quarantine_after: Consecutive INVALID_ARGUMENT refusals of a single
            reading before it is quarantined.
    """

    max_batch_readings: int = 500
    max_delay_s: float = 2.0
    ack_timeout_s: float = 30.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    quarantine_after: int = 3

    def problems(self) -> list[str]:
        """Every rule the configuration breaks, each naming the field."""
        out = [f"backoff.{p}" for p in self.backoff.problems()]
        if not 1 <= self.max_batch_readings <= 10_000:
            out.append(f"max_batch_readings: must be 1..10000, got {self.max_batch_readings}")
        if not self.max_delay_s >= 0:
            out.append(f"max_delay_s: must be >= 0, got {self.max_delay_s}")
        if not self.ack_timeout_s > 0:
            out.append(f"ack_timeout_s: must be positive, got {self.ack_timeout_s}")
        if self.quarantine_after < 1:
            out.append(f"quarantine_after: must be >= 1, got {self.quarantine_after}")
        return out


@dataclass(slots=True)
class UplinkStats:
    """Counters since the uplink was created.

    Attributes:
        batches_sent: Batches written to the stream.
        batches_refused: Batches answered with a non-zero code.
        readings_acked: Readings dropped from the buffer after an acknowledgement.
        readings_applied: Readings the engine reported as applied.
        duplicates: Readings the engine reported as already held.
        quarantined: Readings moved to quarantine.
        connection_failures: Streams lost (or never established).
    """

    batches_sent: int = 0
    batches_refused: int = 0
    readings_acked: int = 0
    readings_applied: int = 0
    duplicates: int = 0
    quarantined: int = 0
    connection_failures: int = 0


class _StreamLostError(Exception):
    """The engine closed the stream or answered out of turn."""


class Uplink:
    """Streams a :class:`ReadingBuffer` to the engine (see the module docstring).

    Args:
        channel: A ``grpc.aio`` channel to the engine.
        buffer: The meter's buffer; the uplink drops what the engine acknowledges.
        signer: The gateway's key (signs every batch).
        engine_id: The engine's id, which every batch signature names (None:
            asked with GetMarketInfo before the first batch).
        config: Batching and retry settings.
        backoff: The backoff state (default: a fresh one from ``config.backoff``).

    Raises:
        MeterConfigError: ``config`` breaks a rule.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        buffer: ReadingBuffer,
        signer: Signer,
        *,
        engine_id: str | None = None,
        config: UplinkConfig | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config if config is not None else UplinkConfig()
        if problems := self.config.problems():
            raise MeterConfigError("; ".join(problems))
        self._stub = meter_pb2_grpc.MeterServiceStub(channel)
        self._channel = channel
        self.engine_id = engine_id
        """The engine's id the batches are signed for (None until known)."""
        self.buffer = buffer
        self._signer = signer
        self._backoff = backoff if backoff is not None else Backoff(self.config.backoff)
        self._call: _Call | None = None
        self._batch_id = 0
        self._limit = self.config.max_batch_readings
        self._refusals: tuple[int, int] = (0, 0)  # (seq, consecutive refusals) of one reading
        self._gaps = 0
        self._lock = asyncio.Lock()
        self._running = False
        self._data = asyncio.Event()
        self._progress = asyncio.Event()
        self._idle_since: float | None = None
        self._flushing = 0
        self.stats = UplinkStats()

    # -- public ------------------------------------------------------------------------

    def notify(self) -> None:
        """Tell the uplink that readings were appended to the buffer (cheap; call per append)."""
        if self._idle_since is None and self.buffer.pending_count == 1:
            self._idle_since = asyncio.get_running_loop().time()
        self._data.set()

    async def run(self) -> None:
        """Deliver readings as they arrive, for ever (until cancelled). Never raises otherwise."""
        async with self._lock:
            self._running = True
            try:
                await self._deliver(until=None)
            finally:
                self._running = False
                self._drop_call()

    async def flush(self, *, timeout_s: float | None = None) -> int:
        """Deliver every reading buffered so far; return how many are still pending.

        Reconnects with backoff as needed. Returns early, with the count left,
        when ``timeout_s`` passes (never raises for an engine problem). With
        :meth:`run` active, waits for it instead of sending itself.
        """
        target = self.buffer.last_seq
        self._flushing += 1
        self._data.set()  # cut a running uplink's wait for a fuller batch short
        try:
            async with asyncio.timeout(timeout_s):
                if self._running:
                    while self.buffer.pending_upto(target) > 0:
                        self._progress.clear()
                        await self._progress.wait()
                else:
                    async with self._lock:
                        await self._deliver(until=target)
        except TimeoutError:
            pass
        finally:
            self._flushing -= 1
        return self.buffer.pending_upto(target)

    async def close(self) -> None:
        """Close the stream (the buffer stays open; it belongs to the caller)."""
        call, self._call = self._call, None
        if call is not None:
            with contextlib.suppress(*_LOST):
                await call.done_writing()
            call.cancel()

    # -- delivery loop -----------------------------------------------------------------

    async def _deliver(self, *, until: int | None) -> None:
        while True:
            if until is None:
                await self._wait_for_batch()
            elif self.buffer.pending_upto(until) == 0:
                return
            rows = self.buffer.pending(self._limit, upto=until)
            if not rows:
                # the count said readings wait but the file has none: count again, and
                # yield, so that a disagreement can never spin this loop without awaiting
                self.buffer.recount()
                await asyncio.sleep(0)
                continue
            self._idle_since = None
            try:
                ack = await self._exchange(rows)
            except (*_LOST, _StreamLostError) as exc:
                self._drop_call()
                self.stats.connection_failures += 1
                delay = self._backoff.next_delay_s()
                logger.warning(
                    "meter %s: engine stream lost (%s); %d readings kept, retrying in %.1f s",
                    self.buffer.meter_id,
                    _describe(exc),
                    self.buffer.pending_count,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if self._on_ack(ack, rows):
                self._backoff.reset()
            else:
                await self._backoff.sleep()
            self._progress.set()

    async def _wait_for_batch(self) -> None:
        """Wait until a full batch is pending, or some is and ``max_delay_s`` has passed."""
        buffer = self.buffer
        while buffer.pending_count == 0:
            self._data.clear()
            await self._data.wait()
        if self._idle_since is None:
            return  # leftovers of a backlog or of the previous batch: send now
        deadline = self._idle_since + self.config.max_delay_s
        loop = asyncio.get_running_loop()
        while buffer.pending_count < self._limit and (remaining := deadline - loop.time()) > 0:
            if self._flushing > 0:
                return  # a flush wants everything now
            self._data.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._data.wait()
            except TimeoutError:
                return

    async def _exchange(self, rows: list[BufferedReading]) -> meter_pb2.BatchAck:
        """Send one batch and return its ack.

        Raises:
            grpc.RpcError, TimeoutError, _StreamLostError: The stream is gone.
        """
        self._batch_id += 1
        batch = meter_pb2.ReadingBatch(
            gateway=self._signer.address,
            meter_id=self.buffer.meter_id,
            batch_id=self._batch_id,
            readings=[
                meter_pb2.Reading(
                    seq=r.seq,
                    timestamp_ms=r.timestamp_ms,
                    energy_import_wh=r.energy_import_wh,
                    energy_export_wh=r.energy_export_wh,
                    power_w=r.power_w,
                    production_wh=r.production_wh,  # None leaves the optional field unset
                )
                for r in rows
            ],
        )
        raw = batch.SerializeToString()
        engine_id = await self._resolve_engine_id()
        signature = self._signer.sign_batch(raw, engine_id=engine_id)
        signed = meter_pb2.SignedReadingBatch(batch=raw, signature=signature)
        if self._call is None:
            self._call = self._stub.StreamReadings(None)
        call = self._call
        try:
            await call.write(signed)
            self.stats.batches_sent += 1
            async with asyncio.timeout(self.config.ack_timeout_s):
                ack = await call.read()
        except BaseException:
            self._drop_call()  # an ack may still arrive for this batch: never reuse the stream
            raise
        if not isinstance(ack, meter_pb2.BatchAck):
            raise _StreamLostError("the engine closed the stream")
        if ack.batch_id != self._batch_id:
            raise _StreamLostError(
                f"ack for batch {ack.batch_id} while waiting for {self._batch_id}"
            )
        return ack

    async def _resolve_engine_id(self) -> str:
        """The engine id: as given, or asked once (GetMarketInfo signed for engine ``*``).

        Raises:
            grpc.RpcError, TimeoutError: The engine could not be asked.
        """
        if self.engine_id is None:
            call = self._channel.unary_unary(
                DISCOVERY_METHOD,
                request_serializer=_identity,
                response_deserializer=market_pb2.GetMarketInfoResponse.FromString,
            )
            raw = market_pb2.GetMarketInfoRequest().SerializeToString()
            metadata = self._signer.request_metadata(DISCOVERY_METHOD, raw, engine_id=ANY_ENGINE)
            info = await call(raw, timeout=self.config.ack_timeout_s, metadata=tuple(metadata))
            self.engine_id = str(info.engine_id)
        return self.engine_id

    def _drop_call(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    # -- answers -----------------------------------------------------------------------

    def _on_ack(self, ack: meter_pb2.BatchAck, rows: list[BufferedReading]) -> bool:
        """Apply one ack to the buffer; return False when the next try should back off."""
        meter_id = self.buffer.meter_id
        if ack.code == 0:
            dropped = self.buffer.acknowledge(ack.ack_seq)
            stats = self.stats
            stats.readings_acked += dropped
            stats.readings_applied += ack.applied
            stats.duplicates += ack.duplicates
            self._limit = min(self.config.max_batch_readings, self._limit * 2)
            if len(ack.gaps) != self._gaps:
                self._gaps = len(ack.gaps)
                last = ack.gaps[-1] if ack.gaps else None
                logger.warning(
                    "meter %s: the engine misses %d seq range(s) of this meter%s",
                    meter_id,
                    self._gaps,
                    f", latest {last.first_seq}..{last.last_seq}" if last else "",
                )
            if dropped == 0:
                logger.warning(
                    "meter %s: engine acknowledged up to seq %d, below the batch's %d..%d",
                    meter_id,
                    ack.ack_seq,
                    rows[0].seq,
                    rows[-1].seq,
                )
                return False
            return True
        self.stats.batches_refused += 1
        name = _CODE_NAMES.get(ack.code, str(ack.code))
        if ack.code != _INVALID_ARGUMENT:
            log = logger.warning if ack.code == _RESOURCE_EXHAUSTED else logger.error
            log(
                "meter %s: engine refused batch of seq %d..%d with %s: %s; "
                "keeping every reading and retrying",
                meter_id,
                rows[0].seq,
                rows[-1].seq,
                name,
                ack.message,
            )
            return False
        if len(rows) > 1:
            self._limit = max(1, len(rows) // 2)
            logger.warning(
                "meter %s: engine refused batch of seq %d..%d (%s: %s); "
                "resending in batches of %d to isolate the reading",
                meter_id,
                rows[0].seq,
                rows[-1].seq,
                name,
                ack.message,
                self._limit,
            )
            return True
        reading = rows[0]
        seq, count = self._refusals
        count = count + 1 if seq == reading.seq else 1
        self._refusals = (reading.seq, count)
        if count < self.config.quarantine_after:
            logger.warning(
                "meter %s: engine refused reading %d (%s: %s), try %d of %d",
                meter_id,
                reading.seq,
                name,
                ack.message,
                count,
                self.config.quarantine_after,
            )
            return False
        self.buffer.quarantine(reading, code=ack.code, message=ack.message)
        self.stats.quarantined += 1
        logger.error(
            "meter %s: QUARANTINED reading %d after %d refusals (%s: %s); it stays in the "
            "buffer's quarantine table and the stream moves on",
            meter_id,
            reading.seq,
            count,
            name,
            ack.message,
        )
        return True


def _identity(data: bytes) -> bytes:
    return data


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    if isinstance(exc, TimeoutError):
        return "no acknowledgement in time"
    return str(exc) or type(exc).__name__
