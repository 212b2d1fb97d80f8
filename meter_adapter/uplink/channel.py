"""A ``grpc.aio`` channel to the engine with settings suited to a home gateway."""

from __future__ import annotations

import grpc

__all__ = ["engine_channel"]


def engine_channel(
    target: str,
    *,
    root_certificates: bytes | None = None,
    max_reconnect_s: float = 10.0,
) -> grpc.aio.Channel:
    """Open a channel to ``target`` (``HOST:PORT``); TLS when ``root_certificates`` is given.

    gRPC's own reconnect backoff is capped at ``max_reconnect_s`` (its default,
    120 s, would keep a gateway away from a recovered engine for minutes), and
    keepalive pings notice a dead connection within about 40 s.

    Args:
        target: The engine's address.
        root_certificates: PEM CA certificates that sign the engine's certificate.
        max_reconnect_s: Cap on gRPC's reconnect delay, s.
    """
    options = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", max(250, int(max_reconnect_s * 1000))),
    ]
    if root_certificates is None:
        return grpc.aio.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return grpc.aio.secure_channel(target, credentials, options=options)
