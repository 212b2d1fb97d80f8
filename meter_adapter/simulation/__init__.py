"""Simulated meters: PV and household profiles, a home behind a meter, a SunSpec simulator.

- :class:`PvProfile` / :class:`PvSystem`: pvlib clear-sky PV with seeded clouds.
- :class:`HouseholdProfile`: seeded household consumption with a daily shape.
- :class:`FlexibleLoads` with :class:`EvCharging` and :class:`HeatPump`: a home's
  deferrable loads (an evening car charge, a hot-water run), seeded per day.
- :class:`SimulatedMeter`: integrates them into cumulative import/export/production Wh.
- :class:`SimulatedBattery`: a home battery whose state of charge follows its schedule.
- :class:`SunSpecSimulator`: the home as SunSpec models 1, 103 and 203 (and 802).
- :func:`start_simulator_server`: serves it over Modbus TCP (pymodbus).

Nothing here reads the wall clock: time comes from the clock you pass in.
"""

from __future__ import annotations

from meter_adapter.simulation.battery import BatterySpec, BatteryState, DailyCycle, SimulatedBattery
from meter_adapter.simulation.device import DeviceIdentity, SunSpecSimulator, sunspec_registers
from meter_adapter.simulation.flexible import EvCharging, FlexibleLoads, HeatPump
from meter_adapter.simulation.household import HouseholdProfile
from meter_adapter.simulation.meter import MeterState, PowerProfile, SimulatedMeter
from meter_adapter.simulation.pv import PvProfile, PvSystem
from meter_adapter.simulation.server import SimulatorServer, start_simulator_server

__all__ = [
    "BatterySpec",
    "BatteryState",
    "DailyCycle",
    "DeviceIdentity",
    "EvCharging",
    "FlexibleLoads",
    "HeatPump",
    "HouseholdProfile",
    "MeterState",
    "PowerProfile",
    "PvProfile",
    "PvSystem",
    "SimulatedBattery",
    "SimulatedMeter",
    "SimulatorServer",
    "SunSpecSimulator",
    "start_simulator_server",
    "sunspec_registers",
]
