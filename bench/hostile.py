"""An attack campaign against the gateway and the engine, on loopback, bounded; prints counts.

Gateway: a raw-socket Modbus device (``tests/meter_adapter/hostile.py``) that
malforms half of its answers, in every kind it knows, for several rounds,
while the full MeterReader polls it; plus well-framed implausible contents.
Counted: malformed answers, polls, readings, wrong values reported, framing
errors, quarantined readings, readers that did not recover, and log lines
(pymodbus's "Fatal error" flood included).

Engine: an in-process engine on 127.0.0.1 attacked with signed garbage,
unsigned garbage to every method (health and reflection included), garbage
and truncated stream messages, replays after a restart and at another
engine, impersonation and unregistered keys, methods without a role, and a
participant's event stream. Counted: answers by status code, INTERNAL or
UNKNOWN answers, tracebacks logged, replays and impersonations accepted,
nonces kept for unregistered keys, other participants' orders visible.

Run: ``.venv/bin/python bench/hostile.py [--rounds N] [--keys N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from gridex.v1 import market_pb2, meter_pb2, operator_pb2
from gridex.v1 import types_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grid import load_feeder
from market.client import GatewayClient, TraderClient, status_code
from market.engine.auth import METHOD_ROLES
from market.engine.clock import SimClock
from market.engine.engine import Engine, EngineConfig
from market.engine.server import ServerConfig, ServerThread
from market.engine.signing import Signer
from tests.meter_adapter.hostile import (
    KINDS,
    VALUE_KINDS,
    expected_values,
    run_kind,
)

T0_MS = 1944000 * 900_000
FIRST = 1944001
OPERATOR = Signer("0x" + "11" * 32)
_O = "/gridex.v1.OperatorService/"
PUBLIC = [
    "/gridex.v1.MeterService/StreamReadings",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]


class LogCount(logging.Handler):
    """Counts log records: all at WARNING and above, tracebacks, pymodbus 'Fatal error'."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines = 0
        self.tracebacks = 0
        self.fatal = 0
        self.sources: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.lines += 1
        if record.exc_info:
            self.tracebacks += 1
            self.sources[f"{record.name}: {record.getMessage()[:80]}"] += 1
        if "Fatal error" in record.getMessage():
            self.fatal += 1


# -- gateway ---------------------------------------------------------------------------


async def gateway_campaign(rounds: int, expected: tuple[int | None, ...]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for r in range(rounds):
        for i, (_, mutation) in enumerate(sorted(KINDS.items())):
            o = await run_kind(mutation, share=0.5, polls=6, seed=1000 * r + i, expected=expected)
            totals.update(
                kinds=1 if r == 0 else 0,
                malformed=o.malformed,
                polls=o.polls,
                readings=o.readings,
                wrong=o.wrong,
                framing_errors=o.framing_errors,
                not_recovered=0 if o.recovered else 1,
            )
        for registers in VALUE_KINDS.values():
            o = await run_kind(None, registers=registers, polls=3, expected=expected)
            totals.update(
                value_kinds=1 if r == 0 else 0,
                polls=o.polls,
                readings=o.readings,
                wrong=o.wrong,
                quarantined=o.quarantined,
                not_recovered=0 if o.recovered else 1,
            )
    return dict(totals)


# -- engine ----------------------------------------------------------------------------


def start_engine(path: Path, engine_id: str = "") -> Engine:
    engine = Engine(
        load_feeder("cigre-lv"),
        path,
        clock=SimClock(T0_MS),
        operators=[OPERATOR.address],
        config=EngineConfig(engine_id=engine_id),
    )
    engine.start()
    return engine


def kept_nonces(engine: Engine) -> int:
    with sqlite3.connect(engine.journal_path) as db:
        count: int = db.execute("SELECT COUNT(*) FROM nonces").fetchone()[0]
    return count


def answer(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, bytes | str):
            for _ in result:
                pass
    except grpc.RpcError as exc:
        return status_code(exc) or grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK


def engine_campaign(tmp: Path, keys: int) -> dict[str, int]:  # noqa: PLR0912, PLR0915 - one campaign
    rng = random.Random(5)
    counts: Counter[str] = Counter(
        dict.fromkeys(
            [
                "other_participants_orders_visible",
                "unregistered_accepted",
                "impersonations_accepted",
                "unknown_method_ok",
            ],
            0,
        )
    )
    codes: Counter[str] = Counter()
    engine = start_engine(tmp / "a.db")
    engine_id = engine.engine_id
    buses = [b.index for b in engine.feeder.connectable_buses]
    alice, bob = Signer("0x" + "a1" * 32), Signer("0x" + "b2" * 32)
    gateway_key = Signer("0x" + "22" * 32)
    for i, s in enumerate((alice, bob)):
        engine.register_participant(s.address, buses[i]).result()
    engine.register_gateway(gateway_key.address, "m-1", alice.address).result()
    captured: list[tuple[str, bytes, tuple[tuple[str, str], ...]]] = []

    def record(code: grpc.StatusCode) -> None:
        codes[code.name] += 1
        counts["malformed_requests"] += 1

    server = ServerThread(engine, ServerConfig(rate_limit_per_s=None))
    server.start()
    channel = grpc.insecure_channel(server.address)
    try:
        # 1. signed garbage to every signed method, unsigned garbage to everything
        # AdvanceClock and TriggerClearing are left out: garbage that parses is a valid order
        # to run the market forward, which is slow, not an attack
        for method in sorted(set(METHOD_ROLES) - {_O + "AdvanceClock", _O + "TriggerClearing"}):
            for _ in range(20):
                body = rng.randbytes(rng.randint(0, 80))
                md = tuple(OPERATOR.request_metadata(method, body, engine_id=engine_id))
                if method.endswith("StreamMarketEvents"):
                    stub: Any = channel.unary_stream(method, None, None)
                    record(answer(lambda s=stub, b=body, m=md: s(b, metadata=m, timeout=0.5)))
                else:
                    stub = channel.unary_unary(method, None, None)
                    record(answer(lambda s=stub, b=body, m=md: s(b, metadata=m, timeout=30)))
        for method in sorted(METHOD_ROLES) + PUBLIC:  # unsigned: refused before parsing
            for _ in range(5):
                body = rng.randbytes(rng.randint(1, 40))
                if method.endswith(("StreamReadings", "ServerReflectionInfo")):
                    stub = channel.stream_stream(method, None, None)
                    call = lambda s=stub, b=body: s(iter([b]), timeout=5)  # noqa: E731
                elif method.endswith(("Watch", "StreamMarketEvents")):
                    stub = channel.unary_stream(method, None, None)
                    call = lambda s=stub, b=body: s(b, timeout=0.5)  # noqa: E731
                else:
                    stub = channel.unary_unary(method, None, None)
                    call = lambda s=stub, b=body: s(b, timeout=5)  # noqa: E731
                record(answer(call))
        gateway = GatewayClient(server.address, gateway_key, engine_id=engine_id)
        reading = meter_pb2.Reading(seq=1, timestamp_ms=T0_MS, energy_import_wh=1)
        good = gateway.signed_batch("m-1", 1, [reading]).SerializeToString()
        streams = channel.stream_stream(PUBLIC[0], None, None)
        for n in range(40):
            tail = rng.randbytes(8) if n % 2 else good[: rng.randint(1, len(good) - 1)]
            record(answer(lambda t=tail: streams(iter([good, t]), timeout=10)))
        # 2. impersonation and unregistered keys
        book = market_pb2.GetOrderBookRequest(interval=FIRST).SerializeToString()
        book_m = "/gridex.v1.MarketService/GetOrderBook"
        unary = channel.unary_unary(book_m, None, None)
        nonces_before = kept_nonces(engine)
        for _ in range(keys):
            md = tuple(Signer.generate().request_metadata(book_m, book, engine_id=engine_id))
            counts["unregistered_accepted"] += (
                answer(lambda m=md: unary(book, metadata=m, timeout=10)) == grpc.StatusCode.OK
            )
            forged = dict(Signer.generate().request_metadata(book_m, book, engine_id=engine_id))
            forged["x-gridex-address"] = alice.address
            forged_md = tuple(forged.items())
            counts["impersonations_accepted"] += (
                answer(lambda m=forged_md: unary(book, metadata=m, timeout=10))
                == grpc.StatusCode.OK
            )
            counts["impersonations"] += 2
        counts["nonces_kept_for_unregistered"] = kept_nonces(engine) - nonces_before
        # 3. a participant's event stream, and requests captured for replay
        traders = [TraderClient(server.address, s, engine_id=engine_id) for s in (alice, bob)]
        for k, t in enumerate(traders):
            for j in range(5):
                t.submit_order(f"o-{k}-{j}", "sell" if k else "buy", interval=FIRST,
                               quantity_wh=100 + j, limit_price=100_000 + j)  # fmt: skip
        events = channel.unary_stream("/gridex.v1.MarketService/StreamMarketEvents", None, None)
        raw = market_pb2.StreamMarketEventsRequest(after_sequence=0).SerializeToString()
        md = tuple(alice.request_metadata(
            "/gridex.v1.MarketService/StreamMarketEvents", raw, engine_id=engine_id))  # fmt: skip
        try:
            for data in events(raw, metadata=md, timeout=2):
                event = market_pb2.MarketEvent.FromString(data)
                kind = event.WhichOneof("event")
                if kind in ("order_accepted", "order_cancelled"):
                    order = getattr(event, kind).order
                    counts["order_events_seen"] += 1
                    if order.participant not in ("", alice.address) or (
                        order.participant == "" and order.client_order_id
                    ):
                        counts["other_participants_orders_visible"] += 1
        except grpc.RpcError:
            pass
        for method, request, signer in [
            ("/gridex.v1.MarketService/GetOrder",
             market_pb2.GetOrderRequest(participant=alice.address, client_order_id="o-0-0"), alice),
            ("/gridex.v1.MarketService/GetOrderBook", market_pb2.GetOrderBookRequest(), bob),
            ("/gridex.v1.MarketService/ListOrders",
             market_pb2.ListOrdersRequest(participant=bob.address), bob),
            ("/gridex.v1.OperatorService/GetEngineStatus",
             operator_pb2.GetEngineStatusRequest(), OPERATOR),
            ("/gridex.v1.MarketService/SubmitOrder",
             market_pb2.SubmitOrderRequest(participant=alice.address, client_order_id="r-1",
                                           side=pb.SIDE_BUY, interval=FIRST, quantity_wh=5,
                                           limit_price=90_000), alice),
            ("/gridex.v1.MarketService/SubmitOrder",  # refused by validation, replayed anyway
             market_pb2.SubmitOrderRequest(participant=alice.address, client_order_id="r-2",
                                           side=pb.SIDE_BUY, interval=FIRST, quantity_wh=-5,
                                           limit_price=90_000), alice),
        ]:  # fmt: skip
            body = request.SerializeToString()
            md = tuple(signer.request_metadata(method, body, engine_id=engine_id))
            answer(lambda m=method, b=body, d=md: channel.unary_unary(m, None, None)(
                b, metadata=d, timeout=30))  # fmt: skip
            captured.append((method, body, md))
        # 4. methods nobody may call
        for method in ["/gridex.v1.MarketService/Nope", "/gridex.v1.OperatorService/Shutdown"]:
            counts["unknown_method_ok"] += (
                answer(lambda m=method: channel.unary_unary(m, None, None)(b"", timeout=5))
                == grpc.StatusCode.OK
            )
        for t in traders:
            t.close()
        gateway.close()
    finally:
        channel.close()
        server.stop()
        engine.close()
    # 5. replays after a restart, and at another engine
    again = start_engine(tmp / "a.db")
    other = start_engine(tmp / "b.db", engine_id="feeder-b")
    with ServerThread(again) as s1, ServerThread(other) as s2:
        for target, name in ((s1.address, "replays_after_restart"), (s2.address, "cross_engine")):
            with grpc.insecure_channel(target) as ch:
                for method, body, md in captured:
                    code = answer(lambda m=method, b=body, d=md, c=ch: c.unary_unary(m, None, None)(
                        b, metadata=d, timeout=30))  # fmt: skip
                    counts[name] += 1
                    counts[name + "_accepted"] += code == grpc.StatusCode.OK
    again.close()
    other.close()
    counts["internal_or_unknown"] = codes["INTERNAL"] + codes["UNKNOWN"]
    return {**counts, **{f"code {k}": v for k, v in sorted(codes.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every Modbus kind")
    parser.add_argument("--keys", type=int, default=500, help="random keys and forgeries")
    parser.add_argument("--only", choices=("gateway", "engine"), help="run one campaign")
    args = parser.parse_args()
    logs = LogCount()
    logging.getLogger().addHandler(logs)
    logging.getLogger().setLevel(logging.DEBUG)
    for noisy in ("asyncio", "grpc", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = time.monotonic()
    if args.only != "engine":
        gw = asyncio.run(gateway_campaign(args.rounds, expected_values()))
        gw_logs, gw_fatal = logs.lines, logs.fatal
        print(f"gateway campaign ({time.monotonic() - started:.0f} s)")
        for key, value in gw.items():
            print(f"  {key:<40} {value:>8,}")
        print(f"  {'log lines at WARNING+':<40} {gw_logs:>8,}")
        print(f"  {'pymodbus Fatal error lines':<40} {gw_fatal:>8,}")
        print(f"  {'tracebacks logged':<40} {logs.tracebacks:>8,}")
    if args.only == "gateway":
        return
    logs.lines = logs.tracebacks = 0
    logs.sources.clear()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gridex-hostile-") as tmp:
        eng = engine_campaign(Path(tmp), args.keys)
    print(f"engine campaign ({time.monotonic() - started:.0f} s)")
    for key, value in eng.items():
        print(f"  {key:<40} {value:>8,}")
    print(f"  {'tracebacks logged':<40} {logs.tracebacks:>8,}")
    for source, n in logs.sources.most_common(5):
        print(f"    {n:>5} x {source}")


if __name__ == "__main__":
    main()
