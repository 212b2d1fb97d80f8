"""Backtest benchmark: intervals per second on 1 and 2 Dask workers, and a projection.

Runs the same small backtest (default: kerber-dorfnetz and cigre-lv, 2 days
each, 30 homes, 15-minute intervals) on a fresh local cluster of 1 and of 2
single-threaded worker processes, each into its own empty folder, and prints:

* ``wall``: the run's wall time, cluster start included, and ``iv/s`` the
  intervals per second over it;
* ``task iv/s``: intervals per second of task time (the steady state,
  without the cluster's start and the workers' first imports);
* ``speed-up`` of 2 workers over 1 (near 2 is the goal; on a shared 2-core
  machine the other load on it is the limit);
* per interval, from the 1-worker run: ``clear`` (the clearing call, its AC
  check of the cleared schedule included) and ``all`` (everything a task
  does per interval: forecasts, orders, clearing, copper-plate
  counterfactual, AC power flow of what was metered, settlement, parquet);
* the projected wall time of one year (365 days × 96 intervals) of 100
  feeders on 64 workers, from ``all``: ``100 · 365 · 96 · all / 64``.

``--profile`` instead runs one (feeder, day) in this process under cProfile
and prints where a task's time goes (cumulative, top entries), with the
share of the task spent in power flows (pandapower ``runpp``).

Usage::

    python bench/backtest.py
    python bench/backtest.py --feeders cigre-lv --days 1 --participants 20
    python bench/backtest.py --feeders cigre-lv --profile
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from market.backtest import BacktestSpec, resolve_feeders, run_backtest
from market.backtest.runner import BacktestOutcome


def _run(spec: BacktestSpec, workers: int) -> tuple[BacktestOutcome, float]:
    with tempfile.TemporaryDirectory(prefix="gridex-bench-backtest-") as folder:
        started = time.perf_counter()
        outcome = run_backtest(spec, Path(folder), workers=workers)
        return outcome, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeders", default="kerber-dorfnetz,cigre-lv")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scenario", default="mild")
    parser.add_argument("--interval-s", type=int, default=900)
    parser.add_argument("--profile", action="store_true", help="profile one (feeder, day)")
    args = parser.parse_args()
    spec = BacktestSpec(
        feeders=tuple(resolve_feeders(args.feeders.split(","))),
        scenario=args.scenario,
        start=dt.date(2026, 6, 1),
        days=args.days,
        participants=args.participants,
        interval_s=args.interval_s,
    )
    if args.profile:
        _profile(spec)
        return
    tasks = len(spec.feeders) * spec.days
    print(
        f"backtest: {args.feeders}, scenario {spec.scenario}, {spec.days} days, "
        f"{spec.participants} homes, {spec.intervals_per_day} intervals/day, {tasks} tasks, "
        f"mechanism {spec.mechanism}; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'workers':>7} {'wall s':>8} {'iv/s':>7} {'task iv/s':>10} {'speed-up':>9}")
    base = None
    per_interval: tuple[float, float] | None = None
    for workers in args.workers:
        outcome, wall = _run(spec, workers)
        if outcome.failed:
            print(f"  failed: {[(t.feeder, t.day, t.reason) for t in outcome.failed]}")
        intervals = outcome.intervals
        task_s = sum(t.wall_s for t in outcome.tasks)
        rate = intervals / wall
        base = base or rate
        print(
            f"{workers:>7} {wall:>8.1f} {rate:>7.2f} {intervals / task_s * workers:>10.2f} "
            f"{rate / base:>9.2f}"
        )
        if per_interval is None:
            clear_s = sum(t.clear_s for t in outcome.tasks)
            per_interval = (clear_s / intervals, task_s / intervals)
    assert per_interval is not None
    clear, everything = per_interval
    year = 100 * 365 * 96 * everything / 64
    print(
        f"per interval (1 worker): clear {clear:.3f} s (AC check included), all {everything:.3f} s"
    )
    print(
        f"projected: 1 year x 100 feeders on 64 workers = {year / 3600:.1f} h "
        f"({100 * 365 * 96:,} intervals at {everything:.3f} s each)"
    )


def _profile(spec: BacktestSpec) -> None:
    import cProfile
    import pstats

    from market.backtest.runner import run_task
    from market.backtest.store import ResultStore

    ref = spec.feeders[0]
    with tempfile.TemporaryDirectory(prefix="gridex-bench-backtest-") as folder:
        ResultStore(Path(folder)).open(spec)
        run_task(
            spec, ref, spec.start - dt.timedelta(days=1), folder
        )  # warm: load, homes, forecast
        profiler = cProfile.Profile()
        profiler.enable()
        outcome = run_task(spec, ref, spec.start, folder)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = outcome.wall_s
    runpp = sum(
        v[3]
        for k, v in stats.stats.items()
        if k[2] == "runpp"  # type: ignore[attr-defined]
    )
    print(
        f"profile: {ref.name}, {outcome.intervals} intervals, {total:.2f} s "
        f"({total / outcome.intervals:.3f} s per interval, "
        f"clear {outcome.clear_s / outcome.intervals:.3f} s); "
        f"runpp {runpp:.2f} s ({runpp / total:.0%}); load average {os.getloadavg()[0]:.1f}"
    )
    stats.sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
