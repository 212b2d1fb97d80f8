"""Third-party exceptions are mapped to ours at the web3 boundary, never leaked."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_tester.exceptions import TransactionFailed
from eth_utils.exceptions import ValidationError
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3RPCError,
    Web3ValueError,
)

from contracts import (
    Chain,
    ChainConfigError,
    ChainConnectionError,
    ChainError,
    ChainRPCError,
    ContractRevertError,
    Deployment,
    Ledger,
    SettlementDriver,
    SettlementError,
    TransactionTimeoutError,
    load_account,
)
from contracts._boundary import map_error, mapped_errors
from tests.contracts.conftest import ChainWorld

REVERT_DATA = "0x08c379a0" + encode(["string"], ["settlement: account overdrawn"]).hex()


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (TransactionFailed("execution reverted: token: x"), ContractRevertError, "token: x"),
        (ContractLogicError("execution reverted", REVERT_DATA), ContractRevertError, None),
        (ContractLogicError("execution reverted: a b", None), ContractRevertError, "a b"),
        (
            Web3RPCError(
                "Error: VM Exception while processing transaction: "
                "reverted with reason string 'settlement: zero amount'"
            ),
            ContractRevertError,
            "settlement: zero amount",
        ),
        (Web3RPCError("nonce too low"), ChainRPCError, None),
        (ValidationError("Invalid transaction nonce"), ChainRPCError, None),
        (TimeExhausted("slow"), TransactionTimeoutError, None),
        (ProviderConnectionError("down"), ChainConnectionError, None),
        (ConnectionRefusedError("refused"), ChainConnectionError, None),
        (Web3ValueError("odd"), ChainError, None),
    ],
)
def test_map_error(exc: Exception, kind: type[ChainError], reason: str | None) -> None:
    mapped = map_error(exc, tx_hash="0xab")
    assert type(mapped) is kind
    if reason is not None:
        assert isinstance(mapped, ContractRevertError)
        assert mapped.reason == reason
        assert mapped.tx_hash == "0xab"
    if exc.args and exc.args[1:] == (REVERT_DATA,):
        assert isinstance(mapped, ContractRevertError)
        assert mapped.reason == "settlement: account overdrawn"


def test_foreign_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), mapped_errors():
        raise KeyError("ours to fix, not the chain's")
    assert map_error(ChainError("already ours")) is None


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stale_nonce(world: ChainWorld) -> None:
    tx = world.chain.sign(to=world.participants[0].address, value_wei=1)
    world.chain.broadcast(tx)
    world.chain.broadcast(tx)  # not flagged as a resend: a used nonce is an error


def _read_only(world: ChainWorld) -> None:
    chain = Chain(
        world.chain.w3,
        kind="rpc",
        operator=None,
        priority_fee_wei=1,
        poll_interval_s=0,
        estimate_gas=True,
    )
    chain.fund(world.participants[0].address)


def _failures(world: ChainWorld) -> list[tuple[str, Callable[[], Any], type[ChainError]]]:
    alice = world.participants[0]
    ledger = world.ledger
    dead_url = f"http://127.0.0.1:{_dead_port()}"
    other_chain = Deployment(
        chain_id=1, token=world.deployment.token, settlement=world.deployment.settlement, block=0
    )
    nowhere = Deployment(
        chain_id=world.chain.chain_id, token="0x" + "12" * 20, settlement="0x" + "34" * 20, block=0
    )
    unbalanced = {alice.address: 1}
    return [
        ("unreachable node", lambda: Chain.connect(dead_url), ChainConnectionError),
        ("bad key", lambda: load_account("0x1234"), ChainConfigError),
        ("bad address", lambda: ledger.token_balance("0xnope"), ChainConfigError),
        ("wrong chain", lambda: Ledger(world.chain, other_chain), ChainConfigError),
        ("no code", lambda: Ledger(world.chain, nowhere), ChainConfigError),
        ("bad deployment", lambda: Deployment.from_json("{}"), ChainConfigError),
        ("missing file", lambda: Deployment.load("/nonexistent/d.json"), ChainConfigError),
        ("revert", lambda: ledger.request_withdrawal(2**200, signer=alice), ContractRevertError),
        ("no funds for gas", lambda: world.chain.fund(alice.address, 10**30), ChainRPCError),
        ("stale nonce", lambda: _stale_nonce(world), ChainRPCError),
        ("read-only chain", lambda: _read_only(world), ChainConfigError),
        (
            "malformed settlement",
            lambda: SettlementDriver(ledger).settle_interval(0, unbalanced, 0, b"\x01" * 32),
            SettlementError,
        ),
    ]


@pytest.mark.parametrize("index", range(12))
def test_no_third_party_exception_escapes(chain_world: ChainWorld, index: int) -> None:
    name, action, expected = _failures(chain_world)[index]
    with pytest.raises(ChainError) as caught:
        action()
    assert isinstance(caught.value, expected), f"{name}: {caught.value!r}"
