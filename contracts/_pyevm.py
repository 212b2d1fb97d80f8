"""eth-tester's py-evm backend, finding transactions by py-evm's own hash index.

eth-tester looks a transaction up by walking every block back from the head
(its own TODO says so), and ``eth_getLogs`` does that for each transaction in
the range: reading a day's postings from the demo's chain took most of
``gridex verify``. py-evm keeps a hash → (block, index) lookup of the
canonical chain; this backend uses it and leaves every other case (a
reverted snapshot, the pending block, an unknown hash) to eth-tester's own
lookup.
"""

from __future__ import annotations

from typing import Any

from eth.exceptions import TransactionNotFound
from eth_tester import PyEVMBackend
from eth_tester.backends.pyevm.serializers import (
    serialize_transaction,
    serialize_transaction_receipt,
)

__all__ = ["IndexedPyEVMBackend"]


class IndexedPyEVMBackend(PyEVMBackend):  # type: ignore[misc]  # eth-tester is untyped
    """A :class:`eth_tester.PyEVMBackend` whose transaction and receipt lookups are O(1)."""

    def _indexed(self, transaction_hash: bytes) -> tuple[Any, Any, int] | None:
        """Block, transaction and index from py-evm's index; None unless it leads to the hash."""
        chain = self.chain
        try:
            number, index = chain.chaindb.get_transaction_index(transaction_hash)
        except TransactionNotFound:
            return None
        block = chain.get_canonical_block_by_number(number)
        found = block.transactions[index] if index < len(block.transactions) else None
        if found is None or found.hash != transaction_hash:
            return None
        return block, found, index

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        hit = self._indexed(transaction_hash)
        if hit is None:
            return super().get_transaction_by_hash(transaction_hash)
        block, transaction, index = hit
        is_pending = block.number == self.chain.get_block().number
        return serialize_transaction(block, transaction, index, is_pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        hit = self._indexed(transaction_hash)
        if hit is None:
            return super().get_transaction_receipt(transaction_hash)
        block, transaction, index = hit
        is_pending = block.number == self.chain.get_block().number
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, transaction, index, is_pending, self.chain.get_vm()
        )
