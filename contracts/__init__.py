"""Token settlement of gridex on an EVM: Vyper contracts and their web3.py driver.

Contracts (Vyper 0.4.3, compiled in-process and cached, see
:mod:`contracts._compile`):

* ``EnergyToken`` — ERC-20 payment token, 6 decimals, minted by its owner.
* ``Settlement`` — escrow of that token and one netted settlement per
  interval, accepted once, with the clearing result's hash in its event.

Python API (amounts are int token base units, ETH in wei; addresses are hex
strings; every failure is a :class:`~contracts.errors.ChainError`)::

    from contracts import Chain, Ledger, SettlementDriver, deploy

    chain = Chain.embedded(prefund=participant_addresses)  # or Chain.connect(url, operator_key=key)
    deployment = deploy(chain)                             # -> Deployment (save/load as JSON)
    ledger = Ledger(chain, deployment)
    ledger.mint(address, amount)                           # operator as faucet
    chain.fund(address, amount_wei)                        # ETH for a participant's gas
    ledger.deposit(amount, signer=participant_key)         # approve + deposit into escrow
    ledger.deposit_for(address, amount)                    # operator pays into someone's escrow
    driver = SettlementDriver(ledger)
    driver.settle_interval(interval_id, deltas, fee, result_hash)  # -> SettlementReceipt
    ledger.escrow_balance(address); ledger.token_balance(address)
    ledger.settled_events(); ledger.settlement_deltas(event)
    ledger.request_withdrawal(amount, signer=participant_key)  # then execute_withdrawal

Sign convention: a delta is the change of an account's escrow balance,
positive when the account receives tokens (a seller), negative when it pays;
``sum(deltas) + fee == 0`` and the fee goes to the operator's escrow (credited
before the deltas, so the operator may itself be an account; a negative
operator delta beyond the fee needs operator escrow: ``ledger.deposit(...)``).

Threads: a :class:`Chain` may be shared (sends hold ``chain.send_lock``); a
:class:`SettlementDriver` is used by one thread at a time and keeps no state
but the chain's. ``contracts.devnode.HardhatNode`` starts a local Hardhat
node (tests, benchmark, demo). Cost on the embedded EVM: about 45 ms per
35-account settlement (``bench/settlement.py``).
"""

from typing import TYPE_CHECKING, Any

import gridex  # noqa: F401 - first: eth-hash on the C keccak (see gridex)

if TYPE_CHECKING:  # the names below, imported on first use (web3 takes seconds to import)
    from contracts._compile import CompiledContract, compiled
    from contracts.chain import Chain, Key, SignedTx, load_account
    from contracts.deployment import DEFAULT_CHANGE_DELAY_S, Deployment, deploy
    from contracts.driver import (
        MAX_AMOUNT,
        SettlementDriver,
        SettlementReceipt,
        SettleStep,
        StepHook,
        canonical_settlement,
    )
    from contracts.errors import (
        ChainConfigError,
        ChainConnectionError,
        ChainError,
        ChainRPCError,
        CompileError,
        ContractRevertError,
        SettlementConflictError,
        SettlementError,
        TransactionTimeoutError,
    )
    from contracts.ledger import (
        MAX_ACCOUNTS,
        TOKEN_DECIMALS,
        CorrectedEvent,
        Ledger,
        SettledEvent,
        Withdrawal,
        checksum_address,
    )

_LAZY = {
    "Chain": "contracts.chain",
    "CorrectedEvent": "contracts.ledger",
    "DEFAULT_CHANGE_DELAY_S": "contracts.deployment",
    "Withdrawal": "contracts.ledger",
    "ChainConfigError": "contracts.errors",
    "ChainConnectionError": "contracts.errors",
    "ChainError": "contracts.errors",
    "ChainRPCError": "contracts.errors",
    "CompileError": "contracts.errors",
    "CompiledContract": "contracts._compile",
    "ContractRevertError": "contracts.errors",
    "Deployment": "contracts.deployment",
    "Key": "contracts.chain",
    "Ledger": "contracts.ledger",
    "MAX_ACCOUNTS": "contracts.ledger",
    "MAX_AMOUNT": "contracts.driver",
    "SettleStep": "contracts.driver",
    "SettledEvent": "contracts.ledger",
    "SettlementConflictError": "contracts.errors",
    "SettlementDriver": "contracts.driver",
    "SettlementError": "contracts.errors",
    "SettlementReceipt": "contracts.driver",
    "SignedTx": "contracts.chain",
    "StepHook": "contracts.driver",
    "TOKEN_DECIMALS": "contracts.ledger",
    "TransactionTimeoutError": "contracts.errors",
    "canonical_settlement": "contracts.driver",
    "checksum_address": "contracts.ledger",
    "compiled": "contracts._compile",
    "deploy": "contracts.deployment",
    "load_account": "contracts.chain",
}

__all__ = [
    "DEFAULT_CHANGE_DELAY_S",
    "MAX_ACCOUNTS",
    "MAX_AMOUNT",
    "TOKEN_DECIMALS",
    "Chain",
    "ChainConfigError",
    "ChainConnectionError",
    "ChainError",
    "ChainRPCError",
    "CompileError",
    "CompiledContract",
    "ContractRevertError",
    "CorrectedEvent",
    "Deployment",
    "Key",
    "Ledger",
    "SettleStep",
    "SettledEvent",
    "SettlementConflictError",
    "SettlementDriver",
    "SettlementError",
    "SettlementReceipt",
    "SignedTx",
    "StepHook",
    "TransactionTimeoutError",
    "Withdrawal",
    "canonical_settlement",
    "checksum_address",
    "compiled",
    "deploy",
    "load_account",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, so ``import contracts.errors`` stays light."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'contracts' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
