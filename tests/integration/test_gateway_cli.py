"""``gridex-meter run`` end to end against the real engine, killed with SIGKILL on the way.

The engine runs in this process on a simulated clock; ``gridex-meter run
--simulate --clock engine --agent`` runs as a child process and follows the
engine's clock through its market events. The test advances the engine a few
intervals, kills the gateway with SIGKILL half way, starts it again on the same
buffer file, and stops it with SIGTERM at the end. Then every reading the
gateway buffered is held by the engine, once, without gaps, and the agent's
orders are there, one per interval.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from gridex.signing import Signer

from grid import load_feeder
from market.engine.clock import SimClock
from market.engine.engine import Engine, EngineConfig
from market.engine.server import ServerConfig, ServerThread
from meter_adapter.agent import client_order_id
from meter_adapter.uplink import ReadingBuffer

pytestmark = pytest.mark.integration

I_MS = 900_000
T0_MS = (1944000 + 40) * I_MS  # 2025-06-11 10:00 UTC: PV surplus in Berlin
ROOT = Path(__file__).parents[2]
OPERATOR = Signer("0x" + "11" * 32)
METER = "home-cli"


@pytest.fixture
def gateway_cli_engine(tmp_path: Path) -> Iterator[tuple[Engine, int]]:
    engine = Engine(
        load_feeder("cigre-lv"),
        tmp_path / "engine.db",
        clock=SimClock(T0_MS),
        operators=[OPERATOR.address],
        config=EngineConfig(synchronous="NORMAL"),
    )
    engine.start()
    with ServerThread(engine, ServerConfig(rate_limit_per_s=None)) as server:
        yield engine, server.port
    engine.close()


def gridex_meter(*args: str, stdout: int | IO[bytes] = subprocess.PIPE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "meter_adapter.cli", *args],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.STDOUT,
    )


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _latest_reading_ms(engine: Engine) -> int:
    with engine.core.lock:
        frame = engine.state.ledger.readings_frame().filter(meter_id=METER)
    return -1 if frame.is_empty() else int(frame["timestamp_ms"].max())  # type: ignore[arg-type]


def _engine_event_ms(engine: Engine) -> int:
    """The time of the engine's latest market event: the gateway's clock follows it."""
    with engine.core.lock:
        events = engine.state.events
        return events[-1].time_ms if events else -1


def test_run_streams_trades_and_survives_sigkill(
    gateway_cli_engine: tuple[Engine, int], tmp_path: Path
) -> None:
    engine, port = gateway_cli_engine
    key = tmp_path / "gateway.key"
    keygen = gridex_meter("keygen", "--out", str(key))
    out, _ = keygen.communicate(timeout=60)
    assert keygen.returncode == 0
    address = out.decode().strip()
    assert address == address.lower()
    assert address.startswith("0x")
    bus = engine.feeder.connectable_buses[0].index
    engine.register_participant(address, bus).result()
    engine.register_gateway(address, METER, address).result()

    buffer_path = tmp_path / "buffer.sqlite"
    args = [
        "run",
        "--simulate",
        "--kwp",
        "9",
        "--seed",
        "2",
        "--engine",
        f"127.0.0.1:{port}",
        "--key",
        str(key),
        "--meter-id",
        METER,
        "--buffer",
        str(buffer_path),
        "--clock",
        "engine",
        "--poll-interval",
        "0.05",
        "--max-delay",
        "0",
        "--agent",
        "--sell-min-price",
        "90000",
        "--buy-max-price",
        "290000",
    ]
    logs = [tmp_path / "run1.log", tmp_path / "run2.log"]

    def start(log: Path) -> subprocess.Popen[bytes]:
        return gridex_meter(*args, stdout=log.open("wb"))

    proc = start(logs[0])
    t = T0_MS
    for step in range(30):  # 5-minute steps: 10 intervals
        t += 300_000
        engine.advance_to(t)
        if step == 3:
            wait_for(lambda: "gridex-meter: meter" in logs[0].read_text())
        if step == 15:
            proc.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
            proc.wait(timeout=30)
            proc = start(logs[1])
            wait_for(lambda: "gridex-meter: meter" in logs[1].read_text())
        # the gateway has seen the engine's clock move and delivered a reading at that time
        wait_for(lambda: _latest_reading_ms(engine) >= _engine_event_ms(engine))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, logs[1].read_text()

    buffer = ReadingBuffer(buffer_path, meter_id=METER)
    assert buffer.pending_count == 0
    assert buffer.quarantined() == []
    frame = engine.state.ledger.readings_frame().filter(meter_id=METER)
    seqs = frame["seq"].to_list()
    assert max(frame["timestamp_ms"]) > T0_MS + 16 * 300_000  # the restarted gateway went on
    assert len(seqs) >= 5
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # once each, in order
    assert seqs[-1] == buffer.last_seq  # everything buffered arrived
    assert engine.state.ledger.gaps(METER) == ()
    buffer.close()
    orders, _ = engine.list_orders(address, interval=None, page_size=1000, page_token="")
    intervals = [o.interval for o in orders]
    assert intervals
    assert len(intervals) == len(set(intervals))
    assert all(o.client_order_id == client_order_id(METER, o.interval) for o in orders)
