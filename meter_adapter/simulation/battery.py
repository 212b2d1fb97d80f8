"""A simulated home battery whose state of charge follows its charging and discharging.

:class:`SimulatedBattery` runs a power schedule (power by Unix minute, whole
W, positive while discharging; :class:`DailyCycle` by default: charge around
noon, discharge in the evening) within its limits: power is clipped to the
charge and discharge limits, and it stops at the lowest and highest allowed
state of charge. Charging at ``P`` W for ``t`` s stores ``P·t·η_charge``;
discharging draws ``P·t / η_discharge`` from the cell.

The state of charge is kept as an exact integer in units of
1 / (1000 · η_discharge‰) W·µs (efficiencies are whole per mille), so
charging and discharging both add integers and the state after reaching a
time is the same however the time was reached, in one jump or in many small
steps. It is reported in integer Wh, rounded down.

It is a device of its own: served as SunSpec model 802 next to the home's
meter (:class:`~meter_adapter.simulation.device.SunSpecSimulator`), its flow
is not part of the simulated meter's counters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from meter_adapter.errors import MeterConfigError

__all__ = ["BatterySpec", "BatteryState", "DailyCycle", "SimulatedBattery"]

_US_PER_MINUTE = 60_000_000
_US_PER_WH = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: ``ChaSt`` of SunSpec model 802.
EMPTY, DISCHARGING, CHARGING, FULL, HOLDING = 2, 3, 4, 5, 6


@dataclass(frozen=True, slots=True, kw_only=True)
class BatterySpec:
    """A home battery's nameplate and operating limits.

    Attributes:
        capacity_wh: Usable energy capacity, Wh.
        max_charge_w: Charging power limit, W.
        max_discharge_w: Discharging power limit, W.
        min_soc_percent: Reserve it never discharges below, whole % of capacity.
        max_soc_percent: Highest state of charge it charges to, whole %.
        charge_efficiency_permille: Share of the charging energy stored, ‰.
        discharge_efficiency_permille: Share of the drawn energy delivered, ‰.
    """

    capacity_wh: int = 10_000
    max_charge_w: int = 5_000
    max_discharge_w: int = 5_000
    min_soc_percent: int = 10
    max_soc_percent: int = 100
    charge_efficiency_permille: int = 950
    discharge_efficiency_permille: int = 950

    def problems(self) -> list[str]:
        """Every rule the spec breaks, each naming the field."""
        out = []
        if not 0 < self.capacity_wh <= 655_350_000:
            out.append(f"capacity_wh: must be in (0, 655350000], got {self.capacity_wh}")
        for name in ("max_charge_w", "max_discharge_w"):
            if not 0 < getattr(self, name) <= 1_000_000:
                out.append(f"{name}: must be in (0, 1000000] W, got {getattr(self, name)}")
        if not 0 <= self.min_soc_percent < self.max_soc_percent <= 100:
            out.append(
                "min_soc_percent, max_soc_percent: need 0 <= min < max <= 100, got "
                f"{self.min_soc_percent}, {self.max_soc_percent}"
            )
        for name in ("charge_efficiency_permille", "discharge_efficiency_permille"):
            if not 0 < getattr(self, name) <= 1000:
                out.append(f"{name}: must be in (0, 1000], got {getattr(self, name)}")
        return out

    @property
    def min_soc_wh(self) -> int:
        """The reserve, Wh."""
        return self.capacity_wh * self.min_soc_percent // 100

    @property
    def max_soc_wh(self) -> int:
        """The highest state of charge, Wh."""
        return self.capacity_wh * self.max_soc_percent // 100


@dataclass(frozen=True, slots=True)
class BatteryState:
    """The simulated battery at one instant.

    Attributes:
        time: The instant.
        soc_wh: State of charge, Wh (rounded down).
        power_w: Power during the current minute, W, positive while discharging
            (0 once it reached a limit of its state of charge).
        charge_status: ``ChaSt`` of SunSpec model 802.
    """

    time: datetime
    soc_wh: int
    power_w: int
    charge_status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyCycle:
    """Charge from the noon PV peak, discharge at the evening peak (local hours).

    Attributes:
        charge_w: Charging power, W.
        discharge_w: Discharging power, W.
        charge_hours: Local ``[from, to)`` hours of charging.
        discharge_hours: Local ``[from, to)`` hours of discharging.
        timezone: IANA zone of the home.
    """

    charge_w: int = 2_000
    discharge_w: int = 2_000
    charge_hours: tuple[int, int] = (10, 15)
    discharge_hours: tuple[int, int] = (17, 22)
    timezone: str = "Europe/Berlin"

    def __call__(self, minute: int) -> int:
        """Power during Unix minute ``minute``, W, positive while discharging."""
        hour = (_EPOCH + timedelta(minutes=minute)).astimezone(ZoneInfo(self.timezone)).hour
        if self.charge_hours[0] <= hour < self.charge_hours[1]:
            return -self.charge_w
        if self.discharge_hours[0] <= hour < self.discharge_hours[1]:
            return self.discharge_w
        return 0


def _to_us(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise MeterConfigError(f"simulated time must be timezone-aware, got {when!r}")
    return (when - _EPOCH) // timedelta(microseconds=1)


class SimulatedBattery:
    """A battery following a power schedule within its limits (see the module docstring).

    Args:
        spec: Nameplate and limits.
        start: Simulated time at which it holds ``soc_wh``.
        soc_wh: State of charge at ``start``, Wh (within the spec's limits).
        schedule: Power by Unix minute, W, positive while discharging
            (default :class:`DailyCycle` at 40 % of the power limits).

    Raises:
        MeterConfigError: The spec breaks a rule or ``soc_wh`` is outside its limits.
    """

    def __init__(
        self,
        spec: BatterySpec,
        *,
        start: datetime,
        soc_wh: int,
        schedule: Callable[[int], int] | None = None,
    ) -> None:
        if problems := spec.problems():
            raise MeterConfigError("battery: " + "; ".join(problems))
        if not spec.min_soc_wh <= soc_wh <= spec.max_soc_wh:
            raise MeterConfigError(
                f"battery soc_wh: must be in [{spec.min_soc_wh}, {spec.max_soc_wh}], got {soc_wh}"
            )
        self.spec = spec
        self.schedule = schedule or DailyCycle(
            charge_w=spec.max_charge_w * 2 // 5, discharge_w=spec.max_discharge_w * 2 // 5
        )
        self._per_wus = 1000 * spec.discharge_efficiency_permille  # units per W·µs
        self._now_us = _to_us(start)
        self._soc = soc_wh * _US_PER_WH * self._per_wus
        self._low = spec.min_soc_wh * _US_PER_WH * self._per_wus
        self._high = spec.max_soc_wh * _US_PER_WH * self._per_wus

    def _power(self, minute: int) -> int:
        """Scheduled power during ``minute``, clipped to the power limits, W."""
        power = int(self.schedule(minute))
        return max(-self.spec.max_charge_w, min(self.spec.max_discharge_w, power))

    def _rate(self, power_w: int) -> int:
        """Change of the state of charge per µs at ``power_w``, in internal units."""
        spec = self.spec
        if power_w < 0:  # charging: stores P·η_c W·µs per µs
            return -power_w * spec.charge_efficiency_permille * spec.discharge_efficiency_permille
        return -power_w * 1_000_000  # discharging: draws P / η_d W·µs per µs

    def advance_to(self, when: datetime) -> BatteryState:
        """Run the schedule up to ``when`` and return the state there (earlier: no change)."""
        target = _to_us(when)
        while self._now_us < target:
            minute = self._now_us // _US_PER_MINUTE
            end = min(target, (minute + 1) * _US_PER_MINUTE)
            soc = self._soc + self._rate(self._power(minute)) * (end - self._now_us)
            self._soc = max(self._low, min(self._high, soc))
            self._now_us = end
        return self.state

    @property
    def state(self) -> BatteryState:
        """The state at the battery's current time (no integration)."""
        power = self._power(self._now_us // _US_PER_MINUTE)
        if (power < 0 and self._soc >= self._high) or (power > 0 and self._soc <= self._low):
            power = 0
        if power > 0:
            status = DISCHARGING
        elif power < 0:
            status = CHARGING
        elif self._soc >= self._high:
            status = FULL
        elif self._soc <= self._low:
            status = EMPTY
        else:
            status = HOLDING
        return BatteryState(
            time=_EPOCH + timedelta(microseconds=self._now_us),
            soc_wh=self._soc // (_US_PER_WH * self._per_wus),
            power_w=power,
            charge_status=status,
        )
