"""``gridex grid info NAME_OR_FILE``: what the market sees of a feeder."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``grid`` command group to the ``gridex`` parser."""
    grid = sub.add_parser("grid", help="inspect feeders")
    grid_sub = grid.add_subparsers(dest="grid_command", required=True, metavar="COMMAND")
    info = grid_sub.add_parser(
        "info", help="print a feeder's size, limits and the buses where participants connect"
    )
    info.add_argument("feeder", metavar="NAME_OR_FILE", help="built-in name or pandapower JSON")
    info.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from grid.errors import GridError
    from grid.feeders import load_feeder
    from grid.validation import check_schedule

    piped = not sys.stdout.isatty()  # rich wraps at 80 columns when piped: keep lines whole
    console = Console(width=10_000, soft_wrap=True) if piped else Console()
    try:
        feeder = load_feeder(args.feeder)
        report = check_schedule(feeder, [0.0] * feeder.n_bus)
    except GridError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    levels = sorted({b.vn_kv for b in feeder.buses}, reverse=True)
    console.print(f"[bold]feeder {feeder.name}[/bold]")
    console.print(
        f"  {feeder.n_bus} buses ({', '.join(f'{v:g} kV' for v in levels)}), "
        f"{len(feeder.lines)} lines, {len(feeder.trafos)} transformers, "
        f"external grid at bus {feeder.ext_grid.bus} ({feeder.ext_grid.vm_pu:.3f} p.u.)"
    )
    console.print(
        f"  base load {-feeder.base_p_mw[feeder.base_p_mw < 0].sum():.3f} MW, "
        f"base generation {feeder.base_p_mw[feeder.base_p_mw > 0].sum():.3f} MW"
    )
    console.print(
        f"  base case: max line loading {report.max_line_loading_percent:.1f} %, "
        f"max trafo loading {report.max_trafo_loading_percent:.1f} %, "
        f"voltage {report.vm_min_pu:.3f}-{report.vm_max_pu:.3f} p.u., "
        f"losses {report.losses_mw * 1000:.1f} kW, {len(report.violations)} "
        f"violation{'' if len(report.violations) == 1 else 's'}"
    )
    branches = Table(title="branch limits")
    for col in ("element", "from", "to", "kV", "max kA", "rating MVA", "max %"):
        branches.add_column(col)
    for br in feeder.branches:
        branches.add_row(
            f"{br.label} {br.name}",
            str(br.from_bus),
            str(br.to_bus),
            f"{br.vn_kv:g}",
            _num(br.max_i_ka),
            _num(br.rating_mva),
            f"{br.max_loading_percent:g}",
        )
    console.print(branches)
    buses = Table(title=f"connectable buses ({len(feeder.connectable_buses)})")
    for col in ("bus", "name", "kV", "V band p.u.", "base P MW"):
        buses.add_column(col)
    for bus in feeder.connectable_buses:
        buses.add_row(
            str(bus.index),
            bus.name,
            f"{bus.vn_kv:g}",
            f"{bus.vm_min_pu:.2f}-{bus.vm_max_pu:.2f}",
            f"{feeder.base_p_mw[bus.position]:+.4f}",
        )
    console.print(buses)
    return 0


def _num(value: Any) -> str:
    return "unlimited" if not math.isfinite(float(value)) else f"{float(value):.4g}"
