"""Where a gateway's readings come from, and clocks for in-process use.

A :class:`ReadingSource` is anything with ``async poll() -> Reading | None``
that never raises for a device problem (it logs and returns ``None``):

- :class:`~meter_adapter.reader.MeterReader` reads a Modbus/SunSpec device;
- :class:`SimulatedSource` reads a :class:`~meter_adapter.simulation.SimulatedMeter`
  directly, without Modbus, for fleets of simulated homes in one process.

The gateway numbers readings itself (its buffer owns the seq counter), so the
``sequence`` a source puts in a reading is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from meter_adapter.clock import Clock
from meter_adapter.reading import Reading
from meter_adapter.simulation import SimulatedMeter

__all__ = ["ReadingSource", "SimulatedSource", "clock_from_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReadingSource(Protocol):
    """A meter the gateway polls."""

    async def poll(self) -> Reading | None:
        """One reading, or ``None`` when none could be taken (logged). Never raises."""
        ...


def clock_from_ms(now_ms: Callable[[], int]) -> Clock:
    """A :data:`~meter_adapter.clock.Clock` reading a Unix-ms time source.

    For in-process use next to the engine: ``clock_from_ms(engine.clock.now_ms)``
    makes the gateway, its simulated meter and its agent follow the engine's
    (possibly simulated) time.
    """

    def clock() -> datetime:
        return _EPOCH + timedelta(milliseconds=now_ms())

    return clock


class SimulatedSource:
    """A simulated home read directly (no Modbus): advances the meter to the clock's time.

    Args:
        meter: The simulated meter.
        clock: Its time (the engine's, in a simulation).
        meter_id: Put in each reading.
    """

    def __init__(self, meter: SimulatedMeter, clock: Clock, *, meter_id: str) -> None:
        self.meter = meter
        self._clock = clock
        self.meter_id = meter_id
        self._sequence = 0

    async def poll(self) -> Reading | None:
        """The meter's counters and net power at the clock's current time."""
        state = self.meter.advance_to(self._clock())
        self._sequence += 1
        return Reading(
            meter_id=self.meter_id,
            sequence=self._sequence,
            timestamp=state.time,
            energy_import_wh=state.import_wh,
            energy_export_wh=state.export_wh,
            power_w=state.net_power_w,
            production_wh=state.production_wh,
            production_w=state.production_w,
        )
