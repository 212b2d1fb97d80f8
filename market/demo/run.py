"""``gridex demo``: a sunny day of trading on a real feeder, end to end.

The engine runs on a simulated clock and serves gRPC on 127.0.0.1; every
home's gateway streams signed readings to ``MeterService`` and its prosumer
agent submits signed orders to ``MarketService``; the engine closes each
gate, clears with the configured mechanism and AC check, meters the
delivered energy and settles it netted on the EVM. The demo then rebuilds
the report from the engine's journal (as ``gridex report`` does), checks the
books against the chain, and writes the report folder.

This module composes every package, including :mod:`meter_adapter`: it is
the one place in ``market`` that imports the gateway code, because the demo
runs the gateways in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import tempfile
import threading
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grid import Feeder, load_feeder
from market import _console
from market import _folders as folders
from market._console import plural
from market.config import MarketConfig
from market.demo.books import check_books
from market.demo.chain import DemoChain, open_chain
from market.demo.fleet import Home, build_gateways, plan_homes
from market.demo.options import DemoOptions
from market.errors import ConfigError
from market.report import ReportData, Summary, write_report
from market.report.journal import report_from_journal

__all__ = ["DemoOutcome", "run_demo"]

logger = logging.getLogger(__name__)

#: The demo's market: the default tariffs and 15-minute intervals.
MARKET = MarketConfig()
INTERVAL_MS = MARKET.interval_s * 1000


@dataclass(frozen=True)
class DemoOutcome:
    """What a demo run produced.

    Attributes:
        report_dir: the report folder (``index.html`` inside).
        journal: the engine's journal, for ``gridex report --db``.
        summary: the headline figures.
        data: the report tables.
        book_problems: every disagreement the books check found (empty: balanced).
        wall_s: wall time of the run, s.
    """

    report_dir: Path
    journal: Path
    summary: Summary
    data: ReportData
    book_problems: tuple[str, ...]
    wall_s: float


def run_demo(options: DemoOptions, *, show_progress: bool = True) -> DemoOutcome:
    """Run the demo described by ``options``; see the module docstring.

    Everything (journal, tables, plots, page) is written to a hidden sibling
    folder first and moved to ``options.report_dir`` only once complete, so an
    interrupted or failed run leaves the report folder as it was (complete
    from an earlier run, or absent). SIGINT and SIGTERM stop the run at the
    next step (within seconds), raising KeyboardInterrupt.

    Raises:
        ConfigError: the report folder cannot be created or replaced.
        GridError: the feeder cannot be loaded.
        ChainError: the chain cannot be reached, deployed to or funded.
        KeyboardInterrupt: stopped by SIGINT or SIGTERM (nothing was published).
    """
    final = options.report_dir
    console = _console.console(quiet=not show_progress)
    work = folders.work_folder(final)
    previous = _sigterm_as_interrupt()
    try:
        folders.prepare(final, field="report_dir")
        try:
            outcome = asyncio.run(_run(dataclasses.replace(options, report_dir=work), console))
        except asyncio.CancelledError:  # SIGTERM cancelled the run (SIGINT raises by itself)
            raise KeyboardInterrupt from None
        _sigterm_as_interrupt()  # the closed loop reset SIGTERM to its default
        folders.publish(work, final, field="report_dir")
    except BaseException:
        folders.discard(work)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    outcome = dataclasses.replace(outcome, report_dir=final, journal=final / outcome.journal.name)
    _print_summary(
        console, outcome.summary, list(outcome.book_problems), final, MARKET.token_decimals
    )
    return outcome


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> Any:
    """Let SIGTERM interrupt like Ctrl-C outside the event loop; return the old handler.

    None (nothing changed) when not on the main thread, where handlers cannot be set.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


async def _stop_on_signals() -> None:
    """Make SIGTERM stop the run as SIGINT does (asyncio.run cancels on SIGINT itself)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
        loop.add_signal_handler(signal.SIGTERM, lambda: task is not None and task.cancel())


def _fresh_journal(folder: Path) -> Path:
    """Create ``folder`` and remove an earlier run's journal from it.

    Raises:
        ConfigError: the folder cannot be created or the old journal removed.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"report_dir: cannot create {folder} ({exc.strerror or exc})") from exc
    journal = folder / "engine.db"
    for suffix in ("", "-wal", "-shm"):
        stale = Path(f"{journal}{suffix}")
        if stale.exists():
            logger.info("removing the journal of an earlier demo run: %s", stale)
            try:
                stale.unlink()
            except OSError as exc:
                raise ConfigError(f"report_dir: cannot remove {stale} ({exc})") from exc
    return journal


async def _run(o: DemoOptions, console: Any) -> DemoOutcome:
    await _stop_on_signals()
    started = time.perf_counter()
    feeder = await asyncio.to_thread(load_feeder, o.feeder)  # a signal is served meanwhile
    market = MARKET
    homes = plan_homes(
        feeder,
        count=o.participants,
        modbus=o.modbus_devices,
        seed=o.seed,
        pv_share=o.pv_share,
        feed_in_price=market.feed_in_price,
        retail_price=market.retail_price,
    )
    journal = _fresh_journal(o.report_dir)
    operator_key = "0x" + _seeded_key(o.seed)
    console.print(
        f"[bold]gridex demo[/bold]: {len(homes)} participants on {feeder.name} "
        f"({o.modbus_devices} over Modbus TCP), {(o.end_ms - o.start_ms) // INTERVAL_MS} "
        f"intervals from {o.start} {o.start_hour:02d}:00 UTC, "
        f"{'embedded EVM' if o.rpc_url is None else o.rpc_url}"
    )
    chain = await asyncio.to_thread(
        open_chain,
        [h.address for h in homes],
        rpc_url=o.rpc_url,
        key_file=o.key_file,
        operator_key=operator_key,
    )
    with tempfile.TemporaryDirectory(prefix="gridex-demo-buffers-") as buffers:
        await _trade(
            o,
            feeder=feeder,
            market=market,
            homes=homes,
            chain=chain,
            journal=journal,
            buffers=Path(buffers),
            console=console,
        )
    data, replayed = await asyncio.to_thread(report_from_journal, journal, feeder=feeder)
    problems = await asyncio.to_thread(check_books, data, chain, replayed, feeder=feeder)
    wall_s = time.perf_counter() - started
    summary = await asyncio.to_thread(
        write_report,
        data,
        o.report_dir,
        title=f"gridex demo: {feeder.name}, {o.start}, {len(homes)} participants",
        retail_price=market.retail_price,
        feed_in_price=market.feed_in_price,
        wall_s=wall_s,
        token_decimals=market.token_decimals,
    )
    await asyncio.to_thread(_seal_journal, journal)
    return DemoOutcome(o.report_dir, journal, summary, data, tuple(problems), wall_s)


def _seal_journal(journal: Path) -> None:
    """Make the finished journal one self-contained file: no ``-wal``/``-shm`` beside it.

    The engine has closed it; switching it out of WAL mode checkpoints the WAL
    and removes both side files (a read-only reader may have left them).
    """
    import sqlite3

    db = sqlite3.connect(journal)
    try:
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()


def _seeded_key(seed: int) -> str:
    import hashlib

    return hashlib.sha256(f"gridex demo operator {seed}".encode()).hexdigest()


async def _trade(
    o: DemoOptions,
    *,
    feeder: Feeder,
    market: MarketConfig,
    homes: list[Home],
    chain: DemoChain,
    journal: Path,
    buffers: Path,
    console: Any,
) -> None:
    from market.client import OperatorClient
    from market.engine import Engine, EngineConfig, ServerThread, SimClock
    from meter_adapter.uplink import engine_channel

    config = EngineConfig(
        mechanism=o.mechanism, synchronous="NORMAL", operator_account=chain.operator
    )
    first_ms = o.start_ms - INTERVAL_MS  # the day's first interval is the first open one
    end_ms = o.end_ms
    engine = Engine(
        feeder,
        journal,
        market=market,
        config=config,
        clock=SimClock(first_ms),
        settler=chain.settler,
        operators=[chain.operator],
    )
    engine.start()
    try:
        with ServerThread(engine) as server:
            target = f"127.0.0.1:{server.port}"
            with OperatorClient(target, chain.operator_key) as operator:
                for home in homes:
                    operator.register_participant(home.address, home.bus)
                    operator.register_gateway(home.address, home.meter_id, home.address)
            async with AsyncExitStack() as stack:
                channel = engine_channel(target)
                stack.push_async_callback(channel.close, None)
                gateways = await build_gateways(
                    homes,
                    stack=stack,
                    channel=channel,
                    now_ms=engine.clock.now_ms,
                    start=dt.datetime.fromtimestamp(first_ms / 1000, tz=dt.UTC),
                    buffer_dir=buffers,
                    interval_s=market.interval_s,
                    gate_closure_s=config.gate_closure_s,
                )
                await _clock_loop(
                    o,
                    engine=engine,
                    gateways=gateways,
                    first_ms=first_ms,
                    end_ms=end_ms,
                    console=console,
                )
    finally:
        engine.close()


async def _clock_loop(
    o: DemoOptions, *, engine: Any, gateways: list[Any], first_ms: int, end_ms: int, console: Any
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    step_ms = o.step_s * 1000
    last_interval = end_ms // INTERVAL_MS  # first interval after the run
    total = (end_ms - o.start_ms) // INTERVAL_MS
    shown = o.start_ms // INTERVAL_MS
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("intervals", total=total, status="")
        # run until the last interval is metered and settled
        for t in range(first_ms + step_ms, end_ms + 2 * step_ms + 1, step_ms):
            await asyncio.to_thread(engine.advance_to, t)
            await asyncio.gather(*(g.poll_once() for g in gateways))
            if t % INTERVAL_MS:
                continue
            await asyncio.gather(*(g.flush(timeout_s=60.0) for g in gateways))
            if t // INTERVAL_MS + 1 < last_interval:
                await asyncio.gather(*(g.trade_once() for g in gateways))
            while shown < last_interval and _cleared(engine, shown):
                progress.update(task, advance=1, status=_status(engine, shown))
                shown += 1


def _cleared(engine: Any, interval: int) -> bool:
    s = engine.state.intervals.get(interval)
    return s is not None and s.clearing is not None


def _status(engine: Any, interval: int) -> str:
    record = engine.state.intervals[interval].clearing
    when = dt.datetime.fromtimestamp(interval * INTERVAL_MS / 1000, tz=dt.UTC).strftime("%H:%M")
    if not record.ok or record.summary is None:
        return f"{when} clearing failed"
    summary = record.summary
    traded = sum(f.filled_wh for f in summary.fills if f.side == "buy")
    prices = [p.price for p in summary.prices]
    mean = sum(prices) / len(prices) / 10**MARKET.token_decimals if prices else 0.0
    return f"{when} cleared {traded / 1000:6.2f} kWh at {mean:.4f} tokens/kWh"


def _print_summary(
    console: Any, summary: Summary, problems: list[str], folder: Path, token_decimals: int
) -> None:
    from rich.table import Table

    table = Table(title="gridex demo: summary", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in summary.rows(token_decimals=token_decimals):
        table.add_row(label, value)
    books = "balanced to the last unit" if not problems else plural(len(problems), "problem")
    table.add_row("books (metered, traded, settled, on chain)", books)
    console.print(table)
    for problem in problems:
        console.print(f"[red]books:[/red] {problem}")
    console.print(f"report: {(folder / 'index.html').resolve()}")
