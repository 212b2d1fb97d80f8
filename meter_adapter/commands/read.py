"""``gridex-meter read``: read a meter once and print what was understood, as JSON.

The first thing a prosumer runs to see that the meter is understood::

    gridex-meter read --modbus 192.168.1.50:502 --unit 1
    gridex-meter read --modbus 192.168.1.60 --map sdm630
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from meter_adapter.commands._args import add_max_power, host_port
from meter_adapter.errors import MeterError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``read`` subcommand."""
    parser = subparsers.add_parser(
        "read",
        help="read a Modbus meter once and print the decoded reading as JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--modbus",
        required=True,
        type=host_port,
        metavar="HOST:PORT",
        help="Modbus TCP address of the meter or inverter (port defaults to 502)",
    )
    parser.add_argument("--unit", type=int, default=1, help="Modbus unit id (default: 1)")
    parser.add_argument(
        "--map",
        metavar="FILE",
        help="register map (a TOML file, or a shipped one: sdm630, sdm120, em24) "
        "for a meter without SunSpec; default: SunSpec discovery",
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, metavar="S", help="response timeout, s (default: 3)"
    )
    parser.add_argument("--meter-id", help="meter id to put in the reading (default: the address)")
    add_max_power(parser)
    parser.set_defaults(func=run)


async def _read(args: argparse.Namespace) -> dict[str, Any]:
    from meter_adapter.maps import load_map
    from meter_adapter.modbus_client import ReadOnlyModbusClient, ReconnectPolicy
    from meter_adapter.reader import DEFAULT_MAX_POWER_W, MeterReader

    host, port = args.modbus
    register_map = load_map(args.map) if args.map else None
    meter_id = args.meter_id or f"modbus://{host}:{port}/{args.unit}"
    async with ReadOnlyModbusClient(
        host,
        port,
        unit_id=args.unit,
        timeout_s=args.timeout,
        reconnect=ReconnectPolicy(initial_delay_s=0.0, max_delay_s=0.0),
    ) as client:
        reader = MeterReader(
            client,
            meter_id=meter_id,
            register_map=register_map,
            max_power_w=args.max_power_w or DEFAULT_MAX_POWER_W,
        )
        description = await reader.describe()
        reading = await reader.read()
    result: dict[str, Any] = {**description, **reading.to_json_dict()}
    if reading.production_wh is None and reading.production_w is None:
        del result["production_w"], result["production_wh"]
    return result


def run(args: argparse.Namespace) -> int:
    """Print one reading as JSON; exit 1 with a message if the meter cannot be read."""
    try:
        result = asyncio.run(_read(args))
    except MeterError as exc:
        print(f"gridex-meter read: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
