"""EnergyToken on the embedded EVM: every function and every revert."""

from __future__ import annotations

from tests.contracts._helpers import logs, reverts
from tests.contracts.conftest import ESCROW_EACH, PARTICIPANTS, TOKENS_EACH, ChainWorld

MAX = 2**256 - 1
ZERO = "0x" + "00" * 20


def test_metadata_and_supply(chain_world: ChainWorld) -> None:
    token = chain_world.ledger.token_contract.functions
    assert token.decimals().call() == 6
    assert token.name().call() == "gridex energy token"
    assert token.symbol().call() == "GXE"
    assert chain_world.ledger.total_supply() == PARTICIPANTS * TOKENS_EACH
    assert chain_world.ledger.token_owner() == chain_world.operator.address


def test_transfer_moves_tokens_and_logs(chain_world: ChainWorld) -> None:
    alice, bob = chain_world.participants[:2]
    ledger, chain = chain_world.ledger, chain_world.chain
    receipt = chain.transact(ledger.token_contract.functions.transfer(bob.address, 7), signer=alice)
    (log,) = logs(ledger.token_contract, "Transfer", receipt)
    assert (log["sender"], log["receiver"], log["value"]) == (
        alice.address,
        bob.address,
        7,
    )
    held = TOKENS_EACH - ESCROW_EACH
    assert ledger.token_balance(alice.address) == held - 7
    assert ledger.token_balance(bob.address) == held + 7


def test_transfer_reverts(chain_world: ChainWorld) -> None:
    alice, bob = chain_world.participants[:2]
    token, chain = chain_world.ledger.token_contract.functions, chain_world.chain
    with reverts("token: insufficient balance"):
        chain.transact(token.transfer(bob.address, TOKENS_EACH), signer=alice)
    with reverts("token: transfer to zero address"):
        chain.transact(token.transfer(ZERO, 1), signer=alice)


def test_approve_and_transfer_from(chain_world: ChainWorld) -> None:
    alice, bob, carol = chain_world.participants[:3]
    ledger, chain = chain_world.ledger, chain_world.chain
    token = ledger.token_contract.functions
    receipt = chain.transact(token.approve(bob.address, 10), signer=alice)
    (log,) = logs(ledger.token_contract, "Approval", receipt)
    assert log["value"] == 10
    chain.transact(token.transferFrom(alice.address, carol.address, 4), signer=bob)
    assert ledger.allowance(alice.address, bob.address) == 6
    with reverts("token: insufficient allowance"):
        chain.transact(token.transferFrom(alice.address, carol.address, 7), signer=bob)
    with reverts("token: approve to zero address"):
        chain.transact(token.approve(ZERO, 1), signer=alice)


def test_unlimited_allowance_is_not_spent(chain_world: ChainWorld) -> None:
    alice, bob = chain_world.participants[:2]
    ledger, chain = chain_world.ledger, chain_world.chain
    token = ledger.token_contract.functions
    chain.transact(token.approve(bob.address, MAX), signer=alice)
    chain.transact(token.transferFrom(alice.address, bob.address, 5), signer=bob)
    assert ledger.allowance(alice.address, bob.address) == MAX


def test_mint_by_owner_only_and_capped(chain_world: ChainWorld) -> None:
    alice = chain_world.participants[0]
    ledger, chain = chain_world.ledger, chain_world.chain
    ledger.mint(alice.address, 3)
    assert ledger.token_balance(alice.address) == TOKENS_EACH - ESCROW_EACH + 3
    with reverts("token: caller is not the owner"):
        chain.transact(ledger.token_contract.functions.mint(alice.address, 1), signer=alice)
    with reverts("token: mint to zero address"):
        ledger.mint(ZERO, 1)
    cap = 2**128 - 1
    with reverts("token: supply cap exceeded"):
        ledger.mint(alice.address, cap - ledger.total_supply() + 1)
    ledger.mint(alice.address, cap - ledger.total_supply())
    assert ledger.total_supply() == cap


def test_ownership_moves_in_two_steps(chain_world: ChainWorld) -> None:
    alice, bob = chain_world.participants[:2]
    ledger, chain = chain_world.ledger, chain_world.chain
    token = ledger.token_contract.functions
    with reverts("token: caller is not the owner"):
        chain.transact(token.transfer_ownership(alice.address), signer=alice)
    chain.transact(token.transfer_ownership(alice.address))
    assert ledger.token_owner() == chain_world.operator.address  # not yet
    with reverts("token: caller is not the pending owner"):
        chain.transact(token.accept_ownership(), signer=bob)
    chain.transact(token.accept_ownership(), signer=alice)
    assert ledger.token_owner() == alice.address
    assert token.pending_owner().call() == ZERO
    with reverts("token: caller is not the owner"):
        ledger.mint(alice.address, 1)  # the operator key no longer owns the token
