"""The embedded EVM in a process of its own, answering JSON-RPC on 127.0.0.1.

The same chain as :meth:`contracts.Chain.embedded` (eth-tester on py-evm,
automine, the operator funded at genesis), but its EVM runs in a child
process: executing a posting no longer holds the caller's GIL, so the engine's
clock, order entry and clearing go on meanwhile on the other core. The caller
talks to it like to any node, through :meth:`contracts.Chain.connect`, so
several processes (the engine and ``gridex verify``) can share one chain::

    with PyEvmNode(operator=account.address) as node:
        chain = Chain.connect(node.url, operator_key=account, **node.connect_options)

The child serves web3's eth-tester endpoints (``EthereumTesterProvider`` and
its request and result formatting) over HTTP/1.1 keep-alive, one request at a
time into py-evm (it is not thread-safe). A revert comes back as a JSON-RPC
error ``execution reverted: <reason>`` (code 3), any other rejection with its
message (code -32000), so :mod:`contracts._boundary` maps them as from any
node. It listens on a free port on 127.0.0.1 only and exits when its parent
closes its stdin (the parent ending, however it ends, closes it); it ignores
SIGINT, which a terminal's Ctrl-C sends the parent as well.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import IO, Any

__all__ = ["PyEvmNode", "main"]

#: JSON-RPC error codes: a revert (as geth answers), anything else the node refused.
_REVERTED = 3
_REFUSED = -32000
_READY = "gridex-pyevm-node listening on "


class PyEvmNode:
    """One py-evm JSON-RPC node child process.

    Args:
        operator: the address funded with 10**24 wei at genesis (the operator).
        prefund: more addresses, each with ``prefund_wei`` wei at genesis.
        prefund_wei: ETH (wei) of each ``prefund`` address.
        startup_timeout_s: how long to wait for the child to listen.

    Raises:
        RuntimeError: (from :meth:`start`) the child exited or did not listen in time.
    """

    def __init__(
        self,
        *,
        operator: str,
        prefund: Iterable[str] = (),
        prefund_wei: int = 10**21,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self._args = ["--operator", operator, "--prefund-wei", str(prefund_wei)]
        for address in prefund:
            self._args += ["--prefund", address]
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[str] | None = None
        self._url: str | None = None

    #: :meth:`contracts.Chain.connect` options that suit this node: it mines each
    #: transaction as it arrives (no receipt to poll for), charges a 1 wei tip and
    #: only the gas used (the block gas limit will do; eth-tester's gas estimate
    #: executes a transaction a dozen times), and is reached without a proxy.
    connect_options: Mapping[str, Any] = {
        "priority_fee_wei": 1,
        "poll_interval_s": 0.001,
        "estimate_gas": False,
        "trust_env": False,
    }

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the py-evm node is not running")
        return self._url

    def start(self) -> None:
        """Start the child and wait until it listens (reading its first stdout line)."""
        process = subprocess.Popen(
            [sys.executable, "-m", "contracts.pyevm_node", *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._process = process
        line = _first_line(process.stdout, self._startup_timeout_s)
        if not line.startswith(_READY):
            self.stop()
            raise RuntimeError(f"the py-evm node did not start (it said {line!r})")
        self._url = line[len(_READY) :].strip()

    def stop(self) -> None:
        """Close the child's stdin (it exits on that) and wait for it; kill it after 10 s."""
        process, self._process, self._url = self._process, None, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> PyEvmNode:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _first_line(stream: IO[str] | None, timeout_s: float) -> str:
    """The first line of ``stream``, or "" if none came within ``timeout_s``."""
    if stream is None:
        return ""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return lines[0] if lines else ""


# -- the child ---------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


class _Endpoint:
    """eth-tester behind web3's JSON-RPC formatting, one request at a time."""

    def __init__(self, operator: str, prefund: list[str], prefund_wei: int) -> None:
        from web3 import EthereumTesterProvider, Web3

        from contracts.chain import embedded_tester

        # py-evm charges a call's gas to its sender (a node's eth_call does not), and a
        # read-only client calls from the zero address: fund it as well
        callers = [*prefund, "0x" + "00" * 20]
        provider = EthereumTesterProvider(embedded_tester(operator, callers, prefund_wei))
        w3 = Web3(provider, middleware=[])
        self._request = provider.request_func(w3, w3.middleware_onion)
        self._lock = threading.Lock()

    def answer(self, request: Any) -> dict[str, Any]:
        """The JSON-RPC response to one request object."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, -32600, "invalid request: an object with a method")
        rid = request.get("id")
        params = request.get("params", [])
        try:
            with self._lock:
                response = dict(self._request(request["method"], params))
        except Exception as exc:  # every refusal goes back to the caller, named
            message = str(exc.args[0]) if exc.args else type(exc).__name__
            code = _REVERTED if message.startswith("execution reverted") else _REFUSED
            return _error(rid, code, message)
        response["id"] = rid
        if "result" in response:
            response["result"] = _quantities(response["result"])
        return response


def _quantities(value: Any) -> Any:
    """``value`` with every integer as a JSON-RPC quantity (``0x``-hex), as nodes answer."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, Mapping):
        return {k: _quantities(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_quantities(v) for v in value]
    return value


def _error(rid: object, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def _handler(endpoint: _Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection per client thread
        disable_nagle_algorithm = True  # headers and body apart would wait 40 ms for an ACK

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                request = json.loads(self.rfile.read(length))
            except ValueError as exc:
                answer: Any = _error(None, -32700, f"parse error: {exc}")
            else:
                if isinstance(request, list):
                    answer = [endpoint.answer(r) for r in request]
                else:
                    answer = endpoint.answer(request)
            body = json.dumps(answer, default=_json_default).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve until stdin closes: ``python -m contracts.pyevm_node --operator 0x...``."""
    parser = argparse.ArgumentParser(prog="python -m contracts.pyevm_node", description=__doc__)
    parser.add_argument("--operator", required=True, help="address funded at genesis")
    parser.add_argument("--prefund", action="append", default=[], help="another funded address")
    parser.add_argument("--prefund-wei", type=int, default=10**21)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the parent decides when this ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    endpoint = _Endpoint(args.operator, args.prefund, args.prefund_wei)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoint))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{_READY}http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdout = sys.stderr  # nobody reads the pipe any more: a stray print must not fill it
    sys.stdin.read()  # returns when the parent closes the pipe or ends
    server.shutdown()


if __name__ == "__main__":
    main()
