"""Kill ``gridex serve`` at random points under load; restart; nothing acknowledged is lost.

Two traders submit orders and a gateway streams reading batches while the
engine process is killed with SIGKILL at a random moment (seeded). After each
restart on the same journal:

* every order the engine acknowledged is there, with the content sent;
* every reading acknowledged is held: re-sending it counts as a duplicate and
  is not applied again, and the meter's ack_seq never goes back;
* a restart without new inputs reproduces the state digest exactly, and the
  last restart clears every journaled interval again (``--verify-replay``)
  and finds the same bytes.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from gridex.v1 import meter_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from market.client import GatewayClient, OperatorClient, TraderClient, status_code
from market.engine.signing import Signer

pytestmark = pytest.mark.integration

T0_MS = 1944000 * 900_000
FIRST = 1944001
OPERATOR = Signer("0x" + "11" * 32)
TRADERS = [Signer(f"0x{i + 1:064x}") for i in range(2)]
GATEWAY = Signer("0x" + "22" * 32)
ENGINE_ID = "cigre-lv"  # the default: the feeder name
ROUNDS = 3


@dataclass
class EngineProcess:
    """``gridex serve`` in a child process on a fixed journal."""

    db: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    address: str = ""

    def start(self, *extra: str) -> None:
        port_file = self.db.with_suffix(".port")
        port_file.unlink(missing_ok=True)
        args = [
            sys.executable,
            "-m",
            "market.cli",
            "serve",
            "--grid",
            "cigre-lv",
            "--db",
            str(self.db),
            "--clock",
            "sim",
            "--sim-start-ms",
            str(T0_MS),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--operator",
            OPERATOR.address,
            "--rate-limit",
            "0",
            "--reading-skew-s",
            "86400",
            *extra,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not port_file.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited: {self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("engine did not start")
            time.sleep(0.1)
        self.address = f"127.0.0.1:{port_file.read_text()}"
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            response = health.Check(
                health_pb2.HealthCheckRequest(), timeout=30, wait_for_ready=True
            )
            assert response.status == health_pb2.HealthCheckResponse.SERVING

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def engine_process(tmp_path: Path) -> Iterator[EngineProcess]:
    process = EngineProcess(tmp_path / "engine.db", tmp_path / "engine.log")
    yield process
    process.stop()


@dataclass
class Acked:
    """What the engine acknowledged to the clients."""

    orders: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # id -> content
    ack_seq: int = 0
    next_order: int = 0
    stream_codes: list[int] = field(default_factory=list)  # 0 per ack, -1 for UNAVAILABLE
    lock: threading.Lock = field(default_factory=threading.Lock)


def reading(seq: int) -> meter_pb2.Reading:
    return meter_pb2.Reading(
        seq=seq,
        timestamp_ms=T0_MS + seq * 10,
        energy_import_wh=2 * seq,
        energy_export_wh=seq // 3,
        power_w=-500,
    )


def trade(
    address: str, signer: Signer, acked: Acked, stop: threading.Event, rnd: random.Random
) -> None:
    with TraderClient(address, signer, retries=0, timeout_s=5, engine_id=ENGINE_ID) as client:
        while not stop.is_set():
            with acked.lock:
                acked.next_order += 1
                order_id = f"{signer.address[-4:]}-{acked.next_order}"
            side = rnd.choice(["buy", "sell"])
            quantity = rnd.randint(100, 5000)
            interval = FIRST + rnd.randint(0, 4)
            try:
                client.submit_order(
                    order_id, side, interval=interval, quantity_wh=quantity, limit_price=150_000
                )
            except grpc.RpcError:
                return  # the engine is gone (or the interval closed): stop this round
            with acked.lock:
                acked.orders[order_id] = (signer.address, interval, quantity)


def stream(address: str, acked: Acked, stop: threading.Event) -> None:
    with GatewayClient(address, GATEWAY, timeout_s=5) as gateway:

        def batches() -> Iterator[meter_pb2.SignedReadingBatch]:
            first = acked.ack_seq + 1
            while not stop.is_set():
                yield gateway.signed_batch(
                    "m-1", first, [reading(s) for s in range(first, first + 50)]
                )
                first += 50
                time.sleep(0.01)

        codes: list[int] = []
        try:
            for ack in gateway.stream(batches()):
                codes.append(ack.code)
                if ack.code == 0:
                    acked.ack_seq = max(acked.ack_seq, ack.ack_seq)
        except grpc.RpcError as exc:
            codes.append(-1 if status_code(exc) == grpc.StatusCode.UNAVAILABLE else -2)
        acked.stream_codes.extend(codes)


def check_nothing_lost(address: str, acked: Acked) -> None:
    for signer in TRADERS:
        with TraderClient(address, signer, engine_id=ENGINE_ID) as client:
            held = {o.client_order_id: o for o in client.list_orders()}
            mine = {k: v for k, v in acked.orders.items() if v[0] == signer.address}
            assert set(mine) <= set(held), "an acknowledged order was lost"
            for order_id, (_, interval, quantity) in mine.items():
                assert (held[order_id].interval, held[order_id].quantity_wh) == (interval, quantity)
    with GatewayClient(address, GATEWAY) as gateway:
        top = acked.ack_seq
        if top:
            resent = gateway.signed_batch(
                "m-1", 0, [reading(s) for s in range(max(1, top - 9), top + 1)]
            )
            [ack] = list(gateway.stream(iter([resent]), timeout_s=30))
            assert ack.code == 0, ack.message
            assert ack.applied == 0, "an acknowledged reading was applied twice"
            assert ack.duplicates == min(10, top)
            assert ack.ack_seq >= top, "an acknowledged reading was lost"
            acked.ack_seq = ack.ack_seq


def test_kill_at_random_points_loses_nothing(engine_process: EngineProcess) -> None:
    rnd = random.Random(20250611)
    acked = Acked()
    engine_process.start()
    with OperatorClient(engine_process.address, OPERATOR, engine_id=ENGINE_ID) as op:
        for i, signer in enumerate(TRADERS):
            op.register_participant(signer.address, 2 + i)
        op.register_gateway(GATEWAY.address, "m-1", TRADERS[0].address)

    for round_ in range(ROUNDS):
        stop = threading.Event()
        workers = [
            threading.Thread(target=trade, args=(engine_process.address, s, acked, stop, rnd))
            for s in TRADERS
        ]
        workers.append(threading.Thread(target=stream, args=(engine_process.address, acked, stop)))
        for w in workers:
            w.start()
        time.sleep(rnd.uniform(0.3, 1.5))  # a random point in the middle of the traffic
        engine_process.kill()
        stop.set()
        for w in workers:
            w.join(30)
        engine_process.start()
        check_nothing_lost(engine_process.address, acked)
        with OperatorClient(engine_process.address, OPERATOR, engine_id=ENGINE_ID) as op:
            # move one interval on so that the next round's journal also holds clearings
            now = op.engine_status().now_ms
            op.advance_clock(now + 900_000 * (1 if round_ < ROUNDS - 1 else 0))

    assert len(acked.orders) > 0
    assert acked.ack_seq > 0
    assert set(acked.stream_codes) <= {0, -1}, "a batch was refused, or the stream broke oddly"
    with OperatorClient(engine_process.address, OPERATOR, engine_id=ENGINE_ID) as op:
        before = op.engine_status()
    assert before.order_count >= len(acked.orders)
    engine_process.kill()
    engine_process.start("--verify-replay")  # clears every journaled interval again
    with OperatorClient(engine_process.address, OPERATOR, engine_id=ENGINE_ID) as op:
        after = op.engine_status()
    assert after.state_digest == before.state_digest
    assert after.journal_sequence == before.journal_sequence
    assert after.event_sequence == before.event_sequence
