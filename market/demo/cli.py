"""``gridex demo`` and ``gridex report``: the main job and its report, for operators."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import NoReturn

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` and ``report`` to the ``gridex`` parser."""
    demo = sub.add_parser(
        "demo",
        help="trade a sunny day on a real feeder, end to end, and write a report",
        description=(
            "Starts the engine (simulated clock) and an embedded EVM, places prosumers and "
            "consumers on the feeder, streams their signed readings and orders over gRPC, "
            "clears every interval under grid limits, settles on chain and writes a report."
        ),
    )
    demo.add_argument(
        "--scenario",
        choices=("sunny-congested", "mild"),
        default="sunny-congested",
        help="the day: sunny-congested (default: high PV and evening EVs on the Kerber "
        "village feeder, where copper-plate trading breaks limits) or mild (CIGRE LV, "
        "nothing binds)",
    )
    demo.add_argument("--feeder", help="built-in name or pandapower JSON (default: the scenario's)")
    demo.add_argument(
        "--participants", type=int, help="homes on the feeder (default: the scenario's)"
    )
    demo.add_argument(
        "--modbus-devices", type=int, default=4, help="homes read over real Modbus TCP"
    )
    demo.add_argument("--days", type=int, default=1, help="simulated days")
    demo.add_argument(
        "--start-hour", type=int, default=0, help="UTC hour of the first day to start at"
    )
    demo.add_argument(
        "--intervals", type=int, help="run only this many intervals (default: whole days)"
    )
    demo.add_argument("--seed", type=int, default=7, help="seeds every random choice")
    demo.add_argument(
        "--start", type=dt.date.fromisoformat, default=dt.date(2026, 6, 21), help="YYYY-MM-DD"
    )
    demo.add_argument(
        "--report", type=Path, default=Path("gridex-report"), help="report folder to write"
    )
    demo.add_argument("--mechanism", choices=("nodal", "uniform"), default="nodal")
    demo.add_argument("--rpc-url", help="settle on this JSON-RPC node instead of an embedded EVM")
    demo.add_argument("--key", type=Path, help="operator key file for --rpc-url (0x-hex key)")
    demo.add_argument(
        "--flex",
        action="store_true",
        help="batteries and EVs on some homes, cleared over a rolling horizon (slower)",
    )
    demo.set_defaults(func=_demo)

    report = sub.add_parser(
        "report",
        help="rebuild the operator report from an engine's journal",
        description="Reads an engine journal (read-only) and writes tables, plots and a page.",
    )
    report.add_argument("--db", type=Path, required=True, help="the engine's SQLite journal")
    report.add_argument("--out", type=Path, required=True, help="report folder to write")
    report.add_argument("--grid", help="the feeder, if the journal's name is not loadable")
    report.set_defaults(func=_report)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _demo(args: argparse.Namespace) -> int:
    import signal

    # first thing, before the imports below take their second: SIGTERM stops
    # the run as Ctrl-C does (run_demo hands both to its event loop)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _run_demo(args)
    except KeyboardInterrupt:
        # the stop is done: a second signal must not turn it into a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(
            f"gridex demo: interrupted; {args.report} was left as it was (no partial report)",
            file=sys.stderr,
        )
        _exit_interrupted()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_demo(args: argparse.Namespace) -> int:
    from contracts.errors import ChainError
    from grid import GridError
    from market.demo.options import DemoOptions
    from market.demo.run import run_demo
    from market.errors import MarketError

    try:
        options = DemoOptions(
            scenario=args.scenario,
            feeder=args.feeder,
            participants=args.participants,
            modbus_devices=args.modbus_devices,
            days=args.days,
            start_hour=args.start_hour,
            intervals=args.intervals,
            seed=args.seed,
            start=args.start,
            report_dir=args.report,
            rpc_url=args.rpc_url,
            key_file=args.key,
            mechanism=args.mechanism,
            flex=args.flex,
        )
        outcome = run_demo(options)
    except (MarketError, GridError, ChainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if not outcome.book_problems else 1


def _exit_interrupted() -> NoReturn:
    """End the stopped run with 130, now: everything it started is already closed.

    Under load, a SIGTERM that lands early in setup can leave CPython's
    "unhandled KeyboardInterrupt" exit flag set although the interrupt was
    handled here; interpreter shutdown then kills the process with SIGINT
    (exit -2) instead of returning 130. The engine, event loop, worker
    threads and report folder are closed by the time this runs, so the
    process ends without the interpreter's shutdown path.
    """
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _report(args: argparse.Namespace) -> int:
    from grid import GridError, load_feeder
    from market import _console
    from market import _folders as folders
    from market.errors import MarketError
    from market.report import write_report
    from market.report.journal import report_from_journal

    console = _console.console()
    work = None
    try:
        feeder = load_feeder(args.grid) if args.grid else None
        data, run = report_from_journal(args.db, feeder=feeder)
        feeder = feeder if feeder is not None else load_feeder(run.feeder)
        work = folders.prepare(args.out, field="--out")
        summary = write_report(
            data,
            work,
            title=f"gridex report: {run.feeder}, journal {args.db.name}",
            retail_price=run.market.retail_price,
            feed_in_price=run.market.feed_in_price,
            token_decimals=run.market.token_decimals,
            feeder=feeder,
            interval_s=run.market.interval_s,
        )
        folders.publish(work, args.out, field="--out")
    except (MarketError, GridError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: --out {args.out}: cannot write the report ({exc})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gridex report: interrupted; {args.out} was left as it was", file=sys.stderr)
        return 130
    finally:
        if work is not None and work.exists():
            folders.discard(work)
    console.print(
        f"{summary.intervals} intervals, {summary.local_wh / 1000:,.1f} kWh traded locally"
    )
    console.print(f"report: {(args.out / 'index.html').resolve()}")
    return 0
