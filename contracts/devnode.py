"""A local Hardhat JSON-RPC node, for integration tests, benchmarks and demos.

Hardhat is pinned in the repository's ``package.json`` and installed with
``npm ci`` into ``node_modules``; the node reads ``hardhat.config.cjs``
(chain id :data:`HARDHAT_CHAIN_ID`, automine, no compilation)::

    with HardhatNode() as node:
        chain = Chain.connect(node.url, operator_key=HARDHAT_DEV_KEYS[0])

The node listens on 127.0.0.1 only, on a free port, and is stopped (its own
process group, by id) on exit. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Final

__all__ = ["HARDHAT_CHAIN_ID", "HARDHAT_DEV_KEYS", "HardhatNode", "HardhatNotInstalledError"]

logger = logging.getLogger(__name__)

HARDHAT_CHAIN_ID: Final = 31337
# Hardhat's documented development accounts ("test test ... junk" mnemonic), each
# with 10,000 ETH on the node. Public keys for local testing only.
HARDHAT_DEV_KEYS: Final = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)
_REPO_ROOT: Final = Path(__file__).resolve().parent.parent


class HardhatNotInstalledError(FileNotFoundError):
    """``node_modules/hardhat`` is missing: run ``npm ci`` (``make test`` does)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HardhatNode:
    """One Hardhat node child process.

    Args:
        root: directory with ``node_modules/`` and ``hardhat.config.cjs``
            (default: this repository's root).
        port: TCP port on 127.0.0.1 (default: a free one).
        startup_timeout_s: how long to wait for the node to answer.

    Raises:
        HardhatNotInstalledError: (from :meth:`start`) Hardhat is not installed.
        RuntimeError: (from :meth:`start`) the node exited or did not answer in time.
    """

    def __init__(
        self,
        *,
        root: Path | None = None,
        port: int | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self._root = root or _REPO_ROOT
        self._port = port
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self._port is None or self._process is None:
            raise RuntimeError("the Hardhat node is not running")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        executable = self._root / "node_modules" / ".bin" / "hardhat"
        if not (self._root / "node_modules" / "hardhat").is_dir() or not executable.exists():
            raise HardhatNotInstalledError(
                f"Hardhat is not installed under {self._root / 'node_modules'}; run `npm ci`"
            )
        attempts = 1 if self._port is not None else 3
        for attempt in range(attempts):
            port = self._port if self._port is not None else _free_port()
            if self._launch(executable, port):
                return
            logger.warning("Hardhat node on port %d did not start (attempt %d)", port, attempt + 1)
        raise RuntimeError(f"the Hardhat node did not start:\n{self._log_tail()}")

    def _launch(self, executable: Path, port: int) -> bool:
        if self._log is not None:
            self._log.close()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
        self._process = subprocess.Popen(
            [
                str(executable),
                "--config",
                "hardhat.config.cjs",
                "node",
                "--hostname",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=self._root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, so stop() ends exactly it
        )
        self._port = port
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if self._answers():
                logger.info("Hardhat node up at %s", self.url)
                return True
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"the Hardhat node did not answer within {self._startup_timeout_s} s:\n"
            f"{self._log_tail()}"
        )

    def _answers(self) -> bool:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        request = urllib.request.Request(
            f"http://127.0.0.1:{self._port}",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=1.0) as response:
                return "result" in json.loads(response.read())
        except (OSError, ValueError):
            return False

    def _log_tail(self, limit: int = 4000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def rpc(self, method: str, params: list[object] | None = None) -> object:
        """Send one raw JSON-RPC request (e.g. ``evm_mine``); return its result."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30.0) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result")

    def stop(self) -> None:
        """Stop the node (SIGTERM to its process group, SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> HardhatNode:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
