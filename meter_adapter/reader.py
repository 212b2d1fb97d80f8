"""Polling one meter into a stream of :class:`~meter_adapter.reading.Reading` values.

:class:`MeterReader` is what the uplink and the demo call. It discovers the
device (SunSpec, unless a register map is given), reads it, follows its energy
counters across polls (32-bit rollover included) and refuses readings that
contradict the ones before:

- a counter that steps by more than ``max_power_w`` × elapsed time (plus its
  resolution) is taken as garbage or as running backwards, and the reading is
  skipped without touching the committed counter state;
- if the device keeps reporting counters that agree with each other but not
  with the committed state (the meter was replaced or reset, or the first
  reading was garbage), after ``rebaseline_after`` such readings the reader
  logs an error and follows the device's counters afresh. The readings' counters
  carry on from the last values emitted, so they never decrease (the engine
  rejects a decreasing counter); the energy of the disputed interval is dropped.

Before a measurement becomes a reading it must be plausible
(:mod:`meter_adapter.plausibility`): power within the device's rating (its
nameplate or register map, else ``max_power_w``) and counters that step by at
most the rated power × elapsed time. An implausible measurement is
*quarantined*: counted in :attr:`MeterReader.quarantined` by quantity, kept
in :attr:`MeterReader.quarantine` (the latest few), and never sent.

A battery (SunSpec model 802) is quarantined on its own: when its model is
refused (:meth:`~meter_adapter.plausibility.Limits.check_battery`, a state of
charge outside 0..100 %, or one that moved by more than its rated power ×
elapsed time plus two counts of resolution) the reading carries no battery
(quantity ``battery.<point>`` in the counts), and the meter's values still go.

A discovered SunSpec layout is kept across transient errors: a device error
never drops it, and when a malformed answer calls for rediscovery the models
found before are kept if the device is busy or the new walk ends early.

:meth:`MeterReader.poll` never raises for a device or decoding problem: it logs
once per episode of failures and returns ``None``, and the caller polls again later.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meter_adapter.accumulator import CounterSample, CounterState
from meter_adapter.clock import Clock, utc_now
from meter_adapter.errors import (
    DecodeError,
    ImplausibleReadingError,
    InconsistentReadingError,
    MeterConfigError,
    MeterError,
)
from meter_adapter.modbus_client import Episode
from meter_adapter.plausibility import Limits
from meter_adapter.reading import Reading
from meter_adapter.register_map import RegisterMap
from meter_adapter.registers import RegisterReader
from meter_adapter.sources import Measurement, RegisterMapSource, Source, SunSpecSource
from meter_adapter.sunspec.battery import BatteryValues
from meter_adapter.sunspec.discovery import DiscoveryRetry

__all__ = ["DEFAULT_MAX_POWER_W", "QUARANTINE_KEPT", "MeterReader", "Quarantined"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_POWER_W = 100_000.0
"""Largest power a metered site is assumed to move, W, where the device declares none
(a large farm or small business connection; a household's is 10-45 kW)."""

QUARANTINE_KEPT = 32
"""How many of the latest quarantined measurements :attr:`MeterReader.quarantine` keeps."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A measurement refused as implausible.

    Attributes:
        timestamp: When it was taken.
        quantity: The field that broke a rule.
        reason: The rule and the values.
    """

    timestamp: datetime
    quantity: str
    reason: str


_States = dict[str, CounterState]


class MeterReader:
    """Reads one device into readings with a gapless sequence.

    Args:
        reader: The device (a :class:`~meter_adapter.modbus_client.ReadOnlyModbusClient`
            or any :class:`~meter_adapter.registers.RegisterReader`).
        meter_id: Identifies the meter in every reading.
        register_map: Read the device with this map instead of SunSpec discovery.
        clock: Timestamps readings and measures elapsed time for plausibility.
        start_sequence: Sequence number of the first reading (1, or where a
            resumed stream left off).
        max_power_w: Largest |power| of the site, W, where the device declares
            no rating; it bounds the power read and the counter steps per
            elapsed time. ``None`` disables the counter-step check (needed when
            the device's time runs faster than ``clock``) and bounds power by
            :data:`DEFAULT_MAX_POWER_W`.
        rebaseline_after: Consecutive mutually consistent but contradicting
            readings after which the device's counters are trusted again.
        discovery_retry: Back-off for busy answers and time-outs while
            discovering a SunSpec device.
    """

    def __init__(
        self,
        reader: RegisterReader,
        *,
        meter_id: str,
        register_map: RegisterMap | None = None,
        clock: Clock = utc_now,
        start_sequence: int = 1,
        max_power_w: float | None = DEFAULT_MAX_POWER_W,
        rebaseline_after: int = 3,
        discovery_retry: DiscoveryRetry | None = None,
    ) -> None:
        if not meter_id:
            raise MeterConfigError("meter_id must not be empty")
        if start_sequence < 1 or rebaseline_after < 1:
            raise MeterConfigError("need start_sequence >= 1 and rebaseline_after >= 1")
        if max_power_w is not None and not max_power_w > 0:
            raise MeterConfigError("max_power_w must be positive")
        self.reader = reader
        self.meter_id = meter_id
        self.register_map = register_map
        self._clock = clock
        self._max_power_w = max_power_w
        self._rebaseline_after = rebaseline_after
        self._discovery_retry = discovery_retry
        self._source: Source | None = None
        self._stale: SunSpecSource | None = None  # kept while a rediscovery is pending
        self._limits = Limits(site_power_w=max_power_w or DEFAULT_MAX_POWER_W)
        self._episode = Episode(logger, f"meter {meter_id}")
        self._sequence = start_sequence
        self._states: _States | None = None
        self._offsets: dict[str, int] = {}  # Wh added to each counter after a rebaseline
        self._emitted: dict[str, int] = {}  # last value of each counter in a reading
        self._last_time: datetime | None = None
        self._suspect: tuple[_States, datetime, int] | None = None
        self._battery: tuple[BatteryValues, datetime] | None = None  # last one accepted
        self.readings = 0
        """Readings emitted so far."""
        self.skipped = 0
        """Polls that produced no reading."""
        self.unexpected_errors = 0
        """Polls that failed with an exception outside the MeterError tree (a bug)."""
        self.quarantined: Counter[str] = Counter()
        """Implausible measurements refused, by the quantity that broke a rule."""
        self.quarantine: deque[Quarantined] = deque(maxlen=QUARANTINE_KEPT)
        """The latest quarantined measurements."""

    @property
    def next_sequence(self) -> int:
        """Sequence number the next reading will carry."""
        return self._sequence

    async def source(self) -> Source:
        """The device's layout, discovered on first use (and again after a layout change).

        Raises:
            MeterError: Discovery failed.
        """
        if self._source is None:
            source: Source
            if self.register_map is not None:
                source = RegisterMapSource(self.reader, self.register_map)
            else:
                stale = self._stale
                source = await SunSpecSource.discover(
                    self.reader,
                    known=None if stale is None else stale.sunspec_map,
                    retry=self._discovery_retry,
                )
                self._stale = None
            self._source = source
            self._limits = Limits(
                site_power_w=source.site_power_w or self._max_power_w or DEFAULT_MAX_POWER_W,
                production_rating_w=source.production_rating_w,
            )
        return self._source

    async def describe(self) -> dict[str, Any]:
        """What was found on the device (models or map), as JSON-ready values."""
        return (await self.source()).describe()

    async def read(self) -> Reading:
        """Take one reading.

        Raises:
            DeviceError: The device could not be read.
            DecodeError: The answer is malformed, or the reading is inconsistent
                with earlier ones (:class:`~meter_adapter.errors.InconsistentReadingError`).
        """
        source = await self.source()
        try:
            measurement = await source.measure()
        except ImplausibleReadingError:
            raise
        except DecodeError:
            # the layout may have changed: discover again next time, keeping what was found
            if isinstance(source, SunSpecSource):
                self._stale = source
            self._source = None
            raise
        self._limits.check(measurement)
        timestamp = self._clock()
        states, offsets = self._accept(measurement.counters(), timestamp)
        battery = self._accept_battery(measurement, timestamp)
        reading = self._reading(measurement, states, offsets, timestamp, battery)
        self._states, self._offsets, self._last_time, self._suspect = (
            states,
            offsets,
            timestamp,
            None,
        )
        self._emitted = {
            "energy_import_wh": reading.energy_import_wh,
            "energy_export_wh": reading.energy_export_wh,
        }
        if reading.production_wh is not None:
            self._emitted["production_wh"] = reading.production_wh
        self._sequence += 1
        self.readings += 1
        return reading

    async def poll(self) -> Reading | None:
        """Take one reading, or log why not and return ``None``. Never raises but cancellation."""
        try:
            reading = await self.read()
        except ImplausibleReadingError as exc:
            self.skipped += 1
            self._quarantine(exc, self._clock())
            self._episode.failed("implausible reading quarantined", exc)
        except MeterError as exc:
            self.skipped += 1
            self._episode.failed("reading skipped", exc)
        except Exception:
            self.skipped += 1
            self.unexpected_errors += 1
            logger.exception("meter %s: unexpected error, reading skipped", self.meter_id)
        else:
            self._episode.recovered()
            return reading
        return None

    def _quarantine(self, exc: ImplausibleReadingError, timestamp: datetime) -> None:
        self.quarantined[exc.quantity or "counters"] += 1
        self.quarantine.append(Quarantined(timestamp, exc.quantity, str(exc)))

    def _accept_battery(
        self, measurement: Measurement, timestamp: datetime
    ) -> BatteryValues | None:
        """The measurement's battery if plausible; else quarantine it and return None."""
        try:
            if measurement.battery_refused is not None:
                raise measurement.battery_refused
            battery = measurement.battery
            if battery is None:
                return None
            self._limits.check_battery(battery)
            self._check_battery_step(battery, timestamp)
        except ImplausibleReadingError as exc:
            self._quarantine(exc, timestamp)
            logger.warning("meter %s: battery reading quarantined: %s", self.meter_id, exc)
            return None
        self._battery = (battery, timestamp)
        return battery

    def _check_battery_step(self, battery: BatteryValues, timestamp: datetime) -> None:
        if self._battery is None or self._max_power_w is None:
            return
        last, since = self._battery
        elapsed_h = max((timestamp - since).total_seconds(), 0.0) / 3600
        rate_w = max(battery.max_charge_w, battery.max_discharge_w)
        allowed = (
            rate_w * elapsed_h + 2 * max(battery.soc_resolution_wh, last.soc_resolution_wh) + 1
        )
        step = abs(battery.soc_wh - last.soc_wh)
        if step > allowed:
            raise ImplausibleReadingError(
                f"battery SoC moved {step} Wh in {elapsed_h * 3600:.1f} s "
                f"(at most {allowed:.0f} Wh plausible at {rate_w} W)",
                quantity="battery.SoC",
            )

    def _reading(
        self,
        measurement: Measurement,
        states: _States,
        offsets: Mapping[str, int],
        timestamp: datetime,
        battery: BatteryValues | None,
    ) -> Reading:
        def wh(name: str) -> int:
            return states[name].energy_wh + offsets.get(name, 0)

        production_w = measurement.production_w
        return Reading(
            meter_id=self.meter_id,
            sequence=self._sequence,
            timestamp=timestamp,
            energy_import_wh=wh("energy_import_wh"),
            energy_export_wh=wh("energy_export_wh"),
            power_w=round(measurement.power_w),
            production_wh=wh("production_wh") if measurement.production is not None else None,
            production_w=round(production_w) if production_w is not None else None,
            battery=battery,
        )

    def _advance(
        self,
        states: _States | None,
        since: datetime | None,
        samples: Mapping[str, CounterSample],
        timestamp: datetime,
    ) -> _States:
        """Counter states after ``samples``; raises InconsistentReadingError if implausible."""
        if states is None or since is None:
            return {name: CounterState.start(sample) for name, sample in samples.items()}
        elapsed_h = max((timestamp - since).total_seconds(), 0.0) / 3600
        result = dict(states)
        for name, sample in samples.items():
            old = states.get(name)
            if old is None:
                result[name] = CounterState.start(sample)
                continue
            try:
                new = old.advance(sample)
            except InconsistentReadingError as exc:
                raise InconsistentReadingError(f"{name}: {exc}", quantity=name) from None
            if self._max_power_w is not None:
                step_wh = new.energy_wh - old.energy_wh
                power_w = self._limits.step_power_w(name)
                allowed_wh = power_w * elapsed_h + 2 * math.ceil(sample.wh_per_unit) + 1
                if step_wh > allowed_wh:
                    raise InconsistentReadingError(
                        f"{name} stepped {step_wh} Wh in {elapsed_h * 3600:.1f} s "
                        f"(at most {allowed_wh:.0f} Wh plausible at {power_w:g} W): "
                        "garbage or running backwards",
                        quantity=name,
                    )
            result[name] = new
        return result

    def _accept(
        self, samples: Mapping[str, CounterSample], timestamp: datetime
    ) -> tuple[_States, dict[str, int]]:
        """Counter states and offsets for a reading of ``samples``, or raise to skip it."""
        try:
            return self._advance(self._states, self._last_time, samples, timestamp), self._offsets
        except InconsistentReadingError:
            agreeing = self._suspect_agrees(samples, timestamp)
            if agreeing is None:
                fresh = self._advance(None, None, samples, timestamp)
                self._suspect = (fresh, timestamp, 1)
            else:
                self._suspect = agreeing
            states, _, count = self._suspect
            if count < self._rebaseline_after:
                raise
            logger.error(
                "meter %s: %d consecutive readings contradict the counters followed so far "
                "but agree with each other; following the device's counters afresh "
                "(meter replaced or reset?)",
                self.meter_id,
                count,
            )
            offsets = {
                name: self._emitted.get(name, 0) - state.energy_wh for name, state in states.items()
            }
            return states, offsets

    def _suspect_agrees(
        self, samples: Mapping[str, CounterSample], timestamp: datetime
    ) -> tuple[_States, datetime, int] | None:
        if self._suspect is None:
            return None
        states, since, count = self._suspect
        try:
            advanced = self._advance(states, since, samples, timestamp)
        except InconsistentReadingError:
            return None
        return advanced, timestamp, count + 1
