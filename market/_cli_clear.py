"""``gridex clear``: the operator's offline clearing job over an orders file."""

from __future__ import annotations

import argparse
import logging
from typing import Any

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``clear`` command to the ``gridex`` parser."""
    p = sub.add_parser(
        "clear",
        help="clear an orders file on a feeder and write fills, prices, trades and a summary",
        description=(
            "Clear every interval of an orders file (CSV or parquet) on a feeder. "
            "Formats: docs/clearing.md. Exit status: 0 cleared, 1 a clearing failed, "
            "2 bad input."
        ),
    )
    p.add_argument(
        "--grid",
        required=True,
        metavar="NAME_OR_FILE",
        help="built-in feeder name or pandapower JSON",
    )
    p.add_argument("--orders", required=True, metavar="ORDERS", help="orders .csv or .parquet")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--mechanism", choices=("uniform", "nodal"), default="nodal")
    p.add_argument("--sensitivities", choices=("ac", "dc"), default="ac")
    p.add_argument(
        "--constraints",
        default=None,
        help=(
            "comma-separated subset of lines,trafos,voltage (default: all with ac "
            "sensitivities, lines,trafos with dc; voltage with dc is an error)"
        ),
    )
    p.add_argument("--retail-price", type=int, help="import price, base units per kWh")
    p.add_argument("--feed-in-price", type=int, help="export price, base units per kWh")
    p.add_argument(
        "--grid-fee", type=int, help="grid-usage fee charged to buyers, base units per kWh"
    )
    p.add_argument("--interval-s", type=int, help="interval length in seconds (default 900)")
    p.add_argument(
        "--interval", type=int, default=0, help="interval id when the file has no interval column"
    )
    p.add_argument("--solver", choices=("fast", "pyomo"), default="fast")
    p.add_argument(
        "--max-rounds", type=int, default=8, help="most linearisation rounds (nodal, ac)"
    )
    p.add_argument("--no-ac-check", action="store_true", help="skip the AC power-flow check")
    from market.engine.cli import _add_base_forecast_flags

    _add_base_forecast_flags(p)
    p.set_defaults(func=_clear)


def _config(args: argparse.Namespace) -> Any:
    from market.config import MarketConfig

    given = {
        "retail_price": args.retail_price,
        "feed_in_price": args.feed_in_price,
        "grid_fee_per_kwh": args.grid_fee,
        "interval_s": args.interval_s,
    }
    return MarketConfig(**{k: v for k, v in given.items() if v is not None})


def _views(args: argparse.Namespace, feeder: Any, interval_s: int, intervals: list[int]) -> Any:
    """The per-interval feeder views of --base-forecast (None: static base).

    Raises:
        ForecastError: the forecast misses one of ``intervals``.
        InputFileError: the forecast file is invalid.
    """
    from market.engine.cli import open_base_forecast
    from market.errors import ForecastError
    from market.forecast import ViewCache, first_gap

    forecast = open_base_forecast(args, feeder, interval_s)
    if forecast is None:
        return None
    gap = first_gap(forecast, intervals)
    if gap is not None:
        raise ForecastError(
            f"--base-forecast {args.base_forecast}: no values for interval {gap} of the orders "
            "file; give a forecast that covers every interval (or --base-forecast static)"
        )
    return ViewCache(feeder, forecast)


def _clear(args: argparse.Namespace) -> int:
    from rich.table import Table

    from grid import load_feeder
    from grid.errors import GridError
    from market import _console
    from market.clearing import ClearingOptions, clear
    from market.clearing.io import read_orders, write_results
    from market.errors import ClearingError, MarketError, OrderValidationError

    console = _console.console(stderr=True, soft_wrap=True)
    try:
        config = _config(args)
        # without --constraints: every constraint the sensitivities can enforce
        given: dict[str, Any] = {}
        if args.constraints is not None:
            given["constraints"] = args.constraints  # comma-separated; ClearingOptions parses it
        options = ClearingOptions(
            sensitivities=args.sensitivities,
            **given,
            solver=args.solver,
            max_rounds=args.max_rounds,
            ac_check=not args.no_ac_check,
        )
        feeder = load_feeder(args.grid)
        book = read_orders(args.orders, default_interval=args.interval)
        views = _views(args, feeder, config.interval_s, list(book.intervals))
    except (MarketError, GridError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    results = []
    status = 0
    for interval, orders in book.intervals.items():
        try:
            results.append(
                clear(
                    feeder if views is None else views.at(interval)[0],
                    orders,
                    book.participants,
                    config,
                    mechanism=args.mechanism,
                    options=options,
                    interval=interval,
                    allow_non_optimal=True,
                )
            )
        except OrderValidationError as exc:
            console.print(f"[red]error:[/red] interval {interval}: {exc}")
            return 2
        except (ClearingError, GridError) as exc:
            console.print(f"[red]error:[/red] interval {interval}: {exc}")
            return 1
        if not results[-1].ok:
            status = 1
            console.print(
                f"[red]interval {interval} not cleared[/red] ({results[-1].status}): "
                + "; ".join(results[-1].ac.violations if results[-1].ac else ())
                + " — no local trades, every participant at its tariff"
            )
    header = {
        "grid": feeder.name,
        "orders_file": str(args.orders),
        "mechanism": args.mechanism,
        "sensitivities": args.sensitivities if args.mechanism == "nodal" else "none",
        # only what the LP enforced (the same for every interval)
        "constraints": sorted(options.constraints) if args.mechanism == "nodal" else [],
        "solver": args.solver,
        "retail_price": config.retail_price,
        "feed_in_price": config.feed_in_price,
        "grid_fee_per_kwh": config.grid_fee_per_kwh,
        "interval_s": config.interval_s,
        "base_forecast": "static" if views is None else views.label,
    }
    try:
        write_results(args.out, results, header=header)
    except MarketError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    table = Table(title=f"gridex clear: {feeder.name}, {args.mechanism}")
    for col in (
        "interval",
        "status",
        "orders",
        "filled",
        "import Wh",
        "export Wh",
        "surplus",
        "AC",
        "rounds",
        "s",
    ):
        table.add_column(col)
    for r in results:
        table.add_row(
            str(r.interval),
            str(r.status),
            str(len(r.fills)),
            str(sum(1 for f in r.fills if f.filled_wh > 0)),
            str(r.grid_import_wh),
            str(r.grid_export_wh),
            str(r.operator_surplus),
            "-" if r.ac is None else ("pass" if r.ac.passed else "FAIL"),
            str(r.rounds),
            f"{r.stats.total_s:.3f}",
        )
    out = _console.console()
    out.print(table)
    out.print(f"wrote fills.csv, prices.csv, trades.csv, payments.csv, summary.json to {args.out}")
    return status
