"""Settlement on the embedded EVM: every function and every revert, called directly.

These calls bypass :class:`contracts.SettlementDriver`'s own validation, so the
contract's checks are what is tested here.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from contracts import DEFAULT_CHANGE_DELAY_S, compiled
from tests.contracts._helpers import logs, reverts
from tests.contracts.conftest import ESCROW_EACH, PARTICIPANTS, TOKENS_EACH, ChainWorld

ZERO = "0x" + "00" * 20
HASH = b"\x11" * 32
MAX_DELTA = 2**128 - 1


def _sorted(accounts: list[LocalAccount]) -> list[LocalAccount]:
    return sorted(accounts, key=lambda a: int(a.address, 16))


def _settle(
    world: ChainWorld,
    interval_id: int,
    accounts: list[str],
    deltas: list[int],
    *,
    fee: int = 0,
    result_hash: bytes = HASH,
    signer: LocalAccount | None = None,
) -> Any:
    call = world.ledger.settlement_contract.functions.settle(
        interval_id, accounts, deltas, fee, result_hash
    )
    return world.chain.transact(call, signer=signer)


def _correct(  # noqa: PLR0917 - the contract function's own argument order
    world: ChainWorld,
    interval_id: int,
    version: int,
    previous: bytes,
    accounts: list[str],
    deltas: list[int],
    *,
    fee: int = 0,
    result_hash: bytes,
    signer: LocalAccount | None = None,
) -> Any:
    call = world.ledger.settlement_contract.functions.correct(
        interval_id, version, previous, accounts, deltas, fee, result_hash
    )
    return world.chain.transact(call, signer=signer)


def test_initial_state(chain_world: ChainWorld) -> None:
    ledger = chain_world.ledger
    fns = ledger.settlement_contract.functions
    assert fns.token().call() == chain_world.deployment.token
    assert ledger.owner() == ledger.operator() == chain_world.operator.address
    assert ledger.escrow_total() == PARTICIPANTS * ESCROW_EACH
    assert ledger.settled_hash(0) is None
    assert ledger.depositors() == [p.address for p in chain_world.participants]


def test_constructor_rejects_zero_addresses(chain_world: ChainWorld) -> None:
    artifact = compiled("Settlement")
    factory = chain_world.chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    with reverts("settlement: token is the zero address"):
        chain_world.chain.transact(factory.constructor(ZERO, chain_world.operator.address, 0))
    with reverts("settlement: operator is the zero address"):
        chain_world.chain.transact(factory.constructor(chain_world.deployment.token, ZERO, 0))


def test_deposit_and_withdraw(chain_world: ChainWorld) -> None:
    alice = chain_world.participants[0]
    ledger = chain_world.ledger
    receipt = ledger.deposit(5, signer=alice)
    (log,) = logs(ledger.settlement_contract, "Deposited", receipt)
    assert log["account"] == log["payer"] == alice.address
    assert ledger.escrow_balance(alice.address) == ESCROW_EACH + 5
    assert ledger.allowance(alice.address) == 0  # approved exactly what was needed
    ledger.request_withdrawal(ESCROW_EACH + 5, signer=alice)
    with reverts("settlement: withdrawal still locked"):  # no advance since the request
        ledger.execute_withdrawal(signer=alice)
    ledger.advance(0, 0)
    with reverts("settlement: withdrawal still locked"):  # interval 0 is not final
        ledger.execute_withdrawal(signer=alice)
    ledger.advance(1, 3)
    receipt = ledger.execute_withdrawal(signer=alice)
    (log,) = logs(ledger.settlement_contract, "Withdrawn", receipt)
    assert log["amount"] == ESCROW_EACH + 5
    assert ledger.escrow_balance(alice.address) == 0
    assert ledger.token_balance(alice.address) == TOKENS_EACH


def test_deposit_reverts(chain_world: ChainWorld) -> None:
    alice = chain_world.participants[0]
    ledger, chain = chain_world.ledger, chain_world.chain
    fns = ledger.settlement_contract.functions
    with reverts("settlement: zero amount"):
        chain.transact(fns.deposit(0), signer=alice)
    with reverts("settlement: amount out of range"):
        chain.transact(fns.deposit(2**128), signer=alice)
    with reverts("token: insufficient allowance"):  # the token's reason comes through
        chain.transact(fns.deposit(1), signer=alice)
    ledger.approve(TOKENS_EACH, signer=alice)
    with reverts("token: insufficient balance"):
        chain.transact(fns.deposit(TOKENS_EACH), signer=alice)
    with reverts("settlement: deposit for zero address"):
        chain.transact(fns.deposit_for(ZERO, 1), signer=alice)


def test_deposit_for_pays_someone_else(chain_world: ChainWorld) -> None:
    ledger = chain_world.ledger
    stranger = chain_world.stranger
    ledger.mint(chain_world.operator.address, 50)
    receipt = ledger.deposit_for(stranger.address, 50)
    (log,) = logs(ledger.settlement_contract, "Deposited", receipt)
    assert (log["account"], log["payer"]) == (
        stranger.address,
        chain_world.operator.address,
    )
    assert ledger.escrow_balance(stranger.address) == 50
    assert ledger.token_balance(chain_world.operator.address) == 0


def test_withdraw_reverts(chain_world: ChainWorld) -> None:
    alice = chain_world.participants[0]
    ledger = chain_world.ledger
    with reverts("settlement: no withdrawal requested"):
        ledger.execute_withdrawal(signer=alice)
    with reverts("settlement: amount out of range"):
        ledger.request_withdrawal(2**128, signer=alice)
    ledger.request_withdrawal(5, signer=alice)
    ledger.request_withdrawal(0, signer=alice)  # cancels
    ledger.advance(10, 10)
    with reverts("settlement: no withdrawal requested"):
        ledger.execute_withdrawal(signer=alice)
    with reverts("settlement: caller is not the operator"):
        ledger.advance(11, 11, signer=alice)
    with reverts("settlement: final_before decreased"):
        ledger.advance(9, 11)
    with reverts("settlement: open_through decreased"):
        ledger.advance(11, 9)


def test_withdrawal_waits_for_the_horizon_announced_after_the_request(
    chain_world: ChainWorld,
) -> None:
    """Orders accepted before the engine saw a request are for intervals up to
    the open_through of the first advance after it; the funds stay until then."""
    alice = chain_world.participants[0]
    ledger = chain_world.ledger
    ledger.advance(5, 20)
    ledger.request_withdrawal(ESCROW_EACH, signer=alice)
    assert ledger.withdrawal(alice.address).amount == ESCROW_EACH
    ledger.advance(6, 24)  # the engine may have taken alice's orders up to 24
    ledger.advance(24, 25)
    assert not ledger.withdrawal(alice.address).unlocked
    with reverts("settlement: withdrawal still locked"):
        ledger.execute_withdrawal(signer=alice)
    # a settlement of a locked interval still finds the funds
    bob = chain_world.participants[1]
    a, b = _sorted([alice, bob])
    alice_first = a.address == alice.address
    _settle(chain_world, 24, [a.address, b.address], [-100, 100] if alice_first else [100, -100])
    ledger.advance(25, 25)
    assert ledger.withdrawal(alice.address).unlocked
    receipt = ledger.execute_withdrawal(signer=alice)
    (log,) = logs(ledger.settlement_contract, "Withdrawn", receipt)
    assert log["amount"] == ESCROW_EACH - 100  # capped at what the settlement left
    assert ledger.escrow_balance(alice.address) == 0
    with reverts("settlement: interval is final"):
        _settle(chain_world, 23, [], [], result_hash=b"\x09" * 32)


def test_settle_applies_deltas_and_fee_once(chain_world: ChainWorld) -> None:
    ledger = chain_world.ledger
    a, b, c = _sorted(list(chain_world.participants[:3]))
    receipt = _settle(chain_world, 7, [a.address, b.address, c.address], [-100, 60, 30], fee=10)
    (log,) = logs(ledger.settlement_contract, "Settled", receipt)
    assert log == {
        "interval_id": 7,
        "operator": chain_world.operator.address,
        "result_hash": HASH,
        "fee": 10,
        "accounts": 3,
    }
    assert ledger.escrow_balance(a.address) == ESCROW_EACH - 100
    assert ledger.escrow_balance(b.address) == ESCROW_EACH + 60
    assert ledger.escrow_balance(c.address) == ESCROW_EACH + 30
    assert ledger.escrow_balance(chain_world.operator.address) == 10
    assert ledger.settled_hash(7) == HASH
    (event,) = ledger.settled_events()
    assert ledger.settlement_deltas(event) == {a.address: -100, b.address: 60, c.address: 30}
    with reverts("settlement: interval already settled"):
        _settle(chain_world, 7, [a.address, b.address], [-1, 1])


def test_empty_settlement_marks_interval(chain_world: ChainWorld) -> None:
    _settle(chain_world, 3, [], [])
    assert chain_world.ledger.settled_hash(3) == HASH


def test_operator_among_accounts_is_checked_after_its_fee(chain_world: ChainWorld) -> None:
    operator = chain_world.operator
    alice = chain_world.participants[0]
    accounts = _sorted([operator, alice])
    # The operator (the grid) pays 40 but earns a fee of 50: it needs no escrow of its own.
    deltas = [-40 if acct == operator else -10 for acct in accounts]
    _settle(chain_world, 1, [acct.address for acct in accounts], deltas, fee=50)
    assert chain_world.ledger.escrow_balance(operator.address) == 10
    assert chain_world.ledger.escrow_balance(alice.address) == ESCROW_EACH - 10


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("zero hash", "settlement: result hash is zero"),
        ("length", "settlement: accounts and deltas differ in length"),
        ("fee range", "settlement: fee out of range"),
        ("descending", "settlement: accounts not strictly ascending"),
        ("duplicate", "settlement: accounts not strictly ascending"),
        ("zero address", "settlement: accounts not strictly ascending"),
        ("delta range", "settlement: delta out of range"),
        ("overdraw", "settlement: account overdrawn"),
        ("unbalanced", "settlement: deltas and fee do not sum to zero"),
        ("fee unbalanced", "settlement: deltas and fee do not sum to zero"),
    ],
)
def test_settle_reverts(chain_world: ChainWorld, case: str, reason: str) -> None:
    a, b = (p.address for p in _sorted(list(chain_world.participants[:2])))
    args: dict[str, Any] = {
        "zero hash": {"accounts": [a, b], "deltas": [-1, 1], "result_hash": bytes(32)},
        "length": {"accounts": [a, b], "deltas": [0]},
        "fee range": {"accounts": [], "deltas": [], "fee": 2**128},
        "descending": {"accounts": [b, a], "deltas": [-1, 1]},
        "duplicate": {"accounts": [a, a], "deltas": [-1, 1]},
        "zero address": {"accounts": [ZERO, a], "deltas": [-1, 1]},
        "delta range": {"accounts": [a, b], "deltas": [-MAX_DELTA - 1, MAX_DELTA + 1]},
        "overdraw": {"accounts": [a, b], "deltas": [-ESCROW_EACH - 1, ESCROW_EACH + 1]},
        "unbalanced": {"accounts": [a, b], "deltas": [-1, 2]},
        "fee unbalanced": {"accounts": [a, b], "deltas": [-1, 1], "fee": 1},
    }[case]
    with reverts(reason):
        _settle(chain_world, 5, **args)
    assert chain_world.ledger.settled_hash(5) is None


def test_only_the_operator_settles(chain_world: ChainWorld) -> None:
    alice = chain_world.participants[0]
    with reverts("settlement: caller is not the operator"):
        _settle(chain_world, 1, [], [], signer=alice)


def _later(world: ChainWorld, seconds: int) -> None:
    """Move the embedded chain's clock ``seconds`` ahead (the next block's timestamp)."""
    tester = world.chain.tester
    assert tester is not None
    now = int(world.chain.w3.eth.get_block("latest")["timestamp"])
    tester.time_travel(now + seconds)


def test_operator_change_waits_for_the_delay(chain_world: ChainWorld) -> None:
    alice = chain_world.participants[0]
    ledger = chain_world.ledger
    delay = ledger.change_delay()
    assert delay == DEFAULT_CHANGE_DELAY_S
    with reverts("settlement: caller is not the owner"):
        ledger.propose_operator(alice.address, signer=alice)
    with reverts("settlement: no operator proposed"):
        ledger.accept_operator()
    receipt = ledger.propose_operator(alice.address)
    (log,) = logs(ledger.settlement_contract, "OperatorProposed", receipt)
    block = chain_world.chain.w3.eth.get_block(receipt["blockNumber"])
    assert log["new_operator"] == alice.address
    assert log["eta"] == int(block["timestamp"]) + delay
    assert ledger.pending_operator() == (alice.address, log["eta"])
    with reverts("settlement: change delay not over"):
        ledger.accept_operator(signer=alice)
    _settle(chain_world, 1, [], [])  # the current operator still settles meanwhile
    _later(chain_world, delay)
    receipt = ledger.accept_operator(signer=alice)
    (log,) = logs(ledger.settlement_contract, "OperatorChanged", receipt)
    assert log["new_operator"] == alice.address
    assert ledger.operator() == alice.address
    with reverts("settlement: caller is not the operator"):
        _settle(chain_world, 2, [], [])  # the old operator
    _settle(chain_world, 2, [], [], signer=alice)
    assert ledger.settled_hash(2) == HASH


def test_operator_proposal_can_be_cancelled(chain_world: ChainWorld) -> None:
    alice = chain_world.participants[0]
    ledger = chain_world.ledger
    ledger.propose_operator(alice.address)
    ledger.propose_operator(ZERO)
    _later(chain_world, ledger.change_delay())
    with reverts("settlement: no operator proposed"):
        ledger.accept_operator()
    assert ledger.operator() == chain_world.operator.address


def test_ownership_moves_in_two_steps(chain_world: ChainWorld) -> None:
    alice, bob = chain_world.participants[:2]
    ledger = chain_world.ledger
    with reverts("settlement: caller is not the owner"):
        ledger.transfer_ownership(alice.address, signer=alice)
    receipt = ledger.transfer_ownership(alice.address)
    (log,) = logs(ledger.settlement_contract, "OwnershipTransferStarted", receipt)
    assert log["new_owner"] == alice.address
    assert ledger.owner() == chain_world.operator.address
    with reverts("settlement: caller is not the pending owner"):
        ledger.accept_ownership(signer=bob)
    with reverts("settlement: change delay not over"):
        ledger.accept_ownership(signer=alice)
    _later(chain_world, ledger.change_delay())
    receipt = ledger.accept_ownership(signer=alice)
    (log,) = logs(ledger.settlement_contract, "OwnershipTransferred", receipt)
    assert log["new_owner"] == alice.address
    assert ledger.owner() == alice.address
    with reverts("settlement: caller is not the owner"):
        ledger.propose_operator(bob.address)  # the former owner
    ledger.propose_operator(bob.address, signer=alice)
    assert ledger.pending_operator()[0] == bob.address


def test_corrections_apply_differences_in_version_order(chain_world: ChainWorld) -> None:
    ledger = chain_world.ledger
    a, b = _sorted(list(chain_world.participants[:2]))
    h1, h2 = b"\x21" * 32, b"\x22" * 32
    with reverts("settlement: interval not settled"):
        _correct(chain_world, 4, 1, HASH, [], [], result_hash=h1)
    _settle(chain_world, 4, [a.address, b.address], [-100, 100])
    with reverts("settlement: wrong version"):
        _correct(chain_world, 4, 2, HASH, [], [], result_hash=h1)
    with reverts("settlement: previous hash differs"):
        _correct(chain_world, 4, 1, h2, [], [], result_hash=h1)
    with reverts("settlement: result hash is zero or unchanged"):
        _correct(chain_world, 4, 1, HASH, [], [], result_hash=HASH)
    with reverts("settlement: deltas and fee do not sum to zero"):
        _correct(chain_world, 4, 1, HASH, [a.address], [5], result_hash=h1)
    with reverts("settlement: caller is not the operator"):
        _correct(chain_world, 4, 1, HASH, [], [], result_hash=h1, signer=a)
    receipt = _correct(
        chain_world, 4, 1, HASH, [a.address, b.address], [30, -40], fee=10, result_hash=h1
    )
    (log,) = logs(ledger.settlement_contract, "Corrected", receipt)
    assert (log["version"], log["previous_hash"], log["result_hash"]) == (1, HASH, h1)
    assert ledger.settled_hash(4) == h1
    assert ledger.settled_version(4) == 1
    assert ledger.escrow_balance(a.address) == ESCROW_EACH - 70
    assert ledger.escrow_balance(b.address) == ESCROW_EACH + 60
    with reverts("settlement: wrong version"):  # the same correction lands once
        _correct(chain_world, 4, 1, HASH, [a.address, b.address], [30, -40], fee=10, result_hash=h1)
    _correct(chain_world, 4, 2, h1, [], [], result_hash=h2)
    (event,) = [e for e in ledger.corrected_events(interval_id=4) if e.version == 1]
    assert ledger.settlement_deltas(event) == {a.address: 30, b.address: -40}
    ledger.advance(5, 5)
    with reverts("settlement: interval is final"):
        _correct(chain_world, 4, 3, h2, [], [], result_hash=b"\x23" * 32)


def test_free_escrow_is_balance_less_pending_withdrawal_per_account(
    chain_world: ChainWorld,
) -> None:
    ledger = chain_world.ledger
    alice, bob, carol = chain_world.participants[:3]
    ledger.request_withdrawal(1_000, signer=alice)
    ledger.request_withdrawal(ESCROW_EACH + 7, signer=bob)  # more than its escrow: 0 free
    stranger = chain_world.stranger.address  # no escrow at all
    accounts = [bob.address, stranger, alice.address, carol.address, alice.address]
    left = ESCROW_EACH - 1_000
    assert ledger.free_escrows(accounts) == [0, 0, left, ESCROW_EACH, left]
    # each one the same as its balance and withdrawal read apart
    for account, free in zip(accounts, ledger.free_escrows(accounts), strict=True):
        assert free == max(ledger.escrow_balance(account) - ledger.pending_withdrawal(account), 0)
    assert ledger.free_escrows([]) == []
