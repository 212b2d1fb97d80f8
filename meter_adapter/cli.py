"""The ``gridex-meter`` command line, run by a prosumer on the home gateway."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from meter_adapter.commands import keygen, read, run, simulate, status

__all__ = ["main"]


def _version() -> str:
    """The installed distribution's version (without importing the package's modules)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridex")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The ``gridex-meter`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="gridex-meter",
        description="gridex meter adapter: read a Modbus meter, stream signed readings.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (read, simulate, run, keygen, status):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gridex-meter`` with ``argv``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
