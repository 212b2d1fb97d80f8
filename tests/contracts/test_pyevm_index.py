"""The embedded chain's indexed transaction lookups agree with eth-tester's block walk."""

from __future__ import annotations

import pytest
from eth_tester import PyEVMBackend
from eth_tester.exceptions import TransactionNotFound

from contracts._pyevm import IndexedPyEVMBackend

from .conftest import ChainWorld


def _walk(backend: IndexedPyEVMBackend, method: str, tx_hash: bytes) -> object:
    return getattr(PyEVMBackend, method)(backend, tx_hash)  # eth-tester's own lookup


def test_every_transaction_and_receipt_equals_the_walk_also_across_a_revert(
    chain_world: ChainWorld,
) -> None:
    tester = chain_world.chain.tester
    assert tester is not None
    backend = tester.backend
    assert isinstance(backend, IndexedPyEVMBackend)
    ledger = chain_world.ledger
    alice = chain_world.participants[0]
    snapshot = tester.take_snapshot()
    kept = ledger.request_withdrawal(5, signer=alice)["transactionHash"]
    tester.revert_to_snapshot(snapshot)
    after = ledger.request_withdrawal(7, signer=alice)["transactionHash"]
    with pytest.raises(TransactionNotFound):
        backend.get_transaction_receipt(bytes(kept))  # reverted away: gone, as in the walk
    with pytest.raises(TransactionNotFound):
        _walk(backend, "get_transaction_receipt", bytes(kept))
    hashes = [
        bytes(h)
        for n in range(backend.get_block_by_number("latest")["number"] + 1)
        for h in backend.get_block_by_number(n, full_transaction=False)["transactions"]
    ]
    assert bytes(after) in hashes
    assert len(hashes) > 10  # deploys, mints and deposits
    for h in hashes:
        for method in ("get_transaction_by_hash", "get_transaction_receipt"):
            assert getattr(backend, method)(h) == _walk(backend, method, h)
    assert ledger.pending_withdrawal(alice.address) == 7
