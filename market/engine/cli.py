"""``gridex serve``: run the market engine of one feeder as a gRPC server."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from market.config import MarketConfig
from market.engine.settler import Settler

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _port(text: str) -> int:
    """A TCP port flag: an integer 0..65535 (0: any free port).

    Raises:
        argparse.ArgumentTypeError: not an integer, or outside 0..65535.
    """
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {port}")
    return port


def _non_negative(text: str) -> float:
    """A rate or duration flag: a finite number >= 0.

    Raises:
        argparse.ArgumentTypeError: not a number, negative or not finite.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``gridex`` parser."""
    p = sub.add_parser(
        "serve",
        help="run the market engine of one feeder (gRPC: MarketService, MeterService, "
        "OperatorService)",
        description="Run the market engine of one feeder. Every accepted input is journaled "
        "to --db before it is acknowledged; restarting with the same --db replays it.",
    )
    p.add_argument(
        "--grid",
        required=True,
        metavar="NAME_OR_FILE",
        help="feeder: built-in name or pandapower JSON",
    )
    p.add_argument(
        "--db", required=True, type=Path, metavar="PATH", help="SQLite journal (created if missing)"
    )
    p.add_argument(
        "--clock",
        choices=("wall", "sim"),
        default="wall",
        help="wall clock, or a simulated clock that OperatorService.AdvanceClock moves "
        "(default: wall)",
    )
    p.add_argument(
        "--sim-start-ms",
        type=int,
        default=None,
        metavar="MS",
        help="start of a new simulated clock, Unix ms (default: now, rounded down to an interval)",
    )
    p.add_argument(
        "--engine-id",
        default="",
        metavar="ID",
        help="the engine's id in GetMarketInfo and signatures: 1 to 64 of [0-9A-Za-z._:-] "
        "(default: the feeder's name)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=50051, help="TCP port; 0 picks a free one (default 50051)"
    )
    p.add_argument(
        "--port-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the bound port to this file once serving",
    )
    p.add_argument(
        "--operator",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="an operator address (repeatable); the first is the settlement account",
    )
    p.add_argument(
        "--mechanism",
        choices=("nodal", "uniform"),
        default="nodal",
        help="clearing mechanism (default nodal)",
    )
    p.add_argument("--interval-s", type=int, default=900, help="interval length, s (default 900)")
    p.add_argument(
        "--gate-closure-s",
        type=int,
        default=300,
        help="gate closes this long before delivery, s (default 300)",
    )
    p.add_argument(
        "--flex-horizon-intervals",
        type=int,
        default=0,
        help="intervals one flexibility roll clears (default 0: 24 h of intervals)",
    )
    p.add_argument(
        "--metering-delay-s",
        type=int,
        default=60,
        help="metering window: meter an interval once its data is complete, at the latest "
        "this long after it ends (incomplete meters estimated), s (default 60)",
    )
    p.add_argument(
        "--reconciliation-window-s",
        type=int,
        default=86_400,
        help="late readings within this long after an interval ends are settled by a "
        "reconciliation posting; then the interval is final, s (default 86400)",
    )
    p.add_argument(
        "--reading-skew-s",
        type=float,
        default=300.0,
        help="how far a reading's timestamp may lie ahead of the engine clock, s (default 300)",
    )
    p.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="SQLite synchronous mode of the journal: FULL survives power loss, NORMAL only a "
        "process crash (default FULL)",
    )
    p.add_argument(
        "--archive", type=Path, default=None, metavar="DIR", help="parquet archive of raw readings"
    )
    p.add_argument(
        "--rate-limit",
        type=_non_negative,
        default=1000.0,
        metavar="N",
        help="signed requests per second per address; 0 = unlimited (default 1000)",
    )
    p.add_argument(
        "--max-skew-s",
        type=_non_negative,
        default=60.0,
        help="largest request timestamp skew, s (default 60)",
    )
    p.add_argument(
        "--tls-cert", type=Path, default=None, help="PEM certificate chain (enables TLS)"
    )
    p.add_argument("--tls-key", type=Path, default=None, help="PEM private key")
    p.add_argument(
        "--tls-client-ca",
        type=Path,
        default=None,
        help="PEM CA: require client certificates signed by it",
    )
    p.add_argument(
        "--verify-replay",
        action="store_true",
        help="on start, clear every journaled interval again and check the bytes",
    )
    tariffs = MarketConfig()
    p.add_argument(
        "--retail-price",
        type=int,
        default=tariffs.retail_price,
        help=f"import price, base units per kWh (default {tariffs.retail_price})",
    )
    p.add_argument(
        "--feed-in-price",
        type=int,
        default=tariffs.feed_in_price,
        help=f"export price, base units per kWh (default {tariffs.feed_in_price})",
    )
    p.add_argument(
        "--grid-fee",
        type=int,
        default=0,
        help="network-usage fee per kWh traded locally, base units (default 0)",
    )
    p.add_argument(
        "--rpc-url", help="settle on chain through this JSON-RPC node (default: record only)"
    )
    p.add_argument("--key", type=Path, help="operator key file for --rpc-url (0x-hex key)")
    p.add_argument(
        "--deployment", type=Path, help="deployment file written by `gridex chain deploy --out`"
    )
    _add_base_forecast_flags(p)
    p.set_defaults(func=_serve)


#: How an operator feeds the grid's own load and generation (shared by serve and clear).
BASE_FORECAST_HELP = (
    "the grid's own load and generation per interval, the base every interval is cleared "
    "against: 'profiles' (default: standard load profiles BDEW H0 household, G0 commercial "
    "or CIGRE industrial per load, scaled to its peak or --base-annual-kwh, and pvlib "
    "clear-sky PV for the network's PV generators), 'static' (the network file's values "
    "in every interval) or a CSV/parquet file with columns interval, bus or element "
    "(table:index, e.g. load:3), p_mw, q_mvar covering every interval cleared "
    "(docs/forecasts.md); the engine refuses to start when the forecast misses one"
)


def _add_base_forecast_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--base-forecast",
        default="profiles",
        metavar="profiles|static|FILE",
        help=BASE_FORECAST_HELP,
    )
    p.add_argument(
        "--base-annual-kwh",
        type=float,
        metavar="KWH",
        help="with --base-forecast profiles: scale every load to this annual energy "
        "(default: to its p_mw as the yearly peak)",
    )


def open_base_forecast(args: argparse.Namespace, feeder: Any, interval_s: int) -> Any:
    """The forecast --base-forecast asks for (None for 'static').

    Raises:
        InputFileError: the file is missing or invalid.
        ConfigError: a profile parameter is out of range.
    """
    if args.base_forecast == "static":
        return None
    from market.forecast import open_forecast

    return open_forecast(
        args.base_forecast, feeder, interval_s=interval_s, annual_kwh=args.base_annual_kwh
    )


def _settler(args: argparse.Namespace) -> Settler | None:
    """The chain settler that --rpc-url/--key/--deployment ask for (None: record only).

    Raises:
        ValueError: the three flags are not given together.
        ChainError: the node, key or deployment is unusable.
    """
    given = [args.rpc_url is not None, args.key is not None, args.deployment is not None]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--rpc-url, --key and --deployment: give all three to settle on chain")
    from contracts import Chain, Deployment, Ledger, SettlementDriver
    from contracts.cli import read_key_file
    from market.engine.settler import ChainSettler

    chain = Chain.connect(args.rpc_url, operator_key=read_key_file(args.key))
    return ChainSettler(SettlementDriver(Ledger(chain, Deployment.load(args.deployment))))


def _write_port_file(path: Path, port: int) -> None:
    """Write ``port`` to ``path`` atomically.

    Raises:
        OSError: it cannot be written (the message names --port-file).
    """
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(path)
    except OSError as exc:
        raise OSError(f"--port-file {path}: cannot write ({exc})") from None


def _port_free(host: str, port: int) -> str | None:
    """None if ``host:port`` can be bound now, else the reason (checked before any work)."""
    import errno
    import socket

    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"--host {host}: {exc}"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"--port {port}: {host}:{port} is already in use (another gridex serve?)"
            return f"--host/--port {host}:{port}: cannot listen ({exc.strerror or exc})"
    return None


def _remove_new_journal(path: Path, existed: bool) -> None:
    """Delete a journal this run created (with its -wal/-shm), so a failed start leaves none."""
    if existed:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; a signal during start-up stops it at once, leaving no
    new journal behind."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # like Ctrl-C until serving
    try:
        return _serve_until_stopped(args)
    except KeyboardInterrupt:
        print("gridex serve: interrupted while starting; stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tls(args: argparse.Namespace) -> Any:
    """The TLS configuration the flags ask for (None: plaintext).

    Raises:
        ValueError: only one of --tls-cert and --tls-key, or an unreadable file.
    """
    from market.engine.server import TlsConfig

    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_cert is None:
        return None
    try:
        return TlsConfig.from_files(args.tls_cert, args.tls_key, args.tls_client_ca)
    except OSError as exc:
        raise ValueError(f"TLS file {exc.filename}: cannot read ({exc.strerror})") from None


def _engine(args: argparse.Namespace) -> Any:
    """The engine the flags describe, not started.

    Raises:
        GridError, MarketError, ChainError, OSError, ValueError: a flag is unusable.
    """
    from grid import load_feeder
    from market.engine._core import EngineConfig
    from market.engine.clock import Clock, SimClock, WallClock
    from market.engine.engine import Engine

    feeder = load_feeder(args.grid)
    market = MarketConfig(
        interval_s=args.interval_s,
        retail_price=args.retail_price,
        feed_in_price=args.feed_in_price,
        grid_fee_per_kwh=args.grid_fee,
    )
    settler = _settler(args)
    config = EngineConfig(
        mechanism=args.mechanism,
        gate_closure_s=args.gate_closure_s,
        metering_delay_s=args.metering_delay_s,
        reconciliation_window_s=args.reconciliation_window_s,
        reading_skew_s=args.reading_skew_s,
        synchronous=args.synchronous,
        archive_dir=args.archive,
        verify_replay=args.verify_replay,
        engine_id=args.engine_id,
        flex_horizon_intervals=args.flex_horizon_intervals,
    )
    clock: Clock = WallClock()
    if args.clock == "sim":
        start = args.sim_start_ms
        if start is not None and start < 0:
            raise ValueError(f"--sim-start-ms: must be >= 0 (Unix ms), got {start}")
        if start is None:
            start = WallClock().now_ms() // (market.interval_s * 1000) * market.interval_s * 1000
        clock = SimClock(start)
    return Engine(
        feeder,
        args.db,
        market=market,
        config=config,
        clock=clock,
        operators=args.operator,
        settler=settler,
        base_forecast=open_base_forecast(args, feeder, market.interval_s),
    )


def _serve_until_stopped(args: argparse.Namespace) -> int:
    from contracts.errors import ChainError
    from grid import GridError
    from market.engine.server import ServerConfig, ServerThread
    from market.errors import MarketError

    if (problem := _port_free(args.host, args.port)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    journal_existed = args.db.exists()
    engine: Any = None
    try:
        tls = _tls(args)
        engine = _engine(args)
        engine.start()
    except (GridError, MarketError, ChainError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        _remove_new_journal(args.db, journal_existed)
        return 2
    except KeyboardInterrupt:
        if engine is not None:
            engine.close()
        _remove_new_journal(args.db, journal_existed)
        raise
    server = ServerThread(
        engine,
        ServerConfig(
            host=args.host,
            port=args.port,
            tls=tls,
            max_skew_s=args.max_skew_s,
            rate_limit_per_s=args.rate_limit or None,
        ),
    )
    try:
        port = server.start()
        if args.port_file is not None:
            _write_port_file(args.port_file, port)
    except (RuntimeError, OSError) as exc:
        server.stop()
        engine.close()
        _remove_new_journal(args.db, journal_existed)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"gridex engine {engine.config.engine_id} for {engine.feeder.name} serving on "
        f"{args.host}:{port} ({args.clock} clock, journal {args.db})",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("gridex serve: stopping (waiting for a running clearing or settlement)", flush=True)
    server.stop()
    engine.close()
    print(f"gridex serve: stopped; the journal {args.db} is complete", flush=True)
    return 0
