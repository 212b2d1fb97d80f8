"""The gRPC server of one engine: services, interceptor, health, reflection, TLS, limits.

:class:`EngineServer` runs on the caller's asyncio loop; :class:`ServerThread`
runs one on its own loop in a background thread, for synchronous callers (the
demo, tests, ``gridex serve``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from gridex.v1 import (
    market_pb2,
    market_pb2_grpc,
    meter_pb2,
    meter_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from market.engine.auth import RequestAuthInterceptor
from market.engine.engine import Engine
from market.engine.servicers import MarketServicer, MeterServicer, OperatorServicer

__all__ = ["SERVICE_NAMES", "EngineServer", "ServerConfig", "ServerThread", "TlsConfig"]

logger = logging.getLogger(__name__)

#: Fully qualified names of the engine's services (as health checking and reflection know them).
SERVICE_NAMES = (
    market_pb2.DESCRIPTOR.services_by_name["MarketService"].full_name,
    meter_pb2.DESCRIPTOR.services_by_name["MeterService"].full_name,
    operator_pb2.DESCRIPTOR.services_by_name["OperatorService"].full_name,
)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Server TLS: PEM certificate chain and key; a client CA demands client certificates."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: Path, key: Path, client_ca: Path | None = None) -> TlsConfig:
        """Read the PEM files (their content is checked when the server binds).

        Raises:
            OSError: a file cannot be read.
        """
        return cls(
            cert.read_bytes(),
            key.read_bytes(),
            None if client_ca is None else client_ca.read_bytes(),
        )

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Network settings and limits of the server.

    Attributes:
        host: address to listen on.
        port: TCP port (0: any free port; :meth:`EngineServer.start` returns it).
        tls: TLS settings (None: plaintext, for loopback and tests).
        max_skew_s: largest |request timestamp − wall clock|, s.
        rate_limit_per_s: signed requests per second per address (None: unlimited).
        max_receive_bytes: largest request message.
        max_send_bytes: largest response message.
        max_concurrent_rpcs: RPCs in flight (streams included) before new ones
            get RESOURCE_EXHAUSTED.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tls: TlsConfig | None = None
    max_skew_s: float = 60.0
    rate_limit_per_s: float | None = 1000.0
    max_receive_bytes: int = 4 * 1024 * 1024
    max_send_bytes: int = 16 * 1024 * 1024
    max_concurrent_rpcs: int = 4096

    def options(self) -> list[tuple[str, int]]:
        """gRPC channel arguments of the server."""
        return [
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.max_send_message_length", self.max_send_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.so_reuseport", 0),
        ]


@dataclass(eq=False)
class EngineServer:
    """The engine's gRPC server on the running asyncio loop."""

    engine: Engine
    config: ServerConfig = field(default_factory=ServerConfig)
    port: int = 0
    _server: grpc.aio.Server | None = None
    _health: HealthServicer | None = None

    async def start(self) -> int:
        """Start serving; return the bound port.

        Raises:
            RuntimeError: the port cannot be bound.
        """
        engine, cfg = self.engine, self.config
        interceptor = RequestAuthInterceptor(
            is_participant=engine.is_participant,
            is_gateway=engine.is_gateway,
            operators=engine.operators,
            max_skew_s=cfg.max_skew_s,
            rate_limit_per_s=cfg.rate_limit_per_s,
            seen_nonces=engine.replayed_nonces,
        )
        server = grpc.aio.server(
            interceptors=[interceptor],
            options=cfg.options(),
            maximum_concurrent_rpcs=cfg.max_concurrent_rpcs,
        )
        market_pb2_grpc.add_MarketServiceServicer_to_server(MarketServicer(engine), server)
        meter_pb2_grpc.add_MeterServiceServicer_to_server(MeterServicer(engine), server)
        operator_pb2_grpc.add_OperatorServiceServicer_to_server(OperatorServicer(engine), server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        names = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
        reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
        target = f"{cfg.host}:{cfg.port}"
        if cfg.tls is None:
            port = server.add_insecure_port(target)
        else:
            port = server.add_secure_port(target, cfg.tls.credentials())
        if port == 0:
            raise RuntimeError(f"cannot listen on {target}")
        await server.start()
        for name in ("", *SERVICE_NAMES):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._health, self.port = server, health, port
        logger.info(
            "engine serving on %s:%d (%s)", cfg.host, port, "TLS" if cfg.tls else "plaintext"
        )
        return port

    async def stop(self, grace_s: float = 1.0) -> None:
        """Report NOT_SERVING, then stop, letting calls in flight finish for ``grace_s``."""
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace_s)

    async def wait_for_termination(self) -> None:
        """Return when the server has stopped."""
        if self._server is not None:
            await self._server.wait_for_termination()


class ServerThread:
    """An :class:`EngineServer` on its own event loop in a daemon thread.

    Args:
        engine: a started engine.
        config: server settings.
    """

    def __init__(self, engine: Engine, config: ServerConfig | None = None) -> None:
        self._server = EngineServer(engine, config or ServerConfig())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="gridex-grpc", daemon=True
        )
        self.port = 0

    @property
    def address(self) -> str:
        """``host:port`` to connect to."""
        return f"{self._server.config.host}:{self.port}"

    def start(self) -> int:
        """Start the loop and the server; return the port."""
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(30)
        return self.port

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop the server and the loop."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._server.stop(grace_s), self._loop).result(
            grace_s + 30
        )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
