"""Fixtures for the contracts tests: one embedded chain per session, reset per test.

``chain_env`` deploys once and funds the participants; ``chain_world`` gives
each test that state afresh by reverting an eth-tester snapshot, which takes
milliseconds instead of a redeploy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from contracts import Chain, Deployment, Ledger, deploy

PARTICIPANTS = 6
TOKENS_EACH = 1_000_000_000  # base units minted to each participant
ESCROW_EACH = 400_000_000  # of which deposited into escrow


@dataclass(frozen=True)
class ChainWorld:
    """An embedded chain with the contracts deployed and participants funded."""

    chain: Chain
    deployment: Deployment
    ledger: Ledger
    participants: tuple[LocalAccount, ...]  # each: ETH, TOKENS_EACH - ESCROW_EACH tokens, escrow
    stranger: LocalAccount  # ETH only, no role, no tokens

    @property
    def operator(self) -> LocalAccount:
        return self.chain.operator


def _key(index: int) -> LocalAccount:
    return Account.from_key((1000 + index).to_bytes(32, "big"))


@pytest.fixture(scope="session")
def chain_env() -> tuple[ChainWorld, int]:
    participants = tuple(_key(i) for i in range(PARTICIPANTS))
    stranger = _key(99)
    chain = Chain.embedded(prefund=[p.address for p in (*participants, stranger)])
    deployment = deploy(chain)
    ledger = Ledger(chain, deployment)
    for participant in participants:
        ledger.mint(participant.address, TOKENS_EACH)
        ledger.deposit(ESCROW_EACH, signer=participant)
    world = ChainWorld(chain, deployment, ledger, participants, stranger)
    assert chain.tester is not None
    return world, chain.tester.take_snapshot()


@pytest.fixture
def chain_world(chain_env: tuple[ChainWorld, int]) -> Iterator[ChainWorld]:
    world, snapshot = chain_env
    assert world.chain.tester is not None
    world.chain.tester.revert_to_snapshot(snapshot)
    yield world
    world.chain.tester.enable_auto_mine_transactions()
