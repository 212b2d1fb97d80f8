"""``gridex-meter run``: poll the meter, stream signed readings to the engine, trade surplus.

Readings are buffered on disk (``--buffer``) until the engine acknowledges
them, so an engine outage or a gateway restart loses nothing. With
``--agent`` the prosumer agent also offers the forecast surplus of each
interval at ``--sell-min-price`` or bids for the deficit at
``--buy-max-price`` (token base units per kWh)::

    gridex-meter keygen --out gateway.key
    gridex-meter run --modbus 192.168.1.50:502 --engine engine.example:50051 \\
        --key gateway.key --meter-id garage-1 --agent --sell-min-price 80000
    gridex-meter run --simulate --kwp 7 --seed 3 --engine 127.0.0.1:50051 \\
        --key gateway.key --clock engine

With ``--storage-cycling-price`` and a device that has a battery (SunSpec
model 802), the agent also keeps a storage order for the battery at the
engine, built from its measured state of charge and limits, amended when the
measured SoC drifts from the schedule by more than ``--storage-drift-wh``,
never posted from a quarantined battery reading::

    gridex-meter run --modbus 192.168.1.50:502 --engine engine.example:50051 \\
        --key gateway.key --agent --sell-min-price 80000 \\
        --storage-cycling-price 20000 --storage-reserve-percent 20

``--clock engine`` follows the engine's clock (from its market events) instead
of the gateway's: use it against an engine on a simulated clock. The key must
then belong to a registered participant, as it must with ``--agent``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from meter_adapter.commands._args import add_max_power, home_profiles, host_port
from meter_adapter.errors import MeterError

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)


def _engine_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of the engine (the port is required)."""
    if not re.search(r":\d+$", text):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host_port(text)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="stream the meter's signed readings to the engine (and trade, with --agent)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    device = parser.add_argument_group("meter (one of)")
    where = device.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--modbus", type=host_port, metavar="HOST:PORT", help="Modbus TCP meter or inverter"
    )
    where.add_argument("--simulate", action="store_true", help="a simulated home (no device)")
    device.add_argument("--unit", type=int, default=1, help="Modbus unit id (default: 1)")
    device.add_argument("--map", metavar="FILE", help="register map instead of SunSpec")
    device.add_argument("--timeout", type=float, default=3.0, metavar="S", help="Modbus timeout")
    add_max_power(device)
    sim = parser.add_argument_group("simulated home (with --simulate)")
    sim.add_argument("--kwp", type=float, default=5.0, help="PV peak power, kWp (default: 5)")
    sim.add_argument("--no-pv", action="store_true", help="a home without PV")
    sim.add_argument("--tilt", type=float, default=30.0, help="module tilt, degrees")
    sim.add_argument("--azimuth", type=float, default=180.0, help="module azimuth, degrees")
    sim.add_argument("--cloudiness", type=float, default=0.4, help="0 (clear) .. 1 (overcast)")
    sim.add_argument("--annual-kwh", type=float, default=3500.0, help="household kWh per year")
    sim.add_argument("--latitude", type=float, default=52.52, help="degrees north")
    sim.add_argument("--longitude", type=float, default=13.405, help="degrees east")
    sim.add_argument("--timezone", default="Europe/Berlin", help="IANA time zone of the site")
    sim.add_argument("--seed", type=int, default=0, help="seed of clouds and appliance use")
    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--engine", required=True, type=_engine_address, metavar="HOST:PORT", help="gridex serve"
    )
    engine.add_argument(
        "--key", required=True, type=Path, metavar="KEYFILE", help="gateway key (keygen)"
    )
    engine.add_argument("--tls-ca", type=Path, metavar="FILE", help="PEM CA: use TLS")
    engine.add_argument(
        "--engine-id",
        metavar="ID",
        help="the engine's id, named by every signed request and reading batch (gridex serve "
        "--engine-id; by default the engine's feeder name; default here: ask the engine)",
    )
    engine.add_argument("--meter-id", help="meter id as registered (default: the key's address)")
    engine.add_argument(
        "--buffer", type=Path, metavar="PATH", help="reading buffer (default: in the state dir)"
    )
    engine.add_argument(
        "--clock",
        choices=("wall", "engine"),
        default="wall",
        help="time source: this machine's clock, or the engine's (default: wall)",
    )
    engine.add_argument(
        "--poll-interval", type=float, default=5.0, metavar="S", help="poll every S s"
    )
    engine.add_argument(
        "--max-batch", type=int, default=500, metavar="N", help="readings per batch"
    )
    engine.add_argument("--max-delay", type=float, default=2.0, metavar="S", help="batching delay")
    engine.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="buffer durability: FULL survives power loss, NORMAL a crash (default: FULL)",
    )
    trade = parser.add_argument_group("prosumer agent")
    trade.add_argument("--agent", action="store_true", help="offer surplus and bid for deficit")
    trade.add_argument("--sell-min-price", type=int, metavar="N", help="least per kWh to sell")
    trade.add_argument("--buy-max-price", type=int, metavar="N", help="most per kWh to buy")
    trade.add_argument("--interval-s", type=int, default=900, help="market interval, s")
    storage = parser.add_argument_group(
        "home battery (with --agent; the device must report SunSpec model 802)"
    )
    storage.add_argument(
        "--storage-cycling-price",
        type=int,
        metavar="N",
        help="offer the battery as a storage order; N = wear cost per kWh discharged",
    )
    storage.add_argument(
        "--storage-reserve-percent",
        type=float,
        default=0.0,
        metavar="P",
        help="least state of charge the market may leave, %% of capacity (default: 0, "
        "the battery's own minimum still holds)",
    )
    storage.add_argument(
        "--storage-end-percent",
        type=float,
        metavar="P",
        help="state of charge to end the horizon with, %% (default: the lowest allowed)",
    )
    storage.add_argument(
        "--storage-charge-efficiency",
        type=float,
        default=0.95,
        metavar="F",
        help="share of the metered charge stored (default: 0.95)",
    )
    storage.add_argument(
        "--storage-discharge-efficiency",
        type=float,
        default=0.95,
        metavar="F",
        help="share of the drawn energy delivered (default: 0.95)",
    )
    storage.add_argument(
        "--storage-drift-wh",
        type=int,
        default=500,
        metavar="WH",
        help="amend the order once the measured SoC is this far off the schedule (default: 500)",
    )
    parser.set_defaults(func=run)


def default_buffer_path(meter_id: str) -> Path:
    """``$XDG_STATE_HOME/gridex-meter/<meter id>.sqlite`` (``~/.local/state`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    name = re.sub(r"[^0-9A-Za-z_.-]", "_", meter_id)
    return Path(state) / "gridex-meter" / f"{name}.sqlite"


def _simulated_source(args: argparse.Namespace, clock: Any, meter_id: str, buffer: Any) -> Any:
    """A simulated home whose counters carry on from the buffer's last reading.

    A real meter keeps its counters through a gateway restart; a simulated one
    starts again where the previous run's last buffered reading left off.
    """
    from meter_adapter.simulation import SimulatedMeter
    from meter_adapter.uplink.sources import SimulatedSource

    household, pv = home_profiles(args)
    imported_wh, exported_wh = buffer.last_counters
    meter = SimulatedMeter(
        household=household,
        pv=pv,
        start=clock(),
        initial_import_wh=imported_wh,
        initial_export_wh=exported_wh,
    )
    return SimulatedSource(meter, clock, meter_id=meter_id)


def _configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The agent's and the uplink's configuration from the flags (or MeterConfigError)."""
    from meter_adapter.agent import AgentConfig, StorageConfig
    from meter_adapter.errors import MeterConfigError
    from meter_adapter.uplink import UplinkConfig

    agent = None
    problems: list[str] = []
    if args.agent:
        storage = None
        if args.storage_cycling_price is not None:
            storage = StorageConfig(
                cycling_price=args.storage_cycling_price,
                reserve_percent=args.storage_reserve_percent,
                end_soc_percent=args.storage_end_percent,
                charge_efficiency=args.storage_charge_efficiency,
                discharge_efficiency=args.storage_discharge_efficiency,
                drift_wh=args.storage_drift_wh,
            )
        agent = AgentConfig(
            sell_min_price=args.sell_min_price,
            buy_max_price=args.buy_max_price,
            interval_s=args.interval_s,
            engine_id=args.engine_id,
            storage=storage,
        )
        problems += agent.problems()
    uplink = UplinkConfig(max_batch_readings=args.max_batch, max_delay_s=args.max_delay)
    problems += uplink.problems()
    if not args.poll_interval > 0:
        problems.append(f"--poll-interval: must be positive, got {args.poll_interval}")
    if problems:
        raise MeterConfigError("; ".join(problems))
    return agent, uplink


async def _engine_clock(events: Any, stop: asyncio.Event) -> Any:
    """The engine's clock from its market events; None if stopped before the first event."""
    if events.now_ms is None:
        print("gridex-meter: waiting for the engine's first market event to learn its time",
              flush=True)  # fmt: skip
        follower = asyncio.create_task(events.run())
        try:
            await _until(stop, events.wait_for_time())
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
    return None if events.now_ms is None else events.clock


def _modbus_source(args: argparse.Namespace, clock: Any, meter_id: str) -> tuple[Any, Any]:
    """A MeterReader on a read-only Modbus client, and the client (to close)."""
    from meter_adapter.maps import load_map
    from meter_adapter.modbus_client import ReadOnlyModbusClient
    from meter_adapter.reader import DEFAULT_MAX_POWER_W, MeterReader

    host, port = args.modbus
    client = ReadOnlyModbusClient(host, port, unit_id=args.unit, timeout_s=args.timeout)
    register_map = load_map(args.map) if args.map else None
    reader = MeterReader(
        client,
        meter_id=meter_id,
        register_map=register_map,
        clock=clock,
        max_power_w=args.max_power_w or DEFAULT_MAX_POWER_W,
    )
    return reader, client


async def _run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from meter_adapter.agent import MarketClient, MarketEvents
    from meter_adapter.clock import utc_now
    from meter_adapter.uplink import ReadingBuffer, engine_channel, load_key_file
    from meter_adapter.uplink.gateway import Gateway
    from meter_adapter.uplink.lock import BufferLock

    signer = load_key_file(args.key)
    meter_id = args.meter_id or signer.address
    agent, uplink = _configs(args)
    root = args.tls_ca.read_bytes() if args.tls_ca else None
    host, port = args.engine
    buffer_path = args.buffer or default_buffer_path(meter_id)
    lock = BufferLock(buffer_path)
    lock.acquire()  # before opening: a second process on this buffer stops here
    try:
        buffer = ReadingBuffer(buffer_path, meter_id=meter_id, synchronous=args.synchronous)
    except BaseException:
        lock.release()
        raise
    channel = engine_channel(f"{host}:{port}", root_certificates=root)
    modbus: Any = None
    try:
        events = None
        if args.agent or args.clock == "engine":
            client = MarketClient(channel, signer, engine_id=args.engine_id)
            events = MarketEvents(client, store=buffer)
        clock = utc_now if args.clock == "wall" else await _engine_clock(events, stop)
        if clock is None:
            return  # stopped while waiting for the engine
        if args.simulate:
            source = _simulated_source(args, clock, meter_id, buffer)
        else:
            source, modbus = _modbus_source(args, clock, meter_id)
        gateway = Gateway(
            source,
            signer,
            channel,
            meter_id=meter_id,
            buffer_path=buffer,
            agent=agent,
            clock=clock,
            uplink=uplink,
            engine_id=args.engine_id,
            events=events,
        )
        agent_note = ", prosumer agent on" if agent else ""
        print(
            f"gridex-meter: meter {meter_id} -> engine {host}:{port} as {signer.address}, "
            f"buffer {buffer_path} ({buffer.pending_count} readings pending){agent_note}",
            flush=True,
        )
        try:
            await _until(stop, gateway.run(poll_interval_s=args.poll_interval))
            left = await gateway.flush(timeout_s=5.0)
            if left:
                logger.warning("stopping with %d readings buffered; they go on next start", left)
        finally:
            await gateway.close()
    finally:
        buffer.close()  # idempotent after gateway.close()
        lock.release()
        if modbus is not None:
            await modbus.close()
        await channel.close(None)


async def _until(stop: asyncio.Event, work: Any) -> None:
    """Run ``work`` until it ends or ``stop`` is set."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, waiter):
            t.cancel()
        results = await asyncio.gather(task, waiter, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; exit 1 with a message for a configuration problem."""
    prices = (args.sell_min_price, args.buy_max_price, args.storage_cycling_price)
    if args.agent and all(p is None for p in prices):
        print(
            "gridex-meter run: --agent needs --sell-min-price, --buy-max-price "
            "or --storage-cycling-price",
            file=sys.stderr,
        )
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on every platform
                loop.add_signal_handler(sig, stop.set)
        await _run(args, stop)

    try:
        asyncio.run(main())
    except MeterError as exc:
        print(f"gridex-meter run: {exc}", file=sys.stderr)
        return 1
    return 0
