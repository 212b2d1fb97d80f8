"""The ``gridex`` command line: the grid operator's and engine's entry point.

Each subcommand lives in its own module that exposes ``register(subparsers)``;
the module sets ``func`` on its parser, a callable taking the parsed arguments
and returning the process exit code. Heavy packages are imported inside the
subcommand so that ``gridex --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    from contracts import cli as chain_cli
    from grid import cli as grid_cli
    from market import _cli_clear as clear_cli
    from market import _cli_ops as ops_cli
    from market.demo import cli as demo_cli
    from market.engine import cli as engine_cli

    return [
        demo_cli.register,
        grid_cli.register,
        clear_cli.register,
        engine_cli.register,
        chain_cli.register,
        ops_cli.register,
    ]


def _version() -> str:
    """The installed distribution's version (without importing the package's modules)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridex")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The full ``gridex`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="gridex",
        description="gridex: a peer-to-peer energy market that clears under grid limits.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrations():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gridex`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
