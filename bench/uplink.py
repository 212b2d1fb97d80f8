"""Readings per second through the gateway uplink into a running engine.

Starts ``gridex serve`` (simulated clock, journal ``synchronous=FULL`` unless
told otherwise) in a child process, registers meters, and drives it from this
process with :mod:`meter_adapter.uplink`, exactly as ``gridex-meter run`` and
the demo do: readings go through the SQLite buffer, are signed per batch, sent
stop-and-wait on ``StreamReadings``, and dropped from the buffer on the ack.

Sections:

1. backlog drain: one gateway flushes readings buffered during an outage, for
   several batch sizes (one batch in flight, so round trips bound the rate);
2. gateway cost per reading, no network: ``poll_once`` on a simulated home
   (meter integration, one buffer transaction, agent bookkeeping), for both
   buffer durability modes;
3. a fleet: N gateways on one event loop, stepped a simulated minute at a
   time (poll, flush), as the demo runs them.

Usage: ``python bench/uplink.py [--readings N] [--fleet N] [--synchronous FULL|NORMAL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gridex.signing import Signer

from market.client import OperatorClient
from meter_adapter.agent import AgentConfig
from meter_adapter.simulation import HouseholdProfile, PvProfile, SimulatedMeter
from meter_adapter.uplink import (
    MEMORY,
    ReadingBuffer,
    SimulatedSource,
    Uplink,
    UplinkConfig,
    clock_from_ms,
    engine_channel,
)
from meter_adapter.uplink.gateway import Gateway

I_MS = 900_000
T0_MS = (1944000 + 40) * I_MS  # 2025-06-11 10:00 UTC
OPERATOR = Signer("0x" + "11" * 32)


def _start_engine(tmp: Path, synchronous: str) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / "engine.port"
    args = [
        sys.executable, "-m", "market.cli", "serve", "--grid", "cigre-lv",
        "--db", str(tmp / "engine.db"), "--clock", "sim", "--sim-start-ms", str(T0_MS),
        "--port", "0", "--port-file", str(port_file), "--operator", OPERATOR.address,
        "--rate-limit", "0", "--synchronous", synchronous,
    ]  # fmt: skip
    log = tmp / "engine.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"engine did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{port_file.read_text()}"


def _register(address: str, meters: dict[str, Signer]) -> None:
    with OperatorClient(address, OPERATOR, engine_id="cigre-lv") as op:
        buses: dict[str, int] = {}
        for meter_id, signer in meters.items():
            if signer.address not in buses:
                buses[signer.address] = 2 + len(buses) % 10
                op.register_participant(signer.address, buses[signer.address])
            op.register_gateway(signer.address, meter_id, signer.address)


async def backlog_drain(
    address: str, meter_id: str, signer: Signer, *, readings: int, batch: int, tmp: Path
) -> float:
    """Readings/s for flushing ``readings`` buffered readings in batches of ``batch``."""
    buffer = ReadingBuffer(tmp / f"{meter_id}.sqlite", meter_id=meter_id, synchronous="NORMAL")
    start_ms = T0_MS - readings * 1000  # one a second, ending now on the engine's clock
    for i in range(readings):
        buffer.append(start_ms + i * 1000, i, 2 * i, 100)
    channel = engine_channel(address)
    uplink = Uplink(channel, buffer, signer, config=UplinkConfig(max_batch_readings=batch))
    started = time.perf_counter()
    left = await uplink.flush(timeout_s=300)
    elapsed = time.perf_counter() - started
    assert left == 0, f"{left} readings not delivered"
    await uplink.close()
    await channel.close(None)
    buffer.close()
    return readings / elapsed


async def gateway_cost(synchronous: str, path: Path, polls: int) -> float:
    """Microseconds per ``poll_once`` of a simulated home with agent, no network."""
    now = [T0_MS]
    clock = clock_from_ms(lambda: now[0])
    meter = SimulatedMeter(household=HouseholdProfile(seed=1), pv=PvProfile(seed=1), start=clock())
    meter.advance_to(clock())  # warm up: the simulated day's profile is computed once
    channel = engine_channel("127.0.0.1:1")  # never used: nothing is flushed
    gateway = Gateway(
        SimulatedSource(meter, clock, meter_id="cost"),
        Signer.generate(),
        channel,
        meter_id="cost",
        buffer_path=path,
        clock=clock,
        agent=AgentConfig(sell_min_price=1, gate_closure_s=300, engine_id="cigre-lv"),
        synchronous=synchronous,  # type: ignore[arg-type]
    )
    started = time.perf_counter()
    for _ in range(polls):
        now[0] += 5_000
        await gateway.poll_once()
    elapsed = time.perf_counter() - started
    await gateway.close()
    await channel.close(None)
    return elapsed / polls * 1e6


async def fleet(
    address: str, meters: dict[str, Signer], minutes: int, tmp: Path, *, flush_every: int
) -> tuple[float, float]:
    """Readings/s for a fleet stepped a simulated minute at a time, and the polling share.

    Every gateway polls each minute and flushes every ``flush_every`` minutes.
    """
    now = [T0_MS - minutes * 60_000]
    clock = clock_from_ms(lambda: now[0])
    channel = engine_channel(address)
    gateways = []
    for i, (meter_id, signer) in enumerate(meters.items()):
        meter = SimulatedMeter(
            household=HouseholdProfile(seed=i), pv=PvProfile(seed=i), start=clock()
        )
        gateways.append(
            Gateway(
                SimulatedSource(meter, clock, meter_id=meter_id),
                signer,
                channel,
                meter_id=meter_id,
                buffer_path=tmp / f"{meter_id}.sqlite",
                clock=clock,
                synchronous="NORMAL",
            )
        )
    await asyncio.gather(*(g.poll_once() for g in gateways))  # warm up: each home's first day
    await asyncio.gather(*(g.flush(timeout_s=60) for g in gateways))
    polling = flushing = 0.0
    for minute in range(1, minutes + 1):
        now[0] += 60_000
        started = time.perf_counter()
        await asyncio.gather(*(g.poll_once() for g in gateways))
        polled = time.perf_counter()
        if minute % flush_every and minute != minutes:
            polling += polled - started
            continue
        left = await asyncio.gather(*(g.flush(timeout_s=60) for g in gateways))
        flushing += time.perf_counter() - polled
        polling += polled - started
        assert not any(left), "readings left undelivered"
    for g in gateways:
        await g.close()
    await channel.close(None)
    return len(gateways) * minutes / (polling + flushing), polling / (polling + flushing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--readings", type=int, default=20_000, help="backlog size")
    parser.add_argument("--fleet", type=int, default=40, help="gateways in the fleet")
    parser.add_argument("--minutes", type=int, default=30, help="simulated minutes of the fleet")
    parser.add_argument(
        "--synchronous", choices=("FULL", "NORMAL"), default="FULL", help="engine journal mode"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gridex-bench-uplink-"))
    batches = (10, 100, 500, 2000)
    drain = {f"drain-{b}": Signer.generate() for b in batches}
    fleet_meters = {f"fleet-{i}": Signer.generate() for i in range(args.fleet)}
    engine, address = _start_engine(tmp, args.synchronous)
    try:
        fleets = {f"{m}-{n}": s for m, s in fleet_meters.items() for n in (1, 15)}
        _register(address, {**drain, **fleets})
        print(
            f"gridex uplink benchmark: gridex serve in a child process (journal "
            f"{args.synchronous}), loopback, {os.cpu_count()} cores"
        )
        print(f"1. backlog drain, one gateway, {args.readings:,} buffered readings, stop-and-wait")
        for b in batches:
            rate = asyncio.run(
                backlog_drain(
                    address,
                    f"drain-{b}",
                    drain[f"drain-{b}"],
                    readings=args.readings,
                    batch=b,
                    tmp=tmp,
                )
            )
            print(f"   batches of {b:>5}: {rate:>10,.0f} readings/s", flush=True)
        print("2. gateway cost per reading (simulated home + buffer + agent, no network)")
        for mode, path in (("FULL", tmp / "cost-full.sqlite"), ("NORMAL", tmp / "cost.sqlite")):
            us = asyncio.run(gateway_cost(mode, path, 2000))
            print(f"   buffer synchronous={mode:<6}: {us:>8,.0f} µs/reading", flush=True)
        us = asyncio.run(gateway_cost("NORMAL", Path(MEMORY), 2000))
        print(f"   buffer :memory: (no durability): {us:>5,.0f} µs/reading", flush=True)
        print(
            f"3. fleet: {args.fleet} gateways on one event loop, a reading a minute each, "
            f"{args.minutes} simulated minutes"
        )
        for flush_every in (1, 15):
            meters = {f"{m}-{flush_every}": s for m, s in fleet_meters.items()}
            rate, share = asyncio.run(
                fleet(address, meters, args.minutes, tmp, flush_every=flush_every)
            )
            day = args.fleet * 96 * 15 / rate
            print(
                f"   flush every {flush_every:>2} min: {rate:>7,.0f} readings/s end to end "
                f"({share:.0%} polling); a simulated day: {day:,.0f} s",
                flush=True,
            )
    finally:
        engine.terminate()
        engine.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
