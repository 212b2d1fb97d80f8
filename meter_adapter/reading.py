"""The reading a gateway takes from its meter: what the uplink streams to the engine.

Sign convention, stated once for the whole adapter: **power is positive when
it flows into the grid** (injection, export) and negative when the site draws
from the grid (import). Energy counters are cumulative, never decrease, and
count the two directions separately, both as non-negative integer Wh.

The fields match ``gridex.v1.Reading`` (``proto/gridex/v1/meter.proto``):
sequence numbers start at 1, power is whole W, the timestamp converts to Unix ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from meter_adapter.errors import DecodeError
from meter_adapter.sunspec.battery import BatteryValues

__all__ = ["Reading"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One decoded meter reading.

    Attributes:
        meter_id: Identifies the meter to the engine (e.g. the gateway's name
            for it, or the device serial number).
        sequence: Position of this reading in the meter's stream: 1, 2, 3, ...
            without gaps for the readings a :class:`~meter_adapter.reader.MeterReader`
            emits; a skipped poll does not consume a number.
        timestamp: When the registers were read, timezone-aware.
        energy_import_wh: Energy drawn from the grid since the meter started
            counting, Wh.
        energy_export_wh: Energy fed into the grid since the meter started
            counting, Wh.
        power_w: Net active power at the meter, whole W, positive into the grid.
        production_wh: The inverter's lifetime AC energy, Wh, where the device
            has an inverter; otherwise ``None``.
        production_w: The inverter's AC power output, whole W, where present.
        battery: The home battery as read with this reading (SunSpec model
            802), where the device has one and its values passed the
            plausibility rules; not streamed to the engine (the agent turns it
            into a storage order).

    Raises:
        DecodeError: On construction, for a naive timestamp, a sequence below
            1, a negative energy, or an empty meter id.
    """

    meter_id: str
    sequence: int
    timestamp: datetime
    energy_import_wh: int
    energy_export_wh: int
    power_w: int
    production_wh: int | None = None
    production_w: int | None = None
    battery: BatteryValues | None = None

    def __post_init__(self) -> None:
        if not self.meter_id:
            raise DecodeError("a reading needs a meter id")
        if self.sequence < 1:
            raise DecodeError(f"sequence {self.sequence} is below 1")
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() is None:
            raise DecodeError("a reading's timestamp must be timezone-aware")
        for name in ("energy_import_wh", "energy_export_wh", "production_wh"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise DecodeError(f"{name}={value} is negative")

    @property
    def timestamp_ms(self) -> int:
        """The timestamp as Unix time, ms (rounded down)."""
        return (self.timestamp - _EPOCH) // timedelta(milliseconds=1)

    def to_json_dict(self) -> dict[str, Any]:
        """The reading as JSON-ready values (timestamp as ISO 8601)."""
        return {
            "meter_id": self.meter_id,
            "sequence": self.sequence,
            "timestamp": self.timestamp.isoformat(),
            "power_w": self.power_w,
            "energy_import_wh": self.energy_import_wh,
            "energy_export_wh": self.energy_export_wh,
            "production_w": self.production_w,
            "production_wh": self.production_wh,
            "battery": None if self.battery is None else self.battery.to_json_dict(),
        }
