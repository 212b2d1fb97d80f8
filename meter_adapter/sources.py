"""What a device measures in one poll: SunSpec models or a register map, made uniform.

A *source* knows one device's register layout and turns one round of reads
into a :class:`Measurement`: net power in gridex's sign convention (positive
into the grid) and the raw energy counters. Following counters across polls
(rollover, plausibility) is the job of :class:`~meter_adapter.reader.MeterReader`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from meter_adapter.accumulator import CounterSample
from meter_adapter.errors import DecodeError, ImplausibleReadingError
from meter_adapter.register_map import RegisterMap
from meter_adapter.registers import RegisterReader, read_span
from meter_adapter.sunspec.battery import BatteryValues, decode_battery
from meter_adapter.sunspec.decode import (
    CommonInfo,
    InverterValues,
    MeterValues,
    decode_common,
    decode_inverter,
    decode_meter,
    decode_nameplate,
)
from meter_adapter.sunspec.discovery import DiscoveryRetry, SunSpecMap, discover, read_model
from meter_adapter.sunspec.models import (
    BASE_ADDRESSES,
    BATTERY_MODEL_ID,
    COMMON_MODEL_ID,
    INVERTER_MODEL_IDS,
    METER_MODEL_IDS,
    NAMEPLATE_MODEL_ID,
)

__all__ = ["Measurement", "RegisterMapSource", "Source", "SunSpecSource"]

logger = logging.getLogger(__name__)

_NO_COUNTER = CounterSample(raw=0, wh_per_unit=Fraction(1))


@dataclass(frozen=True, slots=True)
class Measurement:
    """Values from one poll of a device.

    Attributes:
        power_w: Net active power, W, positive into the grid.
        energy_import: Counter of energy drawn from the grid.
        energy_export: Counter of energy fed into the grid.
        production_w: Inverter AC output, W, where the device has an inverter.
        production: Inverter lifetime AC energy counter, where present.
        battery: The battery (SunSpec model 802), where the device has one
            and its model decoded.
        battery_refused: Why the battery's model was refused this poll
            (its values are then not in ``battery``); the reader quarantines it.
    """

    power_w: float
    energy_import: CounterSample
    energy_export: CounterSample
    production_w: float | None = None
    production: CounterSample | None = None
    battery: BatteryValues | None = None
    battery_refused: ImplausibleReadingError | None = None

    def counters(self) -> dict[str, CounterSample]:
        """The energy counters present, by reading field name."""
        found = {"energy_import_wh": self.energy_import, "energy_export_wh": self.energy_export}
        if self.production is not None:
            found["production_wh"] = self.production
        return found


class Source(Protocol):
    """One device's layout: reads it and reports a :class:`Measurement`.

    Attributes:
        site_power_w: Largest |net power| the device can measure, W, where it
            declares one (``None``: the gateway's configured bound).
        production_rating_w: Inverter continuous rating, W, where known.
    """

    site_power_w: float | None
    production_rating_w: float | None

    def describe(self) -> dict[str, Any]:
        """What was found on the device, as JSON-ready values."""
        ...

    async def measure(self) -> Measurement:
        """Read the device once.

        Raises:
            DeviceError: The device could not be read.
            DecodeError: The answer is malformed or lacks a needed value.
        """
        ...


class SunSpecSource:
    """A SunSpec device: a meter model (201-204), an inverter model (101-103), or both.

    A battery base model (802) next to them is read on every poll too; a
    battery model that does not decode is refused on its own
    (:attr:`Measurement.battery_refused`) and the meter's values still count.

    With a meter model, power and energy come from the meter and production
    from the inverter, if any. With only an inverter, the device is metered as
    a generator: power and exported energy are the inverter's AC output and
    lifetime energy, and imported energy stays 0.
    """

    def __init__(
        self,
        reader: RegisterReader,
        sunspec_map: SunSpecMap,
        *,
        common: CommonInfo | None = None,
        production_rating_w: float | None = None,
    ) -> None:
        self.reader = reader
        self.sunspec_map = sunspec_map
        self.common = common
        self.site_power_w: float | None = None  # meter models 201-204 carry no rating
        self.production_rating_w = production_rating_w
        self.meter_model = sunspec_map.first(METER_MODEL_IDS)
        self.inverter_model = sunspec_map.first(INVERTER_MODEL_IDS)
        self.battery_model = sunspec_map.first([BATTERY_MODEL_ID])
        if self.meter_model is None and self.inverter_model is None:
            raise DecodeError(
                f"SunSpec device has models {list(sunspec_map.model_ids)}, "
                "but no meter (201-204) or inverter (101-103) model"
            )

    @classmethod
    async def discover(
        cls,
        reader: RegisterReader,
        *,
        base_addresses: tuple[int, ...] = BASE_ADDRESSES,
        known: SunSpecMap | None = None,
        retry: DiscoveryRetry | None = None,
    ) -> SunSpecSource:
        """Find the device's models and read its common and nameplate models.

        Args:
            reader: The device.
            base_addresses: Where to look for the marker.
            known: The map found before, kept where a new walk ends early.
            retry: Back-off for busy answers and time-outs during discovery.

        Raises:
            SunSpecNotFoundError: The device does not speak SunSpec.
            DecodeError: Malformed model chain, or no usable model.
            DeviceError: The device could not be read.
        """
        sunspec_map = await discover(
            reader, base_addresses=base_addresses, known=known, retry=retry
        )
        common = None
        if (header := sunspec_map.first([COMMON_MODEL_ID])) is not None:
            common = decode_common(await read_model(reader, header))
        rating = None
        if (header := sunspec_map.first([NAMEPLATE_MODEL_ID])) is not None:
            rating = decode_nameplate(await read_model(reader, header))
        logger.info("SunSpec models at %d: %s", sunspec_map.base_address, sunspec_map.model_ids)
        return cls(reader, sunspec_map, common=common, production_rating_w=rating)

    def describe(self) -> dict[str, Any]:
        """Models found (id, address, length) and the common model's identity."""
        common = self.common
        return {
            "protocol": "sunspec",
            "base_address": self.sunspec_map.base_address,
            "models": [
                {"id": m.model_id, "address": m.address, "length": m.length}
                for m in self.sunspec_map.models
            ],
            "production_rating_w": self.production_rating_w,
            "common": None
            if common is None
            else {
                "manufacturer": common.manufacturer,
                "model": common.model,
                "version": common.version,
                "serial_number": common.serial_number,
            },
        }

    async def measure(self) -> Measurement:
        """Read the meter and inverter models once (see the class docstring)."""
        meter: MeterValues | None = None
        inverter: InverterValues | None = None
        if self.meter_model is not None:
            data = await read_model(self.reader, self.meter_model)
            meter = decode_meter(self.meter_model.model_id, data)
        if self.inverter_model is not None:
            data = await read_model(self.reader, self.inverter_model)
            inverter = decode_inverter(self.inverter_model.model_id, data)
        battery, refused = await self._battery()
        production_w = inverter.ac_power_w if inverter else None
        production = inverter.ac_energy if inverter else None
        if meter is not None:
            if meter.power_w is None:
                raise DecodeError(f"meter model {meter.model_id}: W not implemented")
            if meter.energy_imported is None or meter.energy_exported is None:
                raise DecodeError(f"meter model {meter.model_id}: TotWh_SF not implemented")
            return Measurement(
                power_w=-meter.power_w,  # SunSpec meters count import positive
                energy_import=meter.energy_imported,
                energy_export=meter.energy_exported,
                production_w=production_w,
                production=production,
                battery=battery,
                battery_refused=refused,
            )
        if production_w is None or production is None:
            raise DecodeError("inverter: W or WH not implemented")
        return Measurement(
            power_w=production_w,
            energy_import=_NO_COUNTER,
            energy_export=production,
            production_w=production_w,
            production=production,
            battery=battery,
            battery_refused=refused,
        )

    async def _battery(self) -> tuple[BatteryValues | None, ImplausibleReadingError | None]:
        """The battery model decoded, or why it was refused (a changed header still raises)."""
        if self.battery_model is None:
            return None, None
        data = await read_model(self.reader, self.battery_model)
        try:
            return decode_battery(self.battery_model.model_id, data), None
        except ImplausibleReadingError as exc:
            return None, exc
        except DecodeError as exc:
            return None, ImplausibleReadingError(f"battery: {exc}", quantity="battery")


class RegisterMapSource:
    """A meter described by a :class:`~meter_adapter.register_map.RegisterMap`."""

    def __init__(self, reader: RegisterReader, register_map: RegisterMap) -> None:
        self.reader = reader
        self.register_map = register_map
        self.site_power_w = register_map.max_power_w
        self.production_rating_w: float | None = None
        self._spans = register_map.spans()

    def describe(self) -> dict[str, Any]:
        """The map's name and the registers it reads."""
        return {
            "protocol": "register_map",
            "map": self.register_map.name,
            "max_power_w": self.register_map.max_power_w,
            "registers": {
                spec.quantity: {"address": spec.address, "register_type": str(spec.register_type)}
                for spec in self.register_map.registers.values()
            },
        }

    async def measure(self) -> Measurement:
        """Read every span of the map once and decode the quantities."""
        powers: dict[str, float] = {}
        counters: dict[str, CounterSample] = {}
        for span in self._spans:
            registers = await read_span(self.reader, span.register_type, span.address, span.count)
            for spec in span.specs:
                start = spec.address - span.address
                words = registers[start : start + spec.count]
                if spec.quantity.endswith("_w"):
                    powers[spec.quantity] = spec.decode_power(words)
                else:
                    counters[spec.quantity] = spec.decode_counter(words)
        return Measurement(
            power_w=powers["power_w"],
            energy_import=counters["energy_import_wh"],
            energy_export=counters["energy_export_wh"],
            production_w=powers.get("production_w"),
            production=counters.get("production_wh"),
        )
