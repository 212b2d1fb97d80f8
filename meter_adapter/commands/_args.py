"""Argument parsing shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_max_power", "home_profiles", "host_port", "positive_w"]


def host_port(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6; the port defaults to 502).

    Raises:
        argparse.ArgumentTypeError: Not a host with an optional port 1..65535.
    """
    host, port_text = text, "502"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise argparse.ArgumentTypeError(f"expected [ADDRESS]:PORT, got {text!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host:
        raise argparse.ArgumentTypeError(f"no host in {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {port_text!r} is not a number") from None
    if not 0 < port <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1..65535")
    return host, port


def positive_w(text: str) -> float:
    """Parse a positive power in W.

    Raises:
        argparse.ArgumentTypeError: Not a positive finite number.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of W") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of W, got {text}")
    return value


def add_max_power(parser: argparse.ArgumentParser | Any) -> None:
    """The ``--max-power-w`` flag: the plausibility bound where the device declares none."""
    parser.add_argument(
        "--max-power-w",
        type=positive_w,
        default=None,
        metavar="W",
        help="largest |power| the site can move, W, where the device declares no rating "
        "(SunSpec nameplate, register map max_power_w); readings beyond it, or counters "
        "stepping faster, are quarantined (default: 100000)",
    )


def home_profiles(args: argparse.Namespace) -> tuple[Any, Any]:
    """The household and PV (None with ``--no-pv``) profiles the simulation flags describe.

    Shared by ``simulate`` and ``run --simulate``, which take the same flags.
    """
    from meter_adapter.simulation import HouseholdProfile, PvProfile, PvSystem

    pv = None
    if not args.no_pv:
        system = PvSystem(
            latitude=args.latitude,
            longitude=args.longitude,
            timezone=args.timezone,
            kwp=args.kwp,
            tilt_deg=args.tilt,
            azimuth_deg=args.azimuth,
        )
        pv = PvProfile(system, seed=args.seed, cloudiness=args.cloudiness)
    household = HouseholdProfile(annual_kwh=args.annual_kwh, timezone=args.timezone, seed=args.seed)
    return household, pv
