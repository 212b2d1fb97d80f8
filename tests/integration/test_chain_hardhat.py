"""Settlement on a real JSON-RPC node (Hardhat, started by ``chain_hardhat_node``).

Covers the JSON-RPC path end to end: deploy, participant deposits with their
own keys and gas, netted settlements, events, withdrawals, reverts mapped
with reasons, the ``gridex chain`` CLI, resends of the same transaction, and
a settlement driver killed (a real process, ``os._exit``) at each step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from contracts import (
    Chain,
    ContractRevertError,
    Deployment,
    Ledger,
    SettlementDriver,
    SettleStep,
    SignedTx,
    deploy,
)
from contracts.devnode import HARDHAT_CHAIN_ID, HARDHAT_DEV_KEYS, HardhatNode

pytestmark = pytest.mark.integration

ESCROW = 50_000_000
REPO = Path(__file__).resolve().parents[2]


def _participants(count: int, seed: int) -> list[LocalAccount]:
    return [Account.from_key((seed * 1000 + i + 1).to_bytes(32, "big")) for i in range(count)]


@pytest.fixture
def chain_rpc(chain_hardhat_node: HardhatNode) -> Chain:
    return Chain.connect(
        chain_hardhat_node.url,
        operator_key=HARDHAT_DEV_KEYS[0],
        expected_chain_id=HARDHAT_CHAIN_ID,
    )


@pytest.fixture
def chain_market(chain_rpc: Chain) -> tuple[Ledger, list[LocalAccount]]:
    """Fresh contracts, and four participants with escrow paid in by the operator."""
    ledger = Ledger(chain_rpc, deploy(chain_rpc))
    people = _participants(4, seed=int(time.time_ns() % 10**6))
    ledger.mint(chain_rpc.operator.address, ESCROW * len(people))
    for person in people:
        ledger.deposit_for(person.address, ESCROW)
    return ledger, people


def _book(people: list[LocalAccount], interval_id: int) -> tuple[dict[str, int], int]:
    deltas = {p.address: (interval_id + 1) * (i + 1) * 100 for i, p in enumerate(people[1:])}
    fee = 7
    deltas[people[0].address] = -sum(deltas.values()) - fee
    return deltas, fee


def _hash(interval_id: int) -> bytes:
    return (interval_id + 1).to_bytes(32, "big")


def _assert_settled_once(ledger: Ledger, people: list[LocalAccount], intervals: list[int]) -> None:
    assert [e.interval_id for e in ledger.settled_events()] == intervals
    expected = {p.address: ESCROW for p in people}
    for interval_id in intervals:
        deltas, _ = _book(people, interval_id)
        for address, delta in deltas.items():
            expected[address] += delta
    assert ledger.escrow_balances(expected) == expected


def test_participant_round_trip(chain_rpc: Chain) -> None:
    ledger = Ledger(chain_rpc, deploy(chain_rpc))
    alice, bob = _participants(2, seed=1)
    for person in (alice, bob):
        chain_rpc.fund(person.address, 10**17)  # gas money
        ledger.mint(person.address, 1_000_000)
        ledger.deposit(600_000, signer=person)
    driver = SettlementDriver(ledger)
    receipt = driver.settle_interval(
        0, {alice.address: -250_000, bob.address: 240_000}, 10_000, _hash(0)
    )
    assert not receipt.already_settled
    assert ledger.escrow_balance(alice.address) == 350_000
    assert ledger.escrow_balance(bob.address) == 840_000
    assert ledger.escrow_balance(chain_rpc.operator.address) == 10_000
    (event,) = ledger.settled_events()
    assert (event.interval_id, event.fee, event.accounts) == (0, 10_000, 2)
    assert ledger.settlement_deltas(event) == {alice.address: -250_000, bob.address: 240_000}
    ledger.withdraw(840_000, signer=bob)
    assert ledger.token_balance(bob.address) == 1_240_000
    assert ledger.escrow_total() == 360_000


def _send_and_check(chain: Chain, tx: SignedTx) -> None:
    chain.broadcast(tx)  # Hardhat reports a revert here already
    receipt = chain.wait_for_receipt(tx.tx_hash, timeout_s=10)
    assert receipt is not None
    chain.check_succeeded(tx, receipt)


def test_reverts_carry_reasons(chain_market: tuple[Ledger, list[LocalAccount]]) -> None:
    ledger, people = chain_market
    chain = ledger.chain
    driver = SettlementDriver(ledger)
    overdraw = {people[0].address: -ESCROW - 1, people[1].address: ESCROW + 1}
    with pytest.raises(ContractRevertError) as caught:
        driver.settle_interval(0, overdraw, 0, _hash(0))
    assert caught.value.reason == "settlement: account overdrawn"
    assert caught.value.tx_hash is None  # caught by gas estimation: nothing was sent

    # A transaction that was valid when signed and reverts when mined.
    alice = people[0]
    chain.fund(alice.address, 10**17)
    stale = chain.sign(ledger.settlement_contract.functions.withdraw(ESCROW), signer=alice)
    driver.settle_interval(0, _book(people, 0)[0], _book(people, 0)[1], _hash(0))
    with pytest.raises(ContractRevertError) as caught:
        _send_and_check(chain, stale)
    assert caught.value.reason == "settlement: insufficient escrow balance"
    assert caught.value.tx_hash == stale.tx_hash


def test_cli_deploy_settle_file_balances(chain_hardhat_node: HardhatNode, tmp_path: Path) -> None:
    key = tmp_path / "operator.key"
    key.write_text(HARDHAT_DEV_KEYS[0])
    key.chmod(0o600)  # key files are owner-only (gridex.keys)
    deployment = tmp_path / "deployment.json"
    url = ["--rpc-url", chain_hardhat_node.url, "--chain-id", str(HARDHAT_CHAIN_ID)]

    def gridex(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "market.cli", "chain", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    printed = Deployment.from_json(
        gridex("deploy", *url, "--key", str(key), "--out", str(deployment))
    )
    assert Deployment.load(deployment) == printed

    chain = Chain.connect(chain_hardhat_node.url, operator_key=HARDHAT_DEV_KEYS[0])
    ledger = Ledger(chain, printed)
    people = _participants(3, seed=2)
    ledger.mint(chain.operator.address, 3 * ESCROW)
    for person in people:
        ledger.deposit_for(person.address, ESCROW)
    settlements = tmp_path / "settlement.json"
    entries = []
    for interval_id in (0, 1):
        deltas, fee = _book(people, interval_id)
        entries.append(
            {
                "interval": interval_id,
                "deltas": deltas,
                "fee": fee,
                "result_hash": "0x" + _hash(interval_id).hex(),
            }
        )
    settlements.write_text(json.dumps(entries))
    common = [*url, "--key", str(key), "--deployment", str(deployment)]
    first = gridex("settle-file", str(settlements), *common)
    assert first.count(": settled in tx") == 2
    again = gridex("settle-file", str(settlements), *common)  # idempotent
    assert again.count(": already settled in tx") == 2
    _assert_settled_once(ledger, people, [0, 1])

    table = gridex("balances", *url, "--deployment", str(deployment))
    for person in people:
        assert person.address in table
    assert str(ledger.escrow_balance(people[1].address)) in table


def test_timeout_resends_the_same_transaction(
    chain_market: tuple[Ledger, list[LocalAccount]], chain_hardhat_node: HardhatNode
) -> None:
    ledger, people = chain_market
    sends: list[str] = []

    def mine_on_second_send(at: SettleStep, interval_id: int, tx_hash: str | None) -> None:
        if at is SettleStep.SENT:
            assert tx_hash is not None
            sends.append(tx_hash)
            if len(sends) == 2:
                chain_hardhat_node.rpc("evm_mine")

    driver = SettlementDriver(
        ledger, receipt_timeout_s=0.3, max_resends=3, on_step=mine_on_second_send
    )
    deltas, fee = _book(people, 0)
    chain_hardhat_node.rpc("evm_setAutomine", [False])
    try:
        receipt = driver.settle_interval(0, deltas, fee, _hash(0))
    finally:
        chain_hardhat_node.rpc("evm_setAutomine", [True])
    assert sends == [receipt.tx_hash, receipt.tx_hash]
    _assert_settled_once(ledger, people, [0])


_CHILD = """
import os, sys, json
from contracts import Chain, Deployment, Ledger, SettlementDriver, SettleStep
url, key, deployment, step, plan = sys.argv[1:6]
plan = json.loads(plan)
pending = step == "sent-pending"  # leave the tx in the node's mempool, then die
if pending:
    step = "sent"

def die(at, interval_id, tx_hash):
    if pending and at == "checked" and interval_id == 1:
        ledger.chain.w3.provider.make_request("evm_setAutomine", [False])
    if at == step and interval_id == 1:
        os._exit(17)

ledger = Ledger(Chain.connect(url, operator_key=key), Deployment.from_json(deployment))
driver = SettlementDriver(ledger, on_step=die)
for entry in plan:
    driver.settle_interval(**entry)
"""


@pytest.mark.parametrize("step", [*SettleStep, "sent-pending"])
def test_killed_at_each_step_every_interval_ends_settled_once(
    chain_market: tuple[Ledger, list[LocalAccount]],
    chain_hardhat_node: HardhatNode,
    step: str,
) -> None:
    ledger, people = chain_market
    plan = []
    for interval_id in range(3):
        deltas, fee = _book(people, interval_id)
        plan.append(
            {
                "interval_id": interval_id,
                "deltas": deltas,
                "fee": fee,
                "result_hash": "0x" + _hash(interval_id).hex(),
            }
        )
    pending = step == "sent-pending"  # the node holds the tx in its mempool when the driver dies
    operator = ledger.chain.operator.address
    nonce_before, _ = ledger.chain.nonces(operator)
    try:
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                chain_hardhat_node.url,
                HARDHAT_DEV_KEYS[0],
                ledger.deployment.to_json(),
                str(step),
                json.dumps(plan),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == 17, child.stderr
        restarted = SettlementDriver(ledger, receipt_timeout_s=10, max_resends=0)
        if pending:
            assert not restarted.is_settled(1)
            mined, in_flight = ledger.chain.nonces(ledger.chain.operator.address)
            assert in_flight == mined + 1

            # The restarted driver must wait for the orphan, not send a second settlement.
            def mine_and_resume() -> None:
                chain_hardhat_node.rpc("evm_mine")
                chain_hardhat_node.rpc("evm_setAutomine", [True])

            threading.Timer(1.0, mine_and_resume).start()
        receipts = [restarted.settle_interval(**entry) for entry in plan]
    finally:
        chain_hardhat_node.rpc("evm_setAutomine", [True])
    assert [r.already_settled for r in receipts] == [
        True,
        step not in (SettleStep.SIGNED, SettleStep.CHECKED),
        False,
    ]
    _assert_settled_once(ledger, people, [0, 1, 2])
    nonce_after, _ = ledger.chain.nonces(operator)
    assert nonce_after - nonce_before == 3  # no duplicate was even sent
