"""``gridex verify`` of the demo's day in a process of its own, made ready while the day runs.

Verifying clears every interval again from its bundle: seconds of Python
that, in the demo's own process, would queue behind the report for the GIL.
:class:`VerifyProcess` starts a child (``spawn``, not ``fork``: the engine's
gRPC threads must not be copied) as the day's trading begins; the child
imports the clearing code and loads the feeder while the day runs, on the
other core.
After the day it bundles the journal and verifies every interval against the
chain, which it reads over JSON-RPC like any ``gridex verify --rpc-url``,
while the demo writes its report.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["VerifyProcess"]


class VerifyProcess:
    """One child process that verifies one journal; :meth:`launch` starts it, and it
    loads ``feeder_name`` at once."""

    def __init__(self, feeder_name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, self._child_conn = context.Pipe()
        self._process = context.Process(
            target=_child, args=(self._child_conn, feeder_name), name="gridex-verify", daemon=True
        )

    def launch(self) -> None:
        """Start the child (it imports the clearing code and loads the feeder); once."""
        if self._process.pid is None:
            self._process.start()
            self._child_conn.close()

    def start(self, db: Path, out: Path, *, rpc_url: str, deployment_json: str) -> None:
        """Bundle ``db`` into ``out`` and verify every settled interval against the
        chain at ``rpc_url`` (:func:`market._cli_verify.verify_journal`), in the child
        (launched now if it is not yet)."""
        self.launch()
        self._conn.send((str(db), str(out), rpc_url, deployment_json))

    def result(self) -> tuple[int, list[str], float]:
        """Wait for :meth:`start`'s verification: intervals verified, differences, and the
        seconds it took in the child.

        Raises:
            Exception: what the verification raised in the child (its type kept
                where it pickles), or RuntimeError if the child died.
        """
        try:
            kind, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(
                f"the verify process ended (exit code {self._process.exitcode})"
            ) from None
        if kind == "error":
            raise value if isinstance(value, BaseException) else RuntimeError(value)
        return value  # type: ignore[no-any-return]  # what _child sent

    def close(self) -> None:
        """Stop the child, abandoning a verification still running."""
        self._conn.close()
        if self._process.pid is None:  # never launched
            self._child_conn.close()
            return
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=30)


def _child(conn: Connection, feeder_name: str) -> None:
    from grid import load_feeder

    # Ctrl-C reaches the whole process group: the demo stops this child itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    feeder = load_feeder(feeder_name)
    try:
        job = conn.recv()
    except EOFError:  # the demo ended before the day did
        return
    try:
        conn.send(("ok", _verify(*job, feeder=feeder)))
    except Exception as exc:  # the demo re-raises it
        try:
            conn.send(("error", exc))
        except Exception:  # it does not pickle: its text will do
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _verify(
    db: str, out: str, rpc_url: str, deployment_json: str, *, feeder: Any
) -> tuple[int, list[str], float]:
    from contracts import Chain, Deployment, Ledger
    from market._cli_verify import verify_journal

    started = time.perf_counter()
    deployment = Deployment.from_json(deployment_json)
    chain = Chain.connect(rpc_url, expected_chain_id=deployment.chain_id)
    verified, differences = verify_journal(
        Path(db), Path(out), ledger=Ledger(chain, deployment), feeder=feeder
    )
    return verified, differences, time.perf_counter() - started
