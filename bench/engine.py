"""Engine throughput over loopback: signed, journaled orders/s and meter readings/s.

Starts ``gridex serve`` (simulated clock, journal with ``synchronous=FULL``)
in a child process, then drives it from this process with an asyncio gRPC
client that signs every order, every SubmitOrders batch and every reading
batch, as real clients do. Beside each figure it runs the same client
against a bare grpc.aio echo server (another child process) that answers
without signature checks, journal or state: the ceiling of gRPC in Python on
this machine. The ratio says how much of that ceiling the engine keeps.

It also times, in this process, the two costs the single-order path was
made faster by: keccak-256 (``gridex.signing.keccak`` against eth-hash) and
the durability wake-up of a handler waiting for a commit
(:func:`market.engine.journal.durable` against ``asyncio.wrap_future``).

Usage: ``python bench/engine.py [--seconds S] [--concurrency N] [--batch N]
[--order-batch N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc
from gridex.v1 import market_pb2, meter_pb2
from gridex.v1 import types_pb2 as pb

from market.client import OperatorClient
from market.engine.journal import durable
from market.engine.signing import Signer, keccak

ENGINE_ID = "cigre-lv"
T0_MS = 1944000 * 900_000
FIRST = 1944001
SUBMIT = "/gridex.v1.MarketService/SubmitOrder"
SUBMIT_MANY = "/gridex.v1.MarketService/SubmitOrders"
READINGS = "/gridex.v1.MeterService/StreamReadings"
OPERATOR = Signer("0x" + "11" * 32)
TRADERS = [Signer(f"0x{i + 1:064x}") for i in range(8)]
GATEWAYS = [Signer(f"0x{i + 101:064x}") for i in range(4)]


# -- the echo server (child process) -----------------------------------------------------


async def _echo_server(port_file: Path) -> None:
    order_reply = market_pb2.SubmitOrderResponse(
        order=pb.OrderState(client_order_id="x", status=pb.ORDER_STATUS_OPEN)
    ).SerializeToString()

    async def submit(request: bytes, context: Any) -> bytes:
        return order_reply

    many_replies: dict[int, bytes] = {}

    async def submit_many(request: bytes, context: Any) -> bytes:
        n = len(market_pb2.SubmitOrdersRequest.FromString(request).orders)
        if n not in many_replies:
            result = market_pb2.SubmitOrderResult(
                order=pb.OrderState(client_order_id="x", status=pb.ORDER_STATUS_OPEN)
            )
            many_replies[n] = market_pb2.SubmitOrdersResponse(
                results=[result] * n
            ).SerializeToString()
        return many_replies[n]

    async def readings(requests: Any, context: Any) -> Any:
        async for raw in requests:
            signed = meter_pb2.SignedReadingBatch.FromString(raw)
            batch = meter_pb2.ReadingBatch.FromString(signed.batch)
            yield meter_pb2.BatchAck(
                batch_id=batch.batch_id, applied=len(batch.readings)
            ).SerializeToString()

    handlers = {
        "SubmitOrder": grpc.unary_unary_rpc_method_handler(submit),
        "SubmitOrders": grpc.unary_unary_rpc_method_handler(submit_many),
        "StreamReadings": grpc.stream_stream_rpc_method_handler(readings),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "gridex.v1.MarketService",
                {"SubmitOrder": handlers["SubmitOrder"], "SubmitOrders": handlers["SubmitOrders"]},
            ),
            grpc.method_handlers_generic_handler(
                "gridex.v1.MeterService", {"StreamReadings": handlers["StreamReadings"]}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


# -- the client (this process) -----------------------------------------------------------


async def orders_per_second(address: str, seconds: float, concurrency: int) -> tuple[int, float]:
    """Signed SubmitOrder calls answered OK per second, ``concurrency`` in flight."""
    counter = itertools.count()
    done = 0
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            SUBMIT,
            request_serializer=None,
            response_deserializer=market_pb2.SubmitOrderResponse.FromString,
        )
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                n = next(counter)
                signer = TRADERS[n % len(TRADERS)]
                raw = market_pb2.SubmitOrderRequest(
                    participant=signer.address,
                    client_order_id=f"bench-{n}",
                    side=pb.SIDE_BUY if n % 2 else pb.SIDE_SELL,
                    interval=FIRST + n % 96,
                    quantity_wh=1000 + n % 500,
                    limit_price=100_000 + n % 1000,
                ).SerializeToString()
                await call(
                    raw,
                    metadata=tuple(signer.request_metadata(SUBMIT, raw, engine_id=ENGINE_ID)),
                    timeout=30,
                )
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return done, done / elapsed


async def batched_orders_per_second(
    address: str, seconds: float, concurrency: int, batch: int
) -> tuple[int, float]:
    """Orders accepted per second in signed SubmitOrders calls of ``batch`` orders.

    Raises:
        RuntimeError: an order was refused (the figure would count work not done).
    """
    counter = itertools.count()
    done = 0
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            SUBMIT_MANY,
            request_serializer=None,
            response_deserializer=market_pb2.SubmitOrdersResponse.FromString,
        )
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                b = next(counter)
                signer = TRADERS[b % len(TRADERS)]
                entries = [
                    market_pb2.SubmitOrdersRequest.Entry(
                        client_order_id=f"many-{b}-{i}",
                        side=pb.SIDE_BUY if i % 2 else pb.SIDE_SELL,
                        interval=FIRST + (b + i) % 96,
                        quantity_wh=1000 + i % 500,
                        limit_price=100_000 + i % 1000,
                    )
                    for i in range(batch)
                ]
                raw = market_pb2.SubmitOrdersRequest(
                    participant=signer.address, orders=entries
                ).SerializeToString()
                response = await call(
                    raw,
                    metadata=tuple(signer.request_metadata(SUBMIT_MANY, raw, engine_id=ENGINE_ID)),
                    timeout=60,
                )
                refused = [r for r in response.results if r.code]
                if refused:
                    raise RuntimeError(f"order refused: {refused[0].message}")
                done += len(response.results)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return done, done / elapsed


async def readings_per_second(address: str, seconds: float, batch_size: int) -> tuple[int, float]:
    """Readings acknowledged per second over one stream per gateway, batches of ``batch_size``."""
    applied = 0

    async def gateway(signer: Signer, meter_id: str) -> None:
        nonlocal applied
        deadline = time.perf_counter() + seconds

        async def batches() -> Any:
            seq = 1
            batch_id = 0
            while time.perf_counter() < deadline:
                batch_id += 1
                readings = [
                    meter_pb2.Reading(
                        seq=s,
                        timestamp_ms=T0_MS + s,
                        energy_import_wh=s,
                        energy_export_wh=s // 2,
                        power_w=-100,
                    )
                    for s in range(seq, seq + batch_size)
                ]
                seq += batch_size
                raw = meter_pb2.ReadingBatch(
                    gateway=signer.address, meter_id=meter_id, batch_id=batch_id, readings=readings
                ).SerializeToString()
                signature = signer.sign_batch(raw, engine_id=ENGINE_ID)
                yield meter_pb2.SignedReadingBatch(batch=raw, signature=signature)

        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.stream_stream(
                READINGS,
                request_serializer=meter_pb2.SignedReadingBatch.SerializeToString,
                response_deserializer=meter_pb2.BatchAck.FromString,
            )
            async for ack in call(batches(), timeout=seconds + 60):
                if ack.code:
                    raise RuntimeError(f"batch refused: {ack.message}")
                applied += ack.applied

    start = time.perf_counter()
    await asyncio.gather(*(gateway(g, f"bench-meter-{i}") for i, g in enumerate(GATEWAYS)))
    return applied, applied / (time.perf_counter() - start)


# -- the single-order path's parts, in this process ---------------------------------------


def keccak_us(n: int = 50_000) -> tuple[float, float]:
    """µs per keccak-256 of a 200-byte message: gridex.signing's and eth-hash's."""
    from eth_hash.auto import keccak as eth_hash_keccak

    data = os.urandom(200)
    out = []
    for fn in (keccak, eth_hash_keccak):
        fn(data)
        start = time.perf_counter()
        for _ in range(n):
            fn(data)
        out.append((time.perf_counter() - start) / n * 1e6)
    return out[0], out[1]


async def _wakeup_cpu_us(
    wait: Callable[[Future[int]], Any], waiters: int, rounds: int
) -> tuple[float, float]:
    """CPU µs per waiting handler when a thread completes ``waiters`` futures at once.

    Returns (event-loop thread, completing thread): thread CPU time, so the
    figures do not depend on what else the machine runs. The loop's share
    includes making and finishing the waiting tasks, the same for both ways.
    """
    loop_cpu = 0.0
    writer_cpu = [0.0]
    for i in range(rounds + 1):
        futures: list[Future[int]] = [Future() for _ in range(waiters)]
        started = time.thread_time()
        tasks = [asyncio.ensure_future(wait(f)) for f in futures]
        await asyncio.sleep(0)  # every task is waiting

        def commit(futures: list[Future[int]] = futures) -> None:
            begun = time.thread_time()
            for f in futures:  # as the journal's writer does after a commit
                f.set_result(1)
            writer_cpu[0] += time.thread_time() - begun

        thread = threading.Thread(target=commit)
        thread.start()
        await asyncio.gather(*tasks)
        loop_cpu += time.thread_time() - started
        thread.join()
        if i == 0:  # the first round warms up
            loop_cpu, writer_cpu[0] = 0.0, 0.0
    n = rounds * waiters
    return loop_cpu / n * 1e6, writer_cpu[0] / n * 1e6


def engine_batch_us(batches: int = 10, size: int = 500) -> tuple[float, float]:
    """(wall, CPU) µs per order of ``batch.submit_orders`` in this process.

    The engine's own share of a SubmitOrders order (validation, state, event,
    journal entry; no gRPC, no wait for the fsync). The calling thread's CPU
    time does not depend on the machine's load the way wall time does; what
    the gRPC figure adds on top is transport, parsing and answering.
    """
    from grid import load_feeder
    from market.engine.batch import submit_orders
    from market.engine.clock import SimClock
    from market.engine.engine import Engine

    with tempfile.TemporaryDirectory(prefix="gridex-bench-") as tmp:
        engine = Engine(load_feeder("cigre-lv"), Path(tmp) / "e.db", clock=SimClock(T0_MS))
        engine.start()
        try:
            trader = TRADERS[0]
            engine.register_participant(trader.address, 2).result()
            requests = [
                [
                    market_pb2.SubmitOrdersRequest.Entry(
                        client_order_id=f"local-{b}-{i}",
                        side=pb.SIDE_BUY,
                        interval=FIRST + (b + i) % 96,
                        quantity_wh=1000 + i,
                        limit_price=100_000 + i,
                    )
                    for i in range(size)
                ]
                for b in range(batches + 1)
            ]
            submit_orders(engine, trader.address, requests[0]).result()  # warm up
            start, cpu = time.perf_counter(), time.thread_time()
            for entries in requests[1:]:
                submit_orders(engine, trader.address, entries)
            elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
        finally:
            engine.close()
    n = batches * size
    return elapsed / n * 1e6, cpu / n * 1e6


def wakeup_us(waiters: int = 200, rounds: int = 50) -> dict[str, tuple[float, float]]:
    """(loop, writer) CPU µs per waiting handler: journal.durable and asyncio.wrap_future."""
    return {
        "journal.durable": asyncio.run(_wakeup_cpu_us(durable, waiters, rounds)),
        "asyncio.wrap_future": asyncio.run(_wakeup_cpu_us(asyncio.wrap_future, waiters, rounds)),
    }


# -- processes ---------------------------------------------------------------------------


def _start(args: list[str], port_file: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{port_file.read_text()}"


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    label: str, fn: Callable[[], tuple[int, float]], server: subprocess.Popen[bytes]
) -> tuple[float, float]:
    """Items per second, and the server's CPU µs per item (independent of the machine's load)."""
    before = _cpu_s(server.pid)
    count, rate = fn()
    cpu_us = (_cpu_s(server.pid) - before) / max(count, 1) * 1e6
    print(
        f"  {label:<40} {rate:>10,.0f}/s  {cpu_us:>7.1f} us server CPU each  ({count:,})",
        flush=True,
    )
    return rate, cpu_us


def _ratio(engine: tuple[float, float], ceiling: tuple[float, float]) -> None:
    print(
        f"  {'engine / ceiling':<40} {engine[0] / ceiling[0]:>11.0%}"
        f"  {ceiling[1] / engine[1]:>7.0%} by server CPU per item"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=64, help="orders in flight")
    parser.add_argument("--batch", type=int, default=1000, help="readings per batch")
    parser.add_argument("--order-batch", type=int, default=500, help="orders per SubmitOrders")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="SubmitOrders in flight")
    parser.add_argument(
        "--synchronous", choices=("FULL", "NORMAL"), default="FULL", help="journal fsync mode"
    )
    parser.add_argument("--echo-server", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server is not None:
        asyncio.run(_echo_server(args.echo_server))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="gridex-bench-"))
    engine_args = [
        sys.executable, "-m", "market.cli", "serve", "--grid", "cigre-lv",
        "--db", str(tmp / "engine.db"), "--clock", "sim", "--sim-start-ms", str(T0_MS),
        "--port", "0", "--port-file", str(tmp / "engine.port"), "--operator", OPERATOR.address,
        "--rate-limit", "0", "--reading-skew-s", "86400", "--synchronous", args.synchronous,
    ]  # fmt: skip
    echo_args = [sys.executable, __file__, "--echo-server", str(tmp / "echo.port")]
    engine, engine_address = _start(engine_args, tmp / "engine.port", tmp / "engine.log")
    echo, echo_address = _start(echo_args, tmp / "echo.port", tmp / "echo.log")
    try:
        with OperatorClient(engine_address, OPERATOR, engine_id="cigre-lv") as op:
            for i, t in enumerate(TRADERS):
                op.register_participant(t.address, 2 + i)
            for i, g in enumerate(GATEWAYS):
                op.register_gateway(g.address, f"bench-meter-{i}", TRADERS[i].address)
        load = os.getloadavg()[0]
        print(
            f"gridex engine benchmark, loopback, {os.cpu_count()} cores, {args.seconds:g} s per run"
            f", load {load:.1f} at start"
        )
        fast, slow = keccak_us()
        print(
            f"keccak-256 of 200 bytes: {fast:.1f} us (gridex.signing) vs {slow:.1f} us (eth-hash)"
        )
        print("durability wake-up, CPU per waiting handler (200 per commit): loop / writer thread")
        for name, (loop_us, writer_us) in wakeup_us().items():
            print(f"  {name:<44} {loop_us:>7.1f} us / {writer_us:.1f} us")
        wall_us, cpu_us = engine_batch_us()
        print(
            f"engine share of a batched order (in process, no gRPC): {wall_us:.0f} us wall, "
            f"{cpu_us:.0f} us CPU"
        )
        print(f"orders: signed SubmitOrder, {args.concurrency} in flight")
        run = asyncio.run
        e = _measure(
            "engine (verified, journaled, fsync'd)",
            lambda: run(orders_per_second(engine_address, args.seconds, args.concurrency)),
            engine,
        )
        c = _measure(
            "bare grpc.aio echo server (ceiling)",
            lambda: run(orders_per_second(echo_address, args.seconds, args.concurrency)),
            echo,
        )
        _ratio(e, c)
        print(
            f"orders: signed SubmitOrders of {args.order_batch}, {args.batch_concurrency} in flight"
        )
        e = _measure(
            "engine (verified, journaled, fsync'd)",
            lambda: run(
                batched_orders_per_second(
                    engine_address, args.seconds, args.batch_concurrency, args.order_batch
                )
            ),
            engine,
        )
        c = _measure(
            "bare grpc.aio echo server (ceiling)",
            lambda: run(
                batched_orders_per_second(
                    echo_address, args.seconds, args.batch_concurrency, args.order_batch
                )
            ),
            echo,
        )
        _ratio(e, c)
        print(f"readings: signed batches of {args.batch}, {len(GATEWAYS)} gateway streams")
        e = _measure(
            "engine (verified, journaled, fsync'd)",
            lambda: run(readings_per_second(engine_address, args.seconds, args.batch)),
            engine,
        )
        c = _measure(
            "bare grpc.aio echo server (ceiling)",
            lambda: run(readings_per_second(echo_address, args.seconds, args.batch)),
            echo,
        )
        _ratio(e, c)
    finally:
        for proc in (engine, echo):
            proc.terminate()
            proc.wait(30)
    print(f"load {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
