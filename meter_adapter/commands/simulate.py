"""``gridex-meter simulate``: serve a simulated home as a SunSpec device over Modbus TCP.

Models 1 (common), 103 (three-phase inverter) and 203 (wye meter), driven by a
pvlib PV profile and a household consumption profile, deterministic for a
seed; with ``--battery-kwh``, also a home battery as model 802 (charging
around noon, discharging in the evening). Runs until interrupted::

    gridex-meter simulate --port 1502 --kwp 7.5 --seed 3
    gridex-meter simulate --port 1502 --battery-kwh 10 --battery-kw 5
    gridex-meter simulate --port 0 --start 2024-06-21T06:00:00+00:00 --speed 3600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import datetime
from typing import Any

from meter_adapter.commands._args import home_profiles
from meter_adapter.errors import MeterConfigError, MeterError

__all__ = ["register", "run"]


def _aware_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone offset: {text!r}")
    return when


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="serve a simulated SunSpec PV inverter and meter (and battery) over Modbus TCP",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = parser.add_argument_group("network")
    net.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one)")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    net.add_argument("--unit", type=int, default=1, help="Modbus unit id (default: 1)")
    net.add_argument("--base-address", type=int, default=40000, choices=(0, 40000, 50000))
    site = parser.add_argument_group("site")
    site.add_argument("--latitude", type=float, default=52.52, help="degrees north")
    site.add_argument("--longitude", type=float, default=13.405, help="degrees east")
    site.add_argument("--timezone", default="Europe/Berlin", help="IANA time zone of the site")
    site.add_argument("--kwp", type=float, default=5.0, help="PV peak power, kWp (default: 5)")
    site.add_argument("--no-pv", action="store_true", help="a home without PV")
    site.add_argument("--tilt", type=float, default=30.0, help="module tilt, degrees")
    site.add_argument(
        "--azimuth", type=float, default=180.0, help="module azimuth, degrees (S=180)"
    )
    site.add_argument("--cloudiness", type=float, default=0.4, help="0 (clear) .. 1 (overcast)")
    site.add_argument("--annual-kwh", type=float, default=3500.0, help="household kWh per year")
    site.add_argument("--seed", type=int, default=0, help="seed of clouds and appliance use")
    time = parser.add_argument_group("time")
    time.add_argument("--start", type=_aware_time, help="simulated start time (default: now)")
    time.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    battery = parser.add_argument_group("home battery (SunSpec model 802)")
    battery.add_argument("--battery-kwh", type=float, help="capacity, kWh (default: no battery)")
    battery.add_argument(
        "--battery-kw", type=float, default=5.0, help="charge and discharge limit, kW (default: 5)"
    )
    battery.add_argument(
        "--battery-soc-percent", type=int, default=50, help="state of charge at the start, %%"
    )
    battery.add_argument(
        "--battery-reserve-percent", type=int, default=10, help="reserve it keeps, %% (default: 10)"
    )
    counters = parser.add_argument_group("initial counters")
    counters.add_argument("--initial-import-wh", type=int, default=0)
    counters.add_argument("--initial-export-wh", type=int, default=0)
    counters.add_argument("--initial-production-wh", type=int, default=0)
    parser.set_defaults(func=run)


def _battery(args: argparse.Namespace, start: datetime) -> Any:
    """The simulated battery the flags ask for, or None."""
    from meter_adapter.simulation import BatterySpec, SimulatedBattery

    if args.battery_kwh is None:
        return None
    power_w = round(args.battery_kw * 1000)
    spec = BatterySpec(
        capacity_wh=round(args.battery_kwh * 1000),
        max_charge_w=power_w,
        max_discharge_w=power_w,
        min_soc_percent=args.battery_reserve_percent,
    )
    if problems := spec.problems():
        raise MeterConfigError("--battery-*: " + "; ".join(problems))
    soc_wh = spec.capacity_wh * args.battery_soc_percent // 100
    if not spec.min_soc_wh <= soc_wh <= spec.max_soc_wh:
        raise MeterConfigError(
            f"--battery-soc-percent: must be in [{spec.min_soc_percent}, "
            f"{spec.max_soc_percent}], got {args.battery_soc_percent}"
        )
    return SimulatedBattery(spec, start=start, soc_wh=soc_wh)


async def _serve(args: argparse.Namespace) -> None:
    from meter_adapter.clock import ScaledClock, utc_now
    from meter_adapter.simulation import (
        DeviceIdentity,
        SimulatedMeter,
        SunSpecSimulator,
        start_simulator_server,
    )

    clock = ScaledClock(args.start or utc_now(), speed=args.speed)
    household, pv = home_profiles(args)
    meter = SimulatedMeter(
        household=household,
        pv=pv,
        start=clock(),
        initial_import_wh=args.initial_import_wh,
        initial_export_wh=args.initial_export_wh,
        initial_production_wh=args.initial_production_wh,
    )
    identity = DeviceIdentity(serial_number=f"SIM-{args.seed}", unit_id=args.unit)
    simulator = SunSpecSimulator(
        meter,
        clock,
        identity=identity,
        base_address=args.base_address,
        battery=_battery(args, clock()),
    )
    server = await start_simulator_server(simulator, host=args.host, port=args.port)
    models = ", ".join(map(str, simulator.model_ids))
    print(
        f"serving simulated SunSpec device (models {models}) on {server.host}:{server.port} "
        f"unit {args.unit}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 1 with a message if the simulator cannot start."""
    try:
        asyncio.run(_serve(args))
    except MeterError as exc:
        print(f"gridex-meter simulate: {exc}", file=sys.stderr)
        return 1
    return 0
