"""The uplink: buffered, signed, acknowledged delivery of readings to the engine.

In-process API (the demo runs many gateways on one event loop)::

    from meter_adapter.uplink.gateway import Gateway
    from meter_adapter.agent import AgentConfig

    Gateway(source, key, engine_channel, *, meter_id, buffer_path,
            agent=AgentConfig(...) | None, clock=..., uplink=UplinkConfig(...),
            synchronous="FULL" | "NORMAL", first_seq=None, events=None)
    await gateway.poll_once()  -> BufferedReading | None
    await gateway.flush(timeout_s=None) -> int        # readings still pending
    await gateway.trade_once() -> AgentOrder | None
    await gateway.run(poll_interval_s=5.0)            # all of it, until cancelled
    await gateway.close()

- :class:`~meter_adapter.uplink.gateway.Gateway`: the whole gateway: this
  package plus the prosumer agent (:mod:`meter_adapter.agent`). It is not
  re-exported here because the agent builds on this package.
- :class:`ReadingBuffer` (:mod:`~meter_adapter.uplink.buffer`): the SQLite buffer,
  its seq counter and the quarantine.
- :class:`Uplink` (:mod:`~meter_adapter.uplink.stream`): the ``StreamReadings``
  client, its resend and poison-batch policy.
- :class:`SimulatedSource`, :func:`clock_from_ms` (:mod:`~meter_adapter.uplink.sources`).
- :func:`load_key_file`, :func:`generate_key_file` (:mod:`~meter_adapter.uplink.keys`).
- :func:`engine_channel` (:mod:`~meter_adapter.uplink.channel`).
"""

from __future__ import annotations

from meter_adapter.uplink.backoff import Backoff, BackoffPolicy
from meter_adapter.uplink.buffer import MEMORY, BufferedReading, QuarantinedReading, ReadingBuffer
from meter_adapter.uplink.channel import engine_channel
from meter_adapter.uplink.keys import generate_key_file, load_key_file
from meter_adapter.uplink.sources import ReadingSource, SimulatedSource, clock_from_ms
from meter_adapter.uplink.stream import Uplink, UplinkConfig, UplinkStats

__all__ = [
    "MEMORY",
    "Backoff",
    "BackoffPolicy",
    "BufferedReading",
    "QuarantinedReading",
    "ReadingBuffer",
    "ReadingSource",
    "SimulatedSource",
    "Uplink",
    "UplinkConfig",
    "UplinkStats",
    "clock_from_ms",
    "engine_channel",
    "generate_key_file",
    "load_key_file",
]
