"""The py-evm node in its own process behaves like the in-process embedded chain.

Each check runs the same transactions on :meth:`Chain.embedded` (the
reference: eth-tester in this process) and through :class:`PyEvmNode` over
HTTP, and compares what comes back: balances, gas, revert reasons. A bridge
that formatted a result wrongly, lost a revert's reason or dropped a request
fails one of them.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from contracts import Chain, ContractRevertError, Ledger, SettlementDriver, deploy
from contracts.pyevm_node import PyEvmNode

OPERATOR = Account.from_key((7).to_bytes(32, "big"))
PEOPLE = tuple(Account.from_key((2000 + i).to_bytes(32, "big")) for i in range(3))


@pytest.fixture(scope="module")
def node() -> Iterator[PyEvmNode]:
    with PyEvmNode(operator=OPERATOR.address, prefund=[p.address for p in PEOPLE]) as running:
        yield running


def _rpc(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _day(chain: Chain) -> tuple[dict[str, int], list[int], str]:
    """Deploy, fund, settle two intervals; escrow per person, gas per posting, a revert."""
    ledger = Ledger(chain, deploy(chain))
    ledger.mint(OPERATOR.address, 10**12)
    for person in PEOPLE:
        ledger.deposit_for(person.address, 10**9)
    ledger.deposit_for(OPERATOR.address, 10**9)
    driver = SettlementDriver(ledger)
    gas = []
    for k, deltas in enumerate(({PEOPLE[0].address: -300, PEOPLE[1].address: 300}, {})):
        moved = {**deltas, PEOPLE[2].address: -7, OPERATOR.address.lower(): 7 - 1}
        receipt = driver.settle_interval(k, moved, 1, (k + 1).to_bytes(32, "big"))
        gas.append(receipt.gas_used)
    with pytest.raises(ContractRevertError) as refused:
        ledger.deposit(10**15, signer=PEOPLE[0])  # more than the person holds
    escrow = {p.address: int(ledger.escrow_balance(p.address)) for p in PEOPLE}
    return escrow, gas, refused.value.reason


def _connect(node: PyEvmNode, key: LocalAccount | None = OPERATOR) -> Chain:
    return Chain.connect(node.url, operator_key=key, **node.connect_options)


def test_a_day_on_the_node_is_the_day_on_the_embedded_chain(node: PyEvmNode) -> None:
    reference = Chain.embedded(operator_key=OPERATOR, prefund=[p.address for p in PEOPLE])
    chain = _connect(node)

    assert _day(chain) == _day(reference)
    assert chain.chain_id == reference.chain_id
    assert chain.eth_balance(PEOPLE[1].address) == reference.eth_balance(PEOPLE[1].address)


def test_another_process_reads_the_same_chain(node: PyEvmNode) -> None:
    writer = _connect(node)
    ledger = Ledger(writer, deploy(writer))
    ledger.mint(PEOPLE[2].address, 12_345)

    reader = Chain.connect(node.url)  # read-only, as `gridex verify` connects
    assert int(Ledger(reader, ledger.deployment).token_balance(PEOPLE[2].address)) == 12_345


def test_it_answers_like_a_json_rpc_node(node: PyEvmNode) -> None:
    number = _rpc(node.url, {"jsonrpc": "2.0", "id": 5, "method": "eth_blockNumber"})
    assert number["id"] == 5
    assert number["result"].startswith("0x")  # a quantity, not a JSON number
    int(number["result"], 16)

    batch = _rpc(
        node.url,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_noSuchThing", "params": []},
        ],
    )
    assert [a["id"] for a in batch] == [1, 2]
    assert int(batch[0]["result"], 16) == _connect(node).chain_id
    assert "eth_noSuchThing" in batch[1]["error"]["message"]

    assert _rpc(node.url, {"id": 3})["error"]["code"] == -32600  # no method
    request = urllib.request.Request(node.url, data=b"{not json", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["error"]["code"] == -32700


def test_stopping_ends_the_child_process() -> None:
    node = PyEvmNode(operator=OPERATOR.address)
    node.start()
    process = node._process
    assert process is not None
    assert process.poll() is None
    assert _connect(node).block_number() == 0

    node.stop()
    assert process.returncode is not None  # stop() waited for it to exit
    with pytest.raises(RuntimeError, match="not running"):
        _ = node.url
