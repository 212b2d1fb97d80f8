"""The engine's free-escrow reads on a real Settlement contract: one call per posting."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from contracts import SettlementDriver
from market.engine.settler import ChainSettler

from .conftest import ESCROW_EACH, ChainWorld

HASH = b"\x11" * 32


def test_one_read_serves_every_participant_until_the_next_posting(
    chain_world: ChainWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = chain_world.ledger
    alice, bob, carol = (p.address.lower() for p in chain_world.participants[:3])
    settler = ChainSettler(SettlementDriver(ledger))
    reads: list[list[str]] = []
    read = ledger.free_escrows

    def counted(addresses: Any) -> list[int]:
        reads.append(list(addresses))
        return read(addresses)

    monkeypatch.setattr(ledger, "free_escrows", counted)
    for address in (alice, bob):
        assert settler.free_escrow(address) == ESCROW_EACH
    assert settler.free_escrow(alice) == ESCROW_EACH  # cached
    assert reads == [[alice], [alice, bob]]

    posting = SimpleNamespace(interval=5, deltas={alice: -300, bob: 200}, fee=100, result_hash=HASH)
    settler.settle(posting)  # type: ignore[arg-type]  # settle reads these four fields
    # the first order after the posting reads every participant seen so far, once
    assert settler.free_escrow(bob) == ESCROW_EACH + 200
    assert settler.free_escrow(alice) == ESCROW_EACH - 300
    assert reads[2:] == [[alice, bob]]
    # a newcomer is read with the rest (and the rest are read afresh)
    assert settler.free_escrow(carol) == ESCROW_EACH
    assert reads[3:] == [[alice, bob, carol]]

    # a withdrawal requested on chain counts from the next advance on
    ledger.request_withdrawal(ESCROW_EACH - 1_000, signer=chain_world.participants[2])
    assert settler.free_escrow(carol) == ESCROW_EACH  # still the read before the request
    settler.advance(6, 8)
    assert settler.free_escrow(carol) == 1_000
    assert settler.free_escrow(alice) == ESCROW_EACH - 300
    assert len(reads) == 5
