"""A simulated home seen as a SunSpec device: common model 1, inverter 103, meter 203.

:class:`SunSpecSimulator` turns the state of a
:class:`~meter_adapter.simulation.meter.SimulatedMeter` at the clock's current
time into the holding registers a real SunSpec inverter-with-meter would
serve. The meter model counts import as positive power, like the real ones;
the inverter model reports the PV output. With a
:class:`~meter_adapter.simulation.battery.SimulatedBattery` the device also
serves battery base model 802 after the meter.
"""

from __future__ import annotations

from dataclasses import dataclass

from meter_adapter.clock import Clock
from meter_adapter.errors import MeterConfigError
from meter_adapter.registers import RegisterImage
from meter_adapter.simulation.battery import BatterySpec, BatteryState, SimulatedBattery
from meter_adapter.simulation.meter import MeterState, SimulatedMeter
from meter_adapter.sunspec.encode import encode_model, encode_sunspec_map
from meter_adapter.sunspec.models import (
    BATTERY_MODEL,
    BATTERY_MODEL_ID,
    COMMON_MODEL,
    INVERTER_MODEL,
    METER_MODEL,
)

__all__ = ["DeviceIdentity", "SunSpecSimulator", "battery_values", "sunspec_registers"]

_VOLTAGE_V = 230.0
_FREQUENCY_HZ = 50.0
_MPPT, _SLEEPING = 4, 2  # SunSpec inverter operating states
_BATTERY_V = 51.2  # nominal voltage of a 16-cell LFP home battery


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceIdentity:
    """What the simulated device says about itself in common model 1."""

    manufacturer: str = "gridex"
    model: str = "simulated PV + meter"
    version: str = "1.0"
    serial_number: str = "SIM-0"
    unit_id: int = 1


def _fit(value: float, *, limit: int = 32767) -> tuple[int, int]:
    """``(raw, sf)`` with raw × 10^sf ≈ value and |raw| <= limit, the finest sf >= 0 that fits."""
    scale = 0
    while abs(round(value / 10**scale)) > limit:
        scale += 1
    return round(value / 10**scale), scale


def _currents(power_w: float) -> dict[str, int | float | str]:
    """Total and per-phase current points for ``power_w`` spread evenly over three phases."""
    total, scale = _fit(abs(power_w) / _VOLTAGE_V * 100)  # centiamps, coarser if large
    phase = round(abs(power_w) / 3 / _VOLTAGE_V * 100 / 10**scale)
    return {"A": total, "AphA": phase, "AphB": phase, "AphC": phase, "A_SF": scale - 2}


def _inverter_values(state: MeterState) -> dict[str, int | float | str]:
    power, power_sf = _fit(state.production_w)
    volts = round(_VOLTAGE_V * 10)
    return {
        **_currents(state.production_w),
        "PhVphA": volts,
        "PhVphB": volts,
        "PhVphC": volts,
        "V_SF": -1,
        "W": power,
        "W_SF": power_sf,
        "Hz": round(_FREQUENCY_HZ * 100),
        "Hz_SF": -2,
        "WH": state.production_wh,  # acc32: wraps at 2^32 Wh like a real counter
        "WH_SF": 0,
        "TmpCab": 350,
        "Tmp_SF": -1,
        "St": _MPPT if state.production_w > 0 else _SLEEPING,
        "Evt1": 0,
        "Evt2": 0,
    }


def _meter_values(state: MeterState) -> dict[str, int | float | str]:
    import_w = state.consumption_w - state.production_w  # SunSpec meters: import positive
    power, power_sf = _fit(import_w)
    phase = round(import_w / 3 / 10**power_sf)
    volts = round(_VOLTAGE_V * 10)
    return {
        **_currents(import_w),
        "PhV": volts,
        "PhVphA": volts,
        "PhVphB": volts,
        "PhVphC": volts,
        "V_SF": -1,
        "Hz": round(_FREQUENCY_HZ * 100),
        "Hz_SF": -2,
        "W": power,
        "WphA": phase,
        "WphB": phase,
        "WphC": phase,
        "W_SF": power_sf,
        "TotWhExp": state.export_wh,  # acc32: wraps at 2^32 Wh
        "TotWhImp": state.import_wh,
        "TotWh_SF": 0,
        "Evt": 0,
    }


def battery_values(spec: BatterySpec, state: BatteryState) -> dict[str, int | float | str]:
    """Model 802's points for ``state``: SoC in 0.01 %, limits and power in whole W."""
    capacity, capacity_sf = _fit(spec.capacity_wh, limit=65535)
    rate_sf = _fit(max(spec.max_charge_w, spec.max_discharge_w), limit=65535)[1]
    power, power_sf = _fit(state.power_w)
    amps, amps_sf = _fit(state.power_w / _BATTERY_V * 10)
    return {
        "AHRtg": round(spec.capacity_wh / _BATTERY_V),
        "WHRtg": capacity,
        "WChaRteMax": spec.max_charge_w // 10**rate_sf,
        "WDisChaRteMax": spec.max_discharge_w // 10**rate_sf,
        "SoCMax": spec.max_soc_percent * 100,
        "SoCMin": 0,
        "SoCRsvMin": spec.min_soc_percent * 100,
        "SoC": state.soc_wh * 10_000 // spec.capacity_wh,
        "ChaSt": state.charge_status,
        "LocRemCtl": 1,  # local control: the gateway only reads
        "AlmRst": 0,
        "Typ": 4,  # lithium-ion
        "State": 3,  # connected
        "Evt1": 0,
        "Evt2": 0,
        "EvtVnd1": 0,
        "EvtVnd2": 0,
        "V": round(_BATTERY_V * 10),
        "A": amps,
        "W": power,
        "SetOp": 1,
        "SetInvState": 3,
        "AHRtg_SF": 0,
        "WHRtg_SF": capacity_sf,
        "WChaDisChaMax_SF": rate_sf,
        "SoC_SF": -2,
        "V_SF": -1,
        "CellV_SF": -3,
        "A_SF": amps_sf - 1,
        "AMax_SF": 0,
        "W_SF": power_sf,
    }


def sunspec_registers(
    state: MeterState, identity: DeviceIdentity, battery: SimulatedBattery | None = None
) -> list[int]:
    """The device's holding registers from its base address: SunS, 1, 103, 203, [802], end.

    ``battery`` is included as it stands (advance it first).
    """
    common = encode_model(
        COMMON_MODEL,
        1,
        {
            "Mn": identity.manufacturer,
            "Md": identity.model,
            "Opt": "sim",
            "Vr": identity.version,
            "SN": identity.serial_number,
            "DA": identity.unit_id,
        },
    )
    inverter = encode_model(INVERTER_MODEL, 103, _inverter_values(state))
    meter = encode_model(METER_MODEL, 203, _meter_values(state))
    models = [common, inverter, meter]
    if battery is not None:
        values = battery_values(battery.spec, battery.state)
        models.append(encode_model(BATTERY_MODEL, BATTERY_MODEL_ID, values))
    return encode_sunspec_map(models)


class SunSpecSimulator:
    """Register contents of a simulated SunSpec device at the clock's current time.

    Args:
        meter: The simulated home.
        clock: Where simulated time comes from (the engine's clock in a demo).
        identity: What common model 1 says.
        base_address: Where the ``SunS`` marker sits (40000, 0 or 50000).
        battery: A home battery to serve as model 802 (None: no battery).
    """

    def __init__(
        self,
        meter: SimulatedMeter,
        clock: Clock,
        *,
        identity: DeviceIdentity | None = None,
        base_address: int = 40000,
        battery: SimulatedBattery | None = None,
    ) -> None:
        self.meter = meter
        self.battery = battery
        self.clock = clock
        self.identity = identity or DeviceIdentity()
        if not 0 <= self.identity.unit_id <= 255:
            raise MeterConfigError(f"unit id {self.identity.unit_id} outside 0..255")
        self.base_address = base_address
        if base_address + len(self.registers()) > 0x10000:
            raise MeterConfigError(f"SunSpec map at {base_address} runs past register 65535")

    def state(self) -> MeterState:
        """The simulated home, advanced to the clock's current time."""
        return self.meter.advance_to(self.clock())

    @property
    def model_ids(self) -> tuple[int, ...]:
        """The models served, in register order."""
        return (1, 103, 203) + ((BATTERY_MODEL_ID,) if self.battery is not None else ())

    def registers(self) -> list[int]:
        """The register map from :attr:`base_address`, at the clock's current time."""
        state = self.state()
        if self.battery is not None:
            self.battery.advance_to(state.time)
        return sunspec_registers(state, self.identity, self.battery)

    def snapshot(self) -> RegisterImage:
        """An in-memory device frozen at the current time (no network needed)."""
        return RegisterImage.from_blocks([(self.base_address, self.registers())])
