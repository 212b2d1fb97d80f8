"""``gridex keygen``, ``gridex register``, ``gridex clock`` and ``gridex info``.

What an operator and a participant type to join a running engine, without
writing Python::

    gridex keygen --out trader.key                     # prints the new address
    gridex register participant 0xADDRESS --bus 12 --key operator.key
    gridex register gateway 0xGATEWAY --meter-id home-1 --participant 0xADDRESS \\
        --key operator.key
    gridex clock advance --by 15m --key operator.key   # an engine on --clock sim
    gridex info --key trader.key                       # clock, open intervals, rules

``--engine HOST:PORT`` defaults to ``127.0.0.1:50051`` (``gridex serve``'s
default). Every call is signed with ``--key`` (a key file as
:mod:`gridex.keys` reads it); ``register`` and ``clock`` need an operator
key, ``info`` any registered participant's or gateway's. Exit codes: 0 done,
1 the engine refused (its status code and message are printed), 2 usage.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["register"]

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration_ms(text: str) -> int:
    """A duration flag: an integer with a unit ms, s, m, h or d (``15m``, ``2h``).

    Raises:
        argparse.ArgumentTypeError: malformed, or not positive.
    """
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer with a unit ms, s, m, h or d (e.g. 15m), got {text!r}"
        )
    value = int(match[1]) * _UNITS_MS[match[2]]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _engine_options(parser: argparse.ArgumentParser, *, who: str) -> None:
    parser.add_argument(
        "--engine",
        default="127.0.0.1:50051",
        metavar="HOST:PORT",
        help="the engine (default 127.0.0.1:50051)",
    )
    parser.add_argument("--key", required=True, type=Path, metavar="FILE", help=f"{who} key file")
    parser.add_argument("--tls-ca", type=Path, metavar="FILE", help="PEM CA: connect with TLS")
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, metavar="S", help="deadline per call (default 60)"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keygen``, ``register``, ``clock`` and ``info`` to the ``gridex`` parser."""
    keygen = sub.add_parser("keygen", help="write a new key file (mode 0600) and print its address")
    keygen.add_argument("--out", required=True, type=Path, metavar="FILE", help="never overwritten")
    keygen.set_defaults(func=_keygen)

    reg = sub.add_parser("register", help="operator: register a participant or a gateway")
    reg_sub = reg.add_subparsers(dest="register_command", required=True, metavar="WHAT")
    participant = reg_sub.add_parser(
        "participant", help="register ADDRESS at a connectable bus (idempotent)"
    )
    participant.add_argument("address", metavar="ADDRESS")
    participant.add_argument(
        "--bus", required=True, type=int, help="pandapower bus index (gridex grid info NAME)"
    )
    _engine_options(participant, who="operator")
    participant.set_defaults(func=_register_participant)
    gateway = reg_sub.add_parser(
        "gateway", help="register the gateway key that signs a meter's readings (idempotent)"
    )
    gateway.add_argument("gateway", metavar="GATEWAY", help="address of the gateway key")
    gateway.add_argument(
        "--meter-id",
        default=None,
        help="the meter's id (default: the gateway address, as gridex-meter run uses)",
    )
    gateway.add_argument(
        "--participant",
        default=None,
        metavar="ADDRESS",
        help="registered participant the meter belongs to (default: the gateway address)",
    )
    _engine_options(gateway, who="operator")
    gateway.set_defaults(func=_register_gateway)

    clock = sub.add_parser("clock", help="operator: move an engine's simulated clock")
    clock_sub = clock.add_subparsers(dest="clock_command", required=True, metavar="ACTION")
    advance = clock_sub.add_parser(
        "advance", help="advance a --clock sim engine, running every interval on the way"
    )
    how = advance.add_mutually_exclusive_group(required=True)
    how.add_argument("--by", type=_duration_ms, metavar="DURATION", help="e.g. 15m, 2h, 1d")
    how.add_argument("--to-ms", type=int, metavar="MS", help="to this engine time, Unix ms")
    how.add_argument("--intervals", type=int, metavar="N", help="by N market intervals (N >= 1)")
    _engine_options(advance, who="operator")
    advance.set_defaults(func=_clock_advance)

    info = sub.add_parser(
        "info", help="the engine's clock, open intervals, rules, tariffs and buses"
    )
    _engine_options(info, who="participant, gateway or operator")
    info.set_defaults(func=_info)


def _keygen(args: argparse.Namespace) -> int:
    from gridex.keys import KeyFileError, write_key_file

    try:
        signer = write_key_file(args.out)
    except KeyFileError as exc:
        print(f"gridex keygen: {exc}", file=sys.stderr)
        return 1
    print(signer.address)
    return 0


def _call(args: argparse.Namespace, kind: str, body: Callable[[Any], int]) -> int:
    """Open a signed client of ``kind`` and run ``body``; map failures to one line."""
    import grpc
    from gridex.keys import KeyFileError

    from market.client import OperatorClient, TraderClient, status_code

    prog = f"gridex {args.command}"
    cls = OperatorClient if kind == "operator" else TraderClient
    try:
        root = args.tls_ca.read_bytes() if args.tls_ca is not None else None
        client = cls(
            args.engine,
            key_file=args.key,
            tls_root=root,
            timeout_s=args.timeout_s,
            wait_for_ready=True,
        )
    except (KeyFileError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        with client:
            return body(client)
    except grpc.RpcError as exc:
        code = status_code(exc)
        details = exc.details() if hasattr(exc, "details") else str(exc)
        name = code.name if code is not None else "ERROR"
        hint = " (is `gridex serve` running there?)" if name == "UNAVAILABLE" else ""
        print(f"{prog}: {name}: {details}{hint}", file=sys.stderr)
        return 1


def _register_participant(args: argparse.Namespace) -> int:
    def body(op: Any) -> int:
        participant = op.register_participant(args.address, args.bus)
        print(f"participant {participant.address} registered at bus {participant.bus}")
        return 0

    return _call(args, "operator", body)


def _register_gateway(args: argparse.Namespace) -> int:
    def body(op: Any) -> int:
        meter_id = args.meter_id or args.gateway.lower()
        response = op.register_gateway(args.gateway, meter_id, args.participant or args.gateway)
        print(
            f"gateway {response.gateway} registered for meter {response.meter_id} "
            f"of participant {response.participant}"
        )
        return 0

    return _call(args, "operator", body)


def _clock_advance(args: argparse.Namespace) -> int:
    def body(op: Any) -> int:
        if args.to_ms is not None:
            target = args.to_ms
        else:
            status = op.engine_status()
            if args.intervals is not None and args.intervals < 1:
                print("gridex clock: --intervals: must be >= 1", file=sys.stderr)
                return 2
            step = args.by if args.by is not None else args.intervals * status.interval_s * 1000
            target = status.now_ms + step
        now = op.advance_clock(target, timeout_s=max(args.timeout_s, 300.0))
        print(f"engine clock now {now} ms ({_iso(now)})")
        return 0

    return _call(args, "operator", body)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _info(args: argparse.Namespace) -> int:
    def body(client: Any) -> int:
        info = client.market_info()
        print(format_market_info(info))
        return 0

    return _call(args, "trader", body)


def format_market_info(info: Any) -> str:
    """``GetMarketInfoResponse`` as the lines ``gridex info`` prints."""
    from gridex.v1 import types_pb2

    def phase(value: Any) -> str:
        return str(types_pb2.IntervalPhase.Name(value)).removeprefix("INTERVAL_PHASE_").lower()

    lines = [
        f"engine {info.engine_id} (feeder {info.feeder}, {info.mechanism} clearing, "
        f"{info.clock} clock)",
        f"now {info.now_ms} ms ({_iso(info.now_ms)}), interval {info.current_interval} "
        f"is being delivered",
        f"intervals of {info.interval_s} s; the gate closes {info.gate_closure_s} s before "
        f"delivery; orders for intervals {info.first_open_interval}.."
        f"{info.last_open_interval}",
        f"limit prices {info.price_min}..{info.price_max} per kWh; retail {info.retail_price}, "
        f"feed-in {info.feed_in_price}, grid fee {info.grid_fee_per_kwh} per kWh "
        f"(token base units, {info.token_decimals} decimals)",
    ]
    for k in info.intervals:
        lines.append(
            f"  interval {k.interval}: {phase(k.phase)}, starts {_iso(k.start_ms)}, "
            f"gate {_iso(k.gate_ms)}"
        )
    buses = ", ".join(str(b.bus) for b in info.buses)
    lines.append(f"connectable buses: {buses}")
    return "\n".join(lines)
