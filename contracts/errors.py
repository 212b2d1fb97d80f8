"""Errors raised by :mod:`contracts`.

::

    ChainError
    ├── CompileError            — a Vyper source did not compile
    ├── ContractRevertError     — a transaction or call reverted; carries reason and tx hash
    ├── ChainConnectionError    (also ConnectionError) — the RPC node is unreachable
    ├── ChainRPCError           — the node answered a request with an error; carries tx hash
    ├── TransactionTimeoutError (also TimeoutError) — a transaction was not mined in time
    ├── ChainConfigError        (also ValueError) — bad key, deployment file or chain id
    └── SettlementError         (also ValueError) — a settlement is malformed (unbalanced, ...)
        └── SettlementConflictError — the interval is already settled with another result hash

web3 and eth-tester exceptions are mapped to these at the web3 boundary
(:mod:`contracts._boundary`); a test fails if one escapes unmapped.
"""

from __future__ import annotations

__all__ = [
    "ChainConfigError",
    "ChainConnectionError",
    "ChainError",
    "ChainRPCError",
    "CompileError",
    "ContractRevertError",
    "SettlementConflictError",
    "SettlementError",
    "TransactionTimeoutError",
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


class ChainRPCError(ChainError):
    """The node answered with an error other than a revert (bad nonce, underpriced, ...)."""

    def __init__(self, message: str, *, tx_hash: str | None = None) -> None:
        self.message = message
        self.tx_hash = tx_hash
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"{message}{where}")


class TransactionTimeoutError(ChainError, TimeoutError):
    """A sent transaction was not mined within the timeout, after every resend."""

    def __init__(self, message: str, *, tx_hash: str | None = None) -> None:
        self.tx_hash = tx_hash
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"{message}{where}")


class ChainConfigError(ChainError, ValueError):
    """A key, deployment file or chain id does not fit the chain it is used with."""


class SettlementError(ChainError, ValueError):
    """A settlement is malformed: accounts and amounts do not balance, or an id is reused."""


class SettlementConflictError(SettlementError):
    """The interval is already settled on chain with a different clearing-result hash."""

    def __init__(self, interval_id: int, *, on_chain: str, requested: str) -> None:
        self.interval_id = interval_id
        self.on_chain = on_chain
        self.requested = requested
        super().__init__(
            f"interval {interval_id} is already settled with result hash {on_chain}, "
            f"not {requested}"
        )
