"""Errors raised by :mod:`contracts`.

::

    ChainError
    ├── CompileError            — a Vyper source did not compile
    ├── ContractRevertError     — a transaction or call reverted; carries reason and tx hash
    ├── ChainConnectionError    (also ConnectionError) — the RPC node is unreachable
    └── SettlementError         (also ValueError) — a settlement is malformed (does not sum to zero, ...)

web3 and eth-tester exceptions are mapped to these at the web3 boundary.
"""

from __future__ import annotations

__all__ = [
    "ChainConnectionError",
    "ChainError",
    "CompileError",
    "ContractRevertError",
    "SettlementError",
]


class ChainError(Exception):
    """Root of every error raised by the contracts package."""


class CompileError(ChainError):
    """A Vyper source failed to compile."""


class ContractRevertError(ChainError):
    """A transaction or call reverted on chain."""

    def __init__(self, reason: str, *, tx_hash: str | None = None) -> None:
        self.reason = reason
        self.tx_hash = tx_hash
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"reverted: {reason}{where}")


class ChainConnectionError(ChainError, ConnectionError):
    """The JSON-RPC node could not be reached."""


class SettlementError(ChainError, ValueError):
    """A settlement is malformed: accounts and amounts do not balance, or an id is reused."""
