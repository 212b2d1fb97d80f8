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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from grid import Feeder, load_feeder
from market import _console
from market import _folders as folders
from market._console import plural
from market.config import MarketConfig
from market.demo.books import check_books
from market.demo.chain import DemoChain, open_chain, start_node
from market.demo.fleet import Home, build_gateways, plan_homes
from market.demo.options import DemoOptions
from market.demo.report_ahead import ReportAhead
from market.errors import ConfigError
from market.report import ReportData, Summary, write_report
from market.report.journal import report_from_journal

if TYPE_CHECKING:
    from contracts.pyevm_node import PyEvmNode
    from market.demo.verify_process import VerifyProcess

__all__ = ["DemoOutcome", "run_demo"]

logger = logging.getLogger(__name__)

#: Phase of the waits for the postings behind the clock: before the agents trade
#: (orders read free escrow from the chain) and after the last interval.
SETTLE_WAIT = "waiting for settlement postings (before orders, after the day)"
#: Phase of the wait, after the last interval, for the report's worker (report_ahead).
AHEAD_WAIT = "waiting for the report's worker after the last interval"
#: Phase of the books check (its audit runs the base case's and the schedule's AC flow).
BOOKS = "books checked against the chain (audit: 2 AC flows per interval)"
#: Phase of ``gridex verify``: every interval cleared again from its bundle, in the
#: verifier's process while the report is written.
VERIFY = "gridex verify: every interval cleared again (own process, beside the report)"
#: Phase of the wait, after the report, for the verifier's process.
VERIFY_WAIT = "waiting for gridex verify after the report"

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
        timings: seconds per phase (see :mod:`market.demo.timing`).
    """

    report_dir: Path
    journal: Path
    summary: Summary
    data: ReportData
    book_problems: tuple[str, ...]
    wall_s: float
    timings: dict[str, float] = field(default_factory=dict)


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
    _print_timings(console, outcome)
    return outcome


def _print_timings(console: Any, outcome: DemoOutcome) -> None:
    from rich.table import Table

    from market.demo.timing import Timings

    timings = Timings()
    timings.seconds.update(outcome.timings)
    table = Table(title=f"where the {outcome.wall_s:.1f} s went", show_header=False)
    for label, value in timings.rows(outcome.wall_s):
        table.add_row(label, value)
    console.print(table)


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
    from market.demo.verify_process import VerifyProcess

    await _stop_on_signals()
    started = time.perf_counter()
    operator_key = "0x" + _seeded_key(o.seed)
    async with AsyncExitStack() as stack:
        # the embedded EVM's process starts while the feeder loads (a signal is served
        # meanwhile); the verifier's once the day is set up
        verifier = VerifyProcess(o.feeder_name)
        stack.push_async_callback(asyncio.to_thread, verifier.close)
        loading = asyncio.to_thread(load_feeder, o.feeder_name)
        node: PyEvmNode | None = None
        if o.rpc_url is None:
            loaded, started_node = await asyncio.gather(
                loading, asyncio.to_thread(start_node, operator_key), return_exceptions=True
            )
            if not isinstance(started_node, BaseException):
                node = started_node
                stack.push_async_callback(asyncio.to_thread, node.stop)
            for got in (loaded, started_node):
                if isinstance(got, BaseException):
                    raise got
            feeder = cast(Feeder, loaded)
        else:
            feeder = await loading
        return await _run_day(
            o,
            console,
            started=started,
            feeder=feeder,
            operator_key=operator_key,
            node=node,
            verifier=verifier,
        )


async def _run_day(
    o: DemoOptions,
    console: Any,
    *,
    started: float,
    feeder: Feeder,
    operator_key: str,
    node: PyEvmNode | None,
    verifier: VerifyProcess,
) -> DemoOutcome:
    from market.demo.timing import Timings

    timings = Timings()
    market = MARKET
    homes = plan_homes(
        feeder,
        count=o.participant_count,
        modbus=o.modbus_devices,
        seed=o.seed,
        pv_share=o.pv_fraction,
        feed_in_price=market.feed_in_price,
        retail_price=market.retail_price,
        day=o.day,
        price_min=market.price_min,
        price_max=market.price_max,
    )
    journal = _fresh_journal(o.report_dir)
    console.print(
        f"[bold]gridex demo[/bold] ({o.scenario}): {len(homes)} participants on {feeder.name} "
        f"({o.modbus_devices} over Modbus TCP), {(o.end_ms - o.start_ms) // INTERVAL_MS} "
        f"intervals from {o.start} {o.start_hour:02d}:00 UTC, "
        f"{'embedded EVM' if o.rpc_url is None else o.rpc_url}"
    )
    timings.add("setup: feeder, homes, journal, EVM process started", time.perf_counter() - started)
    deploying = time.perf_counter()
    chain = await asyncio.to_thread(
        open_chain,
        [h.address for h in homes],
        rpc_url=o.rpc_url,
        key_file=o.key_file,
        operator_key=operator_key,
        node=node,
    )
    timings.add("setup: contracts deployed, escrows funded", time.perf_counter() - deploying)
    verifier.launch()  # it loads the feeder while the day runs, on the other core
    report_ahead = ReportAhead(feeder, market, timings)
    try:
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
                timings=timings,
                report_ahead=report_ahead,
            )
    except BaseException:
        report_ahead.abandon()  # a stop must not wait for the report's queue
        raise
    # the day is journaled and settled: verify it in the verifier's process meanwhile
    bundles = o.report_dir / "bundles"
    verifier.start(
        journal, bundles, rpc_url=chain.rpc_url, deployment_json=chain.ledger.deployment.to_json()
    )
    waited = time.perf_counter()
    ahead = await asyncio.to_thread(report_ahead.finish)
    timings.add(AHEAD_WAIT, time.perf_counter() - waited)
    traded_at = time.perf_counter()
    data, replayed = await asyncio.to_thread(
        report_from_journal, journal, feeder=feeder, timings=timings, ahead=ahead
    )
    report_s = time.perf_counter() - traded_at
    checking = time.perf_counter()
    problems = await asyncio.to_thread(check_books, data, chain, replayed, feeder=feeder)
    timings.add(BOOKS, time.perf_counter() - checking)
    plots_at = time.perf_counter()
    pages = await _flex_pages(journal, o.report_dir, feeder, console) if o.flex else []
    summary = await asyncio.to_thread(
        write_report,
        data,
        o.report_dir,
        title=f"gridex demo ({o.scenario}): {feeder.name}, {o.start}, {len(homes)} participants",
        retail_price=market.retail_price,
        feed_in_price=market.feed_in_price,
        wall_s=plots_at - started,
        token_decimals=market.token_decimals,
        feeder=feeder,
        interval_s=market.interval_s,
        pages=pages,
    )
    timings.add("report tables and plots written", time.perf_counter() - plots_at)
    waited = time.perf_counter()
    verified, differences, verify_s = await asyncio.to_thread(verifier.result)
    timings.add(VERIFY, verify_s)
    timings.add(VERIFY_WAIT, time.perf_counter() - waited)
    problems += differences
    console.print(
        f"gridex verify: {verified} intervals recomputed from their bundles (the report's "
        "bundles/) "
        f"and checked against the chain in {verify_s:.1f} s (its own process, beside the "
        "report): " + ("all agree" if not differences else f"{len(differences)} difference(s)")
    )
    timings.add("journal replay and report tables (rest)", report_s - _sum(timings, "report: "))
    wall_s = time.perf_counter() - started
    timings.add(
        "meters, gateways, gRPC and clock (rest of the trading loop)",
        traded_at
        - started
        - _sum(timings, "clearing", "AC checks", SETTLE_WAIT, AHEAD_WAIT, "setup"),
    )
    await asyncio.to_thread(_seal_journal, journal)
    return DemoOutcome(
        o.report_dir, journal, summary, data, tuple(problems), wall_s, dict(timings.seconds)
    )


async def _flex_pages(
    journal: Path, folder: Path, feeder: Feeder, console: Any
) -> list[tuple[str, str]]:
    """Write ``flex.html`` (a battery's day, the day without flexibility); its index link."""
    from market.report.plots_flex import write_flex_page

    page = await asyncio.to_thread(
        write_flex_page, journal, folder, interval_s=MARKET.interval_s, feeder=feeder
    )
    if page is None:
        console.print("flexibility: no battery rolled")
        return []
    console.print(f"flexibility: {page.path.name} in the report")
    for relief in page.reliefs:
        console.print(f"flexibility: {relief.line()}")
    return [(page.path.name, "Flexibility: a battery's day, and the day without it")]


def _sum(timings: Any, *prefixes: str) -> float:
    return float(sum(s for k, s in timings.seconds.items() if k.startswith(prefixes)))


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
    timings: Any,
    report_ahead: ReportAhead,
) -> None:
    from market.client import OperatorClient
    from market.demo.flex import FLEX_HORIZON_INTERVALS, FlexHome, plan_flex, submit_flex
    from market.demo.timing import TimedClearing, TimedSettler
    from market.engine import Engine, EngineConfig, ServerThread, SimClock
    from market.forecast import ProfileForecast
    from meter_adapter.uplink import engine_channel

    setting_up = time.perf_counter()
    config = EngineConfig(
        mechanism=o.mechanism,
        synchronous="NORMAL",
        operator_account=chain.operator,
        flex_horizon_intervals=FLEX_HORIZON_INTERVALS,
        settle_behind_clock=True,  # postings land on their own thread; the loop goes on
    )
    day = o.day
    # the grid's own households follow the H0 profile; participants take the
    # place of the network's load at their bus when the scenario says so
    forecast = ProfileForecast(
        feeder,
        interval_s=market.interval_s,
        annual_kwh=day.base_annual_kwh,
        exclude_buses={h.bus for h in homes} if day.replace_loads else (),
    )
    first_ms = o.start_ms - INTERVAL_MS  # the day's first interval is the first open one
    end_ms = o.end_ms
    engine = Engine(
        feeder,
        journal,
        market=market,
        config=config,
        clock=SimClock(first_ms),
        clearing=TimedClearing(timings),
        settler=TimedSettler(chain.settler, timings),
        operators=[chain.operator],
        base_forecast=forecast,
    )
    engine.start()
    try:
        with ServerThread(engine) as server:
            target = f"127.0.0.1:{server.port}"
            with OperatorClient(target, chain.operator_key, engine_id=engine.engine_id) as operator:
                for home in homes:
                    operator.register_participant(home.address, home.bus)
                    operator.register_gateway(home.address, home.meter_id, home.address)
            fleet: list[FlexHome] = []
            if o.flex:
                fleet = plan_flex(
                    homes,
                    seed=o.seed,
                    first_interval=o.start_ms // INTERVAL_MS,
                    interval_s=market.interval_s,
                )
                n = await asyncio.to_thread(submit_flex, target, fleet, engine_id=engine.engine_id)
                console.print(f"flexibility: {plural(n, 'battery or EV', 'batteries and EVs')}")
            async with AsyncExitStack() as stack:
                channel = engine_channel(target)
                stack.push_async_callback(channel.close, None)
                gateways, meters = await build_gateways(
                    homes,
                    stack=stack,
                    channel=channel,
                    now_ms=engine.clock.now_ms,
                    start=dt.datetime.fromtimestamp(first_ms / 1000, tz=dt.UTC),
                    buffer_dir=buffers,
                    interval_s=market.interval_s,
                    gate_closure_s=config.gate_closure_s,
                    engine_id=engine.engine_id,
                    planned_forecast=day.dispatch,
                )
                devices = {f.home.address: f.order.order_id for f in fleet}
                dispatch = _Dispatch(homes, meters, devices) if day.dispatch else None
                timings.add(
                    "setup: engine started, homes registered, gateways up",
                    time.perf_counter() - setting_up,
                )
                await _clock_loop(
                    o,
                    engine=engine,
                    gateways=gateways,
                    dispatch=dispatch,
                    first_ms=first_ms,
                    end_ms=end_ms,
                    console=console,
                    report_ahead=report_ahead,
                    timings=timings,
                )
            waited = time.perf_counter()
            await asyncio.to_thread(engine.lifecycle.settle_pending)
            timings.add(SETTLE_WAIT, time.perf_counter() - waited)
    finally:
        engine.close()


class _Dispatch:
    """Sends every home its cleared schedule for an interval (export and import it may use).

    A home's battery or EV (``devices``: its flexibility order's id) runs
    its firm fills, what it charged (``<id>/in``) and discharged
    (``<id>/out``). A home that sold may export what it sold; a home that
    bought may import what it bought; a home without an order is not
    limited. On a real gateway this is the set-point the energy manager
    gives the inverter, the battery and the wallbox; here the simulated
    meter follows it.
    """

    def __init__(self, homes: list[Home], meters: list[Any], devices: dict[str, str]) -> None:
        self._meters = {h.address: m for h, m in zip(homes, meters, strict=True)}
        self._devices = devices
        self._done: set[int] = set()

    def apply(self, engine: Any, interval: int) -> None:
        if interval in self._done:
            return
        self._done.add(interval)
        s = engine.state.intervals.get(interval)
        record = None if s is None else s.clearing
        if record is None or record.summary is None:
            return
        sold: dict[str, int] = {}
        bought: dict[str, int] = {}
        runs: dict[str, dict[str, int]] = {}  # address -> {"in": Wh, "out": Wh}
        for f in record.summary.fills:
            book = sold if f.side == "sell" else bought
            book[f.participant] = book.get(f.participant, 0) + f.filled_wh
            device = self._devices.get(f.participant)
            if device is not None and f.order_id in (f"{device}/in", f"{device}/out"):
                way = f.order_id.rsplit("/", 1)[1]
                runs.setdefault(f.participant, {})[way] = f.filled_wh
        begin = dt.datetime.fromtimestamp(interval * INTERVAL_MS / 1000, tz=dt.UTC)
        end = begin + dt.timedelta(milliseconds=INTERVAL_MS)
        for address, run in runs.items():
            self._meters[address].follow(
                begin, end, charge_wh=run.get("in", 0), discharge_wh=run.get("out", 0)
            )
        for address, meter in self._meters.items():
            if address in sold or address in bought:
                meter.dispatch(
                    begin,
                    end,
                    export_wh=sold.get(address) if address in sold else None,
                    import_wh=bought.get(address) if address in bought else None,
                )


async def _clock_loop(
    o: DemoOptions,
    *,
    engine: Any,
    gateways: list[Any],
    dispatch: _Dispatch | None,
    first_ms: int,
    end_ms: int,
    console: Any,
    report_ahead: ReportAhead,
    timings: Any,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    step_ms = o.step_s * 1000
    last_interval = end_ms // INTERVAL_MS  # first interval after the run
    total = (end_ms - o.start_ms) // INTERVAL_MS
    shown = o.start_ms // INTERVAL_MS
    metered = shown  # the next interval to hand to the report's worker once metered
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
            while metered < last_interval and _metered(engine, metered):
                report_ahead.metered(engine, metered)
                metered += 1
            if dispatch is not None:
                # gates close before delivery: send each cleared interval's schedule
                for k in range(t // INTERVAL_MS, t // INTERVAL_MS + 2):
                    if _cleared(engine, k):
                        dispatch.apply(engine, k)
            await asyncio.gather(*(g.poll_once() for g in gateways))
            if t % INTERVAL_MS:
                continue
            await asyncio.gather(*(g.flush(timeout_s=60.0) for g in gateways))
            if t // INTERVAL_MS + 1 < last_interval:
                # orders read free escrow from the chain (collateral): let the postings
                # land first, so order entry never queues behind the EVM
                waited = time.perf_counter()
                await asyncio.to_thread(_settled_or_raise, engine)
                timings.add(SETTLE_WAIT, time.perf_counter() - waited)
                await asyncio.gather(*(g.trade_once() for g in gateways))
            while shown < last_interval and _cleared(engine, shown):
                progress.update(task, advance=1, status=_status(engine, shown))
                report_ahead.cleared(engine, shown)
                shown += 1


def _settled_or_raise(engine: Any) -> None:
    """Wait until no posting is in flight.

    Raises:
        EngineStateError: the postings did not land within ``wait_timeout_s``.
    """
    from market.errors import EngineStateError

    if not engine.lifecycle.wait_idle(engine.config.wait_timeout_s):
        raise EngineStateError("clock: settlement did not finish in time")


def _metered(engine: Any, interval: int) -> bool:
    s = engine.state.intervals.get(interval)
    return s is not None and s.metered is not None


def _cleared(engine: Any, interval: int) -> bool:
    s = engine.state.intervals.get(interval)
    return s is not None and s.clearing is not None


def _status(engine: Any, interval: int) -> str:
    """``HH:MM traded kWh, price range, binding limit`` of a cleared interval."""
    record = engine.state.intervals[interval].clearing
    when = dt.datetime.fromtimestamp(interval * INTERVAL_MS / 1000, tz=dt.UTC).strftime("%H:%M")
    if not record.ok or record.summary is None:
        return f"{when} clearing failed: {record.error[:60]}"
    summary = record.summary
    traded = sum(f.filled_wh for f in summary.fills if f.side == "buy")
    scale = 10**MARKET.token_decimals
    prices = [p.price for p in summary.prices]
    lo, hi = (min(prices) / scale, max(prices) / scale) if prices else (0.0, 0.0)
    return (
        f"{when} {traded / 1000:6.2f} kWh, price {lo:.3f}..{hi:.3f}, binding: {_binding(summary)}"
    )


def _binding(summary: Any) -> str:
    """The limit the clearing ran into, read from its AC check and price parts."""
    parts = []
    if summary.vm_max_pu is not None and summary.vm_max_pu >= 1.095:
        parts.append(f"voltage {summary.vm_max_pu:.3f} p.u.")
    if summary.vm_min_pu is not None and summary.vm_min_pu <= 0.905:
        parts.append(f"voltage {summary.vm_min_pu:.3f} p.u.")
    if summary.max_loading_percent is not None and summary.max_loading_percent >= 97.0:
        parts.append(f"loading {summary.max_loading_percent:.0f} %")
    if not parts and any(p.congestion_part or p.voltage_part for p in summary.prices):
        parts.append("grid (price parts)")
    return ", ".join(parts) or "none"


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
    from market.report.summary import story

    console.print(story(summary, token_decimals=token_decimals))
    for problem in problems:
        console.print(f"[red]books:[/red] {problem}")
    console.print(f"report: {(folder / 'index.html').resolve()}")
