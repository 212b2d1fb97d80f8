"""Argument parsing shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["home_profiles", "host_port"]


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
