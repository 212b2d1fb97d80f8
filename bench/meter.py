"""Meter adapter benchmark: polls per second against the loopback SunSpec simulator.

Starts the simulator (models 1, 103, 203 over pymodbus on 127.0.0.1) in this
process and measures, for a few seconds each:

- a raw 2-register read through the read-only client,
- a full SunSpec poll (meter model 203 and inverter model 103: two requests,
  decoding, rollover tracking, a Reading),
- the same poll from several gateways at once (one connection each),
- the same poll against an in-memory register image (decoding cost alone),
- both polls again on a device that also has a home battery (SunSpec model
  802: a third request, the battery's decoding and plausibility checks).

Run: ``.venv/bin/python bench/meter.py [--seconds S] [--clients N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from meter_adapter.clock import ScaledClock
from meter_adapter.modbus_client import ReadOnlyModbusClient
from meter_adapter.reader import MeterReader
from meter_adapter.registers import RegisterType
from meter_adapter.simulation import (
    BatterySpec,
    HouseholdProfile,
    PvProfile,
    SimulatedBattery,
    SimulatedMeter,
    SunSpecSimulator,
    start_simulator_server,
)


@dataclass
class Row:
    scenario: str
    operations: int
    seconds: float
    latencies_s: list[float]

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def timed(
    operation: Callable[[], Awaitable[object]], seconds: float
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        result = await operation()
        if result is None:
            raise RuntimeError("a poll was skipped during the benchmark")
        latencies.append(time.perf_counter() - start)
    return len(latencies), latencies


#: The simulator refreshes its registers about every 0.1 s of real time, 6 s of its 60x
#: clock, so counters leap between polls a few ms apart; a bound far above that keeps the
#: plausibility checks running (their cost is measured) without quarantining those leaps.
BENCH_MAX_POWER_W = 1e9


async def run(seconds: float, clients: int) -> list[Row]:
    clock = ScaledClock(datetime(2024, 6, 21, 8, tzinfo=UTC), speed=60.0)
    meter = SimulatedMeter(household=HouseholdProfile(seed=1), pv=PvProfile(seed=1), start=clock())
    simulator = SunSpecSimulator(meter, clock)
    rows: list[Row] = []
    async with await start_simulator_server(simulator) as server:
        async with ReadOnlyModbusClient(server.host, server.port) as client:
            count, latencies = await timed(
                lambda: client.read(RegisterType.HOLDING, 40000, 2), seconds
            )
            rows.append(Row("raw read, 2 registers", count, seconds, latencies))

            reader = MeterReader(
                client, meter_id="bench", clock=clock, max_power_w=BENCH_MAX_POWER_W
            )
            await reader.describe()  # discovery is not part of a poll
            count, latencies = await timed(reader.poll, seconds)
            rows.append(Row("SunSpec poll (103 + 203)", count, seconds, latencies))

        gateways = [ReadOnlyModbusClient(server.host, server.port) for _ in range(clients)]
        readers = [
            MeterReader(g, meter_id=f"gw{i}", clock=clock, max_power_w=BENCH_MAX_POWER_W)
            for i, g in enumerate(gateways)
        ]
        for reader in readers:
            await reader.describe()
        started = time.perf_counter()
        results = await asyncio.gather(*(timed(r.poll, seconds) for r in readers))
        elapsed = time.perf_counter() - started
        rows.append(
            Row(
                f"SunSpec poll, {clients} gateways",
                sum(count for count, _ in results),
                elapsed,
                [latency for _, lat in results for latency in lat],
            )
        )
        for gateway in gateways:
            await gateway.close()

    image_reader = MeterReader(
        simulator.snapshot(), meter_id="image", clock=clock, max_power_w=BENCH_MAX_POWER_W
    )
    await image_reader.describe()
    count, latencies = await timed(image_reader.poll, seconds)
    rows.append(Row("SunSpec poll, in-memory image", count, seconds, latencies))

    battery = SimulatedBattery(BatterySpec(), start=clock(), soc_wh=5_000)
    with_battery = SunSpecSimulator(meter, clock, battery=battery)
    server = await start_simulator_server(with_battery)
    async with server, ReadOnlyModbusClient(server.host, server.port) as client:
        reader = MeterReader(client, meter_id="bench-b", clock=clock, max_power_w=BENCH_MAX_POWER_W)
        await reader.describe()
        count, latencies = await timed(_with_battery(reader), seconds)
        rows.append(Row("SunSpec poll (103 + 203 + 802)", count, seconds, latencies))
    image_reader = MeterReader(
        with_battery.snapshot(), meter_id="image-b", clock=clock, max_power_w=BENCH_MAX_POWER_W
    )
    await image_reader.describe()
    count, latencies = await timed(_with_battery(image_reader), seconds)
    rows.append(Row("in-memory image, with battery", count, seconds, latencies))
    return rows


def _with_battery(reader: MeterReader) -> Callable[[], Awaitable[object]]:
    """A poll that counts as skipped unless its reading carries the battery."""

    async def poll() -> object:
        reading = await reader.poll()
        return None if reading is None or reading.battery is None else reading

    return poll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each row, s")
    parser.add_argument("--clients", type=int, default=4, help="concurrent gateways")
    args = parser.parse_args()
    rows = asyncio.run(run(args.seconds, args.clients))
    print(f"{'scenario':<32} {'ops':>7} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row.scenario:<32} {row.operations:>7} {row.rate:>9.0f} "
            f"{row.percentile_ms(0.5):>8.2f} {row.percentile_ms(0.99):>8.2f}"
        )
    mean_ms = statistics.fmean(rows[1].latencies_s) * 1000
    print(
        f"\none gateway polls the loopback simulator {rows[1].rate:.0f} times/s ({mean_ms:.2f} ms)"
    )
    print(
        f"with a battery (model 802) in the device: {rows[4].rate:.0f} polls/s over TCP "
        f"({rows[4].rate / rows[1].rate:.2f}x), {rows[5].rate:.0f}/s from memory "
        f"({rows[5].rate / rows[3].rate:.2f}x)"
    )


if __name__ == "__main__":
    main()
