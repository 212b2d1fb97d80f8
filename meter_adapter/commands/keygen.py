"""``gridex-meter keygen``: write a fresh gateway key file and print its address.

The operator registers the printed address for the meter (and as the
participant, when the prosumer agent trades with the same key)::

    gridex-meter keygen --out ~/.config/gridex/gateway.key
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meter_adapter.errors import MeterError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keygen`` subcommand."""
    parser = subparsers.add_parser(
        "keygen",
        help="write a new gateway key file (mode 0600) and print its address",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="key file to create (never overwritten)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the key; print the address; exit 1 with a message if the file cannot be made."""
    from meter_adapter.uplink.keys import generate_key_file

    try:
        signer = generate_key_file(args.out)
    except MeterError as exc:
        print(f"gridex-meter keygen: {exc}", file=sys.stderr)
        return 1
    print(signer.address)
    return 0
