"""Everything on the deployed contracts except settling: balances, events, deposits, roles.

Amounts are integers in token base units (EnergyToken has
:data:`TOKEN_DECIMALS` decimals); ETH amounts are in wei. Actions sign with
the chain's operator key unless a ``signer`` (a participant's key) is given::

    ledger = Ledger(chain, deployment)
    ledger.mint(alice, 5_000_000)                  # operator as faucet
    chain.fund(alice)                              # ETH for alice's gas
    ledger.deposit(5_000_000, signer=alice_key)    # approve + deposit
    ledger.escrow_balance(alice)                   # -> 5_000_000
    ledger.request_withdrawal(1_000_000, signer=alice_key)
    ...                                            # once the intervals alice may be in are final
    ledger.execute_withdrawal(signer=alice_key)
    ledger.deposit_for(bob, 2_000_000)             # operator pays into bob's escrow

Settling is :class:`contracts.driver.SettlementDriver`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3 import Web3

from contracts._boundary import mapped_errors
from contracts._compile import compiled
from contracts.chain import Chain, Key, load_account
from contracts.deployment import Deployment
from contracts.errors import ChainConfigError

if TYPE_CHECKING:
    from web3.contract import Contract
    from web3.types import TxReceipt

__all__ = [
    "TOKEN_DECIMALS",
    "CorrectedEvent",
    "Ledger",
    "SettledEvent",
    "Withdrawal",
    "checksum_address",
]

_ZERO_ADDRESS = "0x" + "00" * 20

TOKEN_DECIMALS = 6
"""Decimals of EnergyToken: one token is 10**6 base units."""


def checksum_address(value: str) -> str:
    """``value`` as a checksummed address.

    Raises:
        ChainConfigError: not a 20-byte hex address.
    """
    try:
        return Web3.to_checksum_address(value)
    except (ValueError, TypeError) as exc:
        raise ChainConfigError(f"not an Ethereum address: {value!r}") from exc


MAX_ACCOUNTS = 2048
"""Most accounts one settlement, or one free-escrow read, may name (the contract's bound)."""


@dataclass(frozen=True)
class SettledEvent:
    """One ``Settled`` event: an interval accepted on chain."""

    interval_id: int
    result_hash: str  # 0x-hex, 32 bytes
    fee: int  # token base units, credited to the operator's escrow
    accounts: int  # number of accounts whose escrow changed
    operator: str
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class CorrectedEvent:
    """One ``Corrected`` event: a reconciliation of an interval accepted on chain."""

    interval_id: int
    version: int  # 1, 2, ...
    previous_hash: str  # 0x-hex, the hash of version - 1
    result_hash: str  # 0x-hex
    fee: int
    accounts: int
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class Withdrawal:
    """An account's pending withdrawal request."""

    amount: int  # base units requested; 0: none pending
    epoch: int  # the contract's advance count when it was requested
    unlocked: bool  # execute_withdrawal would succeed now


class Ledger:
    """Reads and non-settling actions on one :class:`~contracts.deployment.Deployment`.

    Raises (constructor):
        ChainConfigError: the deployment belongs to another chain or has no code there.
    """

    def __init__(self, chain: Chain, deployment: Deployment, *, verify: bool = True) -> None:
        if deployment.chain_id != chain.chain_id:
            raise ChainConfigError(
                f"deployment is for chain id {deployment.chain_id}, connected to {chain.chain_id}"
            )
        self._chain = chain
        self._deployment = deployment
        self._reader = chain.operator.address if chain.has_operator else _ZERO_ADDRESS
        w3 = chain.w3
        self._token: Contract = w3.eth.contract(
            address=Web3.to_checksum_address(deployment.token), abi=compiled("EnergyToken").abi
        )
        self._settlement: Contract = w3.eth.contract(
            address=Web3.to_checksum_address(deployment.settlement), abi=compiled("Settlement").abi
        )
        if verify:
            with mapped_errors():
                for name, address in (
                    ("token", deployment.token),
                    ("settlement", deployment.settlement),
                ):
                    if not w3.eth.get_code(Web3.to_checksum_address(address)):
                        raise ChainConfigError(f"no contract at the {name} address {address}")

    @property
    def chain(self) -> Chain:
        return self._chain

    @property
    def deployment(self) -> Deployment:
        return self._deployment

    @property
    def token_contract(self) -> Contract:
        """The web3 EnergyToken contract (calls on it are not error-mapped)."""
        return self._token

    @property
    def settlement_contract(self) -> Contract:
        """The web3 Settlement contract (calls on it are not error-mapped)."""
        return self._settlement

    # -- reads --------------------------------------------------------------

    def _call(self, function: Any) -> Any:
        # An explicit sender: otherwise web3's eth-tester provider lists every
        # genesis account (eth_accounts) on each call to pick a default one.
        with mapped_errors():
            return function.call({"from": self._reader})

    def token_balance(self, address: str) -> int:
        """Tokens ``address`` holds outside escrow, in base units."""
        return int(self._call(self._token.functions.balanceOf(checksum_address(address))))

    def escrow_balance(self, address: str) -> int:
        """Tokens ``address`` holds in the settlement escrow, in base units."""
        return int(self._call(self._settlement.functions.balanceOf(checksum_address(address))))

    def escrow_balances(self, addresses: Iterable[str]) -> dict[str, int]:
        """Escrow balance per (checksummed) address."""
        return {checksum_address(a): self.escrow_balance(a) for a in addresses}

    def allowance(self, owner: str, spender: str | None = None) -> int:
        """What ``spender`` (default: the settlement contract) may take from ``owner``."""
        spender = checksum_address(spender or self._deployment.settlement)
        return int(self._call(self._token.functions.allowance(checksum_address(owner), spender)))

    def total_supply(self) -> int:
        return int(self._call(self._token.functions.totalSupply()))

    def escrow_total(self) -> int:
        """Tokens held by the settlement contract: the sum of all escrow balances."""
        return self.token_balance(self._deployment.settlement)

    def operator(self) -> str:
        """The address allowed to settle."""
        return str(self._call(self._settlement.functions.operator()))

    def owner(self) -> str:
        """The settlement contract's owner (sets the operator)."""
        return str(self._call(self._settlement.functions.owner()))

    def token_owner(self) -> str:
        """The token's owner (mints)."""
        return str(self._call(self._token.functions.owner()))

    def settled_hash(self, interval_id: int) -> bytes | None:
        """The clearing-result hash recorded for ``interval_id``, or None while unsettled."""
        value = bytes(self._call(self._settlement.functions.settled(interval_id)))
        return None if value == bytes(32) else value

    def settled_version(self, interval_id: int) -> int:
        """Version of ``interval_id``'s latest posting (0: provisional only, or unsettled)."""
        return int(self._call(self._settlement.functions.version(interval_id)))

    def final_before(self) -> int:
        """Every interval id below this is final on chain."""
        return int(self._call(self._settlement.functions.final_before()))

    def open_through(self) -> int:
        """The last interval the operator announced as open for orders."""
        return int(self._call(self._settlement.functions.open_through()))

    def epoch(self) -> int:
        """How many times the operator has advanced the watermarks."""
        return int(self._call(self._settlement.functions.epoch()))

    def pending_withdrawal(self, address: str) -> int:
        """The amount of ``address``'s pending withdrawal, base units (0 when there is none).

        One contract call, where :meth:`withdrawal` makes three (order entry reads
        every participant's free escrow at once, :meth:`free_escrows`).
        """
        return int(
            self._call(self._settlement.functions.withdrawal_amount(checksum_address(address)))
        )

    def free_escrows(self, addresses: Sequence[str]) -> list[int]:
        """Escrow balance less pending withdrawal (at least 0) of each address, in order.

        One contract call per 2,048 addresses: order entry reads every
        participant's after each posting (collateral).
        """
        out: list[int] = []
        for at in range(0, len(addresses), MAX_ACCOUNTS):
            chunk = [checksum_address(a) for a in addresses[at : at + MAX_ACCOUNTS]]
            out.extend(int(v) for v in self._call(self._settlement.functions.free_escrow(chunk)))
        return out

    def withdrawal(self, address: str) -> Withdrawal:
        """The pending withdrawal of ``address`` (amount 0 when there is none)."""
        functions = self._settlement.functions
        account = checksum_address(address)
        return Withdrawal(
            amount=self.pending_withdrawal(account),
            epoch=int(self._call(functions.withdrawal_epoch(account))),
            unlocked=bool(self._call(functions.withdrawal_unlocked(account))),
        )

    def pending_operator(self) -> tuple[str, int]:
        """The proposed operator and the Unix time (s) from which it can take over."""
        functions = self._settlement.functions
        return str(self._call(functions.pending_operator())), int(
            self._call(functions.operator_eta())
        )

    def change_delay(self) -> int:
        """Seconds between an operator or owner proposal and its taking effect."""
        return int(self._call(self._settlement.functions.change_delay()))

    def corrected_events(
        self, *, interval_id: int | None = None, from_block: int | None = None
    ) -> list[CorrectedEvent]:
        """``Corrected`` events in block order, optionally of one interval only."""
        filters = {"interval_id": interval_id} if interval_id is not None else None
        with mapped_errors():
            logs = self._settlement.events.Corrected.get_logs(
                from_block=self._deployment.block if from_block is None else from_block,
                to_block="latest",
                argument_filters=filters,
            )
        return [
            CorrectedEvent(
                interval_id=int(log["args"]["interval_id"]),
                version=int(log["args"]["version"]),
                previous_hash=HexBytes(log["args"]["previous_hash"]).to_0x_hex(),
                result_hash=HexBytes(log["args"]["result_hash"]).to_0x_hex(),
                fee=int(log["args"]["fee"]),
                accounts=int(log["args"]["accounts"]),
                tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
                block_number=int(log["blockNumber"]),
            )
            for log in logs
        ]

    def settled_events(
        self,
        *,
        interval_id: int | None = None,
        from_block: int | None = None,
        to_block: int | str = "latest",
    ) -> list[SettledEvent]:
        """``Settled`` events in block order, optionally of one interval only.

        ``from_block`` defaults to the deployment block.
        """
        filters = {"interval_id": interval_id} if interval_id is not None else None
        with mapped_errors():
            logs = self._settlement.events.Settled.get_logs(
                from_block=self._deployment.block if from_block is None else from_block,
                to_block=to_block,
                argument_filters=filters,
            )
        return [
            SettledEvent(
                interval_id=int(log["args"]["interval_id"]),
                result_hash=HexBytes(log["args"]["result_hash"]).to_0x_hex(),
                fee=int(log["args"]["fee"]),
                accounts=int(log["args"]["accounts"]),
                operator=str(log["args"]["operator"]),
                tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
                block_number=int(log["blockNumber"]),
            )
            for log in logs
        ]

    def settlement_deltas(self, event: SettledEvent | CorrectedEvent) -> dict[str, int]:
        """The per-account escrow changes of a settled interval, decoded from its transaction."""
        with mapped_errors(tx_hash=event.tx_hash):
            tx = self._chain.w3.eth.get_transaction(HexBytes(event.tx_hash))
            _, args = self._settlement.decode_function_input(tx["input"])
        return {
            str(account): int(delta)
            for account, delta in zip(args["accounts"], args["deltas"], strict=True)
        }

    def depositors(self, *, from_block: int | None = None) -> list[str]:
        """Every account that ever received a deposit, in first-seen order."""
        with mapped_errors():
            logs = self._settlement.events.Deposited.get_logs(
                from_block=self._deployment.block if from_block is None else from_block
            )
        return list(dict.fromkeys(str(log["args"]["account"]) for log in logs))

    # -- actions ------------------------------------------------------------

    def mint(self, to: str, amount: int) -> TxReceipt:
        """Mint ``amount`` base units to ``to``; the operator key must own the token."""
        return self._chain.transact(self._token.functions.mint(checksum_address(to), amount))

    def approve(self, amount: int, *, signer: Key | None = None) -> TxReceipt:
        """Let the settlement contract take up to ``amount`` of the signer's tokens."""
        spender = self._deployment.settlement
        return self._chain.transact(self._token.functions.approve(spender, amount), signer=signer)

    def deposit(self, amount: int, *, signer: Key | None = None) -> TxReceipt:
        """Move ``amount`` of the signer's tokens into escrow, approving ``amount`` if needed."""
        self._ensure_allowance(amount, signer)
        return self._chain.transact(self._settlement.functions.deposit(amount), signer=signer)

    def deposit_for(self, account: str, amount: int, *, signer: Key | None = None) -> TxReceipt:
        """Pay ``amount`` of the signer's (default: operator's) tokens into ``account``'s escrow."""
        self._ensure_allowance(amount, signer)
        call = self._settlement.functions.deposit_for(checksum_address(account), amount)
        return self._chain.transact(call, signer=signer)

    def request_withdrawal(self, amount: int, *, signer: Key | None = None) -> TxReceipt:
        """Ask for ``amount`` of the signer's escrow (0 cancels); see :meth:`execute_withdrawal`."""
        call = self._settlement.functions.request_withdrawal(amount)
        return self._chain.transact(call, signer=signer)

    def execute_withdrawal(self, *, signer: Key | None = None) -> TxReceipt:
        """Pay the signer's requested withdrawal out of escrow, once it is unlocked.

        Raises:
            ContractRevertError: "settlement: withdrawal still locked" while an
                interval the account may be in is not final yet.
        """
        call = self._settlement.functions.execute_withdrawal()
        return self._chain.transact(call, signer=signer)

    def advance(
        self, final_before: int, open_through: int, *, signer: Key | None = None
    ) -> TxReceipt:
        """Announce the finality and order-horizon watermarks (signed by the operator)."""
        call = self._settlement.functions.advance(final_before, open_through)
        return self._chain.transact(call, signer=signer)

    def propose_operator(self, new_operator: str, *, signer: Key | None = None) -> TxReceipt:
        """Schedule ``new_operator`` (signed by the owner); it takes over after the delay."""
        call = self._settlement.functions.propose_operator(checksum_address(new_operator))
        return self._chain.transact(call, signer=signer)

    def accept_operator(self, *, signer: Key | None = None) -> TxReceipt:
        """Make the proposed operator the operator once the delay is over (anyone signs)."""
        return self._chain.transact(self._settlement.functions.accept_operator(), signer=signer)

    def transfer_ownership(self, new_owner: str, *, signer: Key | None = None) -> TxReceipt:
        """First step of a settlement-contract ownership transfer (signed by the owner)."""
        call = self._settlement.functions.transfer_ownership(checksum_address(new_owner))
        return self._chain.transact(call, signer=signer)

    def accept_ownership(self, *, signer: Key | None = None) -> TxReceipt:
        """Second step, signed by the pending owner."""
        return self._chain.transact(self._settlement.functions.accept_ownership(), signer=signer)

    def _ensure_allowance(self, amount: int, signer: Key | None) -> None:
        owner = load_account(signer).address if signer is not None else self._chain.operator.address
        if self.allowance(owner) < amount:
            self.approve(amount, signer=signer)  # exactly what is needed, never unlimited
