"""SettlementDriver on the embedded EVM: validation, idempotence, crashes, resends."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    MAX_AMOUNT,
    ContractRevertError,
    SettlementConflictError,
    SettlementDriver,
    SettlementError,
    SettleStep,
    TransactionTimeoutError,
    canonical_settlement,
)
from tests.contracts.conftest import ESCROW_EACH, ChainWorld

HASHES = [bytes([i + 1]) * 32 for i in range(8)]


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


def _book(world: ChainWorld, interval_id: int) -> tuple[dict[str, int], int]:
    """A balanced settlement among the participants: deltas and a fee."""
    people = world.participants
    deltas = {p.address: (interval_id + 1) * (i + 1) * 1000 for i, p in enumerate(people[1:])}
    fee = 100
    deltas[people[0].address] = -sum(deltas.values()) - fee
    return deltas, fee


def _expected_escrows(world: ChainWorld, intervals: list[int]) -> dict[str, int]:
    escrow = {p.address: ESCROW_EACH for p in world.participants}
    escrow[world.operator.address] = 0
    for interval_id in intervals:
        deltas, fee = _book(world, interval_id)
        for address, delta in deltas.items():
            escrow[address] += delta
        escrow[world.operator.address] += fee
    return escrow


def _assert_settled_once(world: ChainWorld, intervals: list[int]) -> None:
    events = world.ledger.settled_events()
    assert [e.interval_id for e in events] == intervals
    expected = _expected_escrows(world, intervals)
    assert world.ledger.escrow_balances(expected) == expected


# -- canonical form -------------------------------------------------------------


@given(
    amounts=st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=20),
    fee=st.integers(0, 10**9),
    seed=st.binary(min_size=20, max_size=20),
)
def test_canonical_settlement_sorts_drops_zeros_and_keeps_the_sum(
    amounts: list[int], fee: int, seed: bytes
) -> None:
    addresses = [
        "0x" + bytes((b + i) % 256 for b in seed[:19]).hex() + f"{i + 1:02x}"
        for i in range(len(amounts) + 1)
    ]
    deltas = dict(zip(addresses, [*amounts, -sum(amounts) - fee], strict=True))
    accounts, values = canonical_settlement(deltas, fee)
    keys = [int(a, 16) for a in accounts]
    assert keys == sorted(set(keys))
    assert 0 not in values
    assert sum(values) + fee == 0
    lowered = {a.lower(): d for a, d in deltas.items() if d}
    assert dict(zip((a.lower() for a in accounts), values, strict=True)) == lowered


@pytest.mark.parametrize(
    ("deltas", "fee", "message"),
    [
        ({"0x" + "11" * 20: 1}, 0, "sum to 1"),
        ({"0x" + "11" * 20: -1}, 2, "sum to 1"),
        ({"0x" + "11" * 20: 1}, -1, "fee must be"),
        ({"0x" + "11" * 20: 0}, True, "fee must be"),
        ({"0x" + "11" * 20: 1.0}, 0, "must be an int"),
        ({"0x" + "11" * 20: MAX_AMOUNT + 1}, 0, "must be an int"),
        ({"0xnot-an-address": 0}, 0, "not an Ethereum address"),
        ({"0x" + "00" * 20: 0}, 0, "zero address"),
        ({"0x" + "ab" * 20: 1, "0x" + "AB" * 20: -1}, 0, "appears twice"),
        ({f"0x{i:040x}": 0 for i in range(1, 2050)} | {"0x" + "ff" * 20: 0}, 0, None),
    ],
)
def test_canonical_settlement_rejects(
    deltas: dict[str, Any], fee: Any, message: str | None
) -> None:
    if message is None:  # zeros are dropped before the size limit applies
        assert canonical_settlement(deltas, fee) == ([], [])
        return
    with pytest.raises(SettlementError, match=message):
        canonical_settlement(deltas, fee)


def test_too_many_accounts() -> None:
    deltas = {f"0x{i:040x}": 1 for i in range(1, 2050)}
    deltas[f"0x{9999:040x}"] = -2049
    with pytest.raises(SettlementError, match="2050 accounts, at most 2048"):
        canonical_settlement(deltas, 0)


# -- settling ---------------------------------------------------------------------


def test_settle_interval_applies_the_book(chain_world: ChainWorld) -> None:
    driver = SettlementDriver(chain_world.ledger)
    deltas, fee = _book(chain_world, 0)
    receipt = driver.settle_interval(0, deltas, fee, HASHES[0].hex())
    assert not receipt.already_settled
    assert receipt.accounts == len(deltas)
    assert receipt.gas_used > 0
    assert receipt.result_hash == "0x" + HASHES[0].hex()
    assert driver.is_settled(0)
    _assert_settled_once(chain_world, [0])
    (event,) = chain_world.ledger.settled_events()
    assert event.tx_hash == receipt.tx_hash
    assert chain_world.ledger.settlement_deltas(event) == deltas


def test_settling_again_returns_the_first_settlement(chain_world: ChainWorld) -> None:
    driver = SettlementDriver(chain_world.ledger)
    deltas, fee = _book(chain_world, 0)
    first = driver.settle_interval(0, deltas, fee, HASHES[0])
    again = SettlementDriver(chain_world.ledger).settle_interval(0, deltas, fee, HASHES[0])
    assert again.already_settled
    assert (again.tx_hash, again.gas_used, again.block_number) == (
        first.tx_hash,
        first.gas_used,
        first.block_number,
    )
    _assert_settled_once(chain_world, [0])


def test_a_different_result_for_a_settled_interval_conflicts(chain_world: ChainWorld) -> None:
    driver = SettlementDriver(chain_world.ledger)
    deltas, fee = _book(chain_world, 0)
    driver.settle_interval(0, deltas, fee, HASHES[0])
    with pytest.raises(SettlementConflictError, match="already settled") as caught:
        driver.settle_interval(0, deltas, fee, HASHES[1])
    assert caught.value.on_chain == "0x" + HASHES[0].hex()
    _assert_settled_once(chain_world, [0])


def test_overdraw_is_a_typed_revert_with_tx_hash(chain_world: ChainWorld) -> None:
    alice, bob = chain_world.participants[:2]
    driver = SettlementDriver(chain_world.ledger)
    deltas = {alice.address: -ESCROW_EACH - 1, bob.address: ESCROW_EACH + 1}
    with pytest.raises(ContractRevertError) as caught:
        driver.settle_interval(0, deltas, 0, HASHES[0])
    assert caught.value.reason == "settlement: account overdrawn"
    assert caught.value.tx_hash is not None  # embedded: sent, mined, reverted
    assert not driver.is_settled(0)


@pytest.mark.parametrize("bad", ["0x1234", bytes(32), "zz" * 32, b"\x01" * 31])
def test_bad_result_hash(chain_world: ChainWorld, bad: Any) -> None:
    deltas, fee = _book(chain_world, 0)
    with pytest.raises(SettlementError, match="result_hash"):
        SettlementDriver(chain_world.ledger).settle_interval(0, deltas, fee, bad)


@pytest.mark.parametrize("interval_id", [-1, 2**256, True])
def test_bad_interval_id(chain_world: ChainWorld, interval_id: Any) -> None:
    with pytest.raises(SettlementError, match="interval_id"):
        SettlementDriver(chain_world.ledger).settle_interval(interval_id, {}, 0, HASHES[0])


def test_driver_works_from_a_background_thread(chain_world: ChainWorld) -> None:
    driver = SettlementDriver(chain_world.ledger)
    failures: list[BaseException] = []

    def settle_all() -> None:
        try:
            for interval_id in range(3):
                deltas, fee = _book(chain_world, interval_id)
                driver.settle_interval(interval_id, deltas, fee, HASHES[interval_id])
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    worker = threading.Thread(target=settle_all)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert failures == []
    _assert_settled_once(chain_world, [0, 1, 2])


# -- crashes and resends ------------------------------------------------------------


@pytest.mark.parametrize("step", list(SettleStep))
def test_killed_at_each_step_every_interval_ends_settled_once(
    chain_world: ChainWorld, step: SettleStep
) -> None:
    def die_in_interval_1(at: SettleStep, interval_id: int, tx_hash: str | None) -> None:
        if at is step and interval_id == 1:
            raise Crash

    operator = chain_world.operator.address
    nonce_before, _ = chain_world.chain.nonces(operator)
    doomed = SettlementDriver(chain_world.ledger, on_step=die_in_interval_1)
    deltas, fee = _book(chain_world, 0)
    doomed.settle_interval(0, deltas, fee, HASHES[0])
    deltas, fee = _book(chain_world, 1)
    with pytest.raises(Crash):
        doomed.settle_interval(1, deltas, fee, HASHES[1])

    restarted = SettlementDriver(chain_world.ledger)  # a new process knows only the chain
    for interval_id in (1, 2):
        deltas, fee = _book(chain_world, interval_id)
        receipt = restarted.settle_interval(interval_id, deltas, fee, HASHES[interval_id])
        # the embedded chain mines on send: from SENT on, the crashed run's tx is in
        assert receipt.already_settled == (
            interval_id == 1 and step in (SettleStep.SENT, SettleStep.MINED)
        )
    _assert_settled_once(chain_world, [0, 1, 2])
    nonce_after, _ = chain_world.chain.nonces(operator)
    assert nonce_after - nonce_before == 3  # no duplicate was even sent


def test_timeout_resends_the_same_transaction(chain_world: ChainWorld) -> None:
    tester = chain_world.chain.tester
    assert tester is not None
    sent: list[str] = []

    def mine_on_third_send(at: SettleStep, interval_id: int, tx_hash: str | None) -> None:
        if at is SettleStep.SENT:
            assert tx_hash is not None
            sent.append(tx_hash)
            if len(sent) == 3:
                tester.mine_blocks()

    driver = SettlementDriver(
        chain_world.ledger, receipt_timeout_s=0.05, max_resends=3, on_step=mine_on_third_send
    )
    tester.disable_auto_mine_transactions()
    deltas, fee = _book(chain_world, 0)
    receipt = driver.settle_interval(0, deltas, fee, HASHES[0])
    assert len(sent) == 3
    assert set(sent) == {receipt.tx_hash}  # one transaction, one nonce, sent three times
    assert not receipt.already_settled
    tester.enable_auto_mine_transactions()
    _assert_settled_once(chain_world, [0])


def test_gives_up_after_resends_and_recovers_later(chain_world: ChainWorld) -> None:
    tester = chain_world.chain.tester
    assert tester is not None
    driver = SettlementDriver(chain_world.ledger, receipt_timeout_s=0.02, max_resends=1)
    tester.disable_auto_mine_transactions()
    deltas, fee = _book(chain_world, 0)
    with pytest.raises(TransactionTimeoutError, match="2 sends") as caught:
        driver.settle_interval(0, deltas, fee, HASHES[0])
    assert caught.value.tx_hash is not None
    tester.mine_blocks()  # the stuck transaction finally gets in
    tester.enable_auto_mine_transactions()
    receipt = driver.settle_interval(0, deltas, fee, HASHES[0])
    assert receipt.already_settled
    assert receipt.tx_hash == caught.value.tx_hash
    _assert_settled_once(chain_world, [0])


def test_one_chain_shared_by_threads_never_reuses_a_nonce(chain_world: ChainWorld) -> None:
    """The engine's settlement thread and, say, a faucet both sign with the operator key."""
    ledger = chain_world.ledger
    ledger.mint(chain_world.operator.address, 1_000)
    ledger.approve(1_000)
    failures: list[BaseException] = []

    def settle() -> None:
        try:
            driver = SettlementDriver(ledger)
            for interval_id in range(4):
                deltas, fee = _book(chain_world, interval_id)
                driver.settle_interval(interval_id, deltas, fee, HASHES[interval_id])
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    def faucet() -> None:
        try:
            for _ in range(4):
                ledger.deposit_for(chain_world.stranger.address, 10)
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    workers = [threading.Thread(target=settle), threading.Thread(target=faucet)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert failures == []
    _assert_settled_once(chain_world, [0, 1, 2, 3])
    assert ledger.escrow_balance(chain_world.stranger.address) == 40


# -- corrections and watermarks -------------------------------------------------


def test_correction_lands_once_and_is_found_again(chain_world: ChainWorld) -> None:
    driver = SettlementDriver(chain_world.ledger)
    a, b = chain_world.participants[:2]
    driver.settle_interval(3, {a.address: -500, b.address: 500}, 0, HASHES[0])
    args = {
        "version": 1,
        "previous_hash": HASHES[0],
        "deltas": {a.address: 40, b.address: -50},
        "fee": 10,
        "result_hash": HASHES[1],
    }
    first = driver.correct_interval(3, **args)
    assert not first.already_settled
    again = SettlementDriver(chain_world.ledger).correct_interval(3, **args)  # after a restart
    assert again.already_settled
    assert again.tx_hash == first.tx_hash
    assert chain_world.ledger.escrow_balance(a.address) == ESCROW_EACH - 460
    with pytest.raises(SettlementConflictError):
        driver.correct_interval(3, **{**args, "result_hash": HASHES[2]})
    with pytest.raises(ContractRevertError, match="previous hash differs"):
        driver.correct_interval(3, **{**args, "version": 2, "result_hash": HASHES[2]})
    with pytest.raises(SettlementError, match="version"):
        driver.correct_interval(3, **{**args, "version": 0})


def test_advance_only_raises_the_watermarks(chain_world: ChainWorld) -> None:
    driver = SettlementDriver(chain_world.ledger)
    assert driver.advance(2, 10)
    assert not driver.advance(1, 9)  # already past: nothing sent
    assert driver.advance(2, 11)
    assert (chain_world.ledger.final_before(), chain_world.ledger.open_through()) == (2, 11)
    assert chain_world.ledger.epoch() == 2
