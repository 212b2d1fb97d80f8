"""Engines on a simulated clock, journals in tmp_path, servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from grid import Feeder, load_feeder
from market.client import GatewayClient, OperatorClient, TraderClient
from market.engine.clock import SimClock
from market.engine.engine import Engine, EngineConfig
from market.engine.server import ServerConfig, ServerThread
from market.engine.signing import Signer

#: Start of interval 1944000 (2025-06-11 00:00 UTC), ms: the simulated clock's start.
T0_MS = 1944000 * 900_000
#: The first interval whose gate is open at T0 (gate closure 300 s before delivery).
FIRST = 1944001
OPERATOR_KEY = "0x" + "11" * 32
#: The engines' id: their feeder's name, the default.
ENGINE_ID = "cigre-lv"


@pytest.fixture(scope="session")
def engine_feeder() -> Feeder:
    return load_feeder("cigre-lv")


@pytest.fixture
def operator_signer() -> Signer:
    return Signer(OPERATOR_KEY)


@pytest.fixture
def make_engine(
    tmp_path: Any, engine_feeder: Feeder, operator_signer: Signer
) -> Iterator[Callable[..., Engine]]:
    """Start engines on ``tmp_path/engine.db`` (same journal each call); closed at teardown."""
    engines: list[Engine] = []

    def make(**kwargs: Any) -> Engine:
        kwargs.setdefault("clock", SimClock(T0_MS))
        kwargs.setdefault("operators", [operator_signer.address])
        kwargs.setdefault("config", EngineConfig(verify_replay=True))
        engine = Engine(engine_feeder, tmp_path / "engine.db", **kwargs)
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


def connectable(engine: Engine) -> list[int]:
    return [b.index for b in engine.feeder.connectable_buses]


def register(engine: Engine, n: int) -> list[Signer]:
    """``n`` participants with fixed keys, each at its own connectable bus."""
    signers = [Signer(f"0x{i + 1:064x}") for i in range(n)]
    buses = connectable(engine)
    for i, s in enumerate(signers):
        engine.register_participant(s.address, buses[i % len(buses)]).result()
    return signers


@pytest.fixture
def engine_server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(engine, ServerConfig(rate_limit_per_s=None)) as server:
        yield server


@pytest.fixture
def operator_client(
    engine_server: ServerThread, operator_signer: Signer
) -> Iterator[OperatorClient]:
    with OperatorClient(
        engine_server.address, operator_signer, retries=0, engine_id=ENGINE_ID
    ) as client:
        yield client


@pytest.fixture
def traders(engine: Engine, engine_server: ServerThread) -> Iterator[list[TraderClient]]:
    clients = [
        TraderClient(engine_server.address, s, retries=0, engine_id=engine.engine_id)
        for s in register(engine, 4)
    ]
    yield clients
    for c in clients:
        c.close()


@pytest.fixture
def gateway(engine: Engine, engine_server: ServerThread) -> Iterator[GatewayClient]:
    """A gateway registered for meter ``m-1`` of the first participant."""
    owner = register(engine, 1)[0]
    client = GatewayClient(engine_server.address, Signer("0x" + "22" * 32))
    engine.register_gateway(client.address, "m-1", owner.address).result()
    yield client
    client.close()
