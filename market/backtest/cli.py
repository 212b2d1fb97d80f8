"""``gridex backtest``: a backtest or a study sweep, on Dask, with a report."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

#: Flags that describe the backtest (not allowed next to --study, which describes it).
_SPEC_FLAGS = {
    "feeders": "--feeders",
    "scenario": "--scenario",
    "start": "--start",
    "days": "--days",
    "participants": "--participants",
    "pv_penetration": "--pv-penetration",
    "ev_share": "--ev-share",
    "heat_pump_share": "--heat-pump-share",
    "retail_price": "--retail-price",
    "feed_in_price": "--feed-in-price",
    "grid_fee_per_kwh": "--grid-fee",
    "mechanism": "--mechanism",
    "sensitivities": "--sensitivities",
    "interval_s": "--interval-s",
    "cloudiness": "--cloudiness",
    "seed": "--seed",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backtest`` to the ``gridex`` parser."""
    p = sub.add_parser(
        "backtest",
        help="clear days to a year of simulated homes on many feeders (Dask), with a report",
        description=(
            "Simulates a demo scenario's homes (PV, cars, heat pumps) on each feeder, with the "
            "engine's base-load forecast, and runs the engine's clearing, AC check and "
            "settlement for every interval of the period, in-process (no gRPC, no chain), one "
            "Dask task per (feeder, day). Results are one parquet file per "
            "(feeder, day) under --out/intervals; a rerun skips the finished ones. With "
            "--study FILE, runs every point of a TOML parameter sweep."
        ),
    )
    p.add_argument(
        "--feeders",
        help="comma-separated built-in names, pandapower JSON files or folders of them "
        "(default: the scenario's feeder)",
    )
    p.add_argument(
        "--scenario",
        choices=("mild", "sunny-congested"),
        help="the demo scenario the homes, their trading and the base load follow: mild "
        "(default; CIGRE LV, nothing binds) or sunny-congested (high PV, evening cars and "
        "heat pumps, homes follow their schedule); the flags below override its values",
    )
    p.add_argument("--start", type=dt.date.fromisoformat, help="first day, YYYY-MM-DD")
    p.add_argument("--days", type=int, help="days to simulate, 1..366 (default 1)")
    p.add_argument("--participants", type=int, help="homes per feeder (default: the scenario's)")
    p.add_argument("--pv-penetration", type=float, help="share of homes with PV, 0..1")
    p.add_argument("--ev-share", type=float, help="share of homes with an electric car, 0..1")
    p.add_argument(
        "--heat-pump-share", type=float, help="share of homes with a hot-water heat pump, 0..1"
    )
    p.add_argument("--retail-price", type=int, help="grid import price, base units per kWh")
    p.add_argument("--feed-in-price", type=int, help="grid export price, base units per kWh")
    p.add_argument(
        "--grid-fee", dest="grid_fee_per_kwh", type=int, help="network fee per locally traded kWh"
    )
    p.add_argument("--mechanism", help="nodal (default) or uniform")
    p.add_argument("--sensitivities", help="ac (default) or dc linearisation")
    p.add_argument("--interval-s", type=int, help="market interval length, s (default 900)")
    p.add_argument(
        "--cloudiness", type=float, help="mean cloud cover, 0..1 (default: the scenario's)"
    )
    p.add_argument("--seed", type=int, help="seeds homes, loads, cars and clouds (default 7)")
    p.add_argument("--study", type=Path, help="a TOML study file: run every point of its sweep")
    p.add_argument(
        "--out", type=Path, default=Path("gridex-backtest"), help="results and report folder"
    )
    p.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler, e.g. tcp://HOST:8786 "
        "(default: DASK_SCHEDULER_ADDRESS, else a local cluster)",
    )
    p.add_argument("--workers", type=int, help="local cluster workers (default: one per core)")
    p.add_argument(
        "--serial", action="store_true", help="run in this process, without Dask (debugging)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_backtest)


def _backtest(args: argparse.Namespace) -> int:
    from rich.console import Console

    from grid import GridError
    from market.errors import MarketError

    console = Console(quiet=args.quiet, stderr=False)
    try:
        return _run(args, console)
    except (MarketError, GridError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: --out {args.out}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, console: Any) -> int:
    from market.backtest.report import ReportPoint, write_report
    from market.backtest.runner import run_backtests
    from market.backtest.spec import BacktestSpec, resolve_feeders
    from market.backtest.study import load_study
    from market.errors import ConfigError

    given = {k: getattr(args, k) for k in _SPEC_FLAGS if getattr(args, k) is not None}
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers: must be >= 1, got {args.workers}")
    if args.study is not None:
        if given:
            flags = ", ".join(_SPEC_FLAGS[k] for k in given)
            raise ConfigError(f"{flags}: the study file describes the backtest; drop these")
        study = load_study(args.study)
        points = [ReportPoint(p.key, p.values, args.out / "points" / p.key) for p in study.points]
        specs = [p.spec for p in study.points]
        title = f"gridex study: {study.name}, {len(points)} points"
        swept: tuple[str, ...] = study.swept
    else:
        from market.demo.scenario import SCENARIOS

        default = SCENARIOS[given.get("scenario", "mild")].feeder
        feeders = resolve_feeders([f for f in given.pop("feeders", default).split(",") if f])
        spec = BacktestSpec(feeders=tuple(feeders), **given)
        points = [ReportPoint("backtest", {}, args.out)]
        specs = [spec]
        names = ", ".join(f.name for f in spec.feeders)
        title = f"gridex backtest: {names}, {spec.days} days from {spec.start}"
        swept = ()
    outcomes = _with_progress(
        console,
        lambda on_start, on_task: run_backtests(
            [(s, p.folder) for s, p in zip(specs, points, strict=True)],
            scheduler=args.scheduler,
            workers=args.workers,
            serial=args.serial,
            on_start=on_start,
            on_task=on_task,
        ),
    )
    points = [
        ReportPoint(p.key, p.values, p.folder, o) for p, o in zip(points, outcomes, strict=True)
    ]
    page = write_report(args.out, points, title=title, swept=swept)
    return _print_summary(console, outcomes, page)


def _with_progress(console: Any, run: Any) -> Any:
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    state = {"intervals": 0, "start": time.perf_counter(), "failed": 0}
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("(feeder, day) tasks", total=None, rate="")

        def on_start(count: int, dashboard: str) -> None:
            if dashboard:
                console.print(f"Dask dashboard: {dashboard}")
            state["start"] = time.perf_counter()
            progress.update(task, total=count)

        def on_task(outcome: Any) -> None:
            state["intervals"] += outcome.intervals
            if outcome.status == "failed":
                state["failed"] += 1
                console.print(f"[red]failed[/red] {outcome.feeder} {outcome.day}: {outcome.reason}")
            for interval, reason in outcome.failed_intervals:
                console.print(
                    f"[yellow]interval {interval} did not clear[/yellow] "
                    f"({outcome.feeder} {outcome.day}): {reason}"
                )
            elapsed = max(time.perf_counter() - state["start"], 1e-9)
            progress.update(
                task, advance=1, rate=f"{state['intervals'] / elapsed:,.1f} intervals/s"
            )

        return run(on_start, on_task)


def _print_summary(console: Any, outcomes: list[Any], page: Path) -> int:
    tasks = sum(o.total for o in outcomes)
    before = sum(o.already_done for o in outcomes)
    ran = [t for o in outcomes for t in o.tasks]
    failed = [t for t in ran if t.status == "failed"]
    bad_intervals = [i for o in outcomes for i in o.failed_intervals]
    intervals = sum(t.intervals for t in ran)
    wall = max((o.wall_s for o in outcomes), default=0.0)
    console.print(
        f"{tasks} (feeder, day) tasks: {before} already done, {len(ran) - len(failed)} run now, "
        f"{len(failed)} failed; {intervals} intervals in {wall:.1f} s "
        f"({intervals / wall if wall else 0:.1f} intervals/s)"
    )
    if failed:
        console.print("[red]failed tasks[/red] (rerun to retry them):")
        for t in failed:
            console.print(f"  {t.feeder} {t.day}: {t.reason}")
    if bad_intervals:
        console.print(f"[yellow]{len(bad_intervals)} intervals did not clear[/yellow]:")
        for feeder, day, interval, reason in bad_intervals[:20]:
            console.print(f"  {feeder} {day} interval {interval}: {reason}")
    console.print(f"report: {page.resolve()}")
    return 1 if failed else 0
