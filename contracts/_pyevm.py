"""eth-tester's py-evm backend, finding transactions by py-evm's own hash index.

eth-tester looks a transaction up by walking every block back from the head
(its own TODO says so), and ``eth_getLogs`` does that for each transaction in
the range: reading a day's postings from the demo's chain took most of
``gridex verify``. py-evm keeps a hash → (block, index) lookup of the
canonical chain; this backend uses it and falls back to the walk whenever the
lookup does not lead to the same transaction (a reverted snapshot, the
pending block).
"""

from __future__ import annotations

from typing import Any

from eth.exceptions import TransactionNotFound
from eth_tester import PyEVMBackend
from eth_tester.backends.pyevm import main as _pyevm

__all__ = ["IndexedPyEVMBackend"]


class IndexedPyEVMBackend(PyEVMBackend):  # type: ignore[misc]  # eth-tester is untyped
    """A :class:`eth_tester.PyEVMBackend` whose transaction and receipt lookups are O(1)."""

    def _find(self, transaction_hash: bytes) -> tuple[Any, Any, int]:
        chain = self.chain
        try:
            number, index = chain.chaindb.get_transaction_index(transaction_hash)
        except TransactionNotFound:
            pass
        else:
            block = chain.get_canonical_block_by_number(number)
            found = block.transactions[index] if index < len(block.transactions) else None
            if found is not None and found.hash == transaction_hash:
                return block, found, index
        walked: tuple[Any, Any, int] = _pyevm._get_transaction_by_hash(chain, transaction_hash)
        return walked

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._find(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        return _pyevm.serialize_transaction(block, transaction, index, is_pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._find(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        return _pyevm.serialize_transaction_receipt(
            block,
            block.get_receipts(self.chain.chaindb),
            transaction,
            index,
            is_pending,
            self.chain.get_vm(),
        )
